"""The sample a lazy scan is trained on (``_adapters._Reservoir``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hs_aeunmix._adapters import _Reservoir


def _stream(reservoir: _Reservoir, n_rows: int, chunk: int) -> None:
    """Offer rows 0..n_rows-1 (each row holds its own index) in chunks."""
    for start in range(0, n_rows, chunk):
        rows = np.arange(start, min(start + chunk, n_rows), dtype=float)[:, None]
        reservoir.add(rows)


@pytest.mark.parametrize(("n_rows", "chunk"), [(50, 7), (1000, 1), (1000, 999)])
def test_a_stream_shorter_or_longer_than_the_capacity(n_rows, chunk):
    reservoir = _Reservoir(100, seed=0)
    _stream(reservoir, n_rows, chunk)
    kept = reservoir.sample()[:, 0]
    assert reservoir.seen == n_rows
    assert len(kept) == min(100, n_rows)
    assert len(np.unique(kept)) == len(kept)  # no row kept twice
    assert set(kept) <= set(range(n_rows))
    if n_rows <= 100:
        assert sorted(kept) == list(range(n_rows))


def test_memory_is_the_capacity_whatever_the_stream():
    reservoir = _Reservoir(64, seed=0)
    _stream(reservoir, 10_000, 333)
    first = reservoir.rows
    _stream(reservoir, 10_000, 1000)
    assert reservoir.rows is first  # replaced in place, never grown
    assert reservoir.rows.shape == (64, 1)


def test_every_row_has_the_same_chance_to_be_kept():
    """Over many seeds, how often each position of the stream is kept is flat.

    Chunks of different sizes, the first one filling the reservoir: a
    sampler that favoured the first rows, the last chunk or large chunks
    fails the chi-square test.
    """
    n_rows, capacity, n_seeds = 200, 20, 400
    chunks = [30, 5, 80, 1, 84]
    counts = np.zeros(n_rows)
    for seed in range(n_seeds):
        reservoir = _Reservoir(capacity, seed=seed)
        start = 0
        for size in chunks:
            reservoir.add(np.arange(start, start + size, dtype=float)[:, None])
            start += size
        counts[reservoir.sample()[:, 0].astype(int)] += 1
    expected = n_seeds * capacity / n_rows
    assert counts.sum() == n_seeds * capacity
    assert stats.chisquare(counts, np.full(n_rows, expected)).pvalue > 0.001
    # The first chunk (which filled the reservoir) is not favoured.
    assert counts[:30].mean() == pytest.approx(expected, rel=0.15)
    assert counts[-84:].mean() == pytest.approx(expected, rel=0.15)


def test_a_seed_gives_the_same_sample():
    samples = []
    for _ in range(2):
        reservoir = _Reservoir(10, seed=3)
        _stream(reservoir, 500, 37)
        samples.append(reservoir.sample().copy())
    np.testing.assert_array_equal(*samples)


def test_nothing_seen_is_an_empty_scan():
    with pytest.raises(ValueError, match="No spectra were seen: the scan is empty"):
        _Reservoir(10).sample()


def test_float64_chunks_are_kept_in_the_precision_asked_for():
    reservoir = _Reservoir(10, seed=0, dtype=np.float32)
    reservoir.add(np.arange(40.0).reshape(20, 2))
    assert reservoir.sample().dtype == np.float32
    np.testing.assert_array_equal(reservoir.sample() % 2, [[0, 1]] * 10)


def test_values_beyond_float32_widen_the_sample_to_float64():
    reservoir = _Reservoir(4, seed=0, dtype=np.float32)
    reservoir.add(np.ones((4, 3)))
    reservoir.add(np.full((50, 3), 1e300))
    sample = reservoir.sample()
    assert sample.dtype == np.float64
    assert set(np.unique(sample)) <= {1.0, 1e300}
    assert (sample == 1e300).any()  # kept exactly, not as inf
