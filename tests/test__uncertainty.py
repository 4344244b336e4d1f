"""Tests of the per-pixel uncertainty of the fractions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _helpers import FAST, make_mixture, to_signal

from hs_aeunmix import AEUnmix, get_uncertainty, load_model, metrics
from hs_aeunmix._uncertainty import (
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


def test_trust_note_is_a_lower_bound_and_names_unidentified_endmembers():
    from hs_aeunmix._uncertainty import trust_note

    assert trust_note(np.array([], dtype=int)).endswith("not errors of the endmembers")
    assert trust_note(np.array([0, 2])).endswith(
        "and is no error bar for endmembers 0, 2"
    )
