"""Tests of the smooth per-pixel background (Raman fluorescence)."""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest

from hs_aeunmix import AEUnmix, _baseline, datasets, metrics
from hs_aeunmix._baseline import (
    AUTO_DEGREE,
    holds_background,
    lowest_polynomial_below,
    polynomial_basis,
    resolve_terms,
    without_background,
)


def _raman(baseline: float, seed: int = 0):
    return datasets.raman_scene(
        3,
        shape=(24, 24),
        scene="chessboard",
        n_channels=240,
        snr=40,
        baseline=baseline,
        random_state=seed,
    )


def test_basis_is_orthonormal_and_spans_the_polynomials():
    basis = polynomial_basis(50, 4)
    np.testing.assert_allclose(basis.T @ basis, np.eye(4), atol=1e-12)
    cubic = np.linspace(-1, 1, 50) ** 3 - 0.5
    np.testing.assert_allclose(basis @ (basis.T @ cubic), cubic, atol=1e-12)


def test_lowest_polynomial_below_a_band_spectrum():
    basis = polynomial_basis(200, 4)
    channels = np.arange(200)
    bands = 5 * np.exp(-0.5 * ((channels - 80) / 3) ** 2)
    background = 1.0 + 0.01 * channels
    under = lowest_polynomial_below(bands + background, basis)
    assert (under <= bands + background + 1e-9).all()
    np.testing.assert_allclose(under, background, atol=1e-6)
    cleaned = without_background((bands + background)[None], basis)[0]
    np.testing.assert_allclose(cleaned, bands, atol=1e-6)


@pytest.mark.parametrize(
    ("units", "terms"),
    [("cm⁻¹", AUTO_DEGREE), ("1/cm", AUTO_DEGREE), ("eV", 0), (None, 0)],
)
def test_auto_considers_a_background_on_raman_axes_only(units, terms):
    assert resolve_terms("auto", units) == terms
    assert resolve_terms(None, "cm⁻¹") == 0
    assert resolve_terms(3, "eV") == 3


def test_a_varying_background_is_detected_and_its_absence_too():
    with_background, _ = _raman(baseline=1.0)
    without, _ = _raman(baseline=0.0)
    spectra = with_background.data.reshape(-1, 240)
    assert holds_background(spectra, 3, AUTO_DEGREE, seed=0)
    assert not holds_background(without.data.reshape(-1, 240), 3, AUTO_DEGREE, seed=0)


def _angle(model, truth):
    return metrics.mean_spectral_angle(
        model.components_,
        truth.endmembers,
        order=metrics.match_endmembers(model.components_, truth.endmembers),
    )


def test_background_model_recovers_endmembers_a_background_would_bend():
    signal, truth = _raman(baseline=1.5, seed=1)
    spectra = signal.data.reshape(-1, 240)
    options = {"max_epochs": 15, "random_state": 0, "show_progressbar": False}
    plain = AEUnmix(3, baseline=None, **options).fit(spectra)
    modelled = AEUnmix(3, baseline=AUTO_DEGREE, **options).fit(spectra)
    assert modelled.baseline_components_.shape == (AUTO_DEGREE, 240)
    assert _angle(plain, truth) > 0.2
    assert _angle(modelled, truth) < 0.1
    rmse = metrics.unmixing_scores(
        modelled.components_, modelled.transform(spectra), truth
    )["abundance_rmse"]
    assert rmse < 0.1
    # Endmembers, background and abundances reproduce the data.
    reconstruction = (
        modelled.transform(spectra) @ modelled.components_
        + modelled.background(spectra) @ modelled.baseline_components_
    )
    noise = np.linalg.norm(
        spectra - truth.noiseless.reshape(-1, 240) - (truth.artefacts.reshape(-1, 240))
    )
    assert np.linalg.norm(spectra - reconstruction) < 1.2 * noise


def test_hyperspy_results_hold_the_background():
    signal, _ = _raman(baseline=1.0, seed=2)
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=3,
        return_info=True,
        print_info=False,
        max_epochs=10,
        random_state=0,
        show_progressbar=False,
    )
    terms = model.baseline_components_.shape[0]
    assert terms == AUTO_DEGREE
    results = signal.learning_results
    assert results.factors.shape == (240, 3 + terms)
    assert results.output_dimension == 3 + terms
    np.testing.assert_allclose(results.factors[:, 3:], model.baseline_components_.T)
    relative = np.linalg.norm(
        signal.get_decomposition_model().data - signal.data
    ) / np.linalg.norm(signal.data)
    nmf = signal.deepcopy()
    np.clip(nmf.data, 0, None, out=nmf.data)
    nmf.decomposition(algorithm="NMF", output_dimension=3, print_info=False)
    nmf_relative = np.linalg.norm(
        nmf.get_decomposition_model().data - nmf.data
    ) / np.linalg.norm(nmf.data)
    assert relative < 1.1 * nmf_relative


def test_no_background_on_an_eels_axis():
    signal, _ = datasets.eels_chequerboard(3, shape=(16, 16), random_state=0)
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=3,
        return_info=True,
        print_info=False,
        max_epochs=2,
        random_state=0,
        show_progressbar=False,
    )
    assert model.baseline_components_.shape == (0, 200)
    assert signal.learning_results.factors.shape == (200, 3)


def test_poisson_loss_refuses_a_background():
    spectra = hs.signals.Signal1D(np.ones((4, 4, 30))).data.reshape(-1, 30)
    with pytest.raises(ValueError, match="Poisson loss contradicts"):
        AEUnmix(2, loss="poisson", baseline=3).fit(spectra + 1)


def test_a_calibration_drift_without_fluorescence_is_no_background():
    # Scene 3 of the Raman-compound generator drifts by 1.9 channels at high
    # counts: the rank-n residual is many times the noise, and smooth
    # polynomials lower it by more than noise alone would (the F-test fires),
    # but by a small share of that misfit; with fluorescence they take most.
    drifting, truth, description = datasets.raman_compound_scene(3, fluorescence=False)
    assert description.shift_channels > 1.5
    fluorescent, _, _ = datasets.raman_compound_scene(3, fluorescence=True)
    n = truth.n_endmembers
    channels = drifting.data.shape[-1]
    assert not holds_background(
        drifting.data.reshape(-1, channels), n, AUTO_DEGREE, seed=0
    )
    assert holds_background(
        fluorescent.data.reshape(-1, channels), n, AUTO_DEGREE, seed=0
    )


@pytest.mark.parametrize("index", [14, 48])
def test_a_background_the_rank_n_approximation_takes_in_is_detected(index, monkeypatch):
    # Development scenes of the Raman-compound generator whose fluorescence
    # the best rank-n approximation absorbs (its residual is the noise with
    # or without the polynomials): nearly all that varies between the pixels
    # above the noise is smooth, which band spectra alone do not give.
    fluorescent, truth, _ = datasets.raman_compound_scene(index, fluorescence=True)
    plain, _, _ = datasets.raman_compound_scene(index, fluorescence=False)
    n, channels = truth.n_endmembers, fluorescent.data.shape[-1]
    spectra = fluorescent.data.reshape(-1, channels)
    assert holds_background(spectra, n, AUTO_DEGREE, seed=0)
    assert not holds_background(plain.data.reshape(-1, channels), n, AUTO_DEGREE, 0)
    monkeypatch.setattr(_baseline, "SMOOTH_SHARE", np.inf)
    assert not holds_background(spectra, n, AUTO_DEGREE, seed=0)


@pytest.mark.parametrize(("amplitude", "held"), [(1.5, False), (4.0, True)])
def test_a_smooth_variation_must_stand_above_the_noise(amplitude, held):
    # White noise of unit variance plus a random cubic per spectrum, taken
    # in whole by the rank-6 approximation (the residual test cannot fire).
    # Its share of the variation above the noise is all of it, but at 1.5
    # it holds about twice the noise in the 4 smooth directions: an
    # estimate of the noise 1 % off moves the share past any threshold.
    rng = np.random.default_rng(0)
    basis = polynomial_basis(200, AUTO_DEGREE)
    bands = 10 + 5 * np.exp(-0.5 * ((np.arange(200) - 80) / 3) ** 2)
    coefficients = amplitude * rng.standard_normal((3000, AUTO_DEGREE))
    spectra = bands + coefficients @ basis.T + rng.standard_normal((3000, 200))
    evidence = _baseline.background_evidence(spectra, 6, AUTO_DEGREE, seed=0)
    assert not evidence.residual_test
    assert evidence.smooth_share >= _baseline.SMOOTH_SHARE
    assert evidence.held is held
