"""Tests of the per-pixel uncertainty of the fractions."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from _helpers import FAST, make_mixture, to_signal

from hs_aeunmix import AEUnmix, get_uncertainty, load_model, metrics
from hs_aeunmix._uncertainty import (
    contamination_variances,
    endmember_covariance,
    fraction_covariance,
    standard_deviations,
    sum_preserving_basis,
)

ENDMEMBERS = np.array(
    [
        [4.0, 3.0, 1.0, 0.5, 0.2, 0.1, 0.1, 0.1],
        [0.1, 0.5, 3.0, 4.0, 1.0, 0.3, 0.1, 0.1],
        [0.1, 0.1, 0.2, 0.5, 2.0, 4.0, 3.0, 1.0],
    ]
)
FRACTIONS = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])


def fraction_uncertainty(*args, **kwargs) -> np.ndarray:
    return standard_deviations(fraction_covariance(*args, **kwargs))


def _exact(intensity: float) -> np.ndarray:
    return intensity * FRACTIONS @ ENDMEMBERS


def test_the_sum_preserving_basis_is_orthonormal_and_sums_to_zero():
    basis = sum_preserving_basis(4)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=0), 0.0, atol=1e-12)


def test_poisson_uncertainty_falls_as_one_over_root_dose():
    sigma = {
        dose: fraction_uncertainty(
            _exact(dose), FRACTIONS, np.full(2, dose), ENDMEMBERS, counts=True
        )
        for dose in (100.0, 400.0)
    }
    np.testing.assert_allclose(sigma[400.0], sigma[100.0] / 2, rtol=1e-6)
    covariance = fraction_covariance(
        _exact(100.0), FRACTIONS, np.full(2, 100.0), ENDMEMBERS, counts=True
    )
    # Fractions summing to one: their errors cancel in the sum.
    np.testing.assert_allclose(covariance.sum(axis=(1, 2)), 0.0, atol=1e-12)


def test_without_the_sum_constraint_the_fractions_are_freer():
    constrained = fraction_uncertainty(
        _exact(100.0), FRACTIONS, np.full(2, 100.0), ENDMEMBERS, counts=True
    )
    free = fraction_uncertainty(
        _exact(100.0),
        FRACTIONS,
        np.full(2, 100.0),
        ENDMEMBERS,
        counts=True,
        sum_to_one=False,
    )
    assert (free > constrained).all()


def test_a_pixel_the_model_misfits_is_less_sure():
    spectra = _exact(100.0)
    misfit = spectra.copy()
    misfit[0] *= np.linspace(0.5, 1.5, spectra.shape[1])
    arguments = (FRACTIONS, np.full(2, 100.0), ENDMEMBERS)
    plain = fraction_uncertainty(spectra, *arguments, counts=True)
    wider = fraction_uncertainty(misfit, *arguments, counts=True)
    assert (wider[0] > 2 * plain[0]).all()
    np.testing.assert_allclose(wider[1], plain[1])


def test_a_pixel_without_signal_has_no_uncertainty_estimate():
    spectra = np.vstack([_exact(100.0), np.zeros((1, 8))])
    fractions = np.vstack([FRACTIONS, np.full((1, 3), 1 / 3)])
    sigma = fraction_uncertainty(
        spectra, fractions, np.array([100.0, 100.0, 0.0]), ENDMEMBERS, counts=True
    )
    assert np.isfinite(sigma[:2]).all()
    assert np.isnan(sigma[2]).all()


def test_a_background_taken_with_the_fractions_widens_them():
    basis = np.vstack([np.ones(8), np.linspace(-1, 1, 8)]) / np.sqrt(8)
    arguments = (_exact(100.0), FRACTIONS, np.full(2, 100.0), ENDMEMBERS)
    without = fraction_uncertainty(*arguments, counts=True)
    with_background = fraction_uncertainty(
        *arguments, background_basis=basis, background=np.zeros((2, 2)), counts=True
    )
    assert (with_background > without).all()


def _angles(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1)
    return np.arccos(np.clip(cosines / np.linalg.norm(second, axis=1), -1, 1))


def _contaminated(rng, tau: np.ndarray, n_draws: int) -> np.ndarray:
    """Endmembers ``E_k + sum_j m_kj (E_j - E_k)``, ``m_kj ~ N(0, tau_k²)``."""
    n_components = len(ENDMEMBERS)
    mixing = rng.normal(size=(n_draws, n_components, n_components)) * tau[:, None]
    diagonal = np.arange(n_components)
    mixing[:, diagonal, diagonal] = 0.0
    mixing[:, diagonal, diagonal] = -mixing.sum(axis=2)
    return ENDMEMBERS + mixing @ ENDMEMBERS


def test_a_contamination_turns_each_endmember_by_its_spread_over_root_two():
    spread = np.array([0.02, 0.05, 0.0])
    tau = np.sqrt(contamination_variances(ENDMEMBERS, spread))
    assert tau[2] == 0.0
    draws = _contaminated(np.random.default_rng(0), tau, 4000)
    mean_square = np.mean([_angles(draw, ENDMEMBERS) ** 2 for draw in draws], axis=0)
    np.testing.assert_allclose(
        np.sqrt(mean_square[:2]), spread[:2] / np.sqrt(2), rtol=0.05
    )


def test_a_single_start_or_a_duplicate_bounds_the_contamination():
    assert (contamination_variances(ENDMEMBERS, np.full(3, np.nan)) == 0).all()
    # Copies of one spectrum leave (almost) no direction to be contaminated
    # in: at most a whole other endmember.
    copies = np.repeat(ENDMEMBERS[:1], 3, axis=0)
    np.testing.assert_array_equal(contamination_variances(copies, np.full(3, 0.1)), 1.0)
    copies[1] += 1e-6 * ENDMEMBERS[1]
    np.testing.assert_array_equal(contamination_variances(copies, np.full(3, 0.1)), 1.0)


def test_the_model_adds_the_error_of_its_endmembers_from_their_spread():
    mixture = make_mixture(shape=(12, 12), counts=100, seed=3)
    model = AEUnmix(3, **FAST).fit(mixture.spectra)
    assert model.stability_ is not None
    sigma = {}
    for spread in (0.0, 0.2):
        model.stability_ = dataclasses.replace(
            model.stability_, spread=np.full(3, spread)
        )
        sigma[spread] = model.uncertainty(mixture.spectra)
    assert (sigma[0.2] > sigma[0.0]).all()
    # The whole covariance: its diagonal is the variance, its rows sum to
    # zero (fractions summing to one).
    covariance = model.uncertainty(mixture.spectra, return_covariance=True)
    assert covariance.shape == (len(mixture.spectra), 3, 3)
    np.testing.assert_allclose(
        np.sqrt(np.diagonal(covariance, axis1=1, axis2=2)), sigma[0.2]
    )
    np.testing.assert_allclose(covariance.sum(axis=2), 0.0, atol=1e-12)
    # What the pixel's own data leave open, without the endmembers' error.
    _, covariance = model._fractions_and_covariance(
        mixture.spectra, endmember_error=False
    )
    np.testing.assert_array_equal(standard_deviations(covariance), sigma[0.0])


def test_the_endmember_covariance_is_that_of_contaminated_endmembers():
    spread = np.array([0.03, 0.01, 0.02])
    tau = np.sqrt(contamination_variances(ENDMEMBERS, spread))
    spectra = FRACTIONS @ ENDMEMBERS
    draws = _contaminated(np.random.default_rng(1), tau, 4000)
    # Each pixel's fractions given contaminated endmembers: x = a' E'.
    fitted = np.stack(
        [np.linalg.lstsq(draw.T, spectra.T, rcond=None)[0].T for draw in draws]
    )
    errors = fitted - FRACTIONS
    simulated = np.einsum("dpi,dpj->pij", errors, errors) / len(draws)
    covariance = endmember_covariance(FRACTIONS, ENDMEMBERS, spread)
    np.testing.assert_allclose(
        covariance, simulated, rtol=0.1, atol=1e-3 * np.abs(simulated).max()
    )
    # The errors keep the fractions' sum.
    np.testing.assert_allclose(covariance.sum(axis=2), 0.0, atol=1e-15)


def test_wrong_endmembers_are_covered_only_with_their_spread():
    # Fractions fitted with endmembers off by a known contamination: the noise
    # alone does not explain their errors, the endmembers' spread does.
    rng = np.random.default_rng(2)
    n_pixels = 400
    fractions = rng.dirichlet(np.ones(3), n_pixels)
    spectra = rng.poisson(1000 * fractions @ ENDMEMBERS).astype(float)
    wrong = (
        ENDMEMBERS
        + np.array([[-0.05, 0.05, 0.0], [0.0, -0.03, 0.03], [0.0, 0.0, 0.0]])
        @ ENDMEMBERS
    )
    fitted = np.linalg.lstsq(wrong.T, spectra.T, rcond=None)[0].T
    intensity = fitted.sum(axis=1)
    fitted /= intensity[:, None]
    spread = np.sqrt(2) * _angles(wrong, ENDMEMBERS)
    arguments = (spectra, fitted, intensity, wrong)
    coverage = {
        label: np.mean(
            np.abs(fitted - fractions)
            <= 2 * fraction_uncertainty(*arguments, counts=True, endmember_spread=value)
        )
        for label, value in (("noise only", None), ("with spread", spread))
    }
    assert coverage["noise only"] < 0.6
    assert coverage["with spread"] > 0.9


def _reference_scale_coverage(model, mixture) -> tuple[float, float]:
    """Share of true fractions within ±2σ, and the rank correlation of σ and error."""
    fractions, covariance = model._fractions_and_covariance(mixture.spectra)
    rescaled, sigma = metrics.uncertainty_on_reference_scale(
        model.components_, fractions, covariance, mixture.endmembers
    )
    scores = metrics.uncertainty_scores(
        rescaled, sigma, mixture.abundances.reshape(len(rescaled), -1)
    )
    return scores["coverage"], scores["rank_correlation"]


@pytest.mark.parametrize("counts", [30, 1000])
def test_true_fractions_lie_within_two_sigma_and_sigma_follows_the_error(counts):
    mixture = make_mixture(shape=(24, 24), counts=counts, seed=1)
    model = AEUnmix(3, init="vca", max_epochs=10, random_state=0)
    model.set_params(show_progressbar=False).fit(mixture.spectra)
    assert metrics.spectral_angles(model.components_, mixture.endmembers).max() < 0.05
    coverage, correlation = _reference_scale_coverage(model, mixture)
    # The encoder's answer is not each pixel's best fit: the noise alone
    # would cover about 0.4 (at 1000 counts) to 0.7 (at 30) of them.
    assert coverage >= 0.85
    assert correlation > 0.3


def test_get_uncertainty_is_shaped_like_the_loadings_and_reapplies(tmp_path):
    mixture = make_mixture(shape=(12, 10), counts=100, seed=2)
    signal = to_signal(mixture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        signal.decomposition(algorithm="ae", output_dimension=3, **FAST)
    sigma = get_uncertainty(signal)
    loadings = signal.get_decomposition_loadings()
    assert sigma.data.shape == loadings.data.shape == (3, 12, 10)
    assert sigma.axes_manager.navigation_shape == (3,)
    assert [axis.units for axis in sigma.axes_manager.signal_axes] == [
        axis.units for axis in loadings.axes_manager.signal_axes
    ]
    assert np.isfinite(sigma.data).all()
    assert (sigma.data > 0).all()
    # The same numbers from a saved model reapplied to the scan.
    path = tmp_path / "model.aeunmix"
    load_model(signal).save(path)
    np.testing.assert_array_equal(get_uncertainty(signal, path).data, sigma.data)


def test_trust_note_says_what_the_uncertainty_sees():
    from hs_aeunmix._uncertainty import trust_note

    none = np.array([], dtype=int)
    one_start = trust_note(np.full(3, np.nan), none)
    assert "a lower bound" in one_start
    assert one_start.endswith("not errors of the endmembers (one start measures none)")
    thin = trust_note(np.full(3, np.nan), np.array([0, 2]))
    assert thin.endswith(
        "; no error bar for endmembers 0, 2, which the data do not identify"
    )
    several = trust_note(np.array([0.01, 0.3, 0.02]), np.array([1]))
    assert "calibrated on average, not per pixel" in several
    assert several.endswith("wide for endmembers 1, which the data do not identify")
    assert "wide for" not in trust_note(np.full(3, 0.01), none)
