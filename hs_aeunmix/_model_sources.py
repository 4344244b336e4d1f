"""Where a model's bytes come from: a model file, a HyperSpy results file, a signal.

:func:`read_source` returns the bytes :func:`hs_aeunmix._persistence.read_model`
turns into a model. A HyperSpy results file (``.hspy``, HDF5; ``.zspy``,
zarr) is read through its layout (``Experiments/<signal>/learning_results``)
without loading the signal, and the stored array's type and size are judged
before it is read: this module is the one place that knows that layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hs_aeunmix._names import LEARNING_RESULTS_ATTRIBUTE
from hs_aeunmix._persistence import (
    HDF5_SIGNATURE,
    MAX_MODEL_BYTES,
    ModelFileError,
    declared_header_length,
    read_outer_header,
)


def _bytes_from_signal(signal, source: str) -> bytes:
    results = signal.learning_results
    stored = getattr(results, LEARNING_RESULTS_ATTRIBUTE, None)
    if stored is None or results.decomposition_algorithm != "ae":
        raise ModelFileError(
            f"{source} holds no autoencoder model: its decomposition results "
            f"come from algorithm={results.decomposition_algorithm!r}. Run "
            "s.decomposition(algorithm='ae', ...) on it (and save it) first."
        )
    return np.asarray(stored, dtype=np.uint8).tobytes()


def _bytes_from_results_file(path: Path) -> bytes:
    """The model bytes of a HyperSpy results file, reading nothing else.

    ``.hspy`` (HDF5) and ``.zspy`` (zarr) files hold one group per signal
    under ``Experiments``; the model is the ``aeunmix_model`` array of its
    ``learning_results``. Whatever in the file is not so is a
    :class:`ModelFileError` naming ``path``.
    """
    try:
        if path.is_dir():
            try:
                import zarr
            except ImportError as error:
                raise ModelFileError(
                    f"{path} is a .zspy results folder; reading it needs zarr "
                    "(pip install zarr)."
                ) from error
            root = zarr.open_group(str(path), mode="r")
            return _bytes_from_experiments(root, path)
        import h5py

        with h5py.File(path, "r") as root:
            return _bytes_from_experiments(root, path)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
        # How HDF5 and zarr report a file of another layout (a dataset where
        # a group belongs has no .get; an unreadable chunk is an OSError).
        raise ModelFileError(
            f"{path} is not a readable HyperSpy results file "
            f"({type(error).__name__}: {error})."
        ) from error


def _bytes_from_experiments(root, path: Path) -> bytes:
    experiments = root.get("Experiments")
    names = [] if experiments is None else sorted(experiments.keys())
    if len(names) != 1:
        raise ModelFileError(
            f"{path} holds {len(names)} signals; load the one unmixed with "
            "algorithm='ae' and pass it instead of the file name."
        )
    results = experiments[names[0]].get("learning_results")
    algorithm = (
        None if results is None else results.attrs.get("decomposition_algorithm")
    )
    if isinstance(algorithm, bytes):
        algorithm = algorithm.decode()
    if (
        results is None
        or LEARNING_RESULTS_ATTRIBUTE not in results
        or algorithm != "ae"
    ):
        raise ModelFileError(
            f"{path} holds no autoencoder model: its decomposition results "
            f"come from algorithm={algorithm!r}. Run s.decomposition("
            "algorithm='ae', ...) on it (and save it) first."
        )
    return _stored_model_bytes(results[LEARNING_RESULTS_ATTRIBUTE], path)


def _stored_model_bytes(stored, path: Path) -> bytes:
    """The bytes of the HDF5 or zarr array ``stored``, judged before it is read.

    Its declared type and size are checked first: compressed, a few kB of
    file can declare gigabytes of zeros, and reading them is the harm.
    """
    where = f"learning_results/{LEARNING_RESULTS_ATTRIBUTE}"
    shape, dtype = getattr(stored, "shape", None), getattr(stored, "dtype", None)
    if not (
        isinstance(dtype, np.dtype)
        and dtype == np.uint8
        and isinstance(shape, tuple)
        and len(shape) == 1
    ):
        found = (
            "not an array"
            if dtype is None or shape is None
            else f"an array of {dtype} of shape {shape}"
        )
        raise ModelFileError(
            f"{path}: its {where} is not the bytes of a model (a 1-D array of "
            f"uint8) but {found}: the file was modified, or written by "
            "something other than HyperSpy with hs_aeunmix."
        )
    if shape[0] > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path} declares a model of {shape[0]} bytes in its {where}, more "
            f"than the {MAX_MODEL_BYTES // 2**20} MiB a model read from a "
            "results file may have: the file is corrupted or crafted. If the "
            "model really is that large, pass the signal that hs.load gives "
            "instead of the file name."
        )
    return np.asarray(stored[...], dtype=np.uint8).tobytes()


def read_source(source) -> tuple[bytes, str]:
    """The model bytes of ``source`` and the name to report errors under.

    ``source`` is a model file, a HyperSpy results file (``.hspy``,
    ``.zspy``), a signal whose decomposition was ``algorithm="ae"``, or the
    bytes of a model file (as a series sends them to its workers).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the model bytes"
    if hasattr(source, "learning_results"):
        title = source.metadata.General.title or "the signal"
        return _bytes_from_signal(source, title), title
    try:
        path = Path(source)
    except TypeError as error:
        raise TypeError(
            "A model is given as an AEUnmix, a model file path, a .hspy/.zspy "
            f"results file or a signal unmixed with 'ae'; got {type(source).__name__}."
        ) from error
    if path.is_dir() and path.suffix.lower() == ".zspy":
        return _bytes_from_results_file(path), str(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    with open(path, "rb") as stream:
        start = stream.read(8)
        if start == HDF5_SIGNATURE:
            return _bytes_from_results_file(path), str(path)
        # Judge the declared header before reading a possibly huge file whole.
        read_outer_header(start + stream.read(declared_header_length(start)), str(path))
        stream.seek(0)
        return stream.read(), str(path)
