"""Tests of axis calibrations and of mapping new spectra onto a model's channels."""

from __future__ import annotations

from dataclasses import replace

import exspy
import hyperspy.api as hs
import numpy as np
import pytest

from hs_aeunmix._axes import SignalCalibration, channel_mapping, describe_difference


def _calibration(values, *, units="eV", binned=False, trained=None):
    values = np.asarray(values, dtype=float)
    steps = np.diff(values)
    return SignalCalibration(
        values=values,
        uniform=bool(np.allclose(steps, steps[0])),
        units=units,
        name="Energy",
        binned=binned,
        signal_type="",
        trained_channels=np.ones(values.size, bool) if trained is None else trained,
    )


def _spectrum(values):
    return 100 + 50 * np.sin(values / 7.0) + 0.3 * values


def test_from_signal_reads_the_axis():
    signal = exspy.signals.EELSSpectrum(np.ones((2, 3, 50)))
    axis = signal.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units, axis.name = 700.0, 0.5, "eV", "Energy loss"
    mask = np.zeros(50, dtype=bool)
    mask[:5] = True
    calibration = SignalCalibration.from_signal(signal, mask)
    np.testing.assert_allclose(calibration.values, 700 + 0.5 * np.arange(50))
    assert calibration.uniform
    assert calibration.binned
    assert (calibration.units, calibration.name) == ("eV", "Energy loss")
    assert calibration.signal_type == "EELS"
    assert calibration.trained_channels.sum() == 45
    assert calibration.describe() == "50 channels, 700 to 724.5 eV (0.5 eV/channel)"


def test_undefined_units_and_name_are_none():
    calibration = SignalCalibration.from_signal(hs.signals.Signal1D(np.ones((3, 8))))
    assert calibration.units is None
    assert calibration.name is None
    assert calibration.describe() == "8 channels, 0 to 7 (1/channel)"


@pytest.mark.parametrize(
    "values",
    [700 + 0.5 * np.arange(50), np.linspace(100, 400, 30) ** 1.2],
    ids=["uniform", "non-uniform"],
)
def test_dict_round_trip(values):
    mask = np.ones(values.size, dtype=bool)
    mask[3] = False
    calibration = replace(
        _calibration(values, trained=mask, binned=True), signal_type="EELS"
    )
    restored = SignalCalibration.from_dict(calibration.to_dict())
    np.testing.assert_allclose(restored.values, calibration.values, rtol=1e-15)
    assert restored.values.dtype == np.float64
    np.testing.assert_array_equal(restored.trained_channels, mask)
    assert restored.trained_channels.dtype == bool
    assert (restored.uniform, restored.units, restored.name) == (
        calibration.uniform,
        "eV",
        "Energy",
    )
    assert restored.binned is True
    assert restored.signal_type == "EELS"
    assert "values" in calibration.to_dict() or calibration.uniform


def test_dict_round_trip_with_every_channel_trained():
    calibration = _calibration(700 + 0.5 * np.arange(50))
    assert calibration.to_dict()["trained_channels"] is None
    restored = SignalCalibration.from_dict(calibration.to_dict())
    assert restored.trained_channels.all()
    assert restored.trained_channels.dtype == bool


def test_identical_axes_only_select_channels():
    values = 700 + 0.5 * np.arange(50)
    trained = np.ones(50, dtype=bool)
    trained[40:] = False
    mapping = channel_mapping(
        _calibration(values, trained=trained), _calibration(values)
    )
    spectra = np.arange(100.0).reshape(2, 50)
    assert mapping.is_identity
    np.testing.assert_array_equal(mapping.to_model(spectra), spectra[:, :40])
    back = mapping.to_signal_axis(np.ones((3, 40)))
    assert np.isnan(back[:, 40:]).all()
    assert (back[:, :40] == 1).all()


def test_tiny_rounding_is_identical():
    values = 700 + 0.5 * np.arange(50)
    mapping = channel_mapping(_calibration(values), _calibration(values + 1e-9))
    assert mapping.is_identity


def test_shifted_and_finer_axis_is_interpolated():
    trained_values = 700 + 1.0 * np.arange(60)
    new_values = 690.3 + 0.5 * np.arange(160)
    mapping = channel_mapping(_calibration(trained_values), _calibration(new_values))
    assert not mapping.is_identity
    mapped = mapping.to_model(_spectrum(new_values)[None])
    # Linear interpolation of a smooth spectrum: close to the exact values.
    np.testing.assert_allclose(mapped[0], _spectrum(trained_values), rtol=2e-3)
    back = mapping.to_signal_axis(_spectrum(trained_values)[None])[0]
    inside = (new_values >= 700) & (new_values <= 759)
    assert np.isnan(back[~inside]).all()
    np.testing.assert_allclose(back[inside], _spectrum(new_values[inside]), rtol=2e-3)


def test_binned_counts_follow_the_channel_width():
    trained_values = 700 + 1.0 * np.arange(60)
    new_values = 700 + 0.5 * np.arange(120)
    trained = _calibration(trained_values, binned=True)
    mapping = channel_mapping(trained, _calibration(new_values, binned=True))
    assert mapping.intensity_factor == 2.0
    # Half the channel width holds half the counts.
    mapped = mapping.to_model(0.5 * _spectrum(new_values)[None])
    np.testing.assert_allclose(mapped[0], _spectrum(trained_values), rtol=2e-3)


@pytest.mark.parametrize(
    ("trained_binned", "new_binned"), [(True, False), (False, True)]
)
def test_counts_are_rescaled_only_when_both_are_binned(trained_binned, new_binned):
    trained = _calibration(700 + 1.0 * np.arange(60), binned=trained_binned)
    new = _calibration(700 + 0.5 * np.arange(120), binned=new_binned)
    assert channel_mapping(trained, new).intensity_factor == 1.0


def test_axis_reaching_exactly_the_trained_range_is_covered():
    trained = _calibration(700 + 1.0 * np.arange(60))
    new = _calibration(700 + 0.5 * np.arange(119))  # 700 to 759 exactly
    mapping = channel_mapping(trained, new)
    mapped = mapping.to_model(_spectrum(new.values)[None])
    np.testing.assert_allclose(mapped[0], _spectrum(trained.values), rtol=2e-3)
    assert mapping.n_extrapolated == 0


def test_a_trained_channel_up_to_one_channel_beyond_takes_the_end_value():
    trained = _calibration(700 + 1.0 * np.arange(60))  # 700 to 759
    short = _calibration(700 + 0.5 * np.arange(118))  # ends at 758.5
    mapping = channel_mapping(trained, short)
    assert mapping.n_extrapolated == 1
    spectrum = _spectrum(short.values)
    mapped = mapping.to_model(spectrum[None])[0]
    assert mapped[-1] == spectrum[-1]
    np.testing.assert_allclose(mapped[:-1], _spectrum(trained.values[:-1]), rtol=2e-3)
    # A drift of 0.3 channel at the start, on an axis as coarse as the model's.
    drifted = _calibration(700.3 + 1.0 * np.arange(60))
    mapping = channel_mapping(trained, drifted)
    assert mapping.n_extrapolated == 1
    assert (
        mapping.to_model(_spectrum(drifted.values)[None])[0, 0]
        == _spectrum(drifted.values)[0]
    )
    # Beyond one of the new axis's channels: refused.
    for shorter in (
        _calibration(700 + 0.5 * np.arange(117)),  # ends at 758
        _calibration(701.01 + 1.0 * np.arange(60)),
    ):
        with pytest.raises(ValueError, match="does not cover"):
            channel_mapping(trained, shorter)


def test_descending_axis_is_interpolated():
    trained_values = np.linspace(500, 1500, 40)
    new_values = np.linspace(1600, 400, 90)
    mapping = channel_mapping(_calibration(trained_values), _calibration(new_values))
    mapped = mapping.to_model(_spectrum(new_values)[None])
    expected = np.interp(trained_values, new_values[::-1], _spectrum(new_values)[::-1])
    np.testing.assert_allclose(mapped[0], expected, rtol=1e-12)


def test_masked_training_channels_interpolate_around_them():
    trained_values = 700 + 1.0 * np.arange(60)
    kept = np.ones(60, dtype=bool)
    kept[:10] = False
    trained = _calibration(trained_values, trained=kept)
    new_values = 705.5 + 0.5 * np.arange(120)
    mapping = channel_mapping(trained, _calibration(new_values))
    assert mapping.to_model(_spectrum(new_values)[None]).shape == (1, 50)


def test_range_not_covered():
    trained = _calibration(700 + 1.0 * np.arange(60))
    with pytest.raises(
        ValueError,
        match=r"\(60 channels, 710 to 769 eV .*does not cover the range the model "
        r"was trained on \(60 channels, 700 to 759 eV.*Crop or recalibrate",
    ):
        channel_mapping(trained, _calibration(710 + 1.0 * np.arange(60)))


def test_convertible_units_are_converted():
    trained = _calibration(700 + 1.0 * np.arange(60))
    new = _calibration(0.7 + 0.001 * np.arange(60), units="keV")
    mapping = channel_mapping(trained, new)
    spectra = _spectrum(new.values * 1000)[None, :]
    np.testing.assert_allclose(
        mapping.to_model(spectra), _spectrum(trained.values)[None, :], rtol=1e-9
    )


def test_units_spelled_otherwise_are_identical():
    values = 100 + 2.0 * np.arange(60)
    trained = _calibration(values, units="cm⁻¹")
    assert channel_mapping(trained, _calibration(values, units="1/cm")).is_identity


def test_incompatible_units_are_refused():
    trained = _calibration(700 + 1.0 * np.arange(60))
    with pytest.raises(ValueError, match=r"in 'eV' .*this signal's axis is in 'nm'"):
        channel_mapping(trained, _calibration(400 + 1.0 * np.arange(60), units="nm"))


def test_describe_difference():
    trained = _calibration(700 + 1.0 * np.arange(60))
    new = _calibration(702 + 0.5 * np.arange(120))
    assert describe_difference(trained, new).endswith(
        "offset shifted by +2 eV, scale x0.5"
    )
