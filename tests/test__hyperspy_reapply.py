"""Reapplying a trained model to later scans: ``decomposition(model=...)``."""

from __future__ import annotations

import warnings

import exspy
import hyperspy.api as hs
import numpy as np
import pytest
from _helpers import FAST, make_mixture, to_signal, train_through_hyperspy

import hs_aeunmix
from hs_aeunmix import datasets, metrics


def _quiet_decomposition(signal, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return signal.decomposition(algorithm="ae", print_info=False, **options)


def _scores(signal, truth):
    factors = signal.learning_results.factors.T
    order = metrics.match_endmembers(factors, truth.endmembers)
    fractions = metrics.fractions_on_reference_scale(
        factors, signal.learning_results.loadings, truth.endmembers, order=order
    )
    rmse = metrics.abundance_rmse(
        fractions, truth.abundances.reshape(-1, truth.n_endmembers)
    )
    return metrics.mean_spectral_angle(factors, truth.endmembers, order=order), rmse


def _small_eels(seed, dose=200.0):
    return datasets.eels_chequerboard(
        3, shape=(32, 32), block_size=4, filter_size=5, dose=dose, random_state=seed
    )


@pytest.fixture(scope="module")
def first_scan_model():
    # A model without per-pixel intensity: a later scan's dose is then taken
    # into the endmembers (test_dose_change_*); see
    # test_intensity_model_absorbs_the_dose for the other kind.
    signal, _ = _small_eels(seed=0)
    return train_through_hyperspy(signal, pixel_scale=False)


# ------------------------------------------------------------ accuracy
def test_second_acquisition_as_good_as_its_own_model(first_scan_model):
    # New maps and 1.5 times the dose: the situation at the microscope.
    second, truth = _small_eels(seed=1, dose=300.0)
    own = second.deepcopy()
    train_through_hyperspy(own)
    with pytest.warns(UserWarning, match=r"1\.(49|50|51)\d* times as intense"):
        second.decomposition(algorithm="ae", model=first_scan_model, print_info=False)
    reapplied_angle, reapplied_rmse = _scores(second, truth)
    _, own_rmse = _scores(own, truth)
    assert reapplied_rmse <= 1.5 * own_rmse
    assert reapplied_angle < 0.03


def test_results_are_ordinary_decomposition_results(first_scan_model):
    second, _ = _small_eels(seed=1)
    model = _quiet_decomposition(second, model=first_scan_model, return_info=True)
    results = second.learning_results
    assert results.decomposition_algorithm == "ae"
    assert results.output_dimension == 3
    assert results.loadings.shape == (1024, 3)
    np.testing.assert_allclose(results.loadings.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(results.factors, model.components_.T)
    factors = second.get_decomposition_factors()
    assert isinstance(factors, exspy.signals.EELSSpectrum)
    assert factors.axes_manager.signal_axes[0].units == "eV"
    assert second.get_decomposition_loadings().axes_manager.signal_shape == (32, 32)
    reconstruction = second.get_decomposition_model()
    relative = np.linalg.norm(reconstruction.data - second.data) / np.linalg.norm(
        second.data
    )
    assert relative < 0.1


def test_same_dose_applies_the_model_unchanged(first_scan_model):
    second, _ = _small_eels(seed=1)
    before = first_scan_model.components_.copy()
    model = _quiet_decomposition(second, model=first_scan_model, return_info=True)
    assert model is first_scan_model
    spectra = second.data.reshape(-1, 200)
    # spatial="auto": a scan in memory gets the neighbourhood layer's maps.
    np.testing.assert_array_equal(
        second.learning_results.loadings,
        first_scan_model.transform(spectra, image_shape=(32, 32)),
    )
    assert not np.allclose(
        second.learning_results.loadings, first_scan_model.transform(spectra)
    )
    np.testing.assert_array_equal(first_scan_model.components_, before)


def test_a_lazy_scan_gets_the_per_pixel_fractions(first_scan_model):
    # Its chunks hold no neighbours: the same model unmixes it pixel by pixel.
    second, _ = _small_eels(seed=1)
    lazy = second.as_lazy()
    _quiet_decomposition(lazy, model=first_scan_model)
    np.testing.assert_allclose(
        np.asarray(lazy.learning_results.loadings),
        first_scan_model.transform(second.data.reshape(-1, 200)),
        rtol=0,
        atol=1e-6,
    )


def test_intensity_model_absorbs_the_dose():
    signal, _ = _small_eels(seed=0)
    model = train_through_hyperspy(signal, pixel_scale=True)
    second, _ = _small_eels(seed=1, dose=400.0)
    applied = _quiet_decomposition(second, model=model, return_info=True)
    # The intensities carry the dose: the model itself unmixes the scan, its
    # endmembers unchanged, and factors times loadings reproduce the data.
    assert applied is model
    np.testing.assert_array_equal(second.learning_results.factors, model.components_.T)
    _, intensity = model.fractions(second.data.reshape(-1, 200))
    assert np.median(intensity) == pytest.approx(2.0, rel=0.05)
    relative = np.linalg.norm(
        second.get_decomposition_model().data - second.data
    ) / np.linalg.norm(second.data)
    assert relative < 0.1


def test_dose_change_scales_a_copy_not_the_model(first_scan_model):
    second, _ = _small_eels(seed=1, dose=100.0)
    before = first_scan_model.components_.copy()
    model = _quiet_decomposition(second, model=first_scan_model, return_info=True)
    assert model is not first_scan_model
    ratio = model.data_scale_ / first_scan_model.data_scale_
    assert ratio == pytest.approx(0.5, rel=0.02)
    np.testing.assert_allclose(model.components_, ratio * before)
    np.testing.assert_array_equal(first_scan_model.components_, before)


def test_fine_tuning_keeps_or_improves_the_reconstruction(first_scan_model):
    second, _ = _small_eels(seed=2, dose=300.0)
    _quiet_decomposition(second, model=first_scan_model)
    applied_error = np.linalg.norm(second.get_decomposition_model().data - second.data)
    tuned = _quiet_decomposition(
        second, model=first_scan_model, fine_tune=True, return_info=True
    )
    tuned_error = np.linalg.norm(second.get_decomposition_model().data - second.data)
    assert tuned_error <= applied_error * 1.001
    assert tuned is not first_scan_model
    assert tuned.warm_start is True
    assert tuned.max_epochs == 30
    assert tuned.history_.initial_loss is not None
    assert tuned.history_.best_loss <= tuned.history_.initial_loss
    assert first_scan_model.warm_start is False


def test_fine_tuning_options(first_scan_model):
    second, _ = _small_eels(seed=1)
    tuned = _quiet_decomposition(
        second,
        model=first_scan_model,
        fine_tune=True,
        max_epochs=2,
        learning_rate=1e-4,
        return_info=True,
    )
    assert tuned.n_iter_ <= 2
    assert tuned.learning_rate == 1e-4


def test_model_from_file_and_from_reloaded_results(first_scan_model, tmp_path):
    second, _ = _small_eels(seed=1)
    expected = first_scan_model.transform(
        second.data.reshape(-1, 200), image_shape=(32, 32)
    )
    path = first_scan_model.save(tmp_path / "series.aeunmix")
    for source in (path, str(path)):
        _quiet_decomposition(second, model=source)
        np.testing.assert_array_equal(second.learning_results.loadings, expected)
    # Last week's results file is enough to reapply its model.
    second.save(tmp_path / "second_ae.hspy")
    third, _ = _small_eels(seed=3)
    _quiet_decomposition(third, model=hs.load(tmp_path / "second_ae.hspy"))
    np.testing.assert_array_equal(
        third.learning_results.loadings,
        first_scan_model.transform(third.data.reshape(-1, 200), image_shape=(32, 32)),
    )


# ------------------------------------------------------------------ axes
def _analytic_scan(values, abundances, *, scale_counts=1.0, signal_class=None):
    """Three smooth endmembers evaluated at any axis positions, mixed."""
    centres = (300.0, 320.0, 340.0)
    endmembers = np.stack(
        [
            200
            + 2000 * np.exp(-0.5 * ((values - centre) / 4.0) ** 2)
            + 800 * np.exp(-0.5 * ((values - centre - 9) / 6.0) ** 2)
            for centre in centres
        ]
    )
    spectra = abundances.reshape(-1, 3) @ endmembers * scale_counts
    ny, nx, _ = abundances.shape
    signal_class = signal_class or hs.signals.Signal1D
    signal = signal_class(spectra.reshape(ny, nx, -1))
    axis = signal.axes_manager.signal_axes[0]
    axis.units, axis.name = "eV", "Energy"
    if np.allclose(np.diff(values), values[1] - values[0]):
        axis.offset, axis.scale = values[0], values[1] - values[0]
    else:
        axis.convert_to_non_uniform_axis()
        axis.axis = values
    return signal


@pytest.fixture(scope="module")
def analytic_model():
    abundances = make_mixture(shape=(24, 24)).abundances
    trained = _analytic_scan(280 + 0.5 * np.arange(160), abundances)
    model = train_through_hyperspy(trained)
    return model, trained.learning_results.loadings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (272.3 + 0.5 * np.arange(180), r"offset shifted by -7\.7 eV, scale x1"),
        (270 + 0.25 * np.arange(400), r"scale x0\.5"),
        (np.sort(270 + 95 * np.linspace(0, 1, 300) ** 1.3), "non-uniform"),
        # The same window drifted by less than a channel either way: the
        # model's first or last channel lies just beyond the scan.
        (
            280.2 + 0.5 * np.arange(160),
            r"offset shifted by \+0\.2 eV.*; 1 of the model's channels lie beyond",
        ),
        (
            279.6 + 0.5 * np.arange(160),
            r"offset shifted by -0\.4 eV.*; 1 of the model's channels lie beyond",
        ),
    ],
    ids=["shifted", "finer", "non-uniform", "drifted up", "drifted down"],
)
def test_other_calibration_is_interpolated(analytic_model, values, message):
    model, trained_loadings = analytic_model
    abundances = make_mixture(shape=(24, 24)).abundances
    scan = _analytic_scan(values, abundances)
    with pytest.warns(UserWarning, match=message):
        scan.decomposition(algorithm="ae", model=model, print_info=False)
    loadings = scan.learning_results.loadings
    assert np.abs(loadings - trained_loadings).max() < 0.02
    factors = scan.learning_results.factors
    assert factors.shape == (values.size, 3)
    inside = (values >= 280) & (values <= 280 + 0.5 * 159)
    assert np.isnan(factors[~inside]).all()
    assert np.isfinite(factors[inside]).all()
    assert scan.get_decomposition_factors().axes_manager.signal_size == values.size


def test_binned_signal_with_finer_dispersion():
    abundances = make_mixture(shape=(24, 24)).abundances
    trained = _analytic_scan(
        280 + 0.5 * np.arange(160), abundances, signal_class=exspy.signals.EELSSpectrum
    )
    binned_model = _quiet_decomposition(
        trained, output_dimension=3, return_info=True, **FAST
    )
    finer = _analytic_scan(
        275 + 0.25 * np.arange(360),
        abundances,
        scale_counts=0.5,
        signal_class=exspy.signals.EELSSpectrum,
    )
    with pytest.warns(UserWarning, match=r"rescaled by x2"):
        finer.decomposition(algorithm="ae", model=binned_model, print_info=False)
    assert (
        np.abs(
            finer.learning_results.loadings - trained.learning_results.loadings
        ).max()
        < 0.02
    )


def test_range_not_covered(analytic_model):
    model, _ = analytic_model
    scan = _analytic_scan(300 + 0.5 * np.arange(160), make_mixture((8, 8)).abundances)
    with pytest.raises(
        ValueError,
        match=r"\(160 channels, 300 to 379.5 eV \(0.5 eV/channel\)\) does not cover "
        r"the range the model was trained on \(160 channels, 280 to 359.5 eV",
    ):
        scan.decomposition(algorithm="ae", model=model)


def test_axis_in_other_units_is_converted(analytic_model):
    model, trained_loadings = analytic_model
    abundances = make_mixture(shape=(24, 24)).abundances
    in_ev = _analytic_scan(280 + 0.5 * np.arange(160), abundances)
    in_kev = in_ev.deepcopy()
    axis = in_kev.axes_manager.signal_axes[0]
    axis.units, axis.offset, axis.scale = "keV", 0.28, 0.0005
    in_kev.decomposition(algorithm="ae", model=model, print_info=False)
    np.testing.assert_allclose(
        in_kev.learning_results.loadings, trained_loadings, rtol=1e-5, atol=1e-6
    )


def test_incompatible_units_refused(analytic_model):
    model, _ = analytic_model
    scan = _analytic_scan(280 + 0.5 * np.arange(160), make_mixture((8, 8)).abundances)
    scan.axes_manager.signal_axes[0].units = "nm"
    with pytest.raises(ValueError, match=r"trained on a signal axis in 'eV'.*'nm'"):
        scan.decomposition(algorithm="ae", model=model)


def test_image_signal_refused(analytic_model):
    model, _ = analytic_model
    with pytest.raises(ValueError, match=r"unmixes 1-D spectra.*signal dimension 2"):
        hs.signals.Signal2D(np.ones((4, 8, 8))).decomposition(
            algorithm="ae", model=model
        )


def test_model_trained_on_arrays_needs_the_same_channel_count(mixture):
    model = hs_aeunmix.AEUnmix(3, **FAST).fit(mixture.spectra)
    signal = to_signal(mixture)
    _quiet_decomposition(signal, model=model)
    np.testing.assert_array_equal(
        signal.learning_results.loadings, model.transform(mixture.spectra)
    )
    with pytest.raises(ValueError, match="trained on arrays of 100 channels"):
        signal.isig[:90].decomposition(algorithm="ae", model=model)


def test_signal_mask_of_the_model_is_reused(mixture):
    signal = to_signal(mixture)
    mask = np.zeros(100, dtype=bool)
    mask[90:] = True
    model = _quiet_decomposition(
        signal, output_dimension=3, signal_mask=mask, return_info=True, **FAST
    )
    again = to_signal(mixture)
    _quiet_decomposition(again, model=model)
    assert np.isnan(again.learning_results.factors[90:]).all()
    np.testing.assert_array_equal(
        again.learning_results.loadings, signal.learning_results.loadings
    )


@pytest.mark.parametrize("show", [False, True])
@pytest.mark.parametrize("reapply", [True, False])
def test_lazy_scans_obey_show_progressbar(first_scan_model, capfd, show, reapply):
    # HyperSpy's own bars of a lazy scan draw whatever its preference says;
    # show_progressbar=False hides them too, when training and when applying
    # a model (which trains nothing, so the option is no training option).
    import hyperspy._signals.lazy as lazy_module
    from hyperspy.defaults_parser import preferences

    bar, preference = lazy_module.progressbar, preferences.General.show_progressbar
    second = _small_eels(seed=1)[0].as_lazy()
    options = (
        {"model": first_scan_model}
        if reapply
        else {"output_dimension": 3, "max_epochs": 2, "init": "vca", "random_state": 0}
    )
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        second.decomposition(
            algorithm="ae", show_progressbar=show, print_info=False, **options
        )
    printed = "".join(capfd.readouterr())
    assert ("%|" in printed) is show
    assert np.isfinite(second.learning_results.loadings).all()
    assert lazy_module.progressbar is bar
    assert preferences.General.show_progressbar is preference


# ------------------------------------------------------------ bad calls
@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"output_dimension": 4}, ValueError, "disagrees with the model"),
        ({"max_epochs": 5}, TypeError, r"configure training.*fine_tune=True"),
        (
            {"signal_mask": np.zeros(200, bool)},
            ValueError,
            "signal_mask cannot be combined",
        ),
        ({"fine_tune": True, "epochs": 3}, TypeError, r"Unknown option\(s\)"),
        ({"fine_tune": "yes"}, TypeError, "fine_tune must be True or False"),
    ],
)
def test_bad_reapply_calls(first_scan_model, options, error, match):
    second, _ = _small_eels(seed=1)
    with pytest.raises(error, match=match):
        second.decomposition(algorithm="ae", model=first_scan_model, **options)


def test_fine_tune_needs_a_model(spectrum_image):
    with pytest.raises(TypeError, match="pass it with model="):
        spectrum_image.decomposition(algorithm="ae", output_dimension=3, fine_tune=True)


def test_model_with_an_estimator_instance(spectrum_image, first_scan_model):
    with pytest.raises(TypeError, match=r"Use s\.decomposition\(algorithm='ae', model"):
        spectrum_image.decomposition(
            algorithm=hs_aeunmix.AEUnmix(3), model=first_scan_model
        )


def test_unfitted_model(spectrum_image):
    with pytest.raises(ValueError, match="needs a trained model"):
        spectrum_image.decomposition(algorithm="ae", model=hs_aeunmix.AEUnmix(3))


def test_corrupt_model_file_named(spectrum_image, tmp_path):
    path = tmp_path / "broken.aeunmix"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(hs_aeunmix.ModelFileError, match=r"broken\.aeunmix"):
        spectrum_image.decomposition(algorithm="ae", model=path)


def test_single_spectrum(first_scan_model):
    second, _ = _small_eels(seed=1)
    with pytest.raises(ValueError, match=r"transform\(s\.data\.reshape\(1, -1\)\)"):
        second.inav[0, 0].decomposition(algorithm="ae", model=first_scan_model)


# ------------------------------------------------------------------ lazy
@pytest.fixture(scope="module")
def per_pixel_model():
    signal, _ = _small_eels(seed=0)
    return train_through_hyperspy(signal, pixel_scale=False, spatial=False)


def test_lazy_scan_unmixed_chunk_by_chunk(per_pixel_model):
    second, _ = _small_eels(seed=1, dose=300.0)
    eager = second.deepcopy()
    _quiet_decomposition(eager, model=per_pixel_model)
    lazy = second.as_lazy()
    lazy.data = lazy.data.rechunk((8, 32, 200))
    _quiet_decomposition(lazy, model=per_pixel_model)
    loadings = np.asarray(lazy.learning_results.loadings)
    assert np.abs(loadings - eager.learning_results.loadings).max() < 1e-3
    assert lazy.learning_results.decomposition_algorithm == "ae"


def test_lazy_fine_tuning_refused(first_scan_model):
    second, _ = _small_eels(seed=1)
    with pytest.raises(NotImplementedError, match="needs the data in memory"):
        second.as_lazy().decomposition(
            algorithm="ae", model=first_scan_model, fine_tune=True
        )


# ------------------------------------------------------ scans the model cannot fit
def test_scan_without_positive_signal_refused(first_scan_model):
    empty, _ = _small_eels(seed=1)
    empty.data[:] = 0
    with pytest.raises(ValueError, match="no positive signal"):
        empty.decomposition(algorithm="ae", model=first_scan_model, print_info=False)


def _mismatch_warnings(signal, model) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal.decomposition(algorithm="ae", model=model, print_info=False)
    return [
        w for w in caught if issubclass(w.category, hs_aeunmix.ModelMismatchWarning)
    ]


def test_a_scan_the_model_cannot_explain_is_reported(first_scan_model):
    assert first_scan_model.training_residual_ > 0
    # Another scan of the same sample, at another dose: no warning.
    second, _ = _small_eels(seed=1, dose=300.0)
    assert not _mismatch_warnings(second, first_scan_model)
    # Another sample (the same counts and noise, spectra unrelated to the
    # model's): the maps look plausible, the fit is not.
    unrelated = second.deepcopy()
    unrelated.data = second.data[..., ::-1].copy()
    [warning] = _mismatch_warnings(unrelated, first_scan_model)
    assert "x" in str(warning.message)
