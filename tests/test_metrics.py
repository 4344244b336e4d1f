"""Tests of the unmixing scores against hand-computed values."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from hs_aeunmix.datasets import GroundTruth
from hs_aeunmix.metrics import (
    abundance_entropy,
    abundance_nmse,
    abundance_rmse,
    fractions_on_reference_scale,
    gradient_energy,
    match_endmembers,
    mean_spectral_angle,
    pixelwise_abundance_variance,
    reconstruction_error,
    spectral_angle,
    spectral_angles,
    uncertainty_scores,
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
# Fractions on the reference scale
# --------------------------------------------------------------------------


def _split_scale(endmembers, abundances, permutation, scales, intensity):
    """Estimates as a method would return them: permuted, scale moved around."""
    estimated_endmembers = endmembers[permutation] * scales[:, None]
    loadings = abundances[..., permutation] * intensity[..., None] / scales
    return estimated_endmembers, loadings


def test_fractions_on_reference_scale_undo_any_scale_split(endmembers, abundances):
    permutation = np.array([2, 0, 1])
    scales = np.array([0.03, 250.0, 7.0])
    intensity = np.linspace(0.5, 2.0, abundances[..., 0].size).reshape(6, 5)
    estimated, loadings = _split_scale(
        endmembers, abundances, permutation, scales, intensity
    )
    fractions = fractions_on_reference_scale(estimated, loadings, endmembers)
    assert fractions.shape == (6, 5, 3)
    np.testing.assert_allclose(fractions, abundances, rtol=0, atol=1e-12)
    explicit = fractions_on_reference_scale(
        estimated, loadings, endmembers, order=np.argsort(permutation)
    )
    np.testing.assert_allclose(explicit, abundances, rtol=0, atol=1e-12)
    # Normalising the loadings per pixel without the endmember scales is
    # far off: the convention this function replaces in the benchmark.
    old_rmse = abundance_rmse(
        loadings, abundances, order=np.argsort(permutation), scale="sum_to_one"
    )
    assert old_rmse > 0.3


def test_fractions_on_reference_scale_flat_pixels_and_extra_estimate(
    endmembers, abundances
):
    flat = abundances.reshape(-1, 3)
    permutation = np.array([1, 2, 0])
    scales = np.array([4.0, 0.5, 2.0])
    estimated, loadings = _split_scale(
        endmembers, flat, permutation, scales, np.ones(len(flat))
    )
    rng = np.random.default_rng(2)
    distractor = rng.uniform(0.5, 1.5, (1, endmembers.shape[1]))
    estimated = np.vstack([estimated, distractor])
    loadings = np.hstack([loadings, rng.uniform(1.0, 2.0, (len(flat), 1))])
    # The unmatched fourth component is dropped, not counted in the sums.
    fractions = fractions_on_reference_scale(estimated, loadings, endmembers)
    assert fractions.shape == (30, 3)
    np.testing.assert_allclose(fractions, flat, rtol=0, atol=1e-12)


def test_fractions_on_reference_scale_hand_computed():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    # c_0 = <(2, 1), (1, 0)> / 1 = 2 (least squares, not the norm), c_1 = 0.5.
    estimated = np.array([[2.0, 1.0], [0.0, 0.5]])
    loadings = np.array([[1.0, 1.0], [1.0, -4.0], [3.0, 2.0]])
    fractions = fractions_on_reference_scale(
        estimated, loadings, reference, order=np.array([0, 1])
    )
    expected = np.array([[0.8, 0.2], [1.0, 0.0], [6.0 / 7.0, 1.0 / 7.0]])
    np.testing.assert_allclose(fractions, expected, rtol=0, atol=1e-15)


def test_fractions_on_reference_scale_nan_pixels_stay_nan(endmembers, abundances):
    loadings = abundances * np.array([2.0, 3.0, 5.0])
    estimated = endmembers / np.array([[2.0], [3.0], [5.0]])
    loadings[0, 0] = np.nan  # masked pixel
    loadings[2, 3, 1] = np.nan  # one bad loading spoils its pixel
    fractions = fractions_on_reference_scale(estimated, loadings, endmembers)
    assert np.isnan(fractions[0, 0]).all()
    assert np.isnan(fractions[2, 3]).all()
    assert np.isnan(fractions).sum() == 6
    valid = ~np.isnan(fractions[..., 0])
    np.testing.assert_allclose(fractions[valid], abundances[valid], atol=1e-12)


def test_fractions_on_reference_scale_zero_pixels_give_zeros(endmembers, abundances):
    loadings = abundances.copy()
    loadings[1, 2] = 0.0
    loadings[4, 4] = [-0.1, -2.0, 0.0]  # nothing left after clipping
    fractions = fractions_on_reference_scale(endmembers, loadings, endmembers)
    np.testing.assert_array_equal(fractions[1, 2], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(fractions[4, 4], [0.0, 0.0, 0.0])
    assert not np.isnan(fractions).any()
    keep = np.ones((6, 5), dtype=bool)
    keep[1, 2] = keep[4, 4] = False
    np.testing.assert_allclose(fractions[keep], abundances[keep], atol=1e-12)


def test_fractions_on_reference_scale_anticorrelated_estimate_gets_zero():
    reference = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # Estimate 1 points against reference 1 (c_1 = -3): still its best
    # match, but it explains none of it, so its loadings count for nothing.
    estimated = np.array([[2.0, 0.0, 0.0], [0.0, -3.0, 0.3]])
    loadings = np.array([[1.0, 1.0], [0.5, 2.0], [0.0, 3.0], [1.0, -1.0]])
    np.testing.assert_array_equal(match_endmembers(estimated, reference), [0, 1])
    fractions = fractions_on_reference_scale(estimated, loadings, reference)
    expected = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(fractions, expected)
    # Orthogonal (c = 0) is treated the same way.
    orthogonal = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(
        fractions_on_reference_scale(
            orthogonal, loadings, reference, order=np.array([0, 1])
        ),
        expected,
    )


@pytest.mark.parametrize(
    ("estimated_shape", "abundance_shape", "reference_shape", "message"),
    [
        (
            (3, 50),
            (6, 5, 2),
            (3, 50),
            "estimated_abundances must have shape (..., 3), one column per "
            "estimated endmember, got shape (6, 5, 2).",
        ),
        (
            (3, 50),
            (),
            (3, 50),
            "estimated_abundances must have shape (..., 3), one column per "
            "estimated endmember, got shape ().",
        ),
        (
            (3, 49),
            (6, 5, 3),
            (3, 50),
            "estimated_endmembers and reference_endmembers must have the same "
            "number of channels, got 49 and 50.",
        ),
        (
            (50,),
            (6, 5, 3),
            (3, 50),
            "estimated_endmembers must be a 2-D (n_endmembers, n_channels) "
            "array, got shape (50,).",
        ),
        (
            (3, 50),
            (6, 5, 3),
            (1, 3, 50),
            "reference_endmembers must be a 2-D (n_endmembers, n_channels) "
            "array, got shape (1, 3, 50).",
        ),
        (
            (2, 50),
            (6, 5, 2),
            (3, 50),
            "Cannot match 2 estimated endmembers to 3 reference endmembers: at "
            "least as many estimates as references are needed.",
        ),
    ],
)
def test_fractions_on_reference_scale_shape_errors(
    estimated_shape, abundance_shape, reference_shape, message
):
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        fractions_on_reference_scale(
            rng.uniform(0.5, 1.0, estimated_shape),
            rng.uniform(0.0, 1.0, abundance_shape),
            rng.uniform(0.5, 1.0, reference_shape),
        )


def test_fractions_on_reference_scale_value_errors(endmembers, abundances):
    def message(text):
        return f"^{re.escape(text)}$"

    zero = endmembers.copy()
    zero[1] = 0.0
    with pytest.raises(
        ValueError,
        match=message(
            "reference endmembers [1] are zero and define no fraction scale."
        ),
    ):
        fractions_on_reference_scale(endmembers, abundances, zero)
    masked = endmembers.copy()
    masked[:, 7] = np.nan
    with pytest.raises(
        ValueError,
        match=message(
            "estimated_endmembers contain NaN or infinite values; drop those "
            "channels from both endmember arrays first."
        ),
    ):
        fractions_on_reference_scale(masked, abundances, endmembers)
    with pytest.raises(
        ValueError, match=message("order must not repeat indices, got [0, 0, 1].")
    ):
        fractions_on_reference_scale(
            endmembers, abundances, endmembers, order=np.array([0, 0, 1])
        )


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
    message = r"'bins' parameter of abundance_entropy must be an int in the range"
    with pytest.raises(InvalidParameterError, match=message):
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


def test_unmixing_scores_follow_the_reference_scale_protocol(endmembers, abundances):
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=("a", "b", "c"),
        noiseless=abundances @ endmembers,
    )
    permutation = np.array([2, 0, 1])
    # Each estimated endmember keeps another share of the intensity (as NMF
    # does); the protocol moves it back before comparing fractions.
    scales = np.array([4.0, 0.5, 2.0])
    scores = unmixing_scores(
        endmembers[permutation] * scales[:, None],
        abundances.reshape(-1, 3)[:, permutation] / scales,
        truth,
    )
    assert scores["order"] == [1, 2, 0]
    assert scores["mean_sad_rad"] == pytest.approx(0.0, abs=1e-12)
    assert set(scores["sad_rad"]) == {"a", "b", "c"}
    assert scores["abundance_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert scores["abundance_nmse_per_endmember"]["b"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(scores["fractions"], abundances.reshape(-1, 3))


def test_unmixing_scores_penalise_wrong_fractions(endmembers, abundances):
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=("a", "b", "c"),
        noiseless=abundances @ endmembers,
    )
    uniform = np.full_like(abundances, 1 / 3)
    scores = unmixing_scores(endmembers, uniform, truth)
    expected = np.sqrt(np.mean((abundances - 1 / 3) ** 2))
    assert scores["abundance_rmse"] == pytest.approx(expected)
    assert scores["abundance_rmse"] > 0.1


def test_uncertainty_scores_count_errors_within_one_and_two_sigma():
    sigma = np.array([[0.1, 0.1, 0.1, 0.1]])
    truth = np.array([[0.5, 0.5, 0.5, 0.5]])
    estimate = truth + np.array([[0.05, -0.15, 0.3, np.nan]])
    scores = uncertainty_scores(estimate, sigma, truth)
    assert scores["coverage"] == pytest.approx(2 / 3)
    assert scores["coverage_1sigma"] == pytest.approx(1 / 3)
    assert np.isnan(scores["rank_correlation"])  # σ constant: nothing to rank
