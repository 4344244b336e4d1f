"""A sample series unmixed as one problem (decompose_series)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import FAST

import hs_aeunmix
from hs_aeunmix import _joint, _presence, datasets, metrics
from hs_aeunmix._axes import SignalCalibration

OPTIONS = {**FAST, "max_epochs": 10}


@pytest.fixture(scope="module")
def series():
    return datasets.eels_series(4, (12, 12), random_state=1)


@pytest.fixture(scope="module")
def fit(series):
    signals, _, _ = series
    return hs_aeunmix.decompose_series([s.deepcopy() for s in signals], 3, **OPTIONS)


@pytest.fixture(scope="module")
def per_pixel_fit(series):
    signals, _, _ = series
    return hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals], 3, spatial=False, **OPTIONS
    )


def scores(fit, scan, truth):
    trained = fit.model.signal_calibration_.trained_channels
    reference = datasets.GroundTruth(
        truth.endmembers[:, trained], truth.abundances, truth.names, None
    )
    loadings = scan.signal.learning_results.loadings[:, :3]
    return metrics.unmixing_scores(fit.model.components_, loadings, reference)


def test_one_model_unmixes_every_scan_better_than_each_alone(series, fit):
    signals, truths, _ = series
    joint = [
        scores(fit, scan, truth) for scan, truth in zip(fit.scans, truths, strict=True)
    ]
    # Endmember k is the same phase in every scan.
    assert len({tuple(s["order"]) for s in joint}) == 1
    for scan, signal, truth, score in zip(
        fit.scans, signals, truths, joint, strict=True
    ):
        alone = signal.deepcopy()
        model = alone.decomposition(
            algorithm="ae",
            output_dimension=3,
            return_info=True,
            print_info=False,
            **OPTIONS,
        )
        alone_score = metrics.unmixing_scores(
            model.components_, alone.learning_results.loadings[:, :3], truth
        )
        assert score["mean_sad_rad"] < 0.04
        assert score["mean_sad_rad"] < 0.5 * alone_score["mean_sad_rad"]
        # Every scan has its own maps in its learning results.
        assert scan.signal.learning_results.loadings.shape == (144, 3)


def test_the_phase_absent_from_a_scan_gets_a_near_zero_map(series, fit):
    _, truths, _ = series
    absent = [i for i, t in enumerate(truths) if t.abundances[..., 2].max() == 0]
    assert absent == [3]
    present = scores(fit, fit.scans[0], truths[0])["fractions"][:, 2].mean()
    missing = scores(fit, fit.scans[3], truths[3])["fractions"][:, 2].mean()
    assert missing < 0.1 < present


@pytest.fixture(scope="module")
def longer_series():
    """Six scans of 24 x 24, trained as a user would (the default length)."""
    signals, truths, _ = datasets.eels_series(6, (24, 24), random_state=2)
    fits = {
        zero: hs_aeunmix.decompose_series(
            [s.deepcopy() for s in signals], 3, random_state=0, zero_absent=zero
        )
        for zero in (True, False)
    }
    return signals, truths, fits[True], fits[False]


def test_a_scan_found_to_lack_a_phase_gets_a_zero_map_for_it(longer_series):
    _, truths, fit, kept_fit = longer_series
    absent = [i for i, t in enumerate(truths) if t.abundances[..., 2].max() == 0]
    assert absent == [3]
    pt = scores(fit, fit.scans[0], truths[0])["order"][2]
    expected = np.zeros((6, 3), dtype=bool)
    expected[3, pt] = True
    # Decided on the scans' spectra, and reported whether or not acted on.
    np.testing.assert_array_equal(fit.absent, expected)
    np.testing.assert_array_equal(kept_fit.absent, expected)
    table = str(fit).splitlines()
    assert table[5].endswith(f"| {pt} |")
    assert table[2].endswith("| none |")
    kept = kept_fit.scans[3].signal.learning_results.loadings
    zeroed = fit.scans[3].signal.learning_results.loadings
    np.testing.assert_array_equal(zeroed[:, pt], 0.0)
    np.testing.assert_array_equal(np.delete(zeroed, pt, 1), np.delete(kept, pt, 1))
    # As trained, the map leaks: the data fix the endmembers only so closely.
    leak = scores(kept_fit, kept_fit.scans[3], truths[3])
    assert leak["fractions"][:, 2].mean() > 0.02
    zero = scores(fit, fit.scans[3], truths[3])
    assert zero["abundance_rmse"] < leak["abundance_rmse"]
    # Every other scan keeps its maps, the phase where it is present.
    for number in (0, 1, 2, 4, 5):
        np.testing.assert_array_equal(
            fit.scans[number].signal.learning_results.loadings,
            kept_fit.scans[number].signal.learning_results.loadings,
        )
    present = scores(fit, fit.scans[0], truths[0])["fractions"][:, 2].mean()
    assert present > 0.1


@pytest.mark.parametrize("tested", [None, 100])
def test_a_precipitate_keeps_its_phase_where_the_rest_of_the_scan_lacks_it(
    longer_series, tested, monkeypatch
):
    signals, truths, fit, _ = longer_series
    # One pure Pt pixel in the scan that lacks Pt: its level stays below
    # the ratio (0.21 of the series' median), but that pixel holds Pt.
    disc = np.zeros((24, 24), dtype=bool)
    disc[12, 8] = True
    truth = truths[3]
    abundances = truth.abundances.copy()
    abundances[disc] = [0.0, 0.0, 1.0]
    rates = abundances @ truth.endmembers
    rates *= truth.noiseless.sum() / rates.sum()
    with_precipitate = signals[3].deepcopy()
    rng = np.random.default_rng(0)
    with_precipitate.data = rng.poisson(rates).astype(signals[3].data.dtype)
    series = [s.deepcopy() for s in signals]
    series[3] = with_precipitate
    if tested:
        # Few spectra tested: the sample misses the pixel, the map does not.
        monkeypatch.setattr(_presence, "PRESENCE_PIXELS", tested)
    result = hs_aeunmix.decompose_series(series, model=fit.model)
    pt = scores(fit, fit.scans[0], truths[0])["order"][2]
    assert not result.absent.any()
    assert result.scans[3].levels.n_holding[pt] == (0 if tested else 1)
    reference = datasets.GroundTruth(
        truth.endmembers[:, fit.model.signal_calibration_.trained_channels],
        abundances,
        truth.names,
        None,
    )
    loadings = result.scans[3].signal.learning_results.loadings[:, :3]
    fractions = metrics.unmixing_scores(fit.model.components_, loadings, reference)
    assert fractions["fractions"][disc.ravel(), 2].mean() > 0.5


def test_a_series_model_applied_to_the_series_decides_the_same(longer_series):
    signals, _, fit, _ = longer_series
    applied = hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals], model=fit.model
    )
    np.testing.assert_array_equal(applied.absent, fit.absent)
    assert applied.absent.sum() == 1
    scan, phase = np.argwhere(applied.absent)[0]
    loadings = applied.scans[scan].signal.learning_results.loadings
    np.testing.assert_array_equal(loadings[:, phase], 0.0)


def test_a_new_series_model_is_pulled_tight_so_the_absent_phase_leaks_less(series, fit):
    signals, truths, _ = series
    assert fit.model.min_volume_weight == _joint.SERIES_MIN_VOLUME_WEIGHT
    loose = hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals],
        3,
        min_volume_weight=0.0,
        zero_absent=False,
        **OPTIONS,
    )
    assert loose.model.min_volume_weight == 0.0

    def absent_fraction(result):
        return scores(result, result.scans[3], truths[3])["fractions"][:, 2].mean()

    def mean_angle(result):
        return np.mean(
            [
                scores(result, scan, truth)["mean_sad_rad"]
                for scan, truth in zip(result.scans, truths, strict=True)
            ]
        )

    assert absent_fraction(fit) < absent_fraction(loose) - 0.01
    assert mean_angle(fit) < mean_angle(loose)
    # A preset is a paper's method: left as the paper has it.
    assert "min_volume_weight" not in _joint._series_options({"preset": "daeu"})


def test_offsets_are_measured_and_uncertain_scans_are_not_trained_on(series, fit):
    _, _, offsets = series
    scale = fit.signals[0].axes_manager.signal_axes[0].scale
    measured = fit.offsets
    known = [
        scan.offset_uncertainty <= _joint.OFFSET_TOLERANCE * scale for scan in fit.scans
    ]
    # The low-dose third scan's halves disagree: not trained on, and said so.
    assert known == [True, True, False, True]
    assert [scan.n_sampled for scan in fit.scans] == [144, 144, 0, 144]
    np.testing.assert_allclose(measured[known], offsets[known], atol=0.3 * scale)
    assert "± " in str(fit)


def test_an_offsets_standard_error_covers_the_counting_noise():
    signals, _, offsets = datasets.eels_series(10, (32, 32), random_state=0)
    calibration = SignalCalibration.from_signal(signals[0])
    reference = _joint._mean_spectra(signals[0], calibration)[0]
    scale = calibration.scale

    def measured(number):
        means = _joint._mean_spectra(signals[number], calibration)
        assert len(means) == 1 + _joint.OFFSET_SUBSETS
        offset, error = _joint._measured_offset(reference, list(means), 5.0)
        return offset * scale - offsets[number], error * scale

    # Low-dose scans 3 and 9: off by 0.22 and 0.30 channels, which the
    # halves' spread put at 0.001 and 0.043; the standard error, 0.25 and 0.16.
    for number in (2, 8):
        error, standard_error = measured(number)
        assert standard_error > 0.1 * scale
        assert abs(error) < 3 * standard_error
    # A well-exposed scan's offset is known to a few hundredths of a channel.
    assert measured(1)[1] < 0.05 * scale
    single = signals[1].inav[0, 0]
    assert np.isnan(
        _joint._measured_offset(
            reference, list(_joint._mean_spectra(single, calibration)), 5.0
        )[1]
    )


def test_the_offset_of_a_shifted_spectrum_is_found_to_a_tenth_of_a_channel():
    channels = np.arange(200.0)
    spectrum = (
        1000 / (1 + channels)
        + 50 * (channels > 80)
        + 30 * np.exp(-0.5 * ((channels - 140) / 3) ** 2)
    )
    for shift in (-2.3, 0.0, 0.45, 1.7):
        shifted = np.interp(channels - shift, channels, spectrum)
        assert _joint._offset(spectrum, shifted, 5.0) == pytest.approx(shift, abs=0.1)
    assert _joint._offset(spectrum, spectrum, 0.0) == 0.0


def test_without_offset_correction_the_endmembers_blur(series, fit):
    signals, truths, _ = series
    uncorrected = hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals], 3, max_offset=0.0, **OPTIONS
    )
    assert np.allclose(uncorrected.offsets, 0.0)
    blurred = scores(uncorrected, uncorrected.scans[0], truths[0])["mean_sad_rad"]
    sharp = scores(fit, fit.scans[0], truths[0])["mean_sad_rad"]
    assert sharp < 0.7 * blurred


def test_a_saved_model_is_applied_and_continued(series, fit, tmp_path):
    signals, _, _ = series
    path = fit.model.save(tmp_path / "series.aeunmix")
    applied = hs_aeunmix.decompose_series([s.deepcopy() for s in signals], model=path)
    assert [scan.n_sampled for scan in applied.scans] == [0, 0, 0, 0]
    np.testing.assert_array_equal(applied.model.components_, fit.model.components_)
    # Measured against the model's endmembers, whose mean is another
    # composition than the first scan's: the same offsets up to a constant.
    scale = fit.signals[0].axes_manager.signal_axes[0].scale
    relative = applied.offsets - applied.offsets[0]
    np.testing.assert_allclose(relative, fit.offsets, atol=0.15 * scale)
    # Each scan keeps the model in its own frame: reapplied from the scan's
    # results, it gives the scan's maps again (offset included).
    scan = fit.signals[1].deepcopy()
    stored = hs_aeunmix.load_model(fit.signals[1])
    np.testing.assert_allclose(
        stored.signal_calibration_.values - fit.model.signal_calibration_.values,
        fit.offsets[1],
    )
    scan.decomposition(algorithm="ae", model=fit.signals[1], print_info=False)
    np.testing.assert_allclose(
        scan.learning_results.loadings,
        fit.signals[1].learning_results.loadings,
        rtol=1e-6,
        atol=1e-9,
    )
    continued = hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals[:2]], model=path, fine_tune=True, max_epochs=3
    )
    # Trained on: a warm start of three epochs (from the saved weights).
    assert continued.model.history_.n_epochs == 3
    assert continued.model.warm_start
    assert [scan.n_sampled for scan in continued.scans] == [144, 144]


def test_a_single_scans_model_refuses_a_scan_shifted_beyond_a_channel(series):
    # It covers every channel of its scan: the second scan, 1.5 channels off,
    # leaves 1.5 of them without data, and the error says what to do.
    signals, _, offsets = series
    assert 1.0 < offsets[1] < 2.0
    single = signals[0].deepcopy()
    model = single.decomposition(
        algorithm="ae",
        output_dimension=3,
        return_info=True,
        print_info=False,
        **FAST,
    )
    with pytest.raises(
        ValueError,
        match=r"Series scan 2 of 4: aligned to the model by its measured offset of "
        r"\+1\.\d+ eV, it no longer covers the model's channels \(This signal's "
        r"axis .* unmix it as one problem",
    ):
        hs_aeunmix.decompose_series([s.deepcopy() for s in signals], model=model)


def test_each_map_gets_a_spatial_layer_fitted_to_that_scan(series, fit, per_pixel_fit):
    _, truths, _ = series
    # The same endmembers: the layer refines the maps only.
    np.testing.assert_array_equal(
        fit.model.components_, per_pixel_fit.model.components_
    )
    assert per_pixel_fit.model.module_.spatial is None
    assert fit.model.module_.spatial is not None
    rmse = [
        [
            scores(result, scan, truth)["abundance_rmse"]
            for scan, truth in zip(result.scans, truths, strict=True)
        ]
        for result in (fit, per_pixel_fit)
    ]
    # The low-dose third scan, whose per-pixel maps are the noisiest, gains
    # most; every scan gains.
    spatial, per_pixel = np.array(rmse)
    assert np.all(spatial < per_pixel)
    assert spatial[2] < 0.8 * per_pixel[2]
    # Each scan's layer is its own: fitted to that scan, stored with its
    # results (reapplying them gives the same maps, see below).
    layers = [
        hs_aeunmix.load_model(signal).module_.spatial.log_sharpness.item()
        for signal in fit.signals
    ]
    assert len(set(layers)) == len(layers)
    assert fit.model.module_.spatial.log_sharpness.item() not in layers


def test_spatial_true_needs_every_scan_in_memory_on_a_grid(series):
    signals, _, _ = series
    with pytest.raises(ValueError, match="spatial=True needs each pixel's neighbours"):
        hs_aeunmix.decompose_series(
            [signals[0], signals[1].as_lazy()], 3, spatial=True, **OPTIONS
        )


def test_line_scans_get_a_layer_and_lazy_scans_stay_per_pixel(series):
    signals, _, _ = series
    lines = [signal.inav[:, 5] for signal in signals[:2]]
    fit = hs_aeunmix.decompose_series(lines, 3, **{**OPTIONS, "max_epochs": 3})
    assert fit.model.module_.spatial is not None
    for scan in fit.signals:
        assert hs_aeunmix.load_model(scan).module_.spatial is not None
        assert scan.learning_results.loadings.shape == (12, 3)
    mixed = [signals[0].deepcopy(), signals[1].deepcopy().as_lazy()]
    fit = hs_aeunmix.decompose_series(mixed, 3, **{**OPTIONS, "max_epochs": 3})
    # The layer is fitted on the scan in memory; the lazy one is unmixed
    # chunk by chunk, each pixel alone (as a lazy scan trained alone is).
    assert fit.model.module_.spatial is not None
    per_pixel, refined = signals[1].deepcopy().as_lazy(), signals[1].deepcopy()
    for scan in (per_pixel, refined):
        scan.decomposition(algorithm="ae", model=fit.signals[1], print_info=False)
    lazy_maps = np.asarray(fit.signals[1].learning_results.loadings)
    np.testing.assert_allclose(
        lazy_maps, np.asarray(per_pixel.learning_results.loadings), rtol=1e-5
    )
    assert not np.allclose(lazy_maps, refined.learning_results.loadings)


def test_files_and_lazy_scans_give_the_same_model(series, per_pixel_fit, tmp_path):
    # Lazy scans are unmixed chunk by chunk, without neighbours: their maps
    # are the per-pixel ones.
    fit = per_pixel_fit
    signals, _, _ = series
    paths = []
    for number, signal in enumerate(signals):
        paths.append(tmp_path / f"scan{number}.hspy")
        signal.save(paths[-1])
    from_files = hs_aeunmix.decompose_series(paths, 3, lazy=True, **OPTIONS)
    np.testing.assert_allclose(
        from_files.model.components_, fit.model.components_, rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(from_files.signals[1].learning_results.loadings),
        fit.signals[1].learning_results.loadings,
        rtol=1e-4,
        atol=1e-6,
    )


def test_bad_calls_say_what_is_wrong(series, fit):
    signals, _, _ = series
    with pytest.raises(TypeError, match="list of signals or file paths"):
        hs_aeunmix.decompose_series("scan.hspy", 3)
    with pytest.raises(ValueError, match="at least one scan"):
        hs_aeunmix.decompose_series([], 3)
    with pytest.raises(ValueError, match="needs output_dimension"):
        hs_aeunmix.decompose_series(signals[:2])
    with pytest.raises(ValueError, match="max_offset must be 0 or more"):
        hs_aeunmix.decompose_series(signals[:2], 3, max_offset=-1)
    with pytest.raises(TypeError, match="zero_absent must be True or False"):
        hs_aeunmix.decompose_series(signals[:2], 3, zero_absent="yes")
    with pytest.raises(TypeError, match="add fine_tune=True"):
        hs_aeunmix.decompose_series(signals[:2], model=fit.model, max_epochs=3)
    # Continuing a model object trains a copy: the caller's model is kept.
    before = fit.model.get_params()
    hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals[:2]],
        model=fit.model,
        fine_tune=True,
        max_epochs=1,
    )
    assert fit.model.get_params() == before
    with pytest.raises(ValueError, match="disagrees with the model"):
        hs_aeunmix.decompose_series(signals[:2], 4, model=fit.model)
    other_units = signals[1].deepcopy()
    other_units.axes_manager.signal_axes[0].units = "cm-1"
    with pytest.raises(ValueError, match="different units"):
        hs_aeunmix.decompose_series([signals[0], other_units], 3)
    # The user's signals are never changed (the fixture trained on copies).
    assert signals[0].learning_results.loadings is None


def test_a_random_state_object_seeds_the_sample_as_the_estimator_accepts_it(series):
    # scikit-learn's convention: an int, None or a RandomState. The same
    # RandomState seed draws the same training sample.
    draws = [
        _joint._sampling_generator(np.random.RandomState(3)).integers(1000, size=5)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*draws)
    np.testing.assert_array_equal(
        _joint._sampling_generator(5).integers(1000, size=5),
        np.random.default_rng(5).integers(1000, size=5),
    )
    signals, _, _ = series
    fit = hs_aeunmix.decompose_series(
        [s.deepcopy() for s in signals[:2]],
        3,
        **{**OPTIONS, "max_epochs": 1, "random_state": np.random.RandomState(0)},
    )
    assert fit.model.components_.shape[0] == 3
