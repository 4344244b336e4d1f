"""Smoke test: the benchmark script runs end to end on a tiny case."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
        ["--cases", "eels3_tiny", "--methods", "ae", "VCA+FCLS", "--seeds", "2",
         "--output", str(tmp_path)]
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


def test_samson_reader_matches_reference_abundances(benchmark):
    # With the right (Fortran) pixel order, NNLS on the reference endmembers
    # reproduces the reference abundances closely.
    from hs_aeunmix._vca import nonnegative_least_squares

    signal, truth = benchmark.CASES["samson"](0)
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    estimated = nonnegative_least_squares(spectra, truth.endmembers)
    error = estimated - truth.abundances.reshape(-1, 3)
    assert float((error**2).mean() ** 0.5) < 0.01
