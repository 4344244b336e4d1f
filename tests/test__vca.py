"""Tests for Vertex Component Analysis and the constrained least-squares solvers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment, nnls
from sklearn.utils._param_validation import InvalidParameterError

from hs_aeunmix._vca import (
    fully_constrained_least_squares,
    nonnegative_least_squares,
    vertex_component_analysis,
)

PURE_PIXELS_PER_ENDMEMBER = 3


def make_mixture(
    n_endmembers: int,
    n_channels: int,
    n_pixels: int,
    *,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build a linear mixture of smooth, positive endmembers with pure pixels.

    Parameters
    ----------
    n_endmembers : int
        Number of endmembers.
    n_channels : int
        Number of spectral channels.
    n_pixels : int
        Number of pixels, the first ``PURE_PIXELS_PER_ENDMEMBER * n_endmembers``
        of which are pure.
    noise : float, optional
        Standard deviation of additive Gaussian noise, relative to the largest
        endmember value.
    seed : int, optional
        Seed of the generator.

    Returns
    -------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` mixed spectra.
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` true endmembers.
    abundances : numpy.ndarray
        ``(n_pixels, n_endmembers)`` true abundances, summing to one per pixel.
    """
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, n_channels)
    endmembers = np.full((n_endmembers, n_channels), 0.05)
    for spectrum in endmembers:
        for _ in range(3):
            centre, width = rng.uniform(0.0, 1.0), rng.uniform(0.03, 0.15)
            spectrum += rng.uniform(0.3, 1.0) * np.exp(
                -0.5 * ((axis - centre) / width) ** 2
            )
    abundances = rng.dirichlet(np.ones(n_endmembers), size=n_pixels)
    n_pure = PURE_PIXELS_PER_ENDMEMBER * n_endmembers
    abundances[:n_pure] = np.repeat(
        np.eye(n_endmembers), PURE_PIXELS_PER_ENDMEMBER, axis=0
    )
    data = abundances @ endmembers
    data += noise * endmembers.max() * rng.standard_normal(data.shape)
    return data, endmembers, abundances


def matched_spectral_angles(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Spectral angles between reference and estimated spectra, optimally paired.

    Parameters
    ----------
    reference, estimate : numpy.ndarray
        ``(n_spectra, n_channels)`` arrays.

    Returns
    -------
    numpy.ndarray
        ``(n_spectra,)`` angles in radians after Hungarian matching.
    """
    # float64 throughout: arccos near 1 turns float32 rounding into ~1e-3 rad.
    reference = reference.astype(np.float64)
    estimate = estimate.astype(np.float64)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    estimate /= np.linalg.norm(estimate, axis=1, keepdims=True)
    cosines = reference @ estimate.T
    angles = np.arccos(np.clip(cosines, -1.0, 1.0))
    rows, columns = linear_sum_assignment(angles)
    return angles[rows, columns]


@pytest.mark.parametrize(
    ("n_endmembers", "n_channels", "seed"),
    [(3, 50, 0), (4, 120, 1), (5, 300, 2), (4, 300, 3)],
)
def test_vca_recovers_noiseless_endmembers(
    n_endmembers: int, n_channels: int, seed: int
) -> None:
    data, endmembers, _ = make_mixture(n_endmembers, n_channels, 500, seed=seed)
    estimated, indices = vertex_component_analysis(
        data, n_endmembers, random_state=seed
    )
    assert estimated.shape == (n_endmembers, n_channels)
    assert indices.shape == (n_endmembers,)
    np.testing.assert_array_equal(estimated, data[indices])
    assert matched_spectral_angles(endmembers, estimated).max() < 0.01


def test_vca_is_invariant_to_pixel_scaling() -> None:
    # The projective projection exists to undo per-pixel intensity factors
    # (thickness, illumination), so scaled mixtures must still give the
    # endmember shapes.
    data, endmembers, _ = make_mixture(4, 100, 600, seed=4)
    scales = np.random.default_rng(4).uniform(0.2, 5.0, size=(data.shape[0], 1))
    estimated, _ = vertex_component_analysis(data * scales, 4, random_state=0)
    assert matched_spectral_angles(endmembers, estimated).max() < 0.01


@pytest.mark.parametrize("n_endmembers", [3, 4, 5])
def test_vca_with_mild_noise(n_endmembers: int) -> None:
    data, endmembers, _ = make_mixture(
        n_endmembers, 150, 1000, noise=0.005, seed=10 + n_endmembers
    )
    estimated, _ = vertex_component_analysis(data, n_endmembers, random_state=5)
    assert matched_spectral_angles(endmembers, estimated).max() < 0.05


@pytest.mark.parametrize("n_endmembers", [3, 4, 5])
def test_vca_low_snr_picks_one_near_pure_pixel_per_endmember(
    n_endmembers: int,
) -> None:
    # At this noise level the SNR estimate (~17 dB) is below the paper's
    # threshold (20-22 dB for 3-5 endmembers), so the PCA-subspace branch
    # runs.  The selected spectra are themselves noisy, so the check is on
    # which pixels were chosen rather than on spectral angles.
    data, _, abundances = make_mixture(
        n_endmembers, 150, 1000, noise=0.05, seed=20 + n_endmembers
    )
    _, indices = vertex_component_analysis(data, n_endmembers, random_state=0)
    selected = abundances[indices]
    assert sorted(selected.argmax(axis=1)) == list(range(n_endmembers))
    assert selected.max(axis=1).min() > 0.8


def test_vca_single_endmember_returns_a_copy_of_it() -> None:
    data, endmembers, _ = make_mixture(1, 80, 200, seed=6)
    scales = np.random.default_rng(6).uniform(0.5, 2.0, size=(data.shape[0], 1))
    estimated, indices = vertex_component_analysis(data * scales, 1)
    assert indices.shape == (1,)
    assert matched_spectral_angles(endmembers, estimated).max() < 1e-6


def test_vca_is_reproducible_for_a_seed() -> None:
    data, _, _ = make_mixture(4, 100, 400, noise=0.02, seed=7)
    first = vertex_component_analysis(data, 4, random_state=123)
    second = vertex_component_analysis(data, 4, random_state=123)
    from_generator = vertex_component_analysis(
        data, 4, random_state=np.random.default_rng(123)
    )
    for result in (second, from_generator):
        np.testing.assert_array_equal(first[0], result[0])
        np.testing.assert_array_equal(first[1], result[1])


def test_vca_does_not_modify_input() -> None:
    data, _, _ = make_mixture(3, 60, 300, noise=0.01, seed=8)
    original = data.copy()
    estimated, _ = vertex_component_analysis(data, 3, random_state=0)
    np.testing.assert_array_equal(data, original)
    # The returned endmembers must not be views that alias the input.
    estimated[:] = -1.0
    np.testing.assert_array_equal(data, original)


def test_vca_accepts_float32() -> None:
    data, endmembers, _ = make_mixture(4, 120, 500, seed=9)
    estimated, indices = vertex_component_analysis(
        data.astype(np.float32), 4, random_state=0
    )
    assert estimated.dtype == np.float32
    assert matched_spectral_angles(endmembers, estimated).max() < 0.01
    np.testing.assert_array_equal(
        indices, vertex_component_analysis(data, 4, random_state=0)[1]
    )


def test_vca_rejects_nan() -> None:
    data, _, _ = make_mixture(3, 50, 100)
    data[5, 7] = np.nan
    with pytest.raises(ValueError, match="data contains NaN or infinite values"):
        vertex_component_analysis(data, 3)


def test_vca_rejects_one_dimensional_data() -> None:
    with pytest.raises(ValueError, match=r"data must be a 2-D array .* shape \(50,\)"):
        vertex_component_analysis(np.ones(50), 2)


@pytest.mark.parametrize(
    ("shape", "n_endmembers", "limit"), [((100, 50), 51, 50), ((10, 50), 11, 10)]
)
def test_vca_rejects_out_of_range_endmember_count(
    shape: tuple[int, int], n_endmembers: int, limit: int
) -> None:
    data = np.random.default_rng(0).random(shape)
    message = (
        rf"n_endmembers must be an integer between 1 and min\(n_pixels, "
        rf"n_channels\) = {limit}, got {n_endmembers}\."
    )
    with pytest.raises(InvalidParameterError, match=message):
        vertex_component_analysis(data, n_endmembers)


@pytest.mark.parametrize("n_endmembers", [0, 2.0, True, "3"])
def test_vca_rejects_a_count_that_is_not_a_positive_integer(n_endmembers) -> None:
    data = np.random.default_rng(0).random((20, 10))
    message = r"'n_endmembers' parameter of vca must be an int in the range \[1, inf\)"
    with pytest.raises(InvalidParameterError, match=message):
        vertex_component_analysis(data, n_endmembers)


def test_vca_rejects_complex_data() -> None:
    with pytest.raises(ValueError, match="data must hold real numbers"):
        vertex_component_analysis(np.ones((10, 5), dtype=complex), 2)


@pytest.mark.parametrize(("n_endmembers", "seed"), [(3, 0), (4, 1), (5, 2)])
def test_fcls_recovers_noiseless_abundances(n_endmembers: int, seed: int) -> None:
    data, endmembers, abundances = make_mixture(n_endmembers, 200, 400, seed=seed)
    estimated = fully_constrained_least_squares(data, endmembers)
    np.testing.assert_allclose(estimated, abundances, rtol=0, atol=1e-6)


def noisy_fcls_problem() -> tuple[np.ndarray, np.ndarray]:
    """Noisy mixtures plus pixels that the simplex cannot fit at all.

    Returns
    -------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` spectra.
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` endmembers.
    """
    data, endmembers, _ = make_mixture(4, 150, 300, noise=0.05, seed=11)
    # An empty pixel and a far too bright one give large multipliers for the
    # sum-to-one constraint, the hardest case for the augmented system.
    data[0] = 0.0
    data[1] *= 5.0
    return data, endmembers


def test_fcls_output_is_nonnegative_and_sums_to_one() -> None:
    data, endmembers = noisy_fcls_problem()
    estimated = fully_constrained_least_squares(data, endmembers)
    assert estimated.shape == (data.shape[0], endmembers.shape[0])
    assert estimated.min() >= 0.0
    np.testing.assert_allclose(estimated.sum(axis=1), 1.0, rtol=0, atol=1e-8)
    # Some abundances must hit the bound, otherwise non-negativity is untested.
    assert np.any(estimated == 0.0)


def test_fcls_agrees_with_scipy_nnls_on_the_augmented_system() -> None:
    data, endmembers = noisy_fcls_problem()
    weight = 1e5 * np.linalg.norm(data, axis=1).max()
    augmented_design = np.vstack([endmembers.T, np.full(endmembers.shape[0], weight)])
    expected = np.array(
        [nnls(augmented_design, np.append(spectrum, weight))[0] for spectrum in data]
    )
    estimated = fully_constrained_least_squares(data, endmembers)
    np.testing.assert_allclose(estimated, expected, rtol=0, atol=1e-6)


def test_nnls_agrees_with_scipy_nnls_per_pixel() -> None:
    data, endmembers = noisy_fcls_problem()
    expected = np.array([nnls(endmembers.T, spectrum)[0] for spectrum in data])
    estimated = nonnegative_least_squares(data, endmembers)
    np.testing.assert_allclose(estimated, expected, rtol=0, atol=1e-10)
    assert estimated.min() >= 0.0
    # Without sum-to-one the too-bright pixel keeps its scale.
    assert estimated[1].sum() > 3.0


def test_least_squares_keep_float32() -> None:
    data, endmembers, abundances = make_mixture(3, 80, 100, seed=12)
    estimated = fully_constrained_least_squares(
        data.astype(np.float32), endmembers.astype(np.float32)
    )
    assert estimated.dtype == np.float32
    np.testing.assert_allclose(estimated, abundances, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "solver", [fully_constrained_least_squares, nonnegative_least_squares]
)
def test_least_squares_reject_mismatched_channels(solver) -> None:
    with pytest.raises(ValueError, match="same number of channels, got 10 and 12"):
        solver(np.ones((5, 10)), np.ones((2, 12)))


@pytest.mark.parametrize(
    "solver", [fully_constrained_least_squares, nonnegative_least_squares]
)
def test_least_squares_reject_nan_endmembers(solver) -> None:
    endmembers = np.ones((2, 10))
    endmembers[1, 3] = np.nan
    with pytest.raises(ValueError, match="endmembers contains NaN or infinite values"):
        solver(np.ones((5, 10)), endmembers)


@pytest.mark.parametrize("noise", [0.002, 0.05], ids=["projective", "pca"])
def test_vca_picks_the_same_pixels_in_any_orthonormal_basis(noise: float) -> None:
    # Starts run VCA on coordinates of denoised spectra, not on the spectra:
    # the eigensolver's arbitrary signs must not change the pixels picked.
    data, _, _ = make_mixture(4, 60, 500, noise=noise, seed=30)
    rotation, _ = np.linalg.qr(np.random.default_rng(31).standard_normal((60, 60)))
    for seed in range(8):
        _, indices = vertex_component_analysis(data, 4, random_state=seed)
        _, rotated = vertex_component_analysis(data @ rotation, 4, random_state=seed)
        np.testing.assert_array_equal(indices, rotated)
