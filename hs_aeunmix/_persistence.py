"""Model files: one fitted :class:`~hs_aeunmix.AEUnmix` per file, no pickle.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_
file. Its tensors are the network's state (``module.*``) and, when the
initial endmembers were given as an array, that array
(``hyperparameters.init``). Its metadata hold a JSON header (format version,
package version, every hyperparameter, the training signal's axis
calibration, the internal data scaling, a training summary) and a SHA-256
digest of the header and all tensor bytes. Reading parses JSON and raw
little-endian arrays only, so loading a file never executes code from it.

The same bytes are stored in ``learning_results.aeunmix_model`` (a uint8
array) after ``s.decomposition(algorithm="ae")``, so a signal saved to
``.hspy`` carries its model.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import struct
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from hs_aeunmix._axes import SignalCalibration
from hs_aeunmix._estimator import AEUnmix, resolve_device
from hs_aeunmix._training import TrainingHistory

_logger = logging.getLogger(__name__)

FORMAT_NAME = "hs_aeunmix.model"
FORMAT_VERSION = 1
FILE_SUFFIX = ".aeunmix"
LEARNING_RESULTS_ATTRIBUTE = "aeunmix_model"

_HEADER_KEY = "hs_aeunmix"
_DIGEST_KEY = "sha256"
_MODULE_PREFIX = "module."
_INIT_TENSOR = "hyperparameters.init"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class ModelFileError(ValueError):
    """A file that is not a readable hs_aeunmix model."""


# ---------------------------------------------------------------- writing
def _json_value(name: str, value):
    if isinstance(value, np.ndarray):
        return {"tensor": _INIT_TENSOR}
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


def _package_version() -> str:
    from hs_aeunmix import __version__

    return __version__


def _digest(header_text: str, tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(header_text.encode())
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_to_bytes(model: AEUnmix) -> bytes:
    """Serialise a fitted model to the bytes of a model file."""
    if not hasattr(model, "module_"):
        raise ValueError(
            "This AEUnmix is not fitted yet: train it (fit, or "
            "s.decomposition(algorithm='ae', ...)) before saving it."
        )
    tensors = {
        _MODULE_PREFIX + name: tensor.detach().cpu().contiguous().clone()
        for name, tensor in model.module_.state_dict().items()
    }
    params = model.get_params(deep=False)
    if isinstance(params["init"], np.ndarray):
        tensors[_INIT_TENSOR] = torch.from_numpy(np.array(params["init"]))
    calibration = getattr(model, "signal_calibration_", None)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "torch_version": torch.__version__,
        "estimator": type(model).__name__,
        "hyperparameters": {
            name: _json_value(name, value) for name, value in params.items()
        },
        "n_components": int(model.components_.shape[0]),
        "n_channels": int(model.n_features_in_),
        "data_scale": float(model.data_scale_),
        "fitted": {
            "init": model.init_,
            "loss": model.loss_,
            "intensity_spread": float(model.intensity_spread_),
            "intensity_reference": float(model.intensity_reference_),
        },
        "signal_calibration": None if calibration is None else calibration.to_dict(),
        "training": {
            **model.history_.as_dict(),
            "n_epochs": int(model.n_iter_),
            "trained_on_device": str(model.device_),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        },
    }
    header_text = json.dumps(header, allow_nan=True)
    metadata = {_HEADER_KEY: header_text, _DIGEST_KEY: _digest(header_text, tensors)}
    return safetensors.torch.save(tensors, metadata=metadata)


def save_model(model: AEUnmix, path) -> Path:
    """Write ``model`` to ``path`` (suffix ``.aeunmix`` added when missing)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(FILE_SUFFIX)
    path.write_bytes(model_to_bytes(model))
    _logger.info("Saved model to %s", path)
    return path


# ---------------------------------------------------------------- reading
def _read_metadata(data: bytes, source: str) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors byte string (format: u64 + JSON)."""
    not_a_model = (
        f"{source} is not an hs_aeunmix model file (expected a safetensors "
        "file written by AEUnmix.save or hs-aeunmix train)."
    )
    if len(data) < 8:
        raise ModelFileError(f"{not_a_model} It is only {len(data)} bytes long.")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise ModelFileError(
            f"{not_a_model} Its header is cut short: the file is truncated or "
            "is not a safetensors file."
        )
    try:
        header = json.loads(data[8 : 8 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{not_a_model} Its header is not JSON.") from error
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or _HEADER_KEY not in metadata:
        raise ModelFileError(
            f"{source} is a safetensors file but not an hs_aeunmix model (its "
            "metadata has no hs_aeunmix header)."
        )
    return metadata


def _python_value(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return tensors[value["tensor"]].numpy().copy()
    if isinstance(value, list):
        return tuple(_python_value(item, tensors) for item in value)
    return value


def model_from_bytes(data: bytes, source: str, *, device="auto") -> AEUnmix:
    """Rebuild a fitted :class:`AEUnmix` from the bytes of a model file.

    ``source`` names the file in error messages.
    """
    metadata = _read_metadata(data, source)
    header_text = metadata[_HEADER_KEY]
    try:
        header = json.loads(header_text)
    except json.JSONDecodeError as error:
        raise ModelFileError(
            f"{source}: the model header is not valid JSON."
        ) from error
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source} is not an hs_aeunmix model file.")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} uses model format version {version}, written by "
            f"hs_aeunmix {header.get('package_version')}; this hs_aeunmix "
            f"({_package_version()}) reads format versions up to "
            f"{FORMAT_VERSION}. Upgrade hs_aeunmix to load it."
        )
    try:
        tensors = safetensors.torch.load(data)
    except safetensors.SafetensorError as error:
        raise ModelFileError(
            f"{source} is truncated or corrupted: its tensors cannot be read ({error})."
        ) from error
    if metadata.get(_DIGEST_KEY) != _digest(header_text, tensors):
        raise ModelFileError(
            f"{source} is corrupted or was modified after it was saved: its "
            "checksum does not match its contents. Save the model again from "
            "the training session or its .hspy results file."
        )
    try:
        return _fitted_model(header, tensors, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{source} has a valid checksum but an inconsistent model description "
            f"({type(error).__name__}: {error})."
        ) from error


def _fitted_model(header: dict, tensors: dict[str, torch.Tensor], device) -> AEUnmix:
    known = set(AEUnmix._get_param_names())
    params = {
        name: _python_value(value, tensors)
        for name, value in header["hyperparameters"].items()
    }
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}")
    # Files from older versions lack newer options: those keep their defaults,
    # which reproduce the older behaviour.
    params["device"] = device
    model = AEUnmix(**params)
    model._check_hyperparameters()
    model.device_ = resolve_device(device)
    model.data_scale_ = float(header["data_scale"])
    fitted = header["fitted"]
    model.init_ = str(fitted["init"])
    model.loss_ = str(fitted["loss"])
    model.intensity_spread_ = float(fitted["intensity_spread"])
    model.intensity_reference_ = float(fitted["intensity_reference"])
    model.n_features_in_ = int(header["n_channels"])
    n_components = int(header["n_components"])
    state = {
        name[len(_MODULE_PREFIX) :]: tensor
        for name, tensor in tensors.items()
        if name.startswith(_MODULE_PREFIX)
    }
    model.module_ = model._build_module(model.n_features_in_, n_components)
    model.module_.load_state_dict(state)
    model.module_.to(model.device_).eval()
    model.components_ = model._endmembers_in_data_units()
    training = header["training"]
    model.history_ = TrainingHistory.from_dict(training)
    model.n_iter_ = int(training["n_epochs"])
    calibration = header["signal_calibration"]
    model.signal_calibration_ = (
        None if calibration is None else SignalCalibration.from_dict(calibration)
    )
    return model


def _model_bytes_from_signal(signal, source: str) -> bytes:
    results = signal.learning_results
    stored = getattr(results, LEARNING_RESULTS_ATTRIBUTE, None)
    if stored is None or results.decomposition_algorithm != "ae":
        raise ModelFileError(
            f"{source} holds no autoencoder model: its decomposition results "
            f"come from algorithm={results.decomposition_algorithm!r}. Run "
            "s.decomposition(algorithm='ae', ...) on it (and save it) first."
        )
    return np.asarray(stored, dtype=np.uint8).tobytes()


def load_model(source, *, device="auto") -> AEUnmix:
    """Load a fitted model, ready for ``transform`` or ``decomposition(model=...)``.

    Parameters
    ----------
    source : str, pathlib.Path, AEUnmix or HyperSpy signal
        A model file (``model.save(...)``), a ``.hspy`` file or signal whose
        decomposition was ``algorithm="ae"`` (the model travels in its
        learning results), or an already loaded model (returned as is).
    device : {"auto", "cpu", "cuda"}
        Where the model runs; ``"auto"`` is CUDA when present. The training
        device is recorded in the file but not required.

    Returns
    -------
    AEUnmix
        Fitted: ``transform``, ``components_``, ``history_`` and
        ``signal_calibration_`` are those of the saved model, and abundances
        inferred on the CPU are bitwise identical to the saved model's.

    Raises
    ------
    FileNotFoundError
        No file at ``source``.
    ModelFileError
        (a ValueError) The file is not a model, is truncated, corrupted or
        modified, or comes from a newer model format; the message names it.
    """
    if isinstance(source, AEUnmix):
        return source
    if hasattr(source, "learning_results"):
        title = source.metadata.General.title or "the signal"
        return model_from_bytes(
            _model_bytes_from_signal(source, title), title, device=device
        )
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    data = path.read_bytes()
    if data.startswith(_HDF5_SIGNATURE):
        import hyperspy.api as hs

        signal = hs.load(path)
        if isinstance(signal, list):
            raise ModelFileError(
                f"{path} holds {len(signal)} signals; load the one unmixed with "
                "algorithm='ae' and pass it instead of the file name."
            )
        data = _model_bytes_from_signal(signal, str(path))
    return model_from_bytes(data, str(path), device=device)
