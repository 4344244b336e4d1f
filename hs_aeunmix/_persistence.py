"""Model files: hyperparameters and a fitted state as bytes, and back; no pickle.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_
file. Its tensors are the network's state (``module.*``) and, when the
initial endmembers were given as an array, that array
(``hyperparameters.init``). Its metadata hold a JSON header (format version,
package version, every hyperparameter, the training signal's axis
calibration, the internal data scaling, a training summary, the type and
shape of every tensor) and a SHA-256 digest of the header and all tensor
bytes. Through the header, the digest covers the tensors' types and shapes
too (files written before the header listed them have no such list, and
still load).

Reading parses JSON and raw little-endian arrays only, so loading a file
never executes code from it. Files are treated as hostile, and the work and
memory a file can demand are bounded by its size: the outer header is
bounded in size and its tensors' types checked before any is read, the JSON
in depth, the long lists of the model header are checked in one pass before
:data:`HEADER_SCHEMA` (types, ranges, sizes) checks the rest, the header's
numbers are checked against the tensors before anything is built from them,
and weights or scales that no training can produce (NaN, negative
endmembers, a data scale of 1e-300) are refused. Every failure is a
:class:`ModelFileError` naming the file.

The same bytes are stored in ``learning_results.aeunmix_model`` (a uint8
array) after ``s.decomposition(algorithm="ae")``, so a signal saved to
``.hspy`` carries its model; one read from such a file is checked for its
type and declared size (:data:`MAX_MODEL_BYTES`) before it is read, since
HDF5 and zarr store it compressed. This module knows nothing of the estimator:
:func:`hs_aeunmix.load_model` builds one from what :func:`read_model`
returns.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import struct
from collections.abc import Callable
from pathlib import Path

import jsonschema
import numpy as np
import safetensors
import safetensors.torch
import torch

from hs_aeunmix._axes import SignalCalibration
from hs_aeunmix._files import write_bytes_atomically
from hs_aeunmix._initialisation import GIVEN, STARTS
from hs_aeunmix._losses import LOSSES
from hs_aeunmix._state import FittedState
from hs_aeunmix._training import TrainingHistory
from hs_aeunmix._version import __version__

_logger = logging.getLogger(__name__)

FORMAT_NAME = "hs_aeunmix.model"
# Version 2 added the per-pixel intensity, the projected encoder input, the
# minimum-volume weight, known endmembers, the screening counts and the
# stability report. Version 1 files hold models without them.
FORMAT_VERSION = 2
# Version 1 models were trained before these options existed: their values
# then reproduce those models.
_VERSION_1_OPTIONS = {
    "pixel_scale": False,
    "input_components": None,
    "min_volume_weight": 0.0,
    "fixed_endmembers": None,
    "baseline": None,
}
FILE_SUFFIX = ".aeunmix"
# Suffixes of HyperSpy results files: a model file must not pose as one.
RESULTS_SUFFIXES = (".hspy", ".zspy", ".hdf5", ".h5")

_HEADER_KEY = "hs_aeunmix"
_DIGEST_KEY = "sha256"
_MODULE_PREFIX = "module."
_HYPERPARAMETER_PREFIX = "hyperparameters."
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Hostile-file bounds: the safetensors header of a model is a few kB (a
# non-uniform axis of 2000 channels adds ~40 kB); no spectrometer has a
# million channels.
MAX_HEADER_BYTES = 16 * 2**20
MAX_CHANNELS = 2**20
MAX_JSON_DEPTH = 8
#: The largest model read out of a HyperSpy results file, whose HDF5 or zarr
#: compression lets a file of a few kB declare gigabytes. 256 MiB hold 64
#: million float32 weights, those of a first layer of 1024 units on 65536
#: channels: eight times the default width, on four times the 16384 channels
#: of the widest spectra recorded. A larger model is still read from its
#: model file, or from the signal that ``hs.load`` gives.
MAX_MODEL_BYTES = 256 * 2**20
#: The range of the scales training gives (``data_scale``, the largest value
#: of the mean training spectrum, and ``intensity_reference``, the mean
#: intensity of the spectra so scaled). No spectrum has a mean below 1e-30 or
#: above 1e30 in any unit; beyond them, spectra divided by the scale leave
#: float32's range (1e-38 to 3e38) and inference gives NaN.
MIN_SCALE, MAX_SCALE = 1e-30, 1e30
#: The largest magnitude of an axis offset, step or channel position: with
#: up to MAX_CHANNELS channels, every position stays finite.
MAX_AXIS_VALUE = 1e30
# No count in a model header has more digits (a float field's integer too).
_MAX_INT_DIGITS = 18
# Tensor types of a model's state: float32 weights, the batch counters of
# batch normalisation, the mask of fixed endmembers.
_STATE_DTYPES = (torch.float32, torch.int64, torch.bool)
# Tensor types a model file may hold, as safetensors names them: the state's
# and those of arrays given as hyperparameters (``init``), which numpy makes.
# Others (bfloat16, float8) have no numpy type to check or digest them with.
_FILE_DTYPES = {
    code: getattr(torch, name)
    for code, name in {
        "F64": "float64",
        "F32": "float32",
        "F16": "float16",
        "I64": "int64",
        "I32": "int32",
        "I16": "int16",
        "I8": "int8",
        "U64": "uint64",
        "U32": "uint32",
        "U16": "uint16",
        "U8": "uint8",
        "BOOL": "bool",
    }.items()
    if hasattr(torch, name)  # torch < 2.3 has no uint16 to uint64
}
_DTYPE_CODES = {dtype: code for code, dtype in _FILE_DTYPES.items()}

_NUMBER = {"type": "number"}
_NUMBERS = {"type": "array", "items": _NUMBER}
_SCALE = {"type": "number", "minimum": MIN_SCALE, "maximum": MAX_SCALE}
_AXIS_NUMBER = {"type": "number", "minimum": -MAX_AXIS_VALUE, "maximum": MAX_AXIS_VALUE}
_INDEX = {"type": "integer", "minimum": 0}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_CALIBRATION_SCHEMA = {
    "type": "object",
    "required": [
        "size",
        "units",
        "name",
        "binned",
        "signal_type",
        "uniform",
        "trained_channels",
    ],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_CHANNELS},
        "units": _TEXT_OR_NULL,
        "name": _TEXT_OR_NULL,
        "binned": {"type": "boolean"},
        "signal_type": {"type": "string"},
        "uniform": {"type": "boolean"},
        # Distinct, too (checked with the tensors: jsonschema's uniqueItems
        # compares every pair of a list that does not sort).
        "trained_channels": {
            "oneOf": [
                {"type": "null"},
                {"type": "array", "items": _INDEX, "maxItems": MAX_CHANNELS},
            ]
        },
        "offset": _AXIS_NUMBER,
        "scale": _AXIS_NUMBER,
        "values": {
            "type": "array",
            "items": _AXIS_NUMBER,
            "maxItems": MAX_CHANNELS,
        },
    },
    "if": {"properties": {"uniform": {"const": True}}},
    "then": {"required": ["offset", "scale"]},
    "else": {"required": ["values"]},
}
_STABILITY_SCHEMA = {
    "type": "object",
    "required": [
        "spread",
        "support",
        "max_fraction",
        "pixels",
        "starts",
        "chosen",
        "objectives",
        "fits",
    ],
    "properties": {
        "spread": {"type": "array", "items": {"type": ["number", "null"]}},
        "support": {"type": "array", "items": _INDEX},
        "max_fraction": _NUMBERS,
        "pixels": {"type": "integer", "minimum": 1},
        "starts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "chosen": {"type": "integer", "minimum": 0},
        "objectives": _NUMBERS,
        "fits": _NUMBERS,
        # Absent from files written before it was measured.
        "directions": {"type": ["integer", "null"], "minimum": 0},
    },
}
#: JSON Schema (draft 2020-12) of the model header.
HEADER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "format",
        "format_version",
        "hyperparameters",
        "n_components",
        "n_channels",
        "data_scale",
        "fitted",
        "signal_calibration",
        "training",
    ],
    "properties": {
        "format": {"const": FORMAT_NAME},
        "format_version": {"type": "integer", "minimum": 1},
        "package_version": {"type": "string"},
        "torch_version": {"type": "string"},
        "estimator": {"const": "AEUnmix"},
        "hyperparameters": {"type": "object"},
        "n_components": {"type": "integer", "minimum": 1, "maximum": MAX_CHANNELS},
        "n_channels": {"type": "integer", "minimum": 1, "maximum": MAX_CHANNELS},
        "data_scale": _SCALE,
        "fitted": {
            "type": "object",
            "required": ["init", "loss", "intensity_spread", "intensity_reference"],
            "properties": {
                "init": {"enum": [*STARTS, GIVEN]},
                "loss": {"enum": list(LOSSES)},
                "intensity_spread": {"type": "number", "minimum": 0},
                "intensity_reference": _SCALE,
                "training_residual": {
                    "oneOf": [{"type": "null"}, {"type": "number", "minimum": 0}]
                },
            },
        },
        "signal_calibration": {"oneOf": [{"type": "null"}, _CALIBRATION_SCHEMA]},
        "screening": {"type": "object", "additionalProperties": _INDEX},
        "stability": {"oneOf": [{"type": "null"}, _STABILITY_SCHEMA]},
        "baseline_terms": {"type": "integer", "minimum": 0, "maximum": 12},
        # Type and shape of every tensor, as the safetensors header lists
        # them (absent from files written before).
        "tensors": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["dtype", "shape"],
                "properties": {
                    "dtype": {"enum": list(_FILE_DTYPES)},
                    "shape": {"type": "array", "items": _INDEX},
                },
            },
        },
        "training": {
            "type": "object",
            "required": [
                "train_loss",
                "validation_loss",
                "best_epoch",
                "stopped_early",
                "initial_loss",
                "seconds",
                "n_epochs",
            ],
            "properties": {
                "train_loss": _NUMBERS,
                "validation_loss": _NUMBERS,
                "best_epoch": {"type": "integer", "minimum": -1},
                "stopped_early": {"type": "boolean"},
                "interrupted": {"type": "boolean"},
                "initial_loss": {"type": ["number", "null"]},
                "seconds": {"type": "number", "minimum": 0},
                "n_epochs": {"type": "integer", "minimum": 0},
                "trained_on_device": {"type": "string"},
                "saved": {"type": "string"},
            },
        },
    },
}
_HEADER_VALIDATOR = jsonschema.Draft202012Validator(HEADER_SCHEMA)


class ModelFileError(ValueError):
    """A file that is not a readable hs_aeunmix model."""


# ---------------------------------------------------------------- writing
def _array_value(value) -> np.ndarray | None:
    """The array a hyperparameter holds (an array, or a signal's data), or None."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "axes_manager"):
        return np.asarray(value.data)
    return None


def _json_value(name: str, value):
    if _array_value(value) is not None:
        return {"tensor": _HYPERPARAMETER_PREFIX + name}
    if isinstance(value, tuple | list):
        return [_json_value(name, item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    if name == "random_state" and not (value is None or isinstance(value, int)):
        # A generator object has no portable form; the fitted weights do not
        # depend on it any more.
        _logger.info("random_state=%r is saved as None", value)
        return None
    return value


def _tensor_record(tensors: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Type and shape of each tensor, as safetensors lists them in its header."""
    record = {}
    for name in sorted(tensors):
        tensor = tensors[name]
        if tensor.dtype not in _DTYPE_CODES:
            raise ValueError(
                f"{name} is an array of type {tensor.dtype}, which a model file "
                "cannot hold; give it as an array of real numbers."
            )
        record[name] = {"dtype": _DTYPE_CODES[tensor.dtype], "shape": [*tensor.shape]}
    return record


def _digest(header_text: str, tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(header_text.encode())
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_bytes(params: dict, state: FittedState) -> bytes:
    """The bytes of a model file holding ``params`` and ``state``."""
    tensors = {
        _MODULE_PREFIX + name: tensor.detach().cpu().contiguous().clone()
        for name, tensor in state.module_state.items()
    }
    for name, value in params.items():
        array = _array_value(value)
        if array is not None:
            tensors[_HYPERPARAMETER_PREFIX + name] = torch.from_numpy(np.array(array))
    calibration = state.signal_calibration
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "torch_version": torch.__version__,
        "estimator": "AEUnmix",
        "hyperparameters": {
            name: _json_value(name, value) for name, value in params.items()
        },
        "n_components": int(state.n_components),
        "n_channels": int(state.n_channels),
        "data_scale": float(state.data_scale),
        "fitted": {
            "init": state.init,
            "loss": state.loss,
            "intensity_spread": float(state.intensity_spread),
            "intensity_reference": float(state.intensity_reference),
            "training_residual": (
                None
                if state.training_residual is None
                else float(state.training_residual)
            ),
        },
        "signal_calibration": None if calibration is None else calibration.to_dict(),
        "screening": dict(state.screening),
        "stability": state.report,
        "baseline_terms": int(state.baseline_terms),
        # Under the digest with the header: the digest of the bytes alone
        # would not see a tensor's shape or type changed in the outer header.
        "tensors": _tensor_record(tensors),
        "training": {
            **state.history.as_dict(),
            "n_epochs": int(state.history.n_epochs),
            "trained_on_device": state.trained_on,
            "saved": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
    }
    header_text = json.dumps(header, allow_nan=False)
    metadata = {_HEADER_KEY: header_text, _DIGEST_KEY: _digest(header_text, tensors)}
    return safetensors.torch.save(tensors, metadata=metadata)


def model_file_path(path) -> Path:
    """Where ``save(path)`` writes: ``.aeunmix`` added when there is no suffix.

    Raises
    ------
    IsADirectoryError
        ``path`` is an existing folder.
    ValueError
        ``path`` has the suffix of a HyperSpy results file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder; give the model file's name, e.g. "
            f"{path / ('model' + FILE_SUFFIX)}."
        )
    if path.suffix.lower() in RESULTS_SUFFIXES:
        raise ValueError(
            f"{path} has the suffix of a HyperSpy results file; a model file is "
            f"not one. Use {path.with_suffix(FILE_SUFFIX)} (s.save('x.hspy') "
            "already stores the model with the decomposition results)."
        )
    if not path.suffix:
        path = path.with_suffix(FILE_SUFFIX)
    return path


def write_model_file(data: bytes, path) -> Path:
    """Write a model file's bytes atomically; the path (:func:`model_file_path`)."""
    path = model_file_path(path)
    write_bytes_atomically(path, data)
    _logger.info("Saved model to %s", path)
    return path


# ---------------------------------------------------------------- reading
def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a model holds")


def _strict_json(text: str | bytes):
    """``json.loads`` of finite numbers only (no NaN, Infinity or 1e400)."""
    return json.loads(
        text,
        parse_float=_finite_float,
        parse_int=_bounded_int,
        parse_constant=_no_constant,
    )


def _json(text: str | bytes, what: str, source: str):
    """Parse JSON of bounded depth and finite numbers; failures are ModelFileErrors."""
    try:
        value = _strict_json(text)
    except (ValueError, RecursionError) as error:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise ModelFileError(
            f"{source}: {what} is not valid JSON ({error})."
        ) from error
    if _depth(value) > MAX_JSON_DEPTH:
        raise ModelFileError(
            f"{source}: {what} is nested deeper than a model header ever is."
        )
    return value


def _depth(value, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    return level


def read_outer_header(
    data: bytes, source: str
) -> tuple[dict[str, str], dict[str, dict]]:
    """The ``__metadata__`` of a safetensors byte string, and its tensors' layout.

    The layout is each tensor's ``{"dtype": ..., "shape": [...]}`` as the
    header (u64 length + JSON) declares it; a type no model holds is refused
    here, before any tensor is read.
    """
    not_a_model = (
        f"{source} is not an hs_aeunmix model file (expected a safetensors "
        "file written by AEUnmix.save or hs-aeunmix train)."
    )
    if len(data) < 8:
        raise ModelFileError(f"{not_a_model} It is only {len(data)} bytes long.")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > min(len(data) - 8, MAX_HEADER_BYTES):
        raise ModelFileError(
            f"{not_a_model} Its header is cut short or oversized: the file is "
            "truncated or is not a safetensors file."
        )
    try:
        header = _strict_json(data[8 : 8 + header_length])
    except (ValueError, RecursionError) as error:
        raise ModelFileError(f"{not_a_model} Its header is not JSON.") from error
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get(_HEADER_KEY), str)
        or not isinstance(metadata.get(_DIGEST_KEY, ""), str)
    ):
        raise ModelFileError(
            f"{source} is a safetensors file but not an hs_aeunmix model (its "
            "metadata has no hs_aeunmix header)."
        )
    layout = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(dtype, str) and dtype in _FILE_DTYPES):
            shown = dtype if isinstance(dtype, str) else repr(dtype)
            raise ModelFileError(
                f"{source} holds a tensor {name[:80]!r} of type {shown[:20]}, "
                "which no hs_aeunmix model holds: the file was not written by "
                "hs_aeunmix, or was modified."
            )
        if not (
            isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
        ):
            raise ModelFileError(
                f"{not_a_model} The shape of its tensor {name[:80]!r} is not a "
                "list of sizes."
            )
        layout[name] = {"dtype": dtype, "shape": shape}
    return metadata, layout


def _python_value(value, tensors: dict[str, torch.Tensor], source: str):
    if isinstance(value, dict):
        if set(value) != {"tensor"} or value["tensor"] not in tensors:
            raise ModelFileError(
                f"{source}: a hyperparameter refers to a tensor the file lacks."
            )
        return tensors[value["tensor"]].numpy().copy()
    if isinstance(value, list):
        return tuple(_python_value(item, tensors, source) for item in value)
    return value


def _is_number(value) -> bool:
    # Exact types: a bool is an int to Python, not a number to JSON Schema.
    return type(value) is float or type(value) is int


def _is_index(value) -> bool:
    return type(value) is int and value >= 0


def _is_axis_number(value) -> bool:
    return _is_number(value) and -MAX_AXIS_VALUE <= value <= MAX_AXIS_VALUE


def _is_number_or_null(value) -> bool:
    return value is None or _is_number(value)


def _is_text(value) -> bool:
    return type(value) is str


_INTEGER = "an integer of at least 0"
_NUMBER_TEXT = "a number"
# The lists (and the one mapping) of the model header whose length a file
# chooses, with what each item must be (as HEADER_SCHEMA says, integers
# written as integers) and the most items there can be.
_LONG_ITEMS: dict[tuple[str, ...], tuple[Callable[[object], bool], str, int | None]] = {
    ("signal_calibration", "trained_channels"): (_is_index, _INTEGER, MAX_CHANNELS),
    ("signal_calibration", "values"): (
        _is_axis_number,
        f"a number within ±{MAX_AXIS_VALUE:g}",
        MAX_CHANNELS,
    ),
    ("training", "train_loss"): (_is_number, _NUMBER_TEXT, None),
    ("training", "validation_loss"): (_is_number, _NUMBER_TEXT, None),
    ("stability", "spread"): (_is_number_or_null, "a number or null", None),
    ("stability", "support"): (_is_index, _INTEGER, None),
    ("stability", "max_fraction"): (_is_number, _NUMBER_TEXT, None),
    ("stability", "starts"): (_is_text, "a string", None),
    ("stability", "objectives"): (_is_number, _NUMBER_TEXT, None),
    ("stability", "fits"): (_is_number, _NUMBER_TEXT, None),
    ("screening",): (_is_index, _INTEGER, None),
}


def _abridged(header: dict, source: str) -> dict:
    """``header`` for the schema: its long lists checked here and cut to one item.

    jsonschema spends some 10 µs on each item, and more on an error, so the
    lists a file makes as long as it likes (:data:`_LONG_ITEMS`) are checked
    here in one plain pass; the schema then sees their first item only. The
    record of the tensors, already compared whole with the tensors, is left
    out. The work is proportional to the header's size, and small.
    """
    abridged = dict(header)
    if isinstance(abridged.get("tensors"), dict):
        del abridged["tensors"]
    for path, (accepts, kind, limit) in _LONG_ITEMS.items():
        original, copy = header, abridged
        for key in path[:-1]:
            if not isinstance(original.get(key), dict):
                break  # not an object: the schema says so
            original = original[key]
            if copy[key] is original:
                copy[key] = dict(original)
            copy = copy[key]
        else:
            items = original.get(path[-1])
            if isinstance(items, list | dict):
                _check_items(items, path, accepts, kind, limit, source)
                copy[path[-1]] = items[:1] if isinstance(items, list) else {}
    return abridged


def _check_items(items, path, accepts, kind: str, limit: int | None, source: str):
    location = "/".join(path)
    if limit is not None and len(items) > limit:
        raise ModelFileError(
            f"{source} has an invalid model header: {location} lists "
            f"{len(items)} items, more than the {limit} channels a model can have."
        )
    values = items if isinstance(items, list) else items.values()
    if all(map(accepts, values)):
        return
    keys = range(len(items)) if isinstance(items, list) else items.keys()
    key, item = next(
        (key, item) for key, item in zip(keys, values, strict=True) if not accepts(item)
    )
    raise ModelFileError(
        f"{source} has an invalid model header: {location}/{str(key)[:40]}: "
        f"{repr(item)[:40]} is not {kind}."
    )


def _schema_error(header: dict, source: str) -> None:
    error = jsonschema.exceptions.best_match(
        _HEADER_VALIDATOR.iter_errors(_abridged(header, source))
    )
    if error is not None:
        location = "/".join(str(part) for part in error.absolute_path) or "header"
        raise ModelFileError(
            f"{source} has an invalid model header: {location}: {error.message}."
        )


def _check_consistency(header: dict, tensors: dict[str, torch.Tensor], source: str):
    """Numbers of the header against the tensors, and values no training gives."""

    def inconsistent(reason: str) -> ModelFileError:
        return ModelFileError(
            f"{source} has a valid checksum but an inconsistent model "
            f"description: {reason}."
        )

    decoder = tensors.get(_MODULE_PREFIX + "decoder.weight")
    expected = (header["n_channels"], header["n_components"])
    if decoder is None or tuple(decoder.shape) != expected:
        shape = None if decoder is None else tuple(decoder.shape)
        raise inconsistent(
            f"the header describes {expected[1]} endmembers of {expected[0]} "
            f"channels but the endmember tensor has shape {shape}"
        )
    # The network's layout is read from the shapes of these (one column per
    # projected input, per background term).
    for name in ("input_projection", "baseline_basis"):
        tensor = tensors.get(_MODULE_PREFIX + name)
        if tensor is not None and (
            tensor.dim() != 2 or tensor.shape[0] != header["n_channels"]
        ):
            raise inconsistent(
                f"{_MODULE_PREFIX + name} has shape {tuple(tensor.shape)}, not "
                f"({header['n_channels']}, columns)"
            )
    for name, tensor in tensors.items():
        if name.startswith(_MODULE_PREFIX) and tensor.dtype not in _STATE_DTYPES:
            raise inconsistent(f"{name} is of type {tensor.dtype}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(
                f"{source} holds NaN or infinite values in {name}: no training "
                "produces such a model."
            )
        if name.endswith(("input_scale", "running_var", "pixel_total")) and (
            (tensor <= 0).any()
            if not name.endswith("running_var")
            else (tensor < 0).any()
        ):
            raise ModelFileError(
                f"{source} holds a non-positive normalisation in {name}: no "
                "training produces such a model."
            )
    if (decoder < 0).any():
        raise ModelFileError(
            f"{source} holds negative endmember values: the model keeps its "
            "endmembers non-negative, so the file was not written by it."
        )
    calibration = header["signal_calibration"]
    if calibration is not None:
        size = calibration["size"]
        trained = calibration["trained_channels"]
        n_trained = size if trained is None else len(set(trained))
        if trained is not None and n_trained != len(trained):
            raise inconsistent("the axis calibration lists a trained channel twice")
        if n_trained != header["n_channels"] or (trained and max(trained) >= size):
            raise inconsistent(
                f"the axis calibration trains {n_trained} of {size} channels "
                f"(indices within 0-{size - 1} expected) for a model of "
                f"{header['n_channels']} channels"
            )
        if calibration["uniform"] and size > 1 and calibration["scale"] == 0:
            raise inconsistent("the axis calibration has a scale of zero")
        if not calibration["uniform"] and len(calibration["values"]) != size:
            raise inconsistent(
                f"the axis lists {len(calibration['values'])} values for "
                f"{size} channels"
            )
    basis = tensors.get(_MODULE_PREFIX + "baseline_basis")
    terms = header.get("baseline_terms", 0)
    if (0 if basis is None else basis.shape[-1]) != terms:
        raise inconsistent(f"the background has {terms} terms in the header only")
    report = header.get("stability")
    if report is not None:
        n_starts = len(report["starts"])
        per_endmember = {
            len(report[key]) for key in ("spread", "support", "max_fraction")
        }
        per_start = {len(report[key]) for key in ("objectives", "fits")}
        if (
            per_endmember != {header["n_components"]}
            or per_start != {n_starts}
            or report["chosen"] >= n_starts
            or max(report["support"]) > report["pixels"]
        ):
            raise inconsistent("the stability report does not match the model")
    training = header["training"]
    if training["n_epochs"] != len(training["train_loss"]) or not (
        training["best_epoch"] < training["n_epochs"]
    ):
        raise inconsistent("the training history does not match its epoch count")


def _modified(source: str, reason: str) -> str:
    return (
        f"{source} is corrupted or was modified after it was saved: {reason}. "
        "Save the model again from the training session or its .hspy results "
        "file."
    )


def read_model(data: bytes, source: str) -> tuple[dict, FittedState]:
    """Hyperparameters and fitted state from the bytes of a model file.

    ``source`` names the file in error messages. The hyperparameters are
    returned as saved; the caller validates them against the estimator.

    Raises
    ------
    ModelFileError
        For every file that is not a model this version can read.
    """
    metadata, layout = read_outer_header(data, source)
    header_text = metadata[_HEADER_KEY]
    header = _json(header_text, "the model header", source)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source} is not an hs_aeunmix model file.")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} uses model format version {version}, written by "
            f"hs_aeunmix {header.get('package_version')}; this hs_aeunmix "
            f"({__version__}) reads format versions up to "
            f"{FORMAT_VERSION}. Upgrade hs_aeunmix to load it."
        )
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as error:
        raise ModelFileError(
            f"{source} is truncated or corrupted: its tensors cannot be read ({error})."
        ) from error
    if metadata.get(_DIGEST_KEY) != _digest(header_text, tensors):
        raise ModelFileError(
            _modified(source, "its checksum does not match its contents")
        )
    # Through the header, the digest covers the tensors' types and shapes
    # (files written before have no record: their layout is checked below).
    record = header.get("tensors")
    if record is not None and record != layout:
        named = record if isinstance(record, dict) else {}
        changed = sorted(
            name
            for name in set(layout) | set(named)
            if named.get(name) != layout.get(name)
        )
        raise ModelFileError(
            _modified(
                source,
                f"the types or shapes of its tensors ({', '.join(changed[:3])}) "
                "are not those its header records",
            )
        )
    _schema_error(header, source)
    _check_consistency(header, tensors, source)
    params = {
        name: _python_value(value, tensors, source)
        for name, value in header["hyperparameters"].items()
    }
    if version < 2:
        params = {**_VERSION_1_OPTIONS, **params}
    calibration = header["signal_calibration"]
    training = header["training"]
    state = FittedState(
        module_state={
            name[len(_MODULE_PREFIX) :]: tensor
            for name, tensor in tensors.items()
            if name.startswith(_MODULE_PREFIX)
        },
        n_channels=header["n_channels"],
        n_components=header["n_components"],
        data_scale=float(header["data_scale"]),
        init=header["fitted"]["init"],
        loss=header["fitted"]["loss"],
        intensity_spread=float(header["fitted"]["intensity_spread"]),
        intensity_reference=float(header["fitted"]["intensity_reference"]),
        history=TrainingHistory.from_dict(training),
        signal_calibration=(
            None if calibration is None else SignalCalibration.from_dict(calibration)
        ),
        trained_on=training.get("trained_on_device", "cpu"),
        screening=dict(header.get("screening") or {}),
        report=header.get("stability"),
        baseline_terms=header.get("baseline_terms", 0),
        training_residual=header["fitted"].get("training_residual"),
    )
    return params, state


def declared_header_length(start: bytes) -> int:
    """The header length a safetensors file declares, capped for reading."""
    if len(start) < 8:
        return 0
    return min(struct.unpack("<Q", start)[0], MAX_HEADER_BYTES + 1)
