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


# ------------------------------------------- directions above the noise
def _noise_and_direction(variance, n_spectra=4000, n_channels=100, seed=0):
    """White unit noise plus one direction of variation of ``variance``."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(n_channels)
    direction /= np.linalg.norm(direction)
    weights = np.sqrt(variance) * rng.standard_normal((n_spectra, 1))
    return 50.0 + weights * direction + rng.standard_normal((n_spectra, n_channels))


@pytest.mark.parametrize("beta", [0.05, 0.5, 1.0])
def test_marchenko_pastur_median_is_that_of_random_matrices(beta):
    rng = np.random.default_rng(0)
    n_channels = 400
    n_spectra = int(n_channels / beta)
    noise = rng.standard_normal((n_spectra, n_channels))
    eigenvalues = np.linalg.eigvalsh(noise.T @ noise / n_spectra)
    expected = _subspace.marchenko_pastur_median(beta)
    assert np.median(eigenvalues) == pytest.approx(expected, rel=0.02)


def test_pure_noise_has_no_direction_above_the_noise():
    spectra = _noise_and_direction(0.0)
    eigenvalues = _subspace.centred_eigenvalues(spectra)
    assert _subspace.directions_above_noise(eigenvalues, *spectra.shape) == 0


@pytest.mark.parametrize(
    ("variance", "directions"),
    [
        # Eigenvalue about 2.05: 1.5 times the white-noise edge (1.34 at
        # beta = 0.025), where noise that is not white also reaches.
        (1.0, 0),
        # Eigenvalue about 4.0: three times the edge.
        (3.0, 1),
    ],
)
def test_a_direction_counts_beyond_twice_the_noise_edge(variance, directions):
    spectra = _noise_and_direction(variance)
    eigenvalues = _subspace.centred_eigenvalues(spectra)
    assert _subspace.directions_above_noise(eigenvalues, *spectra.shape) == directions


def test_directions_from_moments_and_from_few_spectra_agree():
    # Fewer spectra than channels take the exact SVD, more take the moments:
    # both are the eigenvalues of the centred spectra.
    wide = _noise_and_direction(30.0, n_spectra=80, n_channels=100)
    tall = np.vstack([wide, wide + 0.0])
    few = _subspace.centred_eigenvalues(wide)
    many = _subspace.centred_eigenvalues(tall)
    assert len(few) == 79
    assert len(many) == 100
    np.testing.assert_allclose(2 * few, many[:79], rtol=1e-8)
    assert _subspace.directions_above_noise(few, *wide.shape) == 1


def test_removed_directions_leave_no_eigenvalue():
    spectra = _noise_and_direction(0.0, n_spectra=500, n_channels=60)
    remove = np.linalg.qr(np.random.default_rng(1).standard_normal((60, 3)))[0]
    eigenvalues = _subspace.centred_eigenvalues(spectra, remove=remove)
    assert len(eigenvalues) == 57
    assert eigenvalues.min() > 0.5  # the three removed (zero) ones are dropped
