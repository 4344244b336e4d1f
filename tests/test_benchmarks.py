"""Smoke test: the benchmark script runs end to end on a tiny case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def benchmark_run():
    spec = importlib.util.spec_from_file_location("benchmark_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_table_and_figure(benchmark_run, tmp_path, capsys):
    code = benchmark_run.main(
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


def test_samson_reader_keeps_fortran_pixel_order(benchmark_run):
    import scipy.io

    signal, truth = benchmark_run.CASES["samson"](0)
    raw = scipy.io.loadmat(benchmark_run.SAMSON)["Y"]
    assert signal.data.shape == (95, 95, 156)
    assert truth.endmembers.shape == (3, 156)
    assert truth.abundances.shape == (95, 95, 3)
    # Pixel p is column p of Y, at row p % 95 and column p // 95 of the image.
    for pixel in (0, 1, 95, 9024):
        np.testing.assert_array_equal(
            signal.data[pixel % 95, pixel // 95], raw[:, pixel]
        )


def test_samson_reference_fractions_are_nnls_on_reference_endmembers(benchmark_run):
    from hs_aeunmix._vca import nonnegative_least_squares
    from hs_aeunmix.metrics import abundance_rmse, fractions_on_reference_scale

    signal, truth = benchmark_run.CASES["samson"](0)
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    raw = nonnegative_least_squares(spectra, truth.endmembers)
    flat_truth = truth.abundances.reshape(-1, 3)
    # Y and GT are max-normalised separately, so the raw abundances are not
    # fractions: scoring them as such is what made Samson look unalignable.
    assert abundance_rmse(raw, flat_truth) > 0.3
    sums = raw.sum(axis=1, keepdims=True)
    assert sums.min() > 0
    assert abundance_rmse(raw / sums, flat_truth) < 0.005
    # The benchmark's convention gives the same fractions whatever scale a
    # method leaves in its endmembers.
    scales = np.array([40.0, 0.2, 3.0])
    fractions = fractions_on_reference_scale(
        truth.endmembers[::-1] * scales[:, None],
        raw[:, ::-1] / scales,
        truth.endmembers,
    )
    np.testing.assert_allclose(fractions, raw / sums, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def subgroups():
    path = SCRIPT.parent / "subgroups.py"
    spec = importlib.util.spec_from_file_location("benchmark_subgroups", path)
    module = importlib.util.module_from_spec(spec)
    # subgroups.py imports its neighbour family.py.
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_paired_evidence_counts_scenes_and_resamples(subgroups):
    default = np.array([0.10, 0.20, 0.30, 0.40, 0.50])
    # Better by more than the margin on every scene: every resample agrees.
    assert subgroups.paired_evidence(default - 0.05, default, np.median) == (
        "better on 5, worse on 0; holds in 100% of resamples"
    )
    # Ahead by less than the margin: no scene counts, the statistic still does.
    assert subgroups.paired_evidence(default - 0.005, default, np.median) == (
        "better on 0, worse on 0; holds in 100% of resamples"
    )
    # Worse on every scene: no resample puts the peer ahead.
    assert subgroups.paired_evidence(default + 0.05, default, np.median) == (
        "better on 0, worse on 5; holds in 0% of resamples"
    )
    # One scene much better, four slightly worse: the median's lead is lost in
    # most resamples, however the 90th percentile falls.
    peer = default + np.array([-0.3, 0.02, 0.02, 0.02, 0.02])
    evidence = subgroups.paired_evidence(peer, default, np.median)
    assert evidence.startswith("better on 1, worse on 4; holds in ")
    assert int(evidence.split("holds in ")[1].split("%")[0]) < 50
