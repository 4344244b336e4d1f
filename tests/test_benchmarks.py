"""Smoke test: the benchmark script runs end to end on a tiny case."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_table_and_figure(benchmark, tmp_path, capsys):
    code = benchmark.main(
        [
            "--cases",
            "eels3_tiny",
            "--methods",
            "ae",
            "VCA+FCLS",
            "--seeds",
            "2",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    table = (tmp_path / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| eels3_tiny")]
    assert [row.split("|")[2].strip() for row in rows] == ["ae", "VCA+FCLS"]
    for row in rows:
        angle = float(row.split("|")[3].split("±")[0])
        assert 0 <= angle < 0.3
    assert (tmp_path / "endmembers_eels3_tiny.png").stat().st_size > 0
    assert "| case | method |" in capsys.readouterr().out


def test_samson_reader_keeps_fortran_pixel_order(benchmark):
    import scipy.io

    signal, truth = benchmark.CASES["samson"](0)
    raw = scipy.io.loadmat(benchmark.SAMSON)["Y"]
    assert signal.data.shape == (95, 95, 156)
    assert truth.endmembers.shape == (3, 156)
    assert truth.abundances.shape == (95, 95, 3)
    # Pixel p is column p of Y, at row p % 95 and column p // 95 of the image.
    for pixel in (0, 1, 95, 9024):
        np.testing.assert_array_equal(
            signal.data[pixel % 95, pixel // 95], raw[:, pixel]
        )
