"""Tests of the unmixing scores against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hs_aeunmix.datasets import GroundTruth
from hs_aeunmix.metrics import (
    abundance_entropy,
    abundance_nmse,
    abundance_rmse,
    gradient_energy,
    match_endmembers,
    mean_spectral_angle,
    pixelwise_abundance_variance,
    reconstruction_error,
    spectral_angle,
    spectral_angles,
    unmixing_scores,
)


@pytest.fixture
def endmembers() -> np.ndarray:
    channels = np.linspace(0, 1, 50)
    return np.stack(
        [
            1.0 + np.exp(-(((channels - 0.2) / 0.05) ** 2)),
            1.0 + np.exp(-(((channels - 0.5) / 0.05) ** 2)),
            1.0 + np.exp(-(((channels - 0.8) / 0.05) ** 2)),
        ]
    )


@pytest.fixture
def abundances() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.dirichlet(np.ones(3), size=(6, 5))


# --------------------------------------------------------------------------
# Spectral angle and matching
# --------------------------------------------------------------------------


def test_spectral_angle_of_identical_and_scaled_vectors_is_zero():
    spectrum = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    assert spectral_angle(spectrum, spectrum) == 0.0
    assert spectral_angle(7.5 * spectrum, spectrum) == pytest.approx(0.0, abs=1e-15)


def test_spectral_angle_known_values():
    assert spectral_angle([1, 0], [0, 2]) == pytest.approx(math.pi / 2)
    assert spectral_angle([1, 0], [1, 1]) == pytest.approx(math.pi / 4)
    assert spectral_angle([1, 0], [-1, 0]) == pytest.approx(math.pi)
    assert spectral_angle([1, 0], [1, 1], degrees=True) == pytest.approx(45.0)
    assert isinstance(spectral_angle([1, 0], [0, 1]), float)


def test_spectral_angle_row_wise():
    estimated = np.array([[1.0, 0.0], [1.0, 1.0]])
    reference = np.array([[0.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(
        spectral_angle(estimated, reference), [math.pi / 2, 0.0], atol=1e-15
    )


def test_spectral_angle_zero_vector_is_nan():
    assert math.isnan(spectral_angle([0.0, 0.0], [1.0, 2.0]))


def test_spectral_angle_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="same number of channels"):
        spectral_angle(np.ones(3), np.ones(4))


def test_match_endmembers_recovers_permutation(endmembers):
    permutation = np.array([2, 0, 1])
    estimated = endmembers[permutation] * np.array([[2.0], [0.5], [3.0]])
    order = match_endmembers(estimated, endmembers)
    np.testing.assert_array_equal(order, np.argsort(permutation))
    np.testing.assert_allclose(spectral_angles(estimated, endmembers), 0, atol=1e-12)


def test_match_endmembers_with_extra_estimates(endmembers):
    rng = np.random.default_rng(1)
    distractor = rng.uniform(0.5, 1.5, (1, endmembers.shape[1]))
    estimated = np.vstack([distractor, endmembers[::-1]])
    order = match_endmembers(estimated, endmembers)
    np.testing.assert_array_equal(order, [3, 2, 1])


def test_match_endmembers_validation(endmembers):
    with pytest.raises(ValueError, match="at least as many estimates"):
        match_endmembers(endmembers[:2], endmembers)
    with pytest.raises(ValueError, match="same number of channels"):
        match_endmembers(endmembers[:, :-1], endmembers)
    with pytest.raises(ValueError, match="2-D"):
        match_endmembers(endmembers[0], endmembers)


def test_mean_spectral_angle_hand_computed():
    reference = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # Estimates swapped and each tilted by a known angle.
    estimated = np.array([[0.0, 1.0, math.tan(0.2)], [1.0, 0.0, math.tan(0.1)]])
    np.testing.assert_allclose(spectral_angles(estimated, reference), [0.1, 0.2])
    assert mean_spectral_angle(estimated, reference) == pytest.approx(0.15)
    assert mean_spectral_angle(estimated, reference, degrees=True) == pytest.approx(
        math.degrees(0.15)
    )


# --------------------------------------------------------------------------
# Abundance errors
# --------------------------------------------------------------------------


def test_abundance_rmse_and_nmse_hand_computed():
    reference = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.25, 0.75]])
    estimated = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.25, 0.75]])
    squared = (estimated - reference) ** 2
    assert abundance_rmse(estimated, reference) == pytest.approx(
        math.sqrt(squared.mean())
    )
    expected_nmse = squared.sum(axis=0) / (reference**2).sum(axis=0)
    np.testing.assert_allclose(
        abundance_nmse(estimated, reference, per_endmember=True), expected_nmse
    )
    assert abundance_nmse(estimated, reference) == pytest.approx(expected_nmse.mean())
    # 0.01 + 0.04 over 1 + 0.25 + 0.0625 for the first map.
    assert expected_nmse[0] == pytest.approx(0.05 / 1.3125)


def test_abundance_scores_use_order(abundances):
    permutation = np.array([1, 2, 0])
    order = np.argsort(permutation)
    shuffled = abundances[..., permutation]
    assert abundance_rmse(shuffled, abundances, order=order) == 0.0
    assert abundance_nmse(shuffled, abundances, order=order) == 0.0
    assert abundance_rmse(shuffled, abundances) > 0.1


def test_abundance_scale_fit_removes_per_endmember_factors(abundances):
    scaled = abundances * np.array([3.0, 0.2, 7.0])
    assert abundance_rmse(scaled, abundances, scale="none") > 0.5
    assert abundance_rmse(scaled, abundances, scale="fit") == pytest.approx(
        0.0, abs=1e-12
    )
    assert abundance_nmse(scaled, abundances, scale="fit") == pytest.approx(
        0.0, abs=1e-12
    )


def test_abundance_scale_sum_to_one(abundances):
    intensity = np.linspace(0.5, 2.0, abundances[..., 0].size).reshape(6, 5)
    loadings = abundances * intensity[..., None]
    assert abundance_rmse(loadings, abundances, scale="sum_to_one") == pytest.approx(
        0.0, abs=1e-12
    )
    # A common factor is not enough for "fit" when the intensity varies.
    assert abundance_rmse(loadings, abundances, scale="fit") > 1e-3


def test_abundance_scores_ignore_nan_pixels(abundances):
    estimated = abundances.copy()
    estimated[0, 0] = np.nan
    estimated[1, 1] += 0.1
    flat = abundances.reshape(-1, 3)
    keep = np.ones(len(flat), dtype=bool)
    keep[0] = False
    expected = np.sqrt(np.mean((estimated.reshape(-1, 3)[keep] - flat[keep]) ** 2))
    assert abundance_rmse(estimated, abundances) == pytest.approx(expected)


def test_abundance_scores_accept_flattened_estimates(abundances):
    flat = abundances.reshape(-1, 3)
    assert abundance_rmse(flat, abundances) == 0.0


def test_abundance_validation(abundances):
    with pytest.raises(ValueError, match="scale must be one of"):
        abundance_rmse(abundances, abundances, scale="max")
    with pytest.raises(ValueError, match=r"same number of\s+pixels"):
        abundance_rmse(abundances[:2], abundances)
    with pytest.raises(ValueError, match="pass order"):
        abundance_nmse(np.dstack([abundances, abundances]), abundances)
    with pytest.raises(ValueError, match="order must not repeat"):
        abundance_rmse(abundances, abundances, order=np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="order indices must lie"):
        abundance_rmse(abundances, abundances, order=np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"at least one\s+navigation axis"):
        abundance_rmse(np.ones(3), np.ones(3))


# --------------------------------------------------------------------------
# Reconstruction
# --------------------------------------------------------------------------


def test_reconstruction_error(endmembers, abundances):
    data = abundances @ endmembers
    assert reconstruction_error(data, endmembers, abundances) == 0.0
    shifted = data + 0.5
    assert reconstruction_error(shifted, endmembers, abundances) == pytest.approx(0.5)
    assert reconstruction_error(
        shifted, endmembers, abundances, relative=True
    ) == pytest.approx(
        np.linalg.norm(np.full(data.shape, 0.5)) / np.linalg.norm(shifted)
    )
    with pytest.raises(ValueError, match="channels"):
        reconstruction_error(data[..., :-1], endmembers, abundances)
    with pytest.raises(ValueError, match="pixels"):
        reconstruction_error(data[:2], endmembers, abundances)


# --------------------------------------------------------------------------
# Spatial metrics
# --------------------------------------------------------------------------


def test_pixelwise_abundance_variance_hand_computed():
    maps = np.zeros((1, 2, 2))
    maps[0, 0] = [1.0, 0.0]  # variance 0.25
    maps[0, 1] = [0.5, 0.5]  # variance 0
    assert pixelwise_abundance_variance(maps) == pytest.approx(0.125)


def test_abundance_entropy_hand_computed():
    # Half of the values in each of two bins: entropy log 2.
    maps = np.array([[[0.0, 1.0], [1.0, 0.0]]])
    assert abundance_entropy(maps, bins=10) == pytest.approx(math.log(2))
    # Uniform over four bins: log 4.
    values = np.array([0.1, 0.35, 0.6, 0.85]).reshape(1, 2, 2)
    assert abundance_entropy(values, bins=4, value_range=(0, 1)) == pytest.approx(
        math.log(4)
    )
    assert abundance_entropy(np.full((2, 2, 2), 0.5)) == 0.0
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        abundance_entropy(maps, bins=0)


def test_gradient_energy_hand_computed():
    ramp = np.tile(np.arange(4.0), (3, 1))  # d/dx = 1, d/dy = 0
    maps = np.stack([ramp, 2 * ramp], axis=-1)
    # Mean over the two maps of 1 and 4.
    assert gradient_energy(maps) == pytest.approx(2.5)
    assert gradient_energy(maps, spacing=2.0) == pytest.approx(2.5 / 4)
    assert gradient_energy(np.ones((4, 4, 2))) == 0.0
    with pytest.raises(ValueError, match=r"\(ny, nx, n_endmembers\)"):
        gradient_energy(np.ones((4, 4)))


# --------------------------------------------------------------------------
# One-call scores
# --------------------------------------------------------------------------


def test_unmixing_scores(endmembers, abundances):
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=("a", "b", "c"),
        noiseless=abundances @ endmembers,
    )
    permutation = np.array([2, 0, 1])
    scores = unmixing_scores(
        endmembers[permutation] * 4.0, abundances[..., permutation] / 4.0, truth
    )
    assert scores["order"] == [1, 2, 0]
    assert scores["mean_sad_rad"] == pytest.approx(0.0, abs=1e-12)
    assert set(scores["sad_rad"]) == {"a", "b", "c"}
    # The NMF-like split of the scale is penalised without rescaling ...
    assert scores["abundance_nmse"] == pytest.approx(0.75**2)
    # ... and forgiven with a fitted scale.
    fitted = unmixing_scores(
        endmembers[permutation] * 4.0,
        abundances[..., permutation] / 4.0,
        truth,
        scale="fit",
    )
    assert fitted["abundance_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert fitted["abundance_nmse_per_endmember"]["b"] == pytest.approx(0.0, abs=1e-12)
