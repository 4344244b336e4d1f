"""Tests of the hs-aeunmix command line."""

from __future__ import annotations

import argparse
import csv
import errno
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
from _helpers import (
    last_line_of_python,
    make_mixture,
    to_signal,
    train_through_hyperspy,
)

import hs_aeunmix
import hs_aeunmix_cli as front
from hs_aeunmix import AEUnmix, _cli, _files, _jobs, load_model
from hs_aeunmix_cli import main

SCRIPT = Path(sys.executable).parent / "hs-aeunmix"
QUIET = ["--no-progressbar"]
FAST_TRAINING = ["--max-epochs", "2", "--no-progressbar"]


def _error_lines(captured) -> list[str]:
    """Lines on stderr, less HyperSpy's warning about the environment."""
    return [
        line
        for line in captured.err.splitlines()
        if line.strip() and "Numba is not installed" not in line
    ]


def _assert_one_error_line(captured, *fragments) -> str:
    """stderr is one ``hs-aeunmix: ...`` line holding every fragment."""
    lines = _error_lines(captured)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hs-aeunmix: ")
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def _folder(path: Path) -> list[str]:
    return sorted(item.name for item in path.iterdir()) if path.exists() else []


# Scans of one sample with counting noise: a model explains each of them to
# about the noise, as it does its training scan (noise-free scans would make
# the mismatch warning judge model error against curvature alone).
COUNTS = 200


def _scan(path: Path, seed: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    to_signal(make_mixture(shape=(16, 16), counts=COUNTS, seed=seed)).save(path)
    return path


@pytest.fixture(scope="module")
def trained_model_file(tmp_path_factory):
    signal = to_signal(make_mixture(shape=(16, 16), counts=COUNTS))
    folder = tmp_path_factory.mktemp("model")
    return train_through_hyperspy(signal).save(folder / "series.aeunmix")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the command reads a scan, a model or trains."""

    def refuse(*args, **kwargs):
        raise AssertionError("work started although the command was refused")

    monkeypatch.setattr(_jobs, "load_single_signal", refuse)
    monkeypatch.setattr(_cli, "run_demo", refuse)
    import hs_aeunmix._estimator

    monkeypatch.setattr(hs_aeunmix._estimator, "load_model", refuse)


# ------------------------------------------------------------------ commands
def test_demo_trains_scores_and_writes_results(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--no-progressbar"]) == 0
    printed = capsys.readouterr().out
    mean_angle = float(re.search(r"mean ([0-9.]+) rad", printed).group(1))
    rmse = float(re.search(r"abundance RMSE\s+([0-9.]+)", printed).group(1))
    assert mean_angle < 0.1
    assert rmse < 0.1
    for name in (
        "eels_chequerboard_ae.hspy",
        "eels_chequerboard_endmembers.png",
        "eels_chequerboard_abundances.png",
        "eels_chequerboard.aeunmix",
        "eels_chequerboard_uncertainty.hspy",
        "eels_chequerboard_endmembers.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0
    results = hs.load(tmp_path / "eels_chequerboard_ae.hspy")
    assert results.learning_results.factors.shape == (200, 3)
    # One uncertainty map per endmember, shaped like the loadings.
    sigma = hs.load(tmp_path / "eels_chequerboard_uncertainty.hspy")
    assert sigma.data.shape == results.get_decomposition_loadings().data.shape
    with open(tmp_path / "eels_chequerboard_endmembers.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["endmember", "summary", "support", "spread_rad", "warnings"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]


def test_demo_run_again_replaces_its_own_files(tmp_path, monkeypatch):
    names = (
        "eels_chequerboard_ae.hspy",
        "eels_chequerboard_endmembers.png",
        "eels_chequerboard_abundances.png",
        "eels_chequerboard.aeunmix",
    )
    for name in names:
        (tmp_path / name).write_bytes(b"earlier run")
    started = []
    monkeypatch.setattr(_cli, "run_demo", lambda *args: started.append(args) or 0)
    assert main(["demo", "-o", str(tmp_path), "--no-progressbar"]) == 0
    assert started
    # A folder where a result file goes is still refused.
    (tmp_path / names[0]).unlink()
    (tmp_path / names[0]).mkdir()
    assert main(["demo", "-o", str(tmp_path), "--no-progressbar"]) == 2


def test_train_on_a_file(tmp_path, capsys):
    signal = to_signal(make_mixture(shape=(16, 16)))
    source = tmp_path / "scan.hspy"
    signal.save(source)
    output = tmp_path / "out"
    code = main(
        [
            "train",
            str(source),
            "-n",
            "3",
            "-o",
            str(output),
            "--max-epochs",
            "5",
            "--no-progressbar",
        ]
    )
    assert code == 0
    assert "16, 16" in capsys.readouterr().out
    reloaded = hs.load(output / "scan_ae.hspy")
    assert reloaded.learning_results.loadings.shape == (256, 3)
    np.testing.assert_array_equal(reloaded.data, signal.data)
    assert (output / "scan_abundances.png").exists()
    model = load_model(output / "scan.aeunmix")
    np.testing.assert_array_equal(
        model.transform(signal.data.reshape(-1, 100), image_shape=(16, 16)),
        reloaded.learning_results.loadings,
    )
    assert _folder(output) == [
        "scan.aeunmix",
        "scan_abundances.png",
        "scan_ae.hspy",
        "scan_endmembers.csv",
        "scan_endmembers.png",
        "scan_uncertainty.hspy",
    ]
    assert _folder(tmp_path) == ["out", "scan.hspy"]


def test_endmember_table_names_only_the_specimens_elements(tmp_path):
    # Co L2,3, Ni L2,3 and Pt (no edge at 700-899 eV); the scan's metadata
    # (s.add_elements) says the specimen holds Co only.
    from hs_aeunmix.datasets import eels_chequerboard

    signal, _ = eels_chequerboard(
        3, shape=(16, 16), block_size=4, filter_size=3, random_state=0
    )
    signal.metadata.set_item("Sample.elements", ["Co"])
    signal.save(tmp_path / "scan.hspy")
    output = tmp_path / "out"
    arguments = ["train", str(tmp_path / "scan.hspy"), "-n", "3", "-o", str(output)]
    assert main([*arguments, *FAST_TRAINING]) == 0
    table = (output / "scan_endmembers.csv").read_text(encoding="utf-8")
    assert "Co L3" in table
    assert "Ni" not in table
    # The model itself, asked without the specimen's elements, names Ni too.
    unrestricted = load_model(output / "scan.aeunmix").describe_endmembers()
    assert "Ni L3" in " ".join(d.summary for d in unrestricted)


def test_train_a_series_writes_each_scan_and_one_model(tmp_path, capsys):
    scans = [_scan(tmp_path / f"scan{seed}.hspy", seed) for seed in (1, 2, 3)]
    output = tmp_path / "out"
    arguments = ["train", *map(str, scans), "-n", "3", "-o", str(output)]
    assert main([*arguments, *FAST_TRAINING]) == 2
    _assert_one_error_line(capsys.readouterr(), "3 files given to train", "--series")
    one = ["train", str(scans[0]), "-n", "3", "-o", str(output), "--keep-absent"]
    assert main([*one, *FAST_TRAINING]) == 2
    _assert_one_error_line(capsys.readouterr(), "--keep-absent is for --series")
    assert main([*arguments, "--series", *FAST_TRAINING]) == 0
    printed = capsys.readouterr().out
    assert "trained one model on 3 scans" in printed
    assert "| scan | offset (eV) | intensity ratio | trained on (spectra) |" in printed
    names = _folder(output)
    assert "scan1_series.aeunmix" in names
    assert not any(name.endswith(".aeunmix") and "series" not in name for name in names)
    model = load_model(output / "scan1_series.aeunmix")
    for seed in (1, 2, 3):
        assert f"scan{seed}_ae.hspy" in names
        result = hs.load(output / f"scan{seed}_ae.hspy")
        assert result.learning_results.loadings.shape == (256, 3)
        # The series' endmembers, in the scan's frame (its offset applied).
        np.testing.assert_allclose(load_model(result).components_, model.components_)
        assert np.isfinite(result.learning_results.factors).sum() >= 3 * 95
    # Nothing is written over, the series' model included.
    for path in output.iterdir():
        if path.suffix != ".aeunmix":
            path.unlink()
    assert main([*arguments, "--series", *FAST_TRAINING]) == 2
    _assert_one_error_line(capsys.readouterr(), "already holds", "scan1_series.aeunmix")


@pytest.mark.parametrize("keep", [False, True])
def test_train_series_keep_absent_reaches_decompose_series(tmp_path, monkeypatch, keep):
    from hs_aeunmix import _joint

    seen = {}
    original = _joint.decompose_series

    def recording(*arguments, **options):
        seen["zero_absent"] = options["zero_absent"]
        return original(*arguments, **options)

    monkeypatch.setattr(_joint, "decompose_series", recording)
    scans = [_scan(tmp_path / f"scan{seed}.hspy", seed) for seed in (1, 2, 3)]
    arguments = ["train", *map(str, scans), "-n", "3", "--series", *FAST_TRAINING]
    arguments += ["-o", str(tmp_path / "out"), *(["--keep-absent"] if keep else [])]
    assert main(arguments) == 0
    assert seen["zero_absent"] is (not keep)


def test_results_go_to_a_results_folder_not_beside_the_data(
    tmp_path, monkeypatch, trained_model_file
):
    raw = tmp_path / "raw"
    source = _scan(raw / "scan.hspy")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["train", str(source), "-n", "3", *FAST_TRAINING]) == 0
    assert main(["apply", str(trained_model_file), str(source), *QUIET, "-o", "m"]) == 0
    assert _folder(raw) == ["scan.hspy"]
    assert "scan_ae.hspy" in _folder(work / "hs_aeunmix_results")
    assert "scan.aeunmix" in _folder(work / "hs_aeunmix_results")
    assert "scan_ae.hspy" in _folder(work / "m")


def test_apply_over_two_files(tmp_path, trained_model_file, capsys):
    scans = [_scan(tmp_path / "scans" / f"scan{seed}.hspy", seed) for seed in (1, 2)]
    output = tmp_path / "maps"
    code = main(["apply", str(trained_model_file), *map(str, scans), "-o", str(output)])
    assert code == 0
    printed = capsys.readouterr()
    assert "Unmixing scans" in printed.err  # the progress bar over files
    assert "unmixed in" in printed.out
    model = load_model(trained_model_file)
    for scan in scans:
        results = hs.load(output / f"{scan.stem}_ae.hspy")
        assert results.learning_results.decomposition_algorithm == "ae"
        np.testing.assert_array_equal(
            results.learning_results.loadings,
            model.transform(results.data.reshape(-1, 100), image_shape=(16, 16)),
        )
        assert (output / f"{scan.stem}_abundances.png").stat().st_size > 0
        assert (output / f"{scan.stem}_endmembers.png").stat().st_size > 0


def test_apply_reports_a_bad_scan_and_goes_on(tmp_path, trained_model_file, capfd):
    good = _scan(tmp_path / "scans" / "scan1.hspy", 1)
    cropped = tmp_path / "scans" / "scan2.hspy"
    _scan(tmp_path / "scan2.hspy", 2)
    hs.load(tmp_path / "scan2.hspy").isig[:50].save(cropped)
    garbage = tmp_path / "scans" / "scan3.hspy"
    garbage.write_text("not HDF5")
    output = tmp_path / "out"
    arguments = [str(trained_model_file), str(cropped), str(good), str(garbage)]
    code = main(["apply", *arguments, "-o", str(output), *QUIET])
    assert code == 1
    errors = _error_lines(capfd.readouterr())
    assert "Traceback" not in "\n".join(errors)
    assert len(errors) == 3  # one line per failed scan, one summary
    assert errors[0].startswith(f"hs-aeunmix: {cropped}: This signal's axis (50 ch")
    assert errors[1].startswith(f"hs-aeunmix: cannot read {garbage}: ")
    assert errors[2] == "hs-aeunmix: 2 of 3 scans failed"
    assert _folder(output) == [
        "scan1_abundances.png",
        "scan1_ae.hspy",
        "scan1_endmembers.csv",
        "scan1_endmembers.png",
        "scan1_uncertainty.hspy",
    ]


def test_train_options_reach_the_model(tmp_path, monkeypatch):
    source = _scan(tmp_path / "scan.hspy")
    monkeypatch.chdir(tmp_path)
    arguments = ["train", str(source), "-n", "3", "--no-progressbar"]
    options = ["--preset", "daeu", "--max-epochs", "2", "--spatial"]
    assert main([*arguments, *options]) == 0
    model = load_model(tmp_path / "hs_aeunmix_results" / "scan.aeunmix")
    assert (model.abundance, model.max_epochs, model.spatial) == (
        "thresholded_sum_to_one",
        2,
        True,
    )
    # Options left out keep the estimator's defaults.
    assert main([*arguments, "-o", str(tmp_path / "plain")]) == 0
    plain = load_model(tmp_path / "plain" / "scan.aeunmix")
    defaults = AEUnmix()
    assert (plain.loss, plain.max_epochs, plain.spatial) == (
        defaults.loss,
        defaults.max_epochs,
        defaults.spatial,
    )
    assert plain.random_state == 0
    # The negative form of a flag, and a run without a seed.
    options = ["--no-spatial", "--seed", "none", "--max-epochs", "2"]
    assert main([*arguments, *options, "-o", str(tmp_path / "u")]) == 0
    unseeded = load_model(tmp_path / "u" / "scan.aeunmix")
    assert unseeded.spatial is False
    assert unseeded.random_state is None


def test_default_seed_makes_runs_reproducible(tmp_path):
    source = _scan(tmp_path / "scan.hspy")
    for name in ("first", "second"):
        main(
            [
                "train",
                str(source),
                "-n",
                "3",
                *FAST_TRAINING,
                "-o",
                str(tmp_path / name),
            ]
        )
    first, second = (
        hs.load(tmp_path / name / "scan_ae.hspy").learning_results
        for name in ("first", "second")
    )
    np.testing.assert_array_equal(first.loadings, second.loadings)
    np.testing.assert_array_equal(first.factors, second.factors)


# ----------------------------------------------------- never lose a file
def test_apply_never_writes_over_an_input(tmp_path, trained_model_file, capfd, no_work):
    # Issue 12: the results of x would have been written over the input x_ae.
    x = _scan(tmp_path / "d" / "x.hspy", 1)
    x_ae = _scan(tmp_path / "d" / "x_ae.hspy", 2)
    before = {path: path.read_bytes() for path in (x, x_ae)}
    for extra in ([], ["--overwrite"]):
        arguments = [str(trained_model_file), str(x), str(x_ae), "-o", str(x.parent)]
        assert main(["apply", *arguments, *extra]) == 2
        _assert_one_error_line(
            capfd.readouterr(), f"{x_ae} is an input of this run", str(x)
        )
    assert {path: path.read_bytes() for path in (x, x_ae)} == before
    assert _folder(x.parent) == ["x.hspy", "x_ae.hspy"]


def test_apply_never_writes_over_the_model(tmp_path, trained_model_file, capfd):
    # A results file serves as the model: the new results must not replace it.
    scan = _scan(tmp_path / "d" / "x.hspy")
    arguments = [str(trained_model_file), str(scan), "-o", str(scan.parent), *QUIET]
    assert main(["apply", *arguments]) == 0
    capfd.readouterr()
    results = scan.parent / "x_ae.hspy"
    before = results.read_bytes()
    arguments = [str(results), str(scan), "-o", str(scan.parent), "--overwrite"]
    assert main(["apply", *arguments, *QUIET]) == 2
    _assert_one_error_line(capfd.readouterr(), f"{results} is an input of this run")
    assert results.read_bytes() == before


@pytest.mark.parametrize("names", [("scan", "scan"), ("Scan", "scan")])
def test_colliding_input_names_are_refused(
    tmp_path, trained_model_file, capfd, no_work, names
):
    first = _scan(tmp_path / "dirA" / f"{names[0]}.hspy")
    second = _scan(tmp_path / "dirB" / f"{names[1]}.hspy")
    output = tmp_path / "out"
    arguments = [str(trained_model_file), str(first), str(second), "-o", str(output)]
    assert main(["apply", *arguments]) == 2
    _assert_one_error_line(
        capfd.readouterr(), str(first), str(second), "would both write"
    )
    assert not output.exists()


def test_a_scan_given_twice_is_refused(tmp_path, trained_model_file, capfd, no_work):
    scan = _scan(tmp_path / "scan.hspy")
    twice = tmp_path / "." / "scan.hspy"
    arguments = [str(trained_model_file), str(scan), str(twice), "-o", str(tmp_path)]
    assert main(["apply", *arguments]) == 2
    _assert_one_error_line(capfd.readouterr(), "given twice")


def test_existing_results_need_overwrite(tmp_path, trained_model_file, capfd):
    scans = [_scan(tmp_path / f"scan{seed}.hspy", seed) for seed in (1, 2)]
    output = tmp_path / "out"
    arguments = ["apply", str(trained_model_file), *map(str, scans), "-o", str(output)]
    assert main([*arguments, *QUIET]) == 0
    capfd.readouterr()
    written = {path: path.stat().st_mtime_ns for path in output.iterdir()}
    # Only the second scan's results are left: the run is refused as a whole,
    # before the first scan is unmixed.
    (output / "scan1_ae.hspy").unlink()
    del written[output / "scan1_ae.hspy"]
    assert main([*arguments, *QUIET]) == 2
    _assert_one_error_line(capfd.readouterr(), "--overwrite", "scan1_endmembers.png")
    assert {path: path.stat().st_mtime_ns for path in output.iterdir()} == written
    assert main([*arguments, *QUIET, "--overwrite"]) == 0
    for path, modified in written.items():
        assert path.stat().st_mtime_ns > modified
    assert (output / "scan1_ae.hspy").exists()


def test_existing_results_are_refused_before_training(tmp_path, capfd, monkeypatch):
    source = _scan(tmp_path / "scan.hspy")
    output = tmp_path / "out"
    output.mkdir()
    (output / "scan.aeunmix").write_bytes(b"last week's model")

    def refuse(*args, **kwargs):
        raise AssertionError("trained although the results could not be written")

    monkeypatch.setattr(_cli, "_train_and_save", refuse)
    assert main(["train", str(source), "-n", "3", "-o", str(output)]) == 2
    _assert_one_error_line(capfd.readouterr(), "scan.aeunmix", "--overwrite")
    assert (output / "scan.aeunmix").read_bytes() == b"last week's model"


def test_output_that_is_a_file_is_refused_before_work(tmp_path, capfd, no_work):
    source = _scan(tmp_path / "scan.hspy")
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    for output in (blocker, blocker / "sub"):
        assert main(["train", str(source), "-n", "3", "-o", str(output)]) == 2
        _assert_one_error_line(capfd.readouterr(), str(blocker))
    assert blocker.read_text() == "a file"


def test_unwritable_output_is_refused_before_work(
    tmp_path, capfd, no_work, monkeypatch
):
    from hs_aeunmix import _files

    source = _scan(tmp_path / "scan.hspy")
    real_open = _files.os.open

    def read_only(path, flags, *args):
        if flags & _files.os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(_files.os, "open", read_only)
    assert main(["train", str(source), "-n", "3", "-o", str(tmp_path / "out")]) == 2
    _assert_one_error_line(capfd.readouterr(), "Read-only file system")


def test_output_folder_is_created(tmp_path, trained_model_file):
    scan = _scan(tmp_path / "scan.hspy")
    output = tmp_path / "a" / "b" / "c"
    assert main(["apply", str(trained_model_file), str(scan), "-o", str(output)]) == 0
    assert "scan_ae.hspy" in _folder(output)


def test_every_output_is_written_atomically(tmp_path, monkeypatch):
    source = _scan(tmp_path / "scan.hspy")
    output = tmp_path / "out"
    real = _files.StagedFiles.add
    targets = []

    def recording(self, path):
        # Not the temporary file a writer (AEUnmix.save) itself writes
        # atomically: it is no output.
        if not Path(path).name.startswith(".hs_aeunmix-"):
            targets.append(Path(path))
        return real(self, path)

    # atomic_path and staged_files both write through StagedFiles.add.
    monkeypatch.setattr(_files.StagedFiles, "add", recording)
    assert (
        main(["train", str(source), "-n", "3", *FAST_TRAINING, "-o", str(output)]) == 0
    )
    assert sorted(targets) == sorted(output.iterdir())
    assert len(targets) == 6


def test_failed_write_keeps_the_earlier_results(tmp_path, trained_model_file, capfd):
    scan = _scan(tmp_path / "scan.hspy")
    output = tmp_path / "out"
    arguments = ["apply", str(trained_model_file), str(scan), "-o", str(output), *QUIET]
    assert main(arguments) == 0
    before = {path.name: path.read_bytes() for path in output.iterdir()}
    capfd.readouterr()
    real_save = hs.signals.BaseSignal.save

    def disk_full(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x89HDF half written")
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hs.signals.BaseSignal, "save", disk_full)
        assert main([*arguments, "--overwrite"]) == 1
    assert hs.signals.BaseSignal.save is real_save
    errors = _error_lines(capfd.readouterr())
    assert "No space left on device" in errors[0]
    assert {path.name: path.read_bytes() for path in output.iterdir()} == before


def test_apply_skip_existing_resumes_an_interrupted_series(
    tmp_path, trained_model_file, capfd
):
    scans = [_scan(tmp_path / f"scan{seed}.hspy", seed) for seed in (1, 2)]
    output = tmp_path / "out"
    arguments = ["apply", str(trained_model_file), "-o", str(output), *QUIET]
    assert main([*arguments, str(scans[0])]) == 0
    written = {path: path.stat().st_mtime_ns for path in output.iterdir()}
    capfd.readouterr()
    assert main([*arguments, *map(str, scans), "--skip-existing"]) == 0
    printed = capfd.readouterr()
    assert f"{scans[0]}: skipped, {output} already holds its results" in printed.out
    assert printed.out.count("unmixed in") == 1
    assert _error_lines(printed) == []
    assert {path: path.stat().st_mtime_ns for path in written} == written
    assert (output / "scan2_ae.hspy").is_file()


def test_skip_existing_with_overwrite_is_refused(capsys):
    argv = ["apply", "m.aeunmix", "s.hspy", "--skip-existing", "--overwrite"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    _assert_one_error_line(capsys.readouterr(), "--skip-existing", "--overwrite")


def test_too_long_output_names_are_refused_before_work(
    tmp_path, trained_model_file, capfd, no_work
):
    # The scan's name fits; its results' names (_uncertainty.hspy) do not.
    longest = _files.longest_name(tmp_path)
    scan = tmp_path / ("s" * (longest - len(".hspy")) + ".hspy")
    scan.write_bytes(b"")  # never read: the run is refused first
    output = tmp_path / "out"
    assert main(["apply", str(trained_model_file), str(scan), "-o", str(output)]) == 2
    _assert_one_error_line(
        capfd.readouterr(), "_ae.hspy (", f"longer than the {longest} bytes"
    )
    assert not output.exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["", "overwrite"])
def test_a_broken_link_at_an_output_is_refused_before_work(
    tmp_path, trained_model_file, capfd, no_work, overwrite
):
    scan = tmp_path / "scan.hspy"
    scan.write_bytes(b"")  # never read: the run is refused first
    output = tmp_path / "out"
    output.mkdir()
    link = output / "scan_endmembers.png"
    link.symlink_to(tmp_path / "figures" / "gone.png")
    arguments = [str(trained_model_file), str(scan), "-o", str(output)]
    assert main(["apply", *arguments, *overwrite]) == 2
    _assert_one_error_line(
        capfd.readouterr(), f"{link} is a broken symbolic link; remove it"
    )
    assert link.is_symlink()
    assert _folder(output) == ["scan_endmembers.png"]


def test_a_one_channel_scan_is_told_what_is_wrong(tmp_path, capfd):
    scan = tmp_path / "scan.hspy"
    hs.signals.Signal1D(np.ones((8, 8, 1))).save(scan)
    assert main(["train", str(scan), "-n", "1", "-o", str(tmp_path / "out")]) == 2
    line = _assert_one_error_line(capfd.readouterr(), "at least 2 channels")
    assert "Signal1D" not in line


# ------------------------------------------------------------ quick start-up
def test_choices_are_the_packages():
    from hs_aeunmix._estimator import LOSS_CHOICES
    from hs_aeunmix._networks import ABUNDANCE_CONSTRAINTS, ENCODERS
    from hs_aeunmix.presets import PRESETS

    assert tuple(ENCODERS) == front.ENCODER_CHOICES
    assert tuple(ABUNDANCE_CONSTRAINTS) == front.ABUNDANCE_CHOICES
    assert tuple(LOSS_CHOICES) == front.LOSS_CHOICES
    assert tuple(PRESETS) == front.PRESET_CHOICES


def test_defaults_named_in_the_help_are_the_estimators():
    defaults = hs_aeunmix.AEUnmix().get_params()
    assert {name: defaults[name] for name in front.ESTIMATOR_DEFAULTS} == (
        front.ESTIMATOR_DEFAULTS
    )


_IMPORT_PROBE = """
import json, sys
import hs_aeunmix_cli as cli

parser = cli.build_parser()
for argv in (["--help"], ["--version"], ["train", "scan.hspy"], ["apply", "--help"]):
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
heavy = ("torch", "hyperspy", "numpy", "matplotlib", "sklearn", "scipy", "dask")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(heavy))))
"""


def _modules_imported() -> list[str]:
    return json.loads(last_line_of_python(_IMPORT_PROBE))


def test_help_and_argument_errors_import_nothing_heavy():
    # What `hs-aeunmix --help`, `--version` and a bad argument run.
    assert _modules_imported() == []


def test_version():
    result = subprocess.run(
        [str(SCRIPT), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"hs-aeunmix {version('hs-aeunmix')}"


def test_console_script_is_installed():
    result = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("demo", "train", "apply"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["demo", "train", "apply"])
def test_every_option_says_its_default(command):
    parser = front.build_parser()
    subparser = parser._subparsers._group_actions[0].choices[command]
    for action in subparser._actions:
        plain = (argparse._HelpAction, argparse._StoreTrueAction)
        if not action.option_strings or action.required or isinstance(action, plain):
            continue  # arguments without a default, flags off unless given
        assert "default" in action.help, action.option_strings


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "scan.hspy"], "-n/--n-components"),
        (["train", "scan.hspy", "-n", "0"], "'0' is not a positive integer"),
        (["train", "scan.hspy", "-n", "3", "--threads", "0"], "--threads"),
        (["train", "scan.hspy", "-n", "3", "--encoder", "lstm"], "--encoder"),
        (["train", "scan.hspy", "-n", "3", "--seed", "-4"], "--seed"),
        (["train", "s.hspy", "-n", "3", "--signal-range", "1", "x"], "not a number"),
        (["train", "s.hspy", "-n", "3", "--signal-range", "1", "nan"], "finite"),
        (["apply", "model.aeunmix"], "files"),
        (["unmix"], "invalid choice"),
        ([], "COMMAND"),
    ],
)
def test_argument_errors_are_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    _assert_one_error_line(capsys.readouterr(), fragment)


# ------------------------------------------------------------------ options
def test_threads_limit_torch_and_blas_during_the_run(tmp_path, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    source = _scan(tmp_path / "scan.hspy")
    threads_before = torch.get_num_threads()
    real = _cli._train_and_save
    seen = {}

    def spy(*args, **kwargs):
        seen["torch"] = torch.get_num_threads()
        seen["pools"] = {pool["num_threads"] for pool in threadpool_info()}
        return real(*args, **kwargs)

    monkeypatch.setattr(_cli, "_train_and_save", spy)
    arguments = ["train", str(source), "-n", "3", *FAST_TRAINING, "--threads", "1"]
    assert main([*arguments, "-o", str(tmp_path / "out")]) == 0
    assert seen == {"torch": 1, "pools": {1}}
    assert torch.get_num_threads() == threads_before


def test_signal_range_crops_before_training(tmp_path):
    source = _scan(tmp_path / "scan.hspy")  # 280 to 329.5 eV, 0.5 eV channels
    output = tmp_path / "out"
    arguments = ["train", str(source), "-n", "3", *FAST_TRAINING, "-o", str(output)]
    assert main([*arguments, "--signal-range", "290", "310"]) == 0
    results = hs.load(output / "scan_ae.hspy")
    axis = results.axes_manager.signal_axes[0]
    assert (axis.size, axis.offset) == (40, 290.0)
    assert results.learning_results.factors.shape == (40, 3)
    calibration = load_model(output / "scan.aeunmix").signal_calibration_
    np.testing.assert_allclose(calibration.values[[0, -1]], [290.0, 309.5])


@pytest.mark.parametrize(
    ("signal_range", "fragment"),
    [
        (("400", "500"), "outside the signal axis (280 to 329.5 eV)"),
        (("310", "300"), "START"),
    ],
)
def test_signal_range_errors(tmp_path, capfd, signal_range, fragment):
    source = _scan(tmp_path / "scan.hspy")
    arguments = ["train", str(source), "-n", "3", "-o", str(tmp_path / "out")]
    assert main([*arguments, "--signal-range", *signal_range]) == 2
    _assert_one_error_line(capfd.readouterr(), fragment)


@pytest.fixture
def lazy_loads(monkeypatch):
    """Whether each scan the command loads is lazy, in order."""
    real_load = hs.load
    loads = []

    def recording_load(*args, **kwargs):
        signal = real_load(*args, **kwargs)
        loads.append(signal._lazy)
        return signal

    monkeypatch.setattr(hs, "load", recording_load)
    return loads


def test_lazy_training_reads_the_scan_lazily_and_equals_training_in_memory(
    tmp_path, lazy_loads
):
    scan = _scan(tmp_path / "scan.hspy")
    for name, extra in (("eager", []), ("lazy", ["--lazy"])):
        output = str(tmp_path / name)
        # Per pixel both: in memory, spatial="auto" would add the layer
        # that lazy chunks cannot use.
        arguments = [str(scan), "-n", "3", "-o", output, "--max-epochs", "3"]
        arguments.append("--no-spatial")
        assert main(["train", *arguments, *QUIET, *extra]) == 0
    assert lazy_loads == [False, True]
    eager, lazy = (
        hs.load(tmp_path / name / "scan_ae.hspy").learning_results
        for name in ("eager", "lazy")
    )
    # A scan of one chunk streams its spectra in order: the same training.
    np.testing.assert_allclose(lazy.factors, eager.factors, rtol=1e-6)
    np.testing.assert_allclose(lazy.loadings, eager.loadings, rtol=1e-6, atol=1e-9)


def test_lazy_apply_unmixes_chunk_by_chunk(tmp_path, trained_model_file, lazy_loads):
    scan = _scan(tmp_path / "scan.hspy")
    for name, extra in (("eager", []), ("lazy", ["--lazy"])):
        output = str(tmp_path / name)
        arguments = [str(trained_model_file), str(scan), "-o", output, *QUIET]
        assert main(["apply", *arguments, *extra]) == 0
    assert lazy_loads == [False, True]
    eager, lazy = (
        hs.load(tmp_path / name / "scan_ae.hspy").learning_results
        for name in ("eager", "lazy")
    )
    # The model's layer refines the scan in memory; lazy chunks hold no
    # neighbours and get each pixel's own fractions.
    model = load_model(trained_model_file)
    spectra = hs.load(scan).data.reshape(-1, 100)
    np.testing.assert_allclose(
        eager.loadings, model.transform(spectra, image_shape=(16, 16)), rtol=1e-6
    )
    np.testing.assert_allclose(
        lazy.loadings, model.transform(spectra), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_array_equal(lazy.factors, eager.factors)


# ----------------------------------------------------------------- Ctrl-C
def test_ctrl_c_during_training_saves_the_best_model(
    tmp_path, capfd, ctrl_c_at_the_second_epoch
):
    source = _scan(tmp_path / "scan.hspy")
    output = tmp_path / "out"
    arguments = ["train", str(source), "-n", "3", "--no-progressbar", "-o", str(output)]
    assert main(arguments) == 0
    captured = capfd.readouterr()
    interrupted = [line for line in _error_lines(captured) if "interrupted" in line]
    assert len(interrupted) == 1
    assert interrupted[0].startswith("hs-aeunmix: training was interrupted")
    assert "best model so far was saved" in interrupted[0]
    assert "wrote" in captured.out
    model = load_model(output / "scan.aeunmix")
    assert model.history_.interrupted
    assert model.n_iter_ == 1
    results = hs.load(output / "scan_ae.hspy")
    np.testing.assert_array_equal(
        results.learning_results.loadings,
        model.transform(results.data.reshape(-1, 100), image_shape=(16, 16)),
    )
    assert len(_folder(output)) == 6


def test_ctrl_c_outside_training_stops_cleanly(tmp_path, capfd, monkeypatch):
    source = _scan(tmp_path / "scan.hspy")

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_jobs, "load_single_signal", ctrl_c)
    output = tmp_path / "out"
    assert main(["train", str(source), "-n", "3", "-o", str(output)]) == 130
    _assert_one_error_line(capfd.readouterr(), "interrupted")
    assert _folder(output) == []


# ------------------------------------------------------------------ errors
def test_apply_with_a_corrupt_model(tmp_path, capfd):
    model = tmp_path / "broken.aeunmix"
    model.write_bytes(b"not a model at all")
    scan = _scan(tmp_path / "scan.hspy")
    assert main(["apply", str(model), str(scan), "-o", str(tmp_path / "out")]) == 2
    _assert_one_error_line(
        capfd.readouterr(), "broken.aeunmix is not an hs_aeunmix model"
    )


def test_corrupt_model_is_one_line_from_the_console_script(tmp_path):
    model = tmp_path / "broken.aeunmix"
    model.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    scan = tmp_path / "scan.hspy"
    scan.write_bytes(b"not read")
    result = subprocess.run(
        [str(SCRIPT), "apply", str(model), str(scan), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hs-aeunmix: {model} is not an hs_aeunmix model")


def test_unreadable_scan_is_one_line_from_the_console_script(tmp_path):
    # In a fresh process HyperSpy's log reaches stderr (under pytest it goes
    # to the log capture): its error records must not add lines.
    source = tmp_path / "scan.hspy"
    source.write_text("not HDF5")
    result = subprocess.run(
        [str(SCRIPT), "train", str(source), "-n", "3", "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hs-aeunmix: cannot read {source}: ")


def test_missing_model(tmp_path, capfd, no_work):
    scan = _scan(tmp_path / "scan.hspy")
    arguments = [str(tmp_path / "absent.aeunmix"), str(scan), "-o", str(tmp_path)]
    assert main(["apply", *arguments]) == 2
    _assert_one_error_line(capfd.readouterr(), "no model file at")


def test_train_reports_bad_input_without_traceback(tmp_path, capfd):
    source = _scan(tmp_path / "scan.hspy")
    output = str(tmp_path / "out")
    assert main(["train", str(source), "-n", "500", *QUIET, "-o", output]) == 2
    _assert_one_error_line(capfd.readouterr(), "n_components=500 must be between 1")


def test_train_on_an_unreadable_file(tmp_path, capfd):
    source = tmp_path / "scan.hspy"
    source.write_text("not HDF5")
    assert main(["train", str(source), "-n", "3", "-o", str(tmp_path / "out")]) == 2
    _assert_one_error_line(capfd.readouterr(), f"cannot read {source}: ")


def test_train_missing_file(tmp_path, capfd, no_work):
    absent = tmp_path / "absent.hspy"
    assert main(["train", str(absent), "-n", "3", "-o", str(tmp_path / "o")]) == 2
    _assert_one_error_line(capfd.readouterr(), f"no such file: {absent}")
    assert not (tmp_path / "o").exists()


def test_verbose_shows_the_traceback(tmp_path, capfd):
    source = tmp_path / "scan.hspy"
    source.write_text("not HDF5")
    output = str(tmp_path / "out")
    assert main(["train", str(source), "-n", "3", "-o", output, "-v"]) == 2
    assert "Traceback" in capfd.readouterr().err
