"""Tests of atomic writes: a failed write never loses or truncates a file."""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from hs_aeunmix import _files
from hs_aeunmix._files import (
    atomic_path,
    ensure_writable_folder,
    write_bytes_atomically,
)

OLD = b"old model " * 1000
NEW = b"NEW MODEL " * 3000

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "series.aeunmix"
    path.write_bytes(OLD)
    return path


def _folder_content(folder):
    return sorted(path.name for path in folder.iterdir())


def test_write_replaces_the_file(target):
    assert write_bytes_atomically(target, NEW) == target
    assert target.read_bytes() == NEW
    assert _folder_content(target.parent) == [target.name]


def test_new_file(tmp_path):
    path = tmp_path / "new.bin"
    write_bytes_atomically(path, NEW)
    assert path.read_bytes() == NEW


def test_temporary_file_is_beside_the_target_with_its_suffix(target):
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent
        assert temporary.suffix == target.suffix
        assert temporary.name.startswith(".")
        assert temporary.exists()
        assert temporary.stat().st_size == 0
        temporary.write_bytes(NEW)
    assert not temporary.exists()
    assert target.read_bytes() == NEW


class _WriterFailed(Exception):
    pass


@pytest.mark.parametrize(
    "failure",
    [
        _WriterFailed("bug in the writer"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EFBIG, "File too large"),
        KeyboardInterrupt(),
    ],
    ids=["exception", "disk-full", "file-size-limit", "ctrl-c"],
)
def test_writer_failing_midway_keeps_the_previous_file(target, failure):
    with (  # noqa: PT012
        pytest.raises(type(failure)),
        atomic_path(target) as temporary,
        open(temporary, "wb") as stream,
    ):
        stream.write(NEW[: len(NEW) // 2])
        stream.flush()
        # Half written: the target must still be the old file.
        assert target.read_bytes() == OLD
        raise failure
    assert target.read_bytes() == OLD
    assert _folder_content(target.parent) == [target.name]


def test_disk_full_when_flushing_keeps_the_previous_file(target, monkeypatch):
    # A full disk often shows only when the data reach it (fsync or close).
    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomically(target, NEW)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _folder_content(target.parent) == [target.name]


def test_failed_rename_keeps_the_previous_file(target, monkeypatch):
    def refuse(source, destination):
        raise PermissionError(errno.EACCES, "Permission denied", str(destination))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_bytes_atomically(target, NEW)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _folder_content(target.parent) == [target.name]


def test_a_reader_sees_the_old_file_until_the_rename(target, monkeypatch):
    real_replace = os.replace
    seen = []

    def inspecting_replace(source, destination):
        # The instant before the target changes: complete old content, and
        # the new content complete (flushed) in the temporary file.
        seen.append(("before", target.read_bytes(), Path(source).read_bytes()))
        real_replace(source, destination)
        seen.append(("after", target.read_bytes(), None))

    monkeypatch.setattr(os, "replace", inspecting_replace)
    write_bytes_atomically(target, NEW)
    assert seen == [("before", OLD, NEW), ("after", NEW, None)]


def test_concurrent_reader_never_sees_a_partial_file(target):
    contents = [bytes([index]) * 200_000 for index in range(8)]
    target.write_bytes(contents[0])
    stop = threading.Event()
    seen = set()
    errors = []

    def read_repeatedly():
        while not stop.is_set():
            try:
                seen.add(target.read_bytes())
            except OSError as error:  # pragma: no cover (Windows sharing)
                errors.append(error)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for content in contents[1:]:
            with atomic_path(target) as temporary, open(temporary, "wb") as stream:
                # Written in pieces, so a non-atomic write would be caught.
                for start in range(0, len(content), 10_000):
                    stream.write(content[start : start + 10_000])
                    stream.flush()
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen <= set(contents)
    assert target.read_bytes() == contents[-1]


def test_target_that_is_a_folder(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_bytes_atomically(folder, NEW)
    assert _folder_content(tmp_path) == ["results"]
    assert _folder_content(folder) == []


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomically(tmp_path / "absent" / "x.bin", NEW)


# ------------------------------------------------------- overwrite=False
def test_no_overwrite_refuses_before_writing(target):
    called = []
    with (
        pytest.raises(FileExistsError, match="already exists"),
        atomic_path(target, overwrite=False),
    ):
        called.append(True)
    assert not called
    assert target.read_bytes() == OLD
    assert _folder_content(target.parent) == [target.name]


def test_no_overwrite_creates_a_new_file(tmp_path):
    path = tmp_path / "new.bin"
    write_bytes_atomically(path, NEW, overwrite=False)
    assert path.read_bytes() == NEW
    assert _folder_content(tmp_path) == ["new.bin"]


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-link"])
def test_no_overwrite_of_a_file_created_meanwhile(tmp_path, monkeypatch, hard_links):
    if not hard_links:

        def no_links(source, destination):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "scan_ae.hspy"
    with (  # noqa: PT012
        pytest.raises(FileExistsError, match="meanwhile"),
        atomic_path(path, overwrite=False) as temporary,
    ):
        temporary.write_bytes(NEW)
        # Another program writes the same result while this one works.
        path.write_bytes(OLD)
    assert path.read_bytes() == OLD
    assert _folder_content(tmp_path) == ["scan_ae.hspy"]


def test_no_overwrite_without_hard_links_writes(tmp_path, monkeypatch):
    def no_links(source, destination):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "scan_ae.hspy"
    write_bytes_atomically(path, NEW, overwrite=False)
    assert path.read_bytes() == NEW
    assert _folder_content(tmp_path) == ["scan_ae.hspy"]


# ------------------------------------------------------------ permissions
@posix_only
def test_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_bytes_atomically(tmp_path / "shared.bin", NEW)
    finally:
        os.umask(umask)
    # Readable by the group and others, as files written with open() are;
    # tempfile.mkstemp alone would give 0o600.
    assert stat.S_IMODE((tmp_path / "shared.bin").stat().st_mode) == 0o644


@posix_only
def test_replaced_file_keeps_its_permissions(target):
    target.chmod(0o640)
    write_bytes_atomically(target, NEW)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    target.chmod(0o444)
    write_bytes_atomically(target, OLD)
    assert target.read_bytes() == OLD
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


# ------------------------------------------------------------ folders
def test_writable_folder_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    assert ensure_writable_folder(folder) == folder
    assert folder.is_dir()
    assert _folder_content(folder) == []


def test_writable_folder_that_is_a_file(target):
    with pytest.raises(NotADirectoryError, match="not a folder"):
        ensure_writable_folder(target)


def test_unwritable_folder(tmp_path, monkeypatch):
    real_open = os.open

    def read_only_file_system(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(_files.os, "open", read_only_file_system)
    with pytest.raises(PermissionError, match="Read-only"):
        ensure_writable_folder(tmp_path)
