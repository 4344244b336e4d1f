"""Principal axes accumulated over blocks against a direct SVD."""

from __future__ import annotations

import numpy as np
import pytest

from hs_aeunmix import _subspace
from hs_aeunmix._subspace import moments, principal_axes


def spectra_of_rank(n_spectra, n_channels, rank, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.random((n_spectra, rank)) * [10.0, 4.0, 1.0][:rank]
    return scores @ rng.random((rank, n_channels)) + 0.01 * rng.standard_normal(
        (n_spectra, n_channels)
    )


def direct(spectra, k, centre):
    values = spectra.astype(np.float64)
    mean = values.mean(axis=0) if centre else np.zeros(values.shape[1])
    _, singular, right = np.linalg.svd(values - mean, full_matrices=False)
    return mean, singular[:k], right[:k]


@pytest.mark.parametrize("centre", [True, False])
@pytest.mark.parametrize("n_spectra", [30, 300], ids=["fewer spectra", "more spectra"])
def test_axes_are_those_of_the_svd(monkeypatch, centre, n_spectra):
    monkeypatch.setattr(_subspace, "_BLOCK_ROWS", 64)  # several blocks
    spectra = spectra_of_rank(n_spectra, 50, 3).astype(np.float32)
    before = spectra.copy()
    result = principal_axes(spectra, 3, centre=centre)
    np.testing.assert_array_equal(spectra, before)
    mean, singular, right = direct(spectra, 3, centre)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.singular, singular, rtol=1e-9)
    # Same axes up to sign; the scores are the spectra's coordinates.
    np.testing.assert_allclose(np.abs(result.axes @ right.T), np.eye(3), atol=1e-7)
    np.testing.assert_allclose(
        result.scores, (spectra - mean) @ result.axes.T, rtol=1e-9, atol=1e-9
    )
    # Oriented: the farthest spectrum along each axis is on its positive side.
    farthest = np.abs(result.scores).argmax(axis=0)
    assert (result.scores[farthest, [0, 1, 2]] > 0).all()


def test_removed_directions_are_projected_out_first():
    spectra = spectra_of_rank(200, 40, 3)
    remove, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((40, 2)))
    result = principal_axes(spectra, 3, remove=remove)
    _, singular, right = direct(spectra - (spectra @ remove) @ remove.T, 3, True)
    np.testing.assert_allclose(result.singular, singular, rtol=1e-9)
    np.testing.assert_allclose(np.abs(result.axes @ right.T), np.eye(3), atol=1e-7)
    np.testing.assert_allclose(result.axes @ remove, 0.0, atol=1e-10)


def test_one_pass_of_moments_serves_both_centred_and_uncentred_axes():
    spectra = spectra_of_rank(200, 40, 3)
    sums = moments(spectra)
    for centre in (True, False):
        shared = principal_axes(spectra, 3, centre=centre, from_moments=sums)
        alone = principal_axes(spectra, 3, centre=centre)
        np.testing.assert_array_equal(shared.axes, alone.axes)
        np.testing.assert_array_equal(shared.scores, alone.scores)
