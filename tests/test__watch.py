"""``hs-aeunmix watch``: each scan written into a folder is unmixed once, when done."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
from _helpers import (
    FAST,
    last_line_of_python,
    make_mixture,
    to_signal,
    train_through_hyperspy,
)
from sklearn.utils._param_validation import InvalidParameterError

import hs_aeunmix_cli as front
from hs_aeunmix import _jobs, _joint, _watch, _watch_files, _watch_ledger, load_model
from hs_aeunmix._watch import watch_folder
from hs_aeunmix._watch_ledger import LEDGER_NAME
from hs_aeunmix_cli import main

# Short looks at the folder, so that a test waits fractions of a second.
QUICK = {"interval": 0.05, "settle": 0.0}
OUTPUTS = ("_ae.hspy", "_endmembers.png", "_abundances.png", "_endmembers.csv")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread, as in the suite's workers (see conftest.py).

    Run alone (``-n 0``) on a busy two-core machine, two torch threads made
    this module's two-epoch training take 40 s instead of 3.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A model trained for two epochs on a small scan: behaviour, not accuracy."""
    signal = to_signal(make_mixture(shape=(8, 8), counts=200))
    folder = tmp_path_factory.mktemp("model")
    return train_through_hyperspy(signal, **FAST).save(folder / "tiny.aeunmix")


@pytest.fixture(scope="module")
def scan_bytes(tmp_path_factory):
    """``scan_bytes(seed)``: the bytes of a small .hspy scan of the model's sample."""
    folder = tmp_path_factory.mktemp("scans")
    cache: dict[int, bytes] = {}

    def make(seed: int) -> bytes:
        if seed not in cache:
            path = folder / f"{seed}.hspy"
            to_signal(make_mixture(shape=(8, 8), counts=200, seed=seed)).save(path)
            cache[seed] = path.read_bytes()
        return cache[seed]

    return make


class _Picture:
    """A figure that saves instantly (drawing two real ones takes most of a scan)."""

    def savefig(self, path, dpi=None):
        Path(path).write_bytes(b"\x89PNG figure")


@pytest.fixture
def quick_figures(monkeypatch):
    """Stand-in figures, for tests of the watch rather than of its results.

    The tests of a folder written while watched and of the command line
    draw the real ones.
    """
    from hs_aeunmix import _figures

    for name in ("endmember_figure", "abundance_figure"):
        monkeypatch.setattr(_figures, name, lambda *args, **kwargs: _Picture())


def _put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _ledger(output: Path) -> dict:
    return json.loads((output / LEDGER_NAME).read_text(encoding="utf-8"))["files"]


def _entry(output: Path, source: Path) -> dict:
    return _ledger(output)[str(source.resolve())]


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def _results_of(stem: str) -> list[str]:
    return sorted([*(stem + suffix for suffix in OUTPUTS), f"{stem}_uncertainty.hspy"])


def _no_temporary_files(folder: Path) -> bool:
    return not [name for name in _names(folder) if name.startswith(".hs_aeunmix-")]


class Recorder:
    """An ``on_result`` that keeps every result."""

    def __init__(self):
        self.results = []

    def __call__(self, result):
        self.results.append(result)

    def outcomes(self) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for result in self.results:
            seen.setdefault(result.source.name, []).append(result.outcome)
        return seen


# ------------------------------------------------------------- while written
def test_files_are_unmixed_once_each_and_never_while_written(
    tmp_path, model_file, scan_bytes
):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    output = tmp_path / "out"
    payloads = {"renamed.hspy": scan_bytes(1), "chunked.hspy": scan_bytes(2)}
    # Present from the start and never to be read: a lock file and a hidden
    # file that match the pattern, a scan of another extension.
    for name in ("~$lock.hspy", ".hidden.hspy", "notes.emd"):
        _put(folder / name, b"not a scan")
    started = threading.Event()
    first_done = threading.Event()
    stop = threading.Event()
    errors = []

    def write_slowly(stream, data: bytes, pieces: int = 6) -> None:
        step = -(-len(data) // pieces)
        for start in range(0, len(data), step):
            stream.write(data[start : start + step])
            stream.flush()
            time.sleep(0.1)  # well below settle: the file is still being written

    def writer():
        try:
            started.wait(10)
            # Written under a hidden name, then renamed (as many programs do).
            with open(folder / ".renamed.hspy", "wb") as stream:
                write_slowly(stream, payloads["renamed.hspy"])
            (folder / ".renamed.hspy").replace(folder / "renamed.hspy")
            # Written in place, chunk by chunk, while the watch looks at the
            # folder (not busy unmixing): its size changes between looks.
            first_done.wait(30)
            with open(folder / "chunked.hspy", "wb") as stream:
                write_slowly(stream, payloads["chunked.hspy"])
        except BaseException as error:  # reported by the test below
            errors.append(error)

    sizes_when_reported = {}

    def on_result(result):
        recorder(result)
        first_done.set()
        sizes_when_reported[result.source.name] = result.source.stat().st_size

    recorder = Recorder()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    watchdog = threading.Timer(60, stop.set)  # never hang the suite
    watchdog.start()
    real_wait = _watch._wait

    def first_wait_starts_the_writer(seconds, stop_event):
        started.set()
        real_wait(seconds, stop_event)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_watch, "_wait", first_wait_starts_the_writer)
            summary = watch_folder(
                folder,
                model_file,
                output,
                interval=0.05,
                settle=0.6,
                max_files=2,
                stop=stop,
                on_result=on_result,
            )
    finally:
        watchdog.cancel()
        thread.join(10)
    assert not errors
    assert not stop.is_set(), "the watch did not finish within a minute"
    # Each file once, done: none was read half-written (that would fail, and
    # be unmixed again once complete).
    assert recorder.outcomes() == {"renamed.hspy": ["done"], "chunked.hspy": ["done"]}
    assert sorted(path.name for path in summary.done) == sorted(payloads)
    assert summary.failed == []
    for result in recorder.results:
        final = len(payloads[result.source.name])
        assert result.size == final  # the size it was unmixed at
        assert sizes_when_reported[result.source.name] == final
        entry = _entry(output, result.source)
        assert (entry["size"], entry["outcome"]) == (final, "done")
        assert entry["mtime_ns"] == result.source.stat().st_mtime_ns
    assert _names(output) == sorted(
        [LEDGER_NAME, *_results_of("renamed"), *_results_of("chunked")]
    )
    # The results are those of the whole scan, as `apply` unmixes it.
    model = load_model(model_file)
    results = hs.load(output / "chunked_ae.hspy")
    np.testing.assert_array_equal(
        results.learning_results.loadings,
        model.transform(results.data.reshape(-1, 100), image_shape=(8, 8)),
    )
    assert results.data.shape == (8, 8, 100)


def test_a_file_that_cannot_be_opened_is_not_read(
    tmp_path, model_file, scan_bytes, monkeypatch, quick_figures
):
    # What Windows answers while the acquisition software holds the file.
    folder = tmp_path / "acquisition"
    held = _put(folder / "held.hspy", scan_bytes(1))
    real_open = _watch_files._open_for_reading

    def refuse_held(path):
        if path.name == "held.hspy":
            raise PermissionError(13, "used by another process", str(path))
        real_open(path)

    monkeypatch.setattr(_watch_files, "_open_for_reading", refuse_held)
    output = tmp_path / "out"
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert (summary.done, summary.failed) == ([], [])
    assert _ledger(output) == {}
    monkeypatch.setattr(_watch_files, "_open_for_reading", real_open)
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert summary.done == [held]


# ------------------------------------------------------------------ failures
def test_a_corrupt_file_is_reported_recorded_and_the_watch_goes_on(
    tmp_path, model_file, scan_bytes, caplog, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    garbage = _put(folder / "garbage.hspy", b"\x89HDF\r\n garbage, not a scan")
    half = _put(folder / "half.hspy", scan_bytes(3)[:6000])  # cut short
    last = _put(folder / "last.hspy", scan_bytes(2))
    with caplog.at_level("WARNING", logger="hs_aeunmix"):
        summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    # Oldest first: the failures come first, and the watch goes on.
    assert summary.failed == [garbage, half]
    assert summary.done == [last]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    for path in (garbage, half):
        assert any(m.startswith(f"cannot read {path}: ") for m in warnings)
        entry = _entry(output, path)
        assert entry["outcome"] == "failed"
        assert entry["message"].startswith(f"cannot read {path}: ")
        assert not [name for name in _names(output) if name.startswith(path.stem)]
    assert _no_temporary_files(output)

    # Not retried while unchanged...
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert (summary.done, summary.failed) == ([], [])
    assert sorted(summary.skipped) == [garbage, half, last]
    # ...retried once changed: the half-written file, now complete, is done.
    _put(half, scan_bytes(3))
    _put(garbage, b"still not a scan, but longer than before")
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert summary.done == [half]
    assert summary.failed == [garbage]
    assert _entry(output, half)["outcome"] == "done"
    assert _entry(output, half)["size"] == len(scan_bytes(3))


# ------------------------------------------------------------------ restarts
def test_a_restart_unmixes_new_and_changed_files_only(
    tmp_path, model_file, scan_bytes, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    kept = _put(folder / "kept.hspy", scan_bytes(1))
    changed = _put(folder / "changed.hspy", scan_bytes(2))
    recorder = Recorder()
    summary = watch_folder(
        folder, model_file, output, once=True, on_result=recorder, **QUICK
    )
    assert sorted(summary.done) == [changed, kept]
    kept_results = (output / "kept_ae.hspy").stat().st_mtime_ns

    # Between the runs: a new scan, and one scan written again (another one).
    new = _put(folder / "new.hspy", scan_bytes(3))
    _put(changed, scan_bytes(4))
    summary = watch_folder(
        folder, model_file, output, once=True, on_result=recorder, **QUICK
    )
    # The changed file's earlier results are this watch's own: replaced
    # without overwrite. The unchanged one is not read again.
    assert sorted(summary.done) == [changed, new]
    assert summary.skipped == [kept]
    assert (output / "kept_ae.hspy").stat().st_mtime_ns == kept_results
    np.testing.assert_array_equal(
        hs.load(output / "changed_ae.hspy").data,
        to_signal(make_mixture(shape=(8, 8), counts=200, seed=4)).data,
    )
    assert _entry(output, changed)["size"] == len(scan_bytes(4))

    # Even with overwrite, what the ledger records is never unmixed twice.
    summary = watch_folder(
        folder,
        model_file,
        output,
        once=True,
        overwrite=True,
        on_result=recorder,
        **QUICK,
    )
    assert summary.done == []
    assert sorted(summary.skipped) == [changed, kept, new]
    assert recorder.outcomes() == {
        "kept.hspy": ["done"],
        "changed.hspy": ["done", "done"],
        "new.hspy": ["done"],
    }


def test_results_not_in_the_ledger_are_kept_unless_overwrite(
    tmp_path, model_file, scan_bytes, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    scan = _put(folder / "scan.hspy", scan_bytes(1))
    _put(output / "scan_ae.hspy", b"results of another run")
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert summary.skipped == [scan]
    entry = _entry(output, scan)
    assert entry["outcome"] == "skipped"
    assert "scan_ae.hspy" in entry["message"]
    assert "--overwrite" in entry["message"]
    assert (output / "scan_ae.hspy").read_bytes() == b"results of another run"
    assert _names(output) == [LEDGER_NAME, "scan_ae.hspy"]
    summary = watch_folder(
        folder, model_file, output, once=True, overwrite=True, **QUICK
    )
    assert summary.done == [scan]
    assert hs.load(output / "scan_ae.hspy").learning_results.loadings is not None


# -------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_after_a_file_keeps_the_ledger(
    tmp_path, model_file, scan_bytes, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    scans = [_put(folder / f"scan{i}.hspy", scan_bytes(i + 1)) for i in range(2)]

    def ctrl_c(result):
        raise KeyboardInterrupt

    summary = watch_folder(
        folder, model_file, output, once=True, on_result=ctrl_c, **QUICK
    )
    assert summary.interrupted
    assert (summary.done, summary.failed) == ([scans[0]], [])
    assert summary.line() == "1 done, 0 failed, 0 skipped (stopped by Ctrl-C)"
    assert list(_ledger(output)) == [str(scans[0].resolve())]
    assert _names(output) == [LEDGER_NAME, *_results_of("scan0")]
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert (summary.done, summary.skipped) == (scans[1:], [scans[0]])


def test_ctrl_c_while_writing_leaves_no_partial_results(
    tmp_path, model_file, scan_bytes, monkeypatch, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    scan = _put(folder / "scan.hspy", scan_bytes(1))

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt  # after the results file and the figures

    monkeypatch.setattr(_jobs, "write_endmember_table", ctrl_c)
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert summary.interrupted
    assert summary.done == []
    # Neither the results nor the figures written before Ctrl-C are left,
    # and the scan is not recorded: the next run unmixes it.
    assert _names(output) == [LEDGER_NAME]
    assert _ledger(output) == {}
    monkeypatch.undo()
    summary = watch_folder(folder, model_file, output, once=True, **QUICK)
    assert summary.done == [scan]


def test_stop_event_ends_the_watch(tmp_path, model_file):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    summary = watch_folder(folder, model_file, tmp_path / "out", stop=stop, **QUICK)
    assert time.monotonic() - start < 5
    assert not summary.interrupted
    assert (tmp_path / "out" / LEDGER_NAME).is_file()


# ---------------------------------------------------------------- refusals
def test_refusals(tmp_path, model_file):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    with pytest.raises(ValueError, match="no folder to watch"):
        watch_folder(tmp_path / "absent", model_file, tmp_path / "out")
    with pytest.raises(ValueError, match="is the watched folder"):
        watch_folder(folder, model_file, folder)
    with pytest.raises(ValueError, match=r"HyperSpy reads no '\.txt' files"):
        watch_folder(folder, model_file, tmp_path / "out", pattern=["*.hspy", "*.txt"])
    with pytest.raises(ValueError, match="interval"):
        watch_folder(folder, model_file, tmp_path / "out", interval=0)
    _put(tmp_path / "out" / LEDGER_NAME, b"{not json")
    with pytest.raises(ValueError, match="is not a ledger of hs-aeunmix watch"):
        watch_folder(folder, model_file, tmp_path / "out")


def test_temporary_names():
    for name in ("~$scan.hspy", ".scan.hspy", "scan.hspy.tmp", "scan.HSPY.PART"):
        assert _watch_files.is_temporary_name(name)
    for name in ("scan.hspy", "scan~1.hspy", "tmp.hspy"):
        assert not _watch_files.is_temporary_name(name)


# ------------------------------------------------------------- command line
def _watch_args(folder, model, output, *extra) -> list[str]:
    """``watch`` quickly; ``model`` None for a series (given in ``extra``)."""
    return [
        "watch",
        str(folder),
        *([] if model is None else ["--model", str(model)]),
        "-o",
        str(output),
        "--interval",
        "0.05",
        "--settle",
        "0",
        "--no-progressbar",
        *extra,
    ]


def _error_lines(captured) -> list[str]:
    return [
        line
        for line in captured.err.splitlines()
        if line.strip() and "Numba is not installed" not in line
    ]


def test_cli_watch_once(tmp_path, model_file, scan_bytes, capfd):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    _put(folder / "scan.hspy", scan_bytes(1))
    assert main(_watch_args(folder, model_file, output, "--once")) == 0
    captured = capfd.readouterr()
    assert "unmixed in" in captured.out
    assert "hs-aeunmix: watch ended: 1 done, 0 failed, 0 skipped" in captured.out
    assert _error_lines(captured) == []
    assert _names(output) == [LEDGER_NAME, *_results_of("scan")]
    # A corrupt scan: one line, exit status 1, the ledger records it.
    garbage = _put(folder / "garbage.hspy", b"not a scan")
    assert main(_watch_args(folder, model_file, output, "--once")) == 1
    captured = capfd.readouterr()
    [line] = _error_lines(captured)
    assert line.startswith(f"hs-aeunmix: cannot read {garbage}: ")
    assert "1 skipped" in captured.out
    assert _entry(output, garbage)["outcome"] == "failed"


def test_cli_ctrl_c_stops_with_a_summary(
    tmp_path, model_file, scan_bytes, capfd, monkeypatch, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    _put(folder / "scan.hspy", scan_bytes(1))
    waits = []
    real_wait = _watch._wait

    def ctrl_c_at_the_second_wait(seconds, stop):
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt
        real_wait(seconds, stop)

    monkeypatch.setattr(_watch, "_wait", ctrl_c_at_the_second_wait)
    assert main(_watch_args(folder, model_file, output)) == 0
    out = capfd.readouterr().out
    assert out.splitlines()[-1] == (
        "hs-aeunmix: watch ended: 1 done, 0 failed, 0 skipped (stopped by Ctrl-C)"
    )
    assert _entry(output, folder / "scan.hspy")["outcome"] == "done"
    assert _no_temporary_files(output)


def test_cli_corrupt_model_is_one_line(tmp_path, capfd):
    model = _put(tmp_path / "broken.aeunmix", b"not a model at all")
    folder = tmp_path / "acquisition"
    folder.mkdir()
    assert main(_watch_args(folder, model, tmp_path / "out", "--once")) == 2
    [line] = _error_lines(capfd.readouterr())
    assert line.startswith("hs-aeunmix: ")
    assert "broken.aeunmix is not an hs_aeunmix model" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--model", "absent.aeunmix"], "no model file at absent.aeunmix"),
        (["--pattern", "*.txt"], "HyperSpy reads no '.txt' files"),
    ],
)
def test_cli_refusals_are_one_line(tmp_path, model_file, capfd, arguments, fragment):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    argv = [*_watch_args(folder, model_file, tmp_path / "out"), *arguments]
    assert main(argv) == 2
    [line] = _error_lines(capfd.readouterr())
    assert line.startswith("hs-aeunmix: ")
    assert fragment in line


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["watch", "folder"], "--model"),
        (["watch", "folder", "-m", "m.aeunmix", "--interval", "0"], "--interval"),
        (["watch", "folder", "-m", "m.aeunmix", "--settle", "-1"], "--settle"),
        (["watch", "folder", "-m", "m.aeunmix", "--max-files", "0"], "--max-files"),
        # A series and a model are exclusive; one of them is needed.
        (["watch", "f", "-m", "m.aeunmix", "--series", "2", "-n", "3"], "not allowed"),
        (["watch", "f", "-n", "3"], "one of the arguments -m/--model --series"),
        (["watch", "f", "--series", "0", "-n", "3"], "--series"),
    ],
)
def test_cli_argument_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    [line] = _error_lines(capsys.readouterr())
    assert line.startswith("hs-aeunmix: ")
    assert fragment in line


def test_cli_help_is_light_and_names_the_defaults():
    assert (front.WATCH_PATTERN, front.WATCH_INTERVAL, front.WATCH_SETTLE) == (
        _watch.DEFAULT_PATTERN,
        _watch.DEFAULT_INTERVAL,
        _watch.DEFAULT_SETTLE,
    )
    parser = front.build_parser()
    watch = parser._subparsers._group_actions[0].choices["watch"]
    for action in watch._actions:
        plain = (argparse._HelpAction, argparse._StoreTrueAction)
        if not action.option_strings or action.required or isinstance(action, plain):
            continue
        assert "default" in action.help, action.option_strings
    probe = (
        "import json, sys\n"
        "import hs_aeunmix_cli as cli\n"
        "try:\n"
        "    cli.build_parser().parse_args(['watch', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'torch', 'hyperspy', 'numpy', 'rsciio'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    assert json.loads(last_line_of_python(probe)) == []


# -------------------------------------------------------------------- series
SERIES = {"series": 2, "n_components": 3, "training_options": FAST}


def _put_in_order(folder: Path, named: dict[str, bytes]) -> list[Path]:
    """The files, their modification times one second apart in this order."""
    paths = []
    for second, (name, data) in enumerate(named.items()):
        path = _put(folder / name, data)
        stamp = 1_700_000_000_000_000_000 + second * 1_000_000_000
        os.utime(path, ns=(stamp, stamp))
        paths.append(path)
    return paths


def _spy_on_training(monkeypatch) -> list[list[str]]:
    """The file names of the scans of each call of decompose_series."""
    calls = []
    real = _joint.decompose_series

    def spy(signals, *args, **kwargs):
        calls.append([signal.tmp_parameters.filename for signal in signals])
        return real(signals, *args, **kwargs)

    monkeypatch.setattr(_joint, "decompose_series", spy)
    return calls


def test_series_trains_on_the_first_files_then_applies_its_model(
    tmp_path, scan_bytes, monkeypatch, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    garbage, first, second, third = _put_in_order(
        folder,
        {
            "garbage.hspy": b"\x89HDF\r\n not a scan",
            "first.hspy": scan_bytes(1),
            "second.hspy": scan_bytes(2),
            "third.hspy": scan_bytes(3),
        },
    )
    calls = _spy_on_training(monkeypatch)
    recorder, trained = Recorder(), []
    summary = watch_folder(
        folder,
        output=output,
        once=True,
        on_result=recorder,
        on_series=trained.append,
        **SERIES,
        **QUICK,
    )
    # The unreadable file is recorded failed; the series waited for another.
    assert summary.failed == [garbage]
    assert summary.done == [first, second, third]
    assert summary.series_waiting == 0
    assert calls == [["first", "second"]]
    [event] = trained
    assert event.model == output / _watch.SERIES_MODEL_NAME
    assert event.sources == (first, second)
    assert len(event.fit.scans) == 2
    assert str(event.fit).startswith("| scan | offset (eV) |")
    assert [(result.source, result.series) for result in recorder.results] == [
        (garbage, False),
        (first, True),
        (second, True),
        (third, False),
    ]
    assert _names(output) == sorted(
        [
            LEDGER_NAME,
            "series.aeunmix",
            *_results_of("first"),
            *_results_of("second"),
            *_results_of("third"),
        ]
    )
    ledger = json.loads((output / LEDGER_NAME).read_text(encoding="utf-8"))
    record = ledger["series"]
    assert (record["n_files"], record["n_components"]) == (2, 3)
    assert record["files"] == [str(first.resolve()), str(second.resolve())]
    model_bytes = (output / "series.aeunmix").read_bytes()
    assert record["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    for path in (first, second):
        assert _entry(output, path)["outcome"] == "done"
        assert _entry(output, path)["series"] is True
    assert "series" not in _entry(output, third)
    assert _entry(output, garbage)["outcome"] == "failed"
    # The later file is unmixed with the series' model, as `apply` would.
    series_model = load_model(output / "series.aeunmix")
    assert series_model.components_.shape[0] == 3
    np.testing.assert_array_equal(
        load_model(output / "third_ae.hspy").components_, series_model.components_
    )
    # The first two carry the series' endmembers (in their own frame).
    for stem in ("first", "second"):
        np.testing.assert_allclose(
            load_model(output / f"{stem}_ae.hspy").components_,
            series_model.components_,
        )


def test_series_restart_applies_the_trained_model_without_training(
    tmp_path, scan_bytes, monkeypatch, capfd, quick_figures
):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    first, second = _put_in_order(
        folder, {"first.hspy": scan_bytes(1), "second.hspy": scan_bytes(2)}
    )
    summary = watch_folder(folder, output=output, once=True, **SERIES, **QUICK)
    assert summary.done == [first, second]
    model_file = output / "series.aeunmix"
    trained_bytes = model_file.read_bytes()
    results = {
        stem: (output / f"{stem}_ae.hspy").stat().st_mtime_ns
        for stem in ("first", "second")
    }

    def no_training(*args, **kwargs):
        raise AssertionError("the series was trained again")

    monkeypatch.setattr(_joint, "decompose_series", no_training)
    # Two new files: enough for a series, were it trained again.
    new = [
        _put(folder / f"{stem}.hspy", scan_bytes(seed))
        for stem, seed in (("third", 3), ("fourth", 4))
    ]
    argv = _watch_args(
        folder, None, output, "--series", "2", "-n", "3", "--once", "--max-epochs", "2"
    )
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert _error_lines(captured) == []
    assert f"applying {model_file}, trained by an earlier run on 2 scans" in (
        captured.out
    )
    assert "watch ended: 2 done, 0 failed, 2 skipped" in captured.out
    # Not retrained, the first files not redone, the new one applied.
    assert model_file.read_bytes() == trained_bytes
    for stem, stamp in results.items():
        assert (output / f"{stem}_ae.hspy").stat().st_mtime_ns == stamp
    for path in new:
        assert _entry(output, path)["outcome"] == "done"
        np.testing.assert_array_equal(
            load_model(output / f"{path.stem}_ae.hspy").components_,
            load_model(model_file).components_,
        )


def test_series_waits_for_its_files(tmp_path, scan_bytes, capfd):
    folder = tmp_path / "acquisition"
    output = tmp_path / "out"
    _put(folder / "first.hspy", scan_bytes(1))
    summary = watch_folder(folder, output=output, once=True, **SERIES, **QUICK)
    assert (summary.done, summary.failed, summary.series_waiting) == ([], [], 1)
    assert summary.line() == (
        "0 done, 0 failed, 0 skipped; the series waits for 1 more file to train on"
    )
    # Nothing recorded: the next run trains on it.
    assert _names(output) == [LEDGER_NAME]
    assert _ledger(output) == {}


def _series_args(folder, output, *extra) -> list[str]:
    return [
        "watch",
        str(folder),
        "-o",
        str(output),
        "--settle",
        "0",
        "--no-progressbar",
        "--once",
        *extra,
    ]


def _pretend_trained(output: Path, model_file: Path, *, n_files=2, sha=None) -> None:
    """A ledger recording a series trained with ``model_file`` (no training)."""
    output.mkdir(parents=True, exist_ok=True)
    data = model_file.read_bytes()
    (output / "series.aeunmix").write_bytes(data)
    series = {
        "model": "series.aeunmix",
        "sha256": sha or hashlib.sha256(data).hexdigest(),
        "n_files": n_files,
        "n_components": 3,
        "files": [],
    }
    ledger = {"format": _watch_ledger._LEDGER_FORMAT, "version": 1, "files": {}}
    (output / LEDGER_NAME).write_text(json.dumps({**ledger, "series": series}))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--series", "2"], "--series 2 needs -n/--n-components K"),
        (["-m", "MODEL", "-n", "3"], "-n/--n-components is for --series"),
        (["-m", "MODEL", "--max-epochs", "2"], "--max-epochs: training options"),
        (["-m", "MODEL", "--keep-absent"], "--keep-absent: training options"),
        (["--series", "2", "-n", "3"], "series.aeunmix already exists"),
        (["--series", "3", "-n", "3", "TRAINED"], "--series 2 -n 3 to go on"),
        (["--series", "2", "-n", "3", "CHANGED"], "is not the model this watch"),
    ],
)
def test_cli_series_refusals_are_one_line(tmp_path, model_file, capfd, extra, fragment):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    output = tmp_path / "out"
    extra = [str(model_file) if item == "MODEL" else item for item in extra]
    if fragment == "series.aeunmix already exists":
        _put(output / "series.aeunmix", model_file.read_bytes())
    if "TRAINED" in extra or "CHANGED" in extra:
        _pretend_trained(output, model_file, sha="0" if "CHANGED" in extra else None)
        extra = extra[:-1]
    before = _names(output)
    assert main(_series_args(folder, output, *extra)) == 2
    [line] = _error_lines(capfd.readouterr())
    assert line.startswith("hs-aeunmix: ")
    assert fragment in line
    assert _names(output) == before


@pytest.mark.parametrize("keep", [False, True])
def test_cli_series_keep_absent_reaches_the_series_training(
    tmp_path, monkeypatch, keep
):
    seen = {}

    def fake_watch(folder, model, output, **arguments):
        seen.update(arguments.get("training_options", {}))
        return argparse.Namespace(line=lambda: "", failed=0, interrupted=False)

    monkeypatch.setattr(_watch, "watch_folder", fake_watch)
    folder = tmp_path / "acquisition"
    folder.mkdir()
    extra = ["--series", "2", "-n", "3", *(["--keep-absent"] if keep else [])]
    assert main(_series_args(folder, tmp_path / "out", *extra)) == 0
    assert seen.get("zero_absent", True) is (not keep)


def test_series_arguments_are_checked(tmp_path, model_file):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    output = tmp_path / "out"
    with pytest.raises(ValueError, match="exactly one of model"):
        watch_folder(folder, output=output)
    with pytest.raises(ValueError, match="exactly one of model"):
        watch_folder(folder, model_file, output, series=2, n_components=3)
    with pytest.raises(ValueError, match="needs n_components"):
        watch_folder(folder, output=output, series=2)
    with pytest.raises(ValueError, match="n_components is for series"):
        watch_folder(folder, model_file, output, n_components=3)
    with pytest.raises(ValueError, match="training_options are for series"):
        watch_folder(folder, model_file, output, training_options={"max_epochs": 2})
    with pytest.raises(InvalidParameterError, match="'series' parameter of watch"):
        watch_folder(folder, output=output, series=0, n_components=3)
    with pytest.raises(TypeError, match="Unknown option"):
        watch_folder(
            folder,
            output=output,
            series=2,
            n_components=3,
            training_options={"epochs": 2},
        )
    assert not output.exists()
    # A recorded model that has gone missing is refused, even with overwrite.
    _pretend_trained(output, model_file)
    (output / "series.aeunmix").unlink()
    with pytest.raises(ValueError, match=r"series\.aeunmix is missing"):
        watch_folder(folder, output=output, overwrite=True, **SERIES)
