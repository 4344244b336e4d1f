"""Checks of decomposition calls before any work (``_options``)."""

from __future__ import annotations

import warnings

import hyperspy.api as hs
import numpy as np
import pytest

from hs_aeunmix import AEUnmix, _options


def test_autoencoder_options_are_the_estimators_but_the_count():
    names = _options.autoencoder_options()
    assert "n_components" not in names
    assert set(names) == set(AEUnmix._get_param_names()) - {"n_components"}
    assert not set(names) & set(_options.GLUE_OPTIONS)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            "Signal1D",
            np.zeros((4, 4, 1)),
            "at least 2 channels, but this signal has 1 channel",
        ),
        ("Signal2D", np.zeros((3, 5, 5)), "unmixes 1-D spectra"),
        ("Signal1D", np.zeros((1, 10)), "holds a single spectrum"),
    ],
)
def test_signals_that_are_not_spectra_on_a_scan_are_refused(kind, data, message):
    signal = getattr(hs.signals, kind)(data)
    with pytest.raises(ValueError, match=message):
        _options.check_signal(signal, reapplying=False)


def test_a_single_spectrum_is_sent_to_transform_when_reapplying():
    with pytest.raises(ValueError, match=r"load_model\(model\)\.transform"):
        _options.check_signal(hs.signals.Signal1D(np.ones((1, 10))), reapplying=True)


def test_a_scan_of_spectra_passes():
    _options.check_signal(hs.signals.Signal1D(np.ones((2, 3, 10))), reapplying=False)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"normalize_poissonian_noise": True}, "loss='poisson'"),
        ({"centre": "signal"}, "has no offset"),
    ],
)
def test_options_that_change_the_meaning_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        _options.check_decomposition_arguments(arguments)


def test_harmless_values_of_those_options_pass():
    _options.check_decomposition_arguments(
        {"normalize_poissonian_noise": False, "centre": None}
    )


def test_make_estimator_builds_from_options_and_a_preset():
    model = _options.make_estimator("ae", 3, {"max_epochs": 7})
    assert (model.n_components, model.max_epochs) == (3, 7)
    preset = _options.make_estimator("ae", 2, {"preset": "volume"})
    assert preset.get_params() == AEUnmix.from_preset("volume", 2).get_params()


@pytest.mark.parametrize(
    ("algorithm", "output_dimension", "options", "error", "message"),
    [
        ("ae", None, {}, ValueError, "needs output_dimension"),
        ("ae", 3, {"max_epoch": 5}, TypeError, r"Unknown option\(s\) \['max_epoch'\]"),
        ("ae", 3, {"fine_tune": True}, TypeError, "pass it with model="),
        (AEUnmix(3), None, {"max_epochs": 5}, TypeError, "set them on the instance"),
        (AEUnmix(), None, {}, ValueError, "n_components=None"),
        (AEUnmix(3), 4, {}, ValueError, "disagrees with the estimator's"),
    ],
)
def test_make_estimator_refuses(algorithm, output_dimension, options, error, message):
    with pytest.raises(error, match=message):
        _options.make_estimator(algorithm, output_dimension, options)


def test_an_estimator_instance_is_used_as_given():
    estimator = AEUnmix(3)
    assert _options.make_estimator(estimator, 3, {}) is estimator


class _Trained:
    components_ = np.ones((3, 10))


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"algorithm": AEUnmix(3)}, TypeError, "an AEUnmix instance as algorithm"),
        ({"fine_tune": "yes"}, TypeError, "fine_tune must be True or False"),
        ({"output_dimension": 4}, ValueError, "output_dimension=4 disagrees"),
        ({"signal_mask": np.ones(10, bool)}, ValueError, "signal_mask cannot"),
        ({"options": {"preset": "fast"}}, TypeError, "Leave preset out"),
        ({"options": {"max_epochs": 3}}, TypeError, "Add fine_tune=True"),
        (
            {"options": {"max_epoch": 3}, "fine_tune": True},
            TypeError,
            r"Unknown option\(s\) \['max_epoch'\] for fine-tuning",
        ),
    ],
)
def test_applying_a_model_refuses(arguments, error, message):
    call = {
        "algorithm": "ae",
        "output_dimension": None,
        "signal_mask": None,
        "options": {},
        "fine_tune": False,
        **arguments,
    }
    with pytest.raises(error, match=message):
        _options.fine_tune_options(
            call["algorithm"],
            call["output_dimension"],
            call["signal_mask"],
            call["options"],
            _Trained(),
            call["fine_tune"],
        )


def test_fine_tuning_is_a_few_epochs_unless_told():
    def options(given):
        return _options.fine_tune_options("ae", 3, None, given, _Trained(), True)

    assert options({}) == {"max_epochs": _options.FINE_TUNE_EPOCHS}
    assert options({"max_epochs": 5, "learning_rate": 0.01}) == {
        "max_epochs": 5,
        "learning_rate": 0.01,
    }
    assert _options.fine_tune_options("ae", None, None, {}, _Trained(), False) is None


def _spectrum_image(signal_type: str, offset: float, units: str = "keV"):
    signal = hs.signals.Signal1D(np.ones((3, 4, 40)))
    signal.set_signal_type(signal_type)
    axis = signal.axes_manager.signal_axes[0]
    axis.units, axis.offset = units, offset
    axis.scale = 0.02 if units == "keV" else 20.0
    return signal


@pytest.mark.parametrize(
    ("offset", "units"), [(0.0, "keV"), (-0.1, "keV"), (0.08, "keV"), (40.0, "eV")]
)
def test_an_eds_spectrum_image_with_its_zero_energy_peak_warns(offset, units):
    pytest.importorskip("exspy")
    signal = _spectrum_image("EDS_TEM", offset, units)
    with pytest.warns(UserWarning, match=r"starts at .* zero-energy \(noise\) peak"):
        _options.warn_about_zero_energy_peak(signal, None)


def _zero_peak_warnings(signal, signal_mask=None) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _options.warn_about_zero_energy_peak(signal, signal_mask)
    return [w for w in caught if "zero-energy" in str(w.message)]


def test_no_zero_energy_warning_once_the_peak_is_cropped_or_masked():
    pytest.importorskip("exspy")
    assert not _zero_peak_warnings(_spectrum_image("EDS_SEM", 0.2))
    assert not _zero_peak_warnings(_spectrum_image("EDS_TEM", 120.0, "eV"))
    signal = _spectrum_image("EDS_TEM", 0.0)
    low = np.asarray(signal.axes_manager.signal_axes[0].axis) < 0.1
    assert not _zero_peak_warnings(signal, signal_mask=low)
    assert _zero_peak_warnings(signal, signal_mask=low & (np.arange(40) > 0))


def test_no_zero_energy_warning_for_other_spectra():
    pytest.importorskip("exspy")
    assert not _zero_peak_warnings(_spectrum_image("EELS", 0.0, "eV"))
    assert not _zero_peak_warnings(_spectrum_image("", 0.0))
    assert not _zero_peak_warnings(_spectrum_image("EDS_TEM", 0.0, "nm"))
