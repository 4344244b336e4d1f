"""Live unmixing: maps that fill in as pixels are pushed."""

from __future__ import annotations

import copy
import threading
import time
import warnings

import numpy as np
import pytest
from _helpers import FAST, make_mixture, to_signal
from sklearn.utils._param_validation import InvalidParameterError

import hs_aeunmix
from hs_aeunmix import AEUnmix, LiveUnmixer, ModelMismatchWarning, _live, replay_scan
from hs_aeunmix._inference import ROW_BLOCK


@pytest.fixture(scope="module")
def scan():
    # Counts: the misfit is measured in units of the noise.
    return to_signal(make_mixture(shape=(12, 16), n_channels=60, counts=50))


@pytest.fixture(scope="module")
def model(scan):
    spectra = scan.data.reshape(-1, scan.data.shape[-1])
    return AEUnmix(3, **FAST).fit(spectra)


def spectra_of(signal):
    return signal.data.reshape(-1, signal.data.shape[-1])


def as_rows(maps):
    """Loadings signal data (n_components, ny, nx) as (n_pixels, n_components)."""
    return maps.data.reshape(maps.data.shape[0], -1).T


def test_pushed_in_any_order_the_maps_equal_a_batch_transform(model, scan):
    axes = scan.axes_manager
    live = LiveUnmixer(
        model, axes.navigation_shape, navigation_axes=axes.navigation_axes
    )
    data = scan.data
    assert np.isnan(live.loadings.data).all()
    live.push(data[5], 5)  # a row
    live.push(data[0:2], (slice(0, 2), slice(None)))  # a block
    live.push(data[7, 3], (7, 3))  # one pixel
    rows, columns = np.array([11, 9, 9]), np.array([0, 15, 2])
    live.push(data[rows, columns], (rows, columns))  # pixels in any order
    pushed = np.zeros(data.shape[:2], bool)
    pushed[5], pushed[0:2], pushed[7, 3], pushed[rows, columns] = True, True, True, True
    np.testing.assert_array_equal(live.pushed, pushed)
    assert np.isnan(live.loadings.data[:, ~pushed]).all()
    for row in range(data.shape[0]):
        live.push(data[row].reshape(-1, data.shape[-1]), row)
    np.testing.assert_array_equal(
        as_rows(live.loadings), model.transform(spectra_of(scan))
    )
    assert live.n_pushed == pushed.sum() + data.shape[0] * data.shape[1]


def test_maps_are_signals_with_the_scan_axes(model, scan):
    axes = scan.axes_manager
    live = LiveUnmixer(
        model, axes.navigation_shape, navigation_axes=axes.navigation_axes
    )
    assert live.loadings.axes_manager.navigation_shape == (3,)
    assert live.loadings.axes_manager.signal_shape == axes.navigation_shape
    for mine, theirs in zip(
        live.loadings.axes_manager.signal_axes, axes.navigation_axes, strict=True
    ):
        assert (mine.name, mine.units, mine.scale, mine.offset) == (
            theirs.name,
            theirs.units,
            theirs.scale,
            theirs.offset,
        )
    assert live.mismatch.axes_manager.signal_shape == axes.navigation_shape
    # FAST models have a per-pixel intensity; no max_shift, so no shift map.
    assert (live.intensity is None) == (not model.module_.has_pixel_scale)
    assert live.shifts is None


def test_every_push_fires_data_changed(model, scan):
    live = LiveUnmixer(model, scan.axes_manager.navigation_shape)
    seen = []
    live.loadings.events.data_changed.connect(lambda obj: seen.append(obj))
    live.push(scan.data[0], 0)
    live.push(scan.data[1], 1)
    assert seen == [live.loadings, live.loadings]


def test_a_line_scan_is_pushed_pixel_by_pixel(model, scan):
    line = scan.inav[:, 4]
    live = LiveUnmixer(model, line.axes_manager.navigation_shape)
    for index, spectrum in enumerate(line.data):
        live.push(spectrum, index)
    np.testing.assert_array_equal(as_rows(live.loadings), model.transform(line.data))


def test_replay_fills_the_maps_row_by_row_at_the_dwell_time(model, scan):
    started = time.perf_counter()
    live = replay_scan(scan, model, dwell_time=1e-4)
    assert (
        time.perf_counter() - started >= 1e-4 * scan.data.shape[0] * scan.data.shape[1]
    )
    np.testing.assert_array_equal(
        as_rows(live.loadings), model.transform(spectra_of(scan))
    )


def test_replay_into_a_given_unmixer_checks_its_shape(model, scan):
    live = LiveUnmixer(model, (4, 4))
    with pytest.raises(
        ValueError, match=r"navigation shape \(16, 12\) but the LiveUnmixer"
    ):
        replay_scan(scan, live=live)
    with pytest.raises(TypeError, match="needs the model"):
        replay_scan(scan)


def test_spectra_of_another_material_are_flagged(model, scan):
    live = LiveUnmixer(model, scan.axes_manager.navigation_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio = live.push(scan.data[0], 0)
    assert ratio < 2
    channels = np.arange(scan.data.shape[-1])
    rng = np.random.default_rng(1)
    foreign = 300 * np.exp(-0.5 * ((channels - 30) / 2.0) ** 2) + rng.normal(
        0, 5, (scan.data.shape[1], len(channels))
    )
    with pytest.warns(ModelMismatchWarning, match="reproduced .* times worse"):
        assert live.push(foreign + 50, 1) > 3
    assert np.all(live.mismatch.data[1] > 3)
    assert np.all(live.mismatch.data[0] < 2)
    assert np.isnan(live.mismatch.data[2:]).all()


@pytest.mark.parametrize(
    ("navigation_shape", "message"),
    [
        ((), "one or two positive sizes"),
        ((4, 0), "one or two positive sizes"),
        ((2, 2, 2), "one or two positive sizes"),
        ((2.5, 3), "one or two positive"),
    ],
)
def test_a_bad_navigation_shape_is_refused(model, navigation_shape, message):
    with pytest.raises(ValueError, match=message):
        LiveUnmixer(model, navigation_shape)


def test_bad_pushes_say_what_is_wrong(model, scan):
    live = LiveUnmixer(model, scan.axes_manager.navigation_shape)
    with pytest.raises(
        IndexError, match=r"not a position in a scan of shape \(12, 16\)"
    ):
        live.push(scan.data[0], 12)
    with pytest.raises(
        ValueError, match=r"expected 16 spectra of the model's 60 channels"
    ):
        live.push(scan.data[0, :, :50], 0)
    with pytest.raises(ValueError, match=r"expected 16 spectra"):
        live.push(scan.data[0:2], 0)
    bad = scan.data[0].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        live.push(bad, 0)
    assert np.isnan(live.loadings.data).all()  # nothing was written


def test_spatial_models_and_mismatched_axes_are_refused(model, scan):
    # The refusal reads the hyperparameter: no need to train a spatial model.
    spatial = copy.deepcopy(model).set_params(spatial=True)
    with pytest.raises(ValueError, match="spatial=True"):
        LiveUnmixer(spatial, scan.axes_manager.navigation_shape)
    with pytest.raises(ValueError, match=r"navigation_axes have sizes \(16, 12\)"):
        LiveUnmixer(model, (3, 4), navigation_axes=scan.axes_manager.navigation_axes)


def test_a_drift_aware_model_gets_a_shift_map_in_axis_units(scan):
    signal = scan.deepcopy()
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=3,
        max_shift=2.0,
        return_info=True,
        print_info=False,
        **FAST,
    )
    encodings = []
    encode = model.module_.encode

    def counted(batch):
        encodings.append(len(batch))
        return encode(batch)

    model.module_.encode = counted
    live = replay_scan(signal, model)
    # Each pushed spectrum is encoded once: the shifts reuse its fractions.
    width, height = signal.axes_manager.navigation_shape
    padded_row = -(-width // ROW_BLOCK) * ROW_BLOCK
    assert sum(encodings) == padded_row * height
    del model.module_.encode
    np.testing.assert_array_equal(
        live.shifts.data, hs_aeunmix.shift_map(signal, model).data
    )
    assert live.shifts.metadata.Signal.quantity == "Shift (eV)"


def test_adapt_refines_in_the_background_without_blocking_push(scan, monkeypatch):
    # A model stopped after one epoch from a random start: refining it helps.
    model = AEUnmix(3, **{**FAST, "max_epochs": 1, "init": "random"})
    model.fit(spectra_of(scan))
    release = threading.Event()
    started = threading.Event()
    refine = _live._Adaptation._refine

    def slow_refine(self, current, sample):
        started.set()
        release.wait(30)
        return refine(self, current, sample)

    monkeypatch.setattr(_live._Adaptation, "_refine", slow_refine)
    data = scan.data
    with LiveUnmixer(
        model, scan.axes_manager.navigation_shape, adapt=True, adapt_every=32
    ) as live:
        live.push(data[0:2], (slice(0, 2), slice(None)))
        assert started.wait(10)
        # The refinement is running (held): pushes go on with the model given.
        pushed_at = time.perf_counter()
        for row in range(2, data.shape[0]):
            live.push(data[row], row)
        assert time.perf_counter() - pushed_at < 10
        assert live.model is model
        assert live.n_adaptations == 0
        release.set()
        assert live.wait(60)
        assert live.n_adaptations >= 1
        assert live.model is not model
        # Every pixel, also those pushed before, is unmixed by the refined model.
        refined = live.model.transform(spectra_of(scan).astype(np.float32))
        np.testing.assert_allclose(
            as_rows(live.loadings), refined, rtol=1e-6, atol=1e-9
        )
        assert live.model.history_.best_epoch >= 0  # not the weights given
        assert not np.allclose(
            as_rows(live.loadings), model.transform(spectra_of(scan)), atol=1e-3
        )
    assert not live._adapter._thread.is_alive()


def test_adapt_every_must_be_positive(model):
    message = r"'adapt_every' parameter of LiveUnmixer must be an int in the range"
    with pytest.raises(InvalidParameterError, match=message):
        LiveUnmixer(model, (4, 4), adapt=True, adapt_every=0)
