"""Tests of the hs-aeunmix command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hyperspy.api as hs
import numpy as np
from conftest import make_mixture, to_signal

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
    assert "demo" in result.stdout
    assert "train" in result.stdout
