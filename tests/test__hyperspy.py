"""Tests of s.decomposition(algorithm="ae") inside HyperSpy."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import exspy
import hyperspy.api as hs
import numpy as np
import pytest
from _helpers import FAST, make_mixture, to_signal, train_through_hyperspy

import hs_aeunmix
from hs_aeunmix import decompose, shift_map
from hs_aeunmix.metrics import abundance_rmse, match_endmembers, spectral_angles


def test_ae_decomposition_recovers_endmembers_and_maps(spectrum_image, mixture):
    model = train_through_hyperspy(spectrum_image, init="vca")
    assert isinstance(model, hs_aeunmix.AEUnmix)
    results = spectrum_image.learning_results
    assert results.factors.shape == (100, 3)
    assert results.loadings.shape == (1024, 3)
    assert results.output_dimension == 3
    assert results.decomposition_algorithm == "ae"
    np.testing.assert_array_equal(results.factors, model.components_.T)
    factors = spectrum_image.get_decomposition_factors()
    assert np.mean(spectral_angles(factors.data, mixture.endmembers)) < 0.05
    order = match_endmembers(factors.data, mixture.endmembers)
    rmse = abundance_rmse(
        results.loadings, mixture.abundances.reshape(-1, 3), order=order, scale="none"
    )
    assert rmse < 0.05
    # Before training (the start, an untrained encoder) the maps were not there.
    start = hs_aeunmix.AEUnmix(
        3, init="vca", max_epochs=1, learning_rate=1e-9, random_state=0
    ).fit(spectrum_image.data.reshape(-1, 100))
    start_rmse = abundance_rmse(
        start.transform(spectrum_image.data.reshape(-1, 100)),
        mixture.abundances.reshape(-1, 3),
        order=match_endmembers(start.components_, mixture.endmembers),
        scale="none",
    )
    assert start_rmse > 0.05


def test_factors_and_loadings_keep_axes(spectrum_image):
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, print_info=False, **FAST
    )
    factors = spectrum_image.get_decomposition_factors()
    loadings = spectrum_image.get_decomposition_loadings()
    energy = factors.axes_manager.signal_axes[0]
    assert (energy.name, energy.units, energy.offset, energy.scale) == (
        "Energy",
        "eV",
        280.0,
        0.5,
    )
    assert loadings.axes_manager.signal_shape == (32, 32)
    for axis, name in zip(loadings.axes_manager.signal_axes, "xy", strict=True):
        assert (axis.name, axis.units, axis.scale, axis.offset) == (
            name,
            "nm",
            0.2,
            1.0,
        )


def test_decomposition_model_reconstructs_data_in_its_units(spectrum_image):
    spectrum_image.decomposition(
        algorithm="ae",
        output_dimension=3,
        print_info=False,
        init="vca",
        random_state=0,
        show_progressbar=False,
    )
    model = spectrum_image.get_decomposition_model()
    relative = np.linalg.norm(model.data - spectrum_image.data) / np.linalg.norm(
        spectrum_image.data
    )
    assert relative < 0.02


def test_estimator_instance_as_algorithm(spectrum_image):
    estimator = hs_aeunmix.AEUnmix(n_components=2, **FAST)
    returned = spectrum_image.decomposition(
        algorithm=estimator, return_info=True, print_info=False
    )
    assert returned is estimator
    assert spectrum_image.learning_results.output_dimension == 2
    assert spectrum_image.learning_results.decomposition_algorithm == "ae"


def test_eels_spectrum_round_trip(mixture):
    ny, nx, _ = mixture.abundances.shape
    eels = exspy.signals.EELSSpectrum(mixture.spectra.reshape(ny, nx, -1).copy())
    eels.axes_manager.signal_axes[0].offset = 700.0
    eels.axes_manager.signal_axes[0].units = "eV"
    eels.decomposition(algorithm="ae", output_dimension=3, print_info=False, **FAST)
    factors = eels.get_decomposition_factors()
    assert isinstance(factors, exspy.signals.EELSSpectrum)
    assert factors.axes_manager.signal_axes[0].offset == 700.0
    assert factors.axes_manager.signal_axes[0].units == "eV"


@pytest.mark.parametrize("lazy", [False, True])
def test_an_eds_tem_spectrum_unmixes_as_any_spectrum_image(mixture, lazy):
    # eXSpy's EDS-TEM signal overrides decomposition: it turns on Poisson
    # normalisation (which "ae" refuses), masks vacuum pixels and returns
    # nothing. "ae" goes past it: the same model as on a plain Signal1D.
    ny, nx, _ = mixture.abundances.shape
    data = mixture.spectra.reshape(ny, nx, -1)
    eds = exspy.signals.EDSTEMSpectrum(data.copy())
    plain = hs.signals.Signal1D(data.copy())
    if lazy:
        eds, plain = eds.as_lazy(), plain.as_lazy()
    options = {**FAST, "spatial": False}
    model = train_through_hyperspy(eds, **options)
    assert isinstance(model, hs_aeunmix.AEUnmix)
    assert not eds.learning_results.poissonian_noise_normalized
    assert isinstance(eds.get_decomposition_factors(), exspy.signals.EDSTEMSpectrum)
    train_through_hyperspy(plain, **options)
    np.testing.assert_array_equal(
        eds.learning_results.factors, plain.learning_results.factors
    )
    # Other algorithms still get eXSpy's defaults.
    eds.decomposition(algorithm="SVD", output_dimension=3, print_info=False)
    assert eds.learning_results.poissonian_noise_normalized


def test_unmixing_an_eds_map_that_keeps_its_zero_energy_peak_warns(mixture):
    ny, nx, _ = mixture.abundances.shape
    eds = exspy.signals.EDSSEMSpectrum(mixture.spectra.reshape(ny, nx, -1).copy())
    axis = eds.axes_manager.signal_axes[0]
    axis.units, axis.offset, axis.scale = "keV", 0.0, 0.01
    with pytest.warns(UserWarning, match="zero-energy"):
        train_through_hyperspy(eds, **FAST)


def test_line_scan(mixture):
    line = hs.signals.Signal1D(mixture.spectra[:200].copy())
    line.decomposition(algorithm="ae", output_dimension=3, print_info=False, **FAST)
    assert line.get_decomposition_loadings().axes_manager.signal_shape == (200,)
    assert line.learning_results.loadings.shape == (200, 3)


def test_single_spectrum_refused(mixture):
    single = hs.signals.Signal1D(mixture.spectra[0].copy())
    with pytest.raises(
        ValueError, match=r"holds a single spectrum \(navigation dimension 0\)"
    ):
        single.decomposition(algorithm="ae", output_dimension=2)


def test_image_signal_refused():
    image = hs.signals.Signal2D(np.ones((4, 8, 8)))
    with pytest.raises(ValueError, match=r"unmixes 1-D spectra.*signal dimension 2"):
        image.decomposition(algorithm="ae", output_dimension=2)


def test_navigation_mask_matches_builtin_algorithms(mixture):
    # A non-square scan tells array order (y, x) from display order (x, y).
    signal = hs.signals.Signal1D(mixture.spectra.reshape(32, 32, -1)[:, :24].copy())
    mask = np.zeros((32, 24), dtype=bool)
    mask[:4] = True
    for algorithm in ("SVD", "ae"):
        options = FAST if algorithm == "ae" else {}
        signal.decomposition(
            algorithm=algorithm,
            output_dimension=3,
            navigation_mask=mask.T,
            print_info=False,
            **options,
        )
        loadings = signal.learning_results.loadings.reshape(32, 24, 3)
        assert np.isnan(loadings[:4]).all(), algorithm
        assert np.isfinite(loadings[4:]).all(), algorithm


def test_error_message_mask_excludes_nan_pixels(spectrum_image):
    signal = hs.signals.Signal1D(spectrum_image.data[:, :24].copy())
    signal.data[3, 0, 5] = np.nan
    # The expression the NaN error message recommends:
    mask = (~np.isfinite(signal.data).all(axis=-1)).T
    signal.decomposition(
        algorithm="ae",
        output_dimension=3,
        navigation_mask=mask,
        print_info=False,
        **FAST,
    )
    loadings = signal.learning_results.loadings.reshape(32, 24, 3)
    assert np.isnan(loadings[3, 0]).all()
    assert np.isfinite(loadings).sum() == (32 * 24 - 1) * 3


def test_signal_mask(spectrum_image):
    mask = np.zeros(100, dtype=bool)
    mask[90:] = True
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, signal_mask=mask, print_info=False, **FAST
    )
    factors = spectrum_image.learning_results.factors
    assert factors.shape == (100, 3)
    assert np.isnan(factors[90:]).all()
    assert np.isfinite(factors[:90]).all()


def test_save_and_reload_keeps_results(spectrum_image, tmp_path, caplog):
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, print_info=False, **FAST
    )
    path = tmp_path / "unmixed.hspy"
    with caplog.at_level(logging.WARNING):
        spectrum_image.save(path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    reloaded = hs.load(path)
    np.testing.assert_array_equal(
        reloaded.learning_results.factors, spectrum_image.learning_results.factors
    )
    np.testing.assert_array_equal(
        reloaded.learning_results.loadings, spectrum_image.learning_results.loadings
    )
    assert reloaded.learning_results.decomposition_algorithm == "ae"
    assert reloaded.learning_results.output_dimension == 3


def test_print_info_is_short(spectrum_image, capsys):
    spectrum_image.decomposition(algorithm="ae", output_dimension=3, **FAST)
    printed = capsys.readouterr().out
    assert "AEUnmix(" in printed
    # HyperSpy's lines, then how stable each endmember is across starts (a
    # title, a header, one line per endmember and the verdict), then what
    # each endmember shows (EELS edges here, named from eXSpy's database).
    table = printed[printed.index("Starts trained: vca") :].splitlines()
    described = [line for line in table if line.startswith("Endmembers: ")]
    assert len(described) == 1
    assert described[0].startswith("Endmembers: 0: ")
    assert sum(line.startswith(("Identified", "Not identified")) for line in table) == 1
    # And how far the per-pixel uncertainty can be trusted: from one start,
    # a lower bound, and no error bar for the endmembers not identified.
    (trust,) = [line for line in table if line.startswith("Uncertainty ")]
    assert "a lower bound" in trust
    unidentified = "Not identified" in printed
    assert ("no error bar for endmembers" in trust) is unidentified
    assert len(table) <= 2 + 3 + 4
    assert len(printed.splitlines()) <= 10 + len(table)


@pytest.mark.parametrize("elements", [None, ["Co"], "Co", ["Co", "Xx"]])
def test_print_info_names_only_the_specimens_elements(capsys, elements):
    # Co L2,3, Ni L2,3 and Pt (no edge in 700-899 eV): s.add_elements (here
    # its metadata) tells print_info which elements the specimen holds.
    from hs_aeunmix.datasets import eels_chequerboard

    signal, _ = eels_chequerboard(
        3, shape=(16, 16), block_size=4, filter_size=3, random_state=0
    )
    if not isinstance(elements, list | type(None)) or "Xx" in (elements or []):
        # eXSpy's EELS signals refuse such metadata; a plain Signal1D on an
        # energy axis in eV (still described as EELS) does not.
        signal.set_signal_type("")
    if elements is not None:
        signal.metadata.set_item("Sample.elements", elements)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal.decomposition(algorithm="ae", output_dimension=3, **FAST)
    # Metadata written by hand may name what eXSpy does not know: said, and
    # left out, never a failed print_info.
    unknown = [w for w in caught if "Sample.elements holds ['Xx']" in str(w.message)]
    assert len(unknown) == (elements == ["Co", "Xx"])
    printed = capsys.readouterr().out
    assert "Co L3" in printed
    assert ("Ni L3" in printed) is (elements is None)


def test_progressbar_shown_on_request(spectrum_image, capsys, monkeypatch):
    from hs_aeunmix import _training

    bars = []

    def recording(*args, **kwargs):
        bars.append((kwargs["desc"], kwargs["disable"]))
        return real(*args, **kwargs)

    real = _training.progressbar
    monkeypatch.setattr(_training, "progressbar", recording)
    spectrum_image.decomposition(
        algorithm="ae",
        output_dimension=3,
        print_info=False,
        max_epochs=8,
        show_progressbar=True,
        random_state=0,
    )
    # One bar per start, named, then the kept start's training; the first
    # reaches the terminal (later ones may be cleared before they refresh).
    assert "Start 1/3: ICA" in capsys.readouterr().err
    names = [name for name, _ in bars]
    assert names[:3] == ["Start 1/3: ICA", "Start 2/3: SPA", "Start 3/3: VCA"]
    assert names[3].startswith("Training the kept start (")
    assert not any(disabled for _, disabled in bars)
    bars.clear()
    spectrum_image.decomposition(
        algorithm="ae",
        output_dimension=3,
        print_info=False,
        max_epochs=2,
        show_progressbar=False,
        random_state=0,
    )
    assert "Start 1/3" not in capsys.readouterr().err
    assert bars
    assert all(disabled for _, disabled in bars)


def test_other_algorithms_untouched(spectrum_image):
    spectrum_image.decomposition(algorithm="SVD", output_dimension=3, print_info=False)
    assert spectrum_image.learning_results.decomposition_algorithm == "SVD"
    spectrum_image.decomposition(False, "NMF", 2, print_info=False, max_iter=50)
    assert spectrum_image.learning_results.factors.shape == (100, 2)


def test_seeded_decomposition_is_reproducible(mixture):
    first, second = to_signal(mixture), to_signal(mixture)
    for signal in (first, second):
        signal.decomposition(
            algorithm="ae", output_dimension=3, print_info=False, **FAST
        )
    np.testing.assert_array_equal(
        first.learning_results.loadings, second.learning_results.loadings
    )
    np.testing.assert_array_equal(
        first.learning_results.factors, second.learning_results.factors
    )


# ------------------------------------------------------------- bad input
def _assert_unchanged_after(signal, error, match, **options):
    before = signal.data.copy()
    dtype, shape = signal.data.dtype, signal.data.shape
    with pytest.raises(error, match=match):
        signal.decomposition(algorithm="ae", print_info=False, **{**FAST, **options})
    assert signal.data.dtype == dtype
    assert signal.data.shape == shape
    np.testing.assert_array_equal(signal.data, before)


def test_missing_output_dimension(spectrum_image):
    _assert_unchanged_after(spectrum_image, ValueError, "needs output_dimension")


@pytest.mark.parametrize("output_dimension", [0, -2])
def test_output_dimension_below_one(spectrum_image, output_dimension):
    _assert_unchanged_after(
        spectrum_image,
        ValueError,
        r"'n_components' parameter of AEUnmix must be an int in the range \[1",
        output_dimension=output_dimension,
    )


def test_output_dimension_above_channels(spectrum_image):
    _assert_unchanged_after(
        spectrum_image,
        ValueError,
        r"n_components=101 must be between 1 and the "
        r"number of spectral channels \(100\)",
        output_dimension=101,
    )


def test_nan_values(spectrum_image):
    spectrum_image.data[2, 3, 4] = np.nan
    _assert_unchanged_after(
        spectrum_image,
        ValueError,
        r"1 NaN and 0 inf values in 1 of 1024 spectra.*"
        "navigation_mask",
        output_dimension=3,
    )


def test_inf_values(spectrum_image):
    spectrum_image.data[2, 3, :3] = np.inf
    _assert_unchanged_after(
        spectrum_image, ValueError, "0 NaN and 3 inf values", output_dimension=3
    )


def test_integer_data_accepted_and_untouched():
    counts = to_signal(make_mixture(counts=30))
    counts.change_dtype("int32")
    before = counts.data.copy()
    counts.decomposition(algorithm="ae", output_dimension=3, print_info=False, **FAST)
    assert counts.data.dtype == np.int32
    np.testing.assert_array_equal(counts.data, before)
    assert counts.learning_results.loadings.shape == (1024, 3)


def test_negative_values_warn_and_data_untouched(spectrum_image):
    spectrum_image.data -= 60
    before = spectrum_image.data.copy()
    with pytest.warns(UserWarning, match="negative values"):
        spectrum_image.decomposition(
            algorithm="ae", output_dimension=3, print_info=False, **FAST
        )
    np.testing.assert_array_equal(spectrum_image.data, before)


def test_complex_data(spectrum_image):
    spectrum_image.change_dtype("complex128")
    _assert_unchanged_after(
        spectrum_image, ValueError, "Complex data not supported", output_dimension=3
    )


def test_too_few_pixels(mixture):
    small = hs.signals.Signal1D(mixture.spectra[:6].copy())
    _assert_unchanged_after(
        small, ValueError, "at least 10 spectra", output_dimension=3
    )


def test_non_uniform_axis_with_conv_encoder(spectrum_image):
    spectrum_image.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    _assert_unchanged_after(
        spectrum_image,
        ValueError,
        "needs equally spaced channels.*interpolate_on_axis",
        output_dimension=3,
        encoder="conv",
    )


def test_non_uniform_axis_with_dense_encoder(spectrum_image):
    axis = spectrum_image.axes_manager.signal_axes[0]
    axis.convert_to_non_uniform_axis()
    spectrum_image.decomposition(
        algorithm="ae", output_dimension=3, print_info=False, **FAST
    )
    factors = spectrum_image.get_decomposition_factors()
    np.testing.assert_array_equal(factors.axes_manager.signal_axes[0].axis, axis.axis)


def test_poissonian_normalisation_refused(spectrum_image):
    _assert_unchanged_after(
        spectrum_image,
        ValueError,
        "loss='poisson'",
        output_dimension=3,
        normalize_poissonian_noise=True,
    )


def test_unknown_option(spectrum_image):
    _assert_unchanged_after(
        spectrum_image,
        TypeError,
        r"Unknown option\(s\) \['epochs'\].*max_epochs",
        output_dimension=3,
        epochs=4,
    )


def test_options_with_estimator_instance_refused(spectrum_image):
    with pytest.raises(TypeError, match="set them on the instance"):
        spectrum_image.decomposition(
            algorithm=hs_aeunmix.AEUnmix(n_components=3), max_epochs=3
        )


def test_lazy_training_streams_a_bounded_sample_and_unmixes_every_pixel(
    monkeypatch,
):
    from hs_aeunmix import _adapters

    # Counting noise: every pixel's spectrum is distinct, so each row of the
    # training sample can be traced to its pixel.
    spectrum_image = to_signal(make_mixture(counts=200))

    monkeypatch.setattr(_adapters, "MAX_TRAINING_PIXELS", 200)
    trained_on = []
    real_fit = hs_aeunmix.AEUnmix._fit

    def recording_fit(self, X, *args, **kwargs):
        trained_on.append(np.array(X))  # a copy: training may overwrite X
        return real_fit(self, X, *args, **kwargs)

    monkeypatch.setattr(hs_aeunmix.AEUnmix, "_fit", recording_fit)
    lazy = spectrum_image.as_lazy()
    lazy.rechunk(nav_chunks=(8, 8))
    model = train_through_hyperspy(lazy, **FAST)
    # Trained once, on 200 distinct spectra of the scan drawn from its chunks.
    [sample] = trained_on
    data = spectrum_image.data.reshape(-1, spectrum_image.data.shape[-1])
    rows = [np.flatnonzero((data == spectrum).all(axis=1))[0] for spectrum in sample]
    assert sample.shape == (200, data.shape[1])
    # Kept in the network's precision, although HyperSpy hands over float64.
    assert sample.dtype == np.float32
    assert len(set(rows)) == 200
    assert np.ptp(rows) > data.shape[0] // 2  # from all over the scan
    # Every pixel unmixed by the trained model; the signal stays lazy.
    results = lazy.learning_results
    assert results.loadings.shape == (data.shape[0], 3)
    np.testing.assert_allclose(results.loadings, model.transform(data), atol=1e-6)
    np.testing.assert_allclose(results.factors, model.components_.T, rtol=1e-6)
    assert lazy._lazy


def test_lazy_spatial_training_refused(spectrum_image):
    with pytest.raises(NotImplementedError, match=r"s\.compute\(\)"):
        spectrum_image.as_lazy().decomposition(
            algorithm="ae", output_dimension=3, spatial=True
        )


def test_import_hyperspy_api_with_extension_installed():
    # HyperSpy reads every installed extension's yaml at import time.
    code = "import hyperspy.api as hs, hs_aeunmix; print(hs.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    from importlib.metadata import entry_points

    names = [ep.name for ep in entry_points(group="hyperspy.extensions")]
    assert "hs_aeunmix" in names


def _drifting_scan(amplitude: float, seed: int = 0):
    """Three blocks of peaked spectra whose axis drifts smoothly over the scan.

    Returns the signal and the true offset of each pixel, in eV.
    """
    rng = np.random.default_rng(seed)
    channels = np.arange(96.0)
    centres = ([20, 60], [35, 75], [48])
    endmembers = 100 * np.stack(
        [
            sum(np.exp(-0.5 * ((channels - c) / 2.0) ** 2) for c in peaks)
            for peaks in centres
        ]
    )
    y, x = np.mgrid[:20, :20]
    blocks = np.stack([x < 7, (x >= 7) & (x < 14), x >= 14], -1).reshape(-1, 3)
    fractions = 0.8 * blocks + 0.2 * rng.dirichlet(np.ones(3), 400)
    offsets = (amplitude * np.sin(y / 6.0) * np.cos(x / 5.0)).ravel()
    spectra = np.stack(
        [
            np.interp(channels - offset, channels, mixture)
            for offset, mixture in zip(offsets, fractions @ endmembers, strict=True)
        ]
    )
    signal = hs.signals.Signal1D(rng.poisson(spectra).reshape(20, 20, 96))
    signal.axes_manager[-1].scale = 0.5
    signal.axes_manager[-1].units = "eV"
    signal.axes_manager[0].units = "nm"
    return signal, 0.5 * offsets.reshape(20, 20)


def test_shift_map_follows_the_drift_of_a_drift_aware_model():
    signal, offsets = _drifting_scan(amplitude=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        decompose(signal, 3, max_shift=3, **{**FAST, "max_epochs": 3})
    shifts = shift_map(signal)
    assert isinstance(shifts, hs.signals.Signal2D)
    assert shifts.data.shape == (20, 20)
    assert shifts.axes_manager[0].units == "nm"
    assert shifts.metadata.Signal.quantity == "Shift (eV)"
    # In eV, the sign and pattern of the drift (the mean offset is free:
    # the endmembers may sit anywhere along the drift).
    assert np.corrcoef(shifts.data.ravel(), offsets.ravel())[0, 1] > 0.5
    # Without drift-aware decoding there is no offset to report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        decompose(signal, 3, **FAST)
    assert not shift_map(signal).data.any()
