"""The ledger of ``hs-aeunmix watch``: every file handled, so none twice.

Never twice
    A ledger in the output folder, :data:`LEDGER_NAME`, records every file
    handled: its resolved path (:func:`_key`), size, modification time (ns)
    and outcome (``done``, ``failed`` with the error, or ``skipped`` when
    the output folder already held results of that name). It is written
    atomically after every file (:meth:`Ledger.save`), so a restart skips
    what is recorded with the same size and time; a file that changed since
    is unmixed again (replacing its own earlier results, which the ledger
    proves are this watch's). A failed file is retried only once it
    changes; a skipped one also by a run with ``overwrite``.

The series' training
    A watch with ``series`` records the training of its model (the model
    file's SHA-256, the number of files and endmembers, the files);
    :func:`_recorded_series_model` checks a restart against that record, so
    that the recorded model is applied and nothing is trained again.

:func:`_read_ledger` refuses a file that is not a ledger of this version.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hs_aeunmix._files import write_bytes_atomically
from hs_aeunmix._watch_files import _Signature

#: Name of the ledger file in the output folder.
LEDGER_NAME = ".hs_aeunmix_watch.json"
_LEDGER_FORMAT = "hs-aeunmix watch ledger"
_LEDGER_VERSION = 1


@dataclass
class Ledger:
    """A watch's ledger: the files handled, and the series' training.

    Attributes
    ----------
    path : pathlib.Path
        The ledger file.
    files : dict
        Each file's entry, by :func:`_key`.
    series : dict or None
        The series' training as recorded (None: no model trained).
    """

    path: Path
    files: dict[str, dict] = field(default_factory=dict)
    series: dict | None = None

    @classmethod
    def read(cls, path: Path) -> Ledger:
        """The ledger at ``path`` (empty if there is none)."""
        files, series = _read_ledger(path)
        return cls(path, files, series)

    def enter(
        self,
        path: Path,
        signature: _Signature,
        outcome: str,
        message: str,
        *,
        written: Sequence[Path] = (),
        series: bool = False,
    ) -> None:
        """Enter a file (not yet saved)."""
        size, mtime_ns = signature
        self.files[_key(path)] = {
            "size": size,
            "mtime_ns": mtime_ns,
            "outcome": outcome,
            "message": message,
            "stem": path.stem,
            "written": [output.name for output in written],
            "time": _now(),
            **({"series": True} if series else {}),
        }

    def enter_series(
        self,
        model: Path,
        model_bytes: bytes,
        n_files: int,
        n_components: int,
        sources: Sequence[Path],
    ) -> None:
        """Enter the series' model, trained on ``sources`` (not yet saved)."""
        self.series = {
            "model": model.name,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "n_files": n_files,
            "n_components": n_components,
            "files": [_key(path) for path in sources],
            "time": _now(),
        }

    def save(self) -> None:
        """Write the ledger atomically (a reader never sees half of it)."""
        data = {
            "format": _LEDGER_FORMAT,
            "version": _LEDGER_VERSION,
            "files": self.files,
        }
        if self.series is not None:
            data["series"] = self.series
        write_bytes_atomically(self.path, json.dumps(data, indent=1).encode("utf-8"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=65536)
def _key(path: Path) -> str:
    """A file's entry in the ledger: its resolved path (asked at every look)."""
    return str(path.resolve())


def _read_ledger(path: Path) -> tuple[dict[str, dict], dict | None]:
    """The file entries of the ledger at ``path`` and its series' training.

    None of either if it does not exist; the series is None unless a watch
    with ``series`` trained its model.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    try:
        data = json.loads(text)
        if data.get("format") != _LEDGER_FORMAT:
            raise ValueError("not a ledger")
        if data.get("version") != _LEDGER_VERSION:
            raise ValueError(f"ledger version {data.get('version')!r}")
        files = data["files"]
        if not isinstance(files, dict) or not all(
            isinstance(entry, dict) for entry in files.values()
        ):
            raise ValueError("malformed entries")
        series = data.get("series")
        if series is not None and not isinstance(series, dict):
            raise ValueError("malformed series")
    except (ValueError, KeyError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a ledger of hs-aeunmix watch ({error}); move it away "
            "to start afresh (results already in the folder are then skipped)"
        ) from None
    return files, series


@dataclass(frozen=True)
class _SeriesPlan:
    """What a watch with ``series`` trains: on how many files, and how."""

    n_files: int
    n_components: int
    options: dict
    model: Path  # the model file to write, in the output folder


def _recorded_series_model(
    plan: _SeriesPlan, record: dict | None, overwrite: bool, device: str
) -> bytes | None:
    """The bytes of the series' model an earlier run trained, or None to train it.

    Refuses a model file the ledger does not record (unless ``overwrite``),
    a recorded one that is missing or changed, and a recorded series of
    other files or endmembers.
    """
    from hs_aeunmix._estimator import load_model

    path = plan.model
    if record is None:
        if path.exists() and (path.is_dir() or not overwrite):
            raise ValueError(
                f"{path} already exists and the watch ledger does not record "
                "training it; pass --overwrite (overwrite=True) to train the "
                "series again and replace it, or choose another -o folder"
            )
        return None
    trained = (record.get("n_files"), record.get("n_components"))
    if trained != (plan.n_files, plan.n_components):
        n_files, n_components = trained
        raise ValueError(
            f"{path} was trained on the first {n_files} files with {n_components} "
            f"endmembers (recorded in {LEDGER_NAME}); watch with --series "
            f"{n_files} -n {n_components} to go on applying it, or choose another "
            "-o folder"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"{LEDGER_NAME} records the series' model trained, but {path} is "
            "missing; put it back, or move the ledger away to train afresh"
        ) from None
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise ValueError(
            f"{path} is not the model this watch trained (it changed since); put "
            "that one back, or move it and the ledger away to train afresh"
        )
    # Checked now: a bad model file stops the watch at once.
    load_model(data, device=device)
    return data
