"""Tests of the hs-aeunmix command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import make_mixture, to_signal, train_through_hyperspy

from hs_aeunmix import load_model
from hs_aeunmix._cli import main


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
    ):
        assert (tmp_path / name).stat().st_size > 0
    results = hs.load(tmp_path / "eels_chequerboard_ae.hspy")
    assert results.learning_results.factors.shape == (200, 3)


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
        model.transform(signal.data.reshape(-1, 100)),
        reloaded.learning_results.loadings,
    )


@pytest.fixture
def trained_model_file(tmp_path):
    signal = to_signal(make_mixture(shape=(16, 16)))
    return train_through_hyperspy(signal).save(tmp_path / "series.aeunmix")


def _later_scans(tmp_path, count):
    paths = []
    for seed in range(1, count + 1):
        path = tmp_path / "scans" / f"scan{seed}.hspy"
        path.parent.mkdir(exist_ok=True)
        to_signal(make_mixture(shape=(16, 16), seed=seed)).save(path)
        paths.append(path)
    return paths


def test_apply_over_two_files(tmp_path, trained_model_file, capsys):
    scans = _later_scans(tmp_path, 2)
    output = tmp_path / "maps"
    code = main(["apply", str(trained_model_file), *map(str, scans), "-o", str(output)])
    assert code == 0
    printed = capsys.readouterr()
    assert "Unmixing scans" in printed.err  # the progress bar over files
    model = load_model(trained_model_file)
    for scan in scans:
        results = hs.load(output / f"{scan.stem}_ae.hspy")
        assert results.learning_results.decomposition_algorithm == "ae"
        np.testing.assert_array_equal(
            results.learning_results.loadings,
            model.transform(results.data.reshape(-1, 100)),
        )
        assert (output / f"{scan.stem}_abundances.png").stat().st_size > 0
        assert (output / f"{scan.stem}_endmembers.png").stat().st_size > 0
        assert "unmixed in" in printed.out


def test_apply_reports_a_bad_scan_and_goes_on(tmp_path, trained_model_file, capsys):
    good, cropped = _later_scans(tmp_path, 2)
    signal = hs.load(cropped)
    signal.isig[:50].save(cropped, overwrite=True)
    code = main(
        [
            "apply",
            str(trained_model_file),
            str(cropped),
            str(good),
            "--no-progressbar",
        ]
    )
    assert code == 1
    errors = capsys.readouterr().err
    assert f"{cropped}: This signal's axis (50 channels" in errors
    assert "1 of 2 scans failed" in errors
    assert (good.parent / "scan1_ae.hspy").exists()


def test_apply_with_a_corrupt_model(tmp_path, capsys):
    model = tmp_path / "broken.aeunmix"
    model.write_bytes(b"not a model at all")
    scans = _later_scans(tmp_path, 1)
    assert main(["apply", str(model), str(scans[0])]) == 2
    assert "broken.aeunmix is not an hs_aeunmix model" in capsys.readouterr().err


def test_train_reports_bad_input_without_traceback(tmp_path, capsys):
    signal = to_signal(make_mixture(shape=(16, 16)))
    source = tmp_path / "scan.hspy"
    signal.save(source)
    assert main(["train", str(source), "-n", "500", "--no-progressbar"]) == 2
    assert "n_components=500 must be between 1" in capsys.readouterr().err


def test_train_missing_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "absent.hspy"), "-n", "3"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hs-aeunmix"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("demo", "train", "apply"):
        assert command in result.stdout


def test_train_options_reach_the_model(tmp_path):
    signal = to_signal(make_mixture(shape=(16, 16)))
    source = tmp_path / "scan.hspy"
    signal.save(source)
    arguments = ["train", str(source), "-n", "3", "--no-progressbar"]
    options = ["--preset", "daeu", "--max-epochs", "2", "--spatial"]
    assert main([*arguments, *options]) == 0
    model = load_model(tmp_path / "scan.aeunmix")
    assert (model.abundance, model.max_epochs, model.spatial) == (
        "thresholded_sum_to_one",
        2,
        True,
    )
    # Options left out keep the estimator's defaults.
    assert main([*arguments, "-o", str(tmp_path / "plain")]) == 0
    plain = load_model(tmp_path / "plain" / "scan.aeunmix")
    assert (plain.loss, plain.max_epochs, plain.spatial) == ("auto", 100, False)
