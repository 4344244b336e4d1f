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
    check_free_space,
    ensure_writable_folder,
    staged_files,
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


def test_writable_folder_that_is_a_broken_link(tmp_path):
    link = tmp_path / "results"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(OSError, match="broken symbolic link; remove it") as info:
        ensure_writable_folder(link)
    assert info.value.filename == str(link)
    assert not (tmp_path / "gone").exists()


def test_unwritable_folder(tmp_path, monkeypatch):
    real_open = os.open

    def read_only_file_system(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(_files.os, "open", read_only_file_system)
    with pytest.raises(PermissionError, match="Read-only"):
        ensure_writable_folder(tmp_path)


# ------------------------------------------------------------ file names
def _longest_name(folder: Path) -> int:
    """The longest file name (in bytes) ``folder``'s file system allows."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows
        return 255


@pytest.mark.parametrize(
    "shape", ["long-stem", "long-suffix"], ids=["long-stem", "long-suffix"]
)
def test_longest_file_name_the_folder_allows(tmp_path, shape):
    # The temporary name was the target's plus 14 bytes: a 255-byte model
    # name failed with "File name too long".
    longest = _longest_name(tmp_path)
    if shape == "long-stem":
        name = "m" * (longest - len(".aeunmix")) + ".aeunmix"
    else:
        name = "m." + "x" * (longest - 2)
    path = tmp_path / name
    write_bytes_atomically(path, NEW)
    assert path.read_bytes() == NEW
    assert _folder_content(tmp_path) == [name]


def test_temporary_name_is_short_whatever_the_target(tmp_path):
    short, long = tmp_path / "a.hspy", tmp_path / ("a" * 200 + ".hspy")
    with atomic_path(short) as first, atomic_path(long) as second:
        assert len(first.name) == len(second.name) < 64
        assert first.suffix == second.suffix == ".hspy"


def _fail_for_a_missing_folder(target, monkeypatch):
    write_bytes_atomically(target, NEW)


def _fail_in_writer(target, monkeypatch):
    with atomic_path(target) as temporary:
        # As open(temporary, "wb") reports a full disk or a quota.
        raise OSError(errno.ENOSPC, "No space left on device", str(temporary))


def _fail_in_rename(target, monkeypatch):
    def refuse(source, destination):
        raise PermissionError(
            errno.EACCES, "Permission denied", str(source), None, str(destination)
        )

    monkeypatch.setattr(os, "replace", refuse)
    write_bytes_atomically(target, NEW)


@pytest.mark.parametrize(
    ("folder", "fail", "match"),
    [
        ("absent", _fail_for_a_missing_folder, "No such file"),
        (".", _fail_in_writer, "No space left"),
        (".", _fail_in_rename, "Permission denied"),
    ],
    ids=["folder", "writer", "rename"],
)
def test_errors_name_the_file_not_the_temporary_file(
    tmp_path, monkeypatch, folder, fail, match
):
    target = tmp_path / folder / "series.aeunmix"
    with pytest.raises(OSError, match=match) as info:
        fail(target, monkeypatch)
    error = info.value
    assert error.filename == str(target)
    assert ".tmp" not in str(error)
    assert str(target) in str(error)
    monkeypatch.undo()
    assert not target.exists()
    if target.parent.exists():
        assert _folder_content(target.parent) == []


# ------------------------------------------- leftovers of killed processes
_KILLED_WRITER = """
import importlib.util, os, signal, sys

# _files imports only the standard library: load it alone, quickly.
spec = importlib.util.spec_from_file_location("_files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.atomic_path(sys.argv[2]) as temporary:
    temporary.write_bytes(b"half a model")
    print(temporary.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_while_writing(target: Path) -> Path:
    """The temporary file a process killed while writing ``target`` leaves."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, _files.__file__, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -9, result.stderr
    leftover = target.with_name(result.stdout.strip())
    assert leftover.exists()
    return leftover


def _age(path: Path, seconds: float) -> None:
    when = path.stat().st_mtime - seconds
    os.utime(path, (when, when), follow_symlinks=False)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_stale_temporary_files_are_removed_at_the_next_save(tmp_path):
    stale = _killed_while_writing(tmp_path / "series.aeunmix")
    _age(stale, 2 * 3600)
    # Perhaps another program writing right now: kept.
    fresh = _killed_while_writing(tmp_path / "scan_ae.hspy")
    _age(fresh, 60)
    # Another folder's leftovers wait for a save there.
    (tmp_path / "other").mkdir()
    elsewhere = _killed_while_writing(tmp_path / "other" / "series.aeunmix")
    _age(elsewhere, 2 * 3600)
    # Files that are not this package's temporary files, however old.
    others = [".series.aeunmix", "notes.tmp", ".hs_aeunmix", "series.tmp.aeunmix"]
    for name in others:
        (tmp_path / name).write_bytes(OLD)
        _age(tmp_path / name, 2 * 3600)
    named_alike = tmp_path / f"{stale.name}.bak"
    named_alike.write_bytes(OLD)
    _age(named_alike, 2 * 3600)

    write_bytes_atomically(tmp_path / "model.aeunmix", NEW)
    assert not stale.exists()
    assert fresh.exists()
    assert elsewhere.exists()
    assert named_alike.exists()
    assert all((tmp_path / name).read_bytes() == OLD for name in others)
    assert (tmp_path / "model.aeunmix").read_bytes() == NEW


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_cleaning_up_never_fails_a_save(tmp_path, monkeypatch):
    stale = _killed_while_writing(tmp_path / "series.aeunmix")
    _age(stale, 2 * 3600)

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "unlink", refuse)
    monkeypatch.setattr(os, "remove", refuse)
    target = tmp_path / "model.aeunmix"
    with atomic_path(target) as temporary:
        temporary.write_bytes(NEW)
    monkeypatch.undo()
    assert target.read_bytes() == NEW
    assert stale.exists()


# ------------------------------------------------ files written together
def test_staged_files_appear_together_at_the_end(tmp_path):
    first, second = tmp_path / "scan_ae.hspy", tmp_path / "scan_abundances.png"
    with staged_files(overwrite=False) as staged:
        staged.add(first).write_bytes(NEW)
        staged.add(second).write_bytes(OLD)
        # Nothing in place until every file is written.
        assert not first.exists()
        assert not second.exists()
    assert (first.read_bytes(), second.read_bytes()) == (NEW, OLD)
    assert staged.targets == [first, second]
    assert _folder_content(tmp_path) == sorted([first.name, second.name])


@pytest.mark.parametrize("failure", [OSError, KeyboardInterrupt])
def test_a_failure_leaves_none_of_the_staged_files(target, failure):
    figure = target.parent / "scan_abundances.png"
    with pytest.raises(failure), staged_files() as staged:  # noqa: PT012
        staged.add(figure).write_bytes(NEW)
        staged.add(target).write_bytes(NEW[:10])  # a disk full midway
        raise failure
    assert target.read_bytes() == OLD
    assert _folder_content(target.parent) == [target.name]


def test_a_file_made_meanwhile_takes_back_those_already_in_place(tmp_path, monkeypatch):
    # Without overwrite, each file put in place is new and ours: when a
    # later one turns out to exist, the group leaves none of its files.
    first, second = tmp_path / "a.png", tmp_path / "b.csv"
    real_link = os.link

    def another_writer_first(source, destination):
        if Path(destination) == second:
            second.write_bytes(OLD)  # made by someone else between the links
        real_link(source, destination)

    monkeypatch.setattr(os, "link", another_writer_first)
    with (  # noqa: PT012
        pytest.raises(FileExistsError, match="meanwhile"),
        staged_files(overwrite=False) as staged,
    ):
        staged.add(first).write_bytes(NEW)
        staged.add(second).write_bytes(NEW)
    assert second.read_bytes() == OLD
    assert _folder_content(tmp_path) == ["b.csv"]


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    real_usage = _files.shutil.disk_usage

    def nearly_full(path):
        return real_usage(path)._replace(free=2_500_000)

    monkeypatch.setattr(_files.shutil, "disk_usage", nearly_full)
    target = tmp_path / "new" / "scan_ae.hspy"  # its folder is not made yet
    check_free_space(target, 2_000_000)
    with pytest.raises(OSError, match=r"3 MB needed, 2.5 MB free") as info:
        check_free_space(target, 3_000_000)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(target)
