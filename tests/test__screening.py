"""Tests of the screening of dead pixels and spikes before training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _helpers import make_mixture

from hs_aeunmix import AEUnmix, _screening, datasets, metrics
from hs_aeunmix._screening import SPIKE_THRESHOLD, is_count_data, screen


def screened(spectra):
    """The repaired spectra (a copy) and the screening of ``spectra``."""
    screening = screen(spectra)
    rows = np.arange(len(spectra))
    return screening.repair(spectra.copy(), rows), screening


@pytest.fixture(scope="module")
def counts():
    return make_mixture(shape=(24, 24), counts=100, seed=1)


def test_clean_counts_are_left_alone(counts):
    before = counts.spectra.copy()
    repaired, screening = screened(counts.spectra)
    np.testing.assert_array_equal(repaired, counts.spectra)
    np.testing.assert_array_equal(counts.spectra, before)
    assert screening.n_dead == 0
    assert screening.n_spikes == 0
    assert screening.counts


def test_dead_pixels_are_found(counts):
    spectra = counts.spectra.copy()
    spectra[[3, 40, 41]] = 0.0
    _, screening = screened(spectra)
    np.testing.assert_array_equal(np.flatnonzero(screening.dead), [3, 40, 41])
    assert screening.summary()["dead_pixels"] == 3


def test_faint_pixels_are_dead_and_left_out_of_training():
    # A blanked beam, vacuum: a faint signal (a ten-thousandth of the median
    # pixel's), not exact zeros. A pixel at a hundredth is signal.
    scene = make_mixture(shape=(8, 8), n_channels=40, counts=200, seed=4)
    spectra = scene.spectra.copy()
    faint, dim = [3, 20, 41], 50
    spectra[faint] *= 1e-4
    spectra[dim] *= 1e-2
    assert (spectra.sum(axis=1) > 0).all()  # no pixel is all zeros
    np.testing.assert_array_equal(np.flatnonzero(screen(spectra).dead), faint)
    model = AEUnmix(
        3,
        init="vca",
        max_epochs=1,
        hidden_layer_sizes=(16,),
        baseline=None,
        random_state=0,
        show_progressbar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # thin support, maybe
        model.fit(spectra)
    assert model.screening_["dead_pixels"] == 3
    # The report counts the pixels training used, held-out ones included.
    assert model.stability_.pixels == 64 - 3


@pytest.mark.parametrize("width", [1, 3])
def test_spikes_are_found_and_repaired(counts, width):
    spectra = counts.spectra.copy()
    rows, channel = [5, 77, 200], 30
    spectra[rows, channel : channel + width] += 20 * spectra.max()
    repaired, screening = screened(spectra)
    flagged = np.argwhere(screening.spikes)
    assert {tuple(cell) for cell in flagged} == {
        (row, channel + offset) for row in rows for offset in range(width)
    }
    # Repaired values are back within the noise of the original spectra.
    error = np.abs(repaired[rows] - counts.spectra[rows])
    assert error.max() < SPIKE_THRESHOLD * np.sqrt(counts.spectra.max())
    assert screening.n_spike_pixels == 3


def test_a_narrow_band_shared_by_many_pixels_is_not_a_spike(counts):
    # A real one-channel band (a sharp Raman line) in every pixel of a phase.
    spectra = counts.spectra.copy()
    phase = counts.abundances.reshape(-1, 3)[:, 0] > 0.5
    spectra[phase, 50] += 10 * spectra.max()
    _, screening = screened(spectra)
    assert screening.n_spikes == 0


def test_a_white_line_lifted_by_noise_is_not_a_spike():
    # The built-in EELS scene: white lines two channels wide, in the pixels
    # of one phase, a few standard deviations above the running median;
    # Poisson noise lifts one pixel's past the spike threshold (measured
    # before the shared test counted every pixel standing out).
    signal, _ = datasets.eels_chequerboard(3, random_state=0)
    spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(float)
    _, screening = screened(spectra)
    assert screening.n_spikes == 0
    spectra[161, 120] += 20 * spectra.max()
    _, screening = screened(spectra)
    np.testing.assert_array_equal(np.argwhere(screening.spikes), [[161, 120]])


def test_gaussian_data_use_a_robust_noise_estimate():
    mixture = make_mixture(shape=(24, 24), seed=2)
    rng = np.random.default_rng(0)
    spectra = mixture.spectra + rng.normal(0, 5.0, mixture.spectra.shape)
    assert not is_count_data(spectra)
    _, clean = screened(spectra)
    assert clean.n_spikes == 0
    assert not clean.counts
    spectra[100, 10] += 50 * 5.0 + spectra[100].max()
    _, screening = screened(spectra)
    np.testing.assert_array_equal(np.argwhere(screening.spikes), [[100, 10]])


def test_a_spike_pixel_gets_no_endmember_of_its_own():
    # Three phases and one pixel hit by an X-ray: without screening the
    # vertex start takes the spike pixel as an endmember.
    mixture = make_mixture(shape=(24, 24), counts=200, seed=3)
    spectra = mixture.spectra.copy()
    spectra[123, 60:62] += 50 * spectra.max()
    model = AEUnmix(
        3, init="vca", max_epochs=10, random_state=0, show_progressbar=False
    )
    model.fit(spectra)
    assert model.screening_ == {"dead_pixels": 0, "spike_values": 2, "spike_pixels": 1}
    scores = metrics.unmixing_scores(
        model.components_, model.transform(spectra), _truth(mixture)
    )
    assert scores["mean_sad_rad"] < 0.05
    assert model.stability_.support.min() > 20


def _truth(mixture):
    from hs_aeunmix.datasets import GroundTruth

    return GroundTruth(
        endmembers=mixture.endmembers,
        abundances=mixture.abundances,
        names=("a", "b", "c"),
        noiseless=mixture.abundances @ mixture.endmembers,
    )


def _scene_with_everything(counts):
    """Dead pixels, spikes, a band shared by one phase and drifting by a channel."""
    spectra = counts.spectra.copy()
    spectra[[5, 77, 200], 30] += 20 * spectra.max()
    phase = np.flatnonzero(counts.abundances.reshape(-1, 3)[:, 0] > 0.5)
    drift = np.arange(phase.size) % 3 - 1  # the band wanders by one channel
    spectra[phase, 60 + drift] += 10 * spectra.max()
    spectra[[3, 40]] = 0.0
    return spectra


def test_blocks_give_the_result_of_one_block(counts, monkeypatch):
    from hs_aeunmix import _screening

    spectra = _scene_with_everything(counts)
    whole, whole_screening = screened(spectra)
    monkeypatch.setattr(_screening, "_BLOCK_ROWS", 7)  # 576 rows: 83 blocks
    blocked, blocked_screening = screened(spectra)
    np.testing.assert_array_equal(blocked, whole)
    np.testing.assert_array_equal(blocked_screening.spikes, whole_screening.spikes)
    np.testing.assert_array_equal(blocked_screening.dead, whole_screening.dead)
    assert whole_screening.summary() == {
        "dead_pixels": 2,
        "spike_values": 3,
        "spike_pixels": 3,
    }


def test_blocks_on_several_threads_give_the_result_of_one(counts, monkeypatch):
    from hs_aeunmix import _screening

    spectra = _scene_with_everything(counts)
    monkeypatch.setattr(_screening, "_BLOCK_ROWS", 7)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone, alone_screening = screened(spectra)
        torch.set_num_threads(4)
        threaded, threaded_screening = screened(spectra)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(threaded, alone)
    np.testing.assert_array_equal(threaded_screening.spikes, alone_screening.spikes)
    assert threaded_screening.summary() == alone_screening.summary()


def test_a_band_drifting_by_a_channel_is_not_a_spike(counts):
    spectra = _scene_with_everything(counts)
    _, screening = screened(spectra)
    assert not screening.spikes[:, 59:62].any()


def test_a_small_bump_on_a_tall_spectrum_is_not_a_spike(counts):
    # Far above the noise but below half the spectrum's height: a feature.
    spectra = counts.spectra.copy()
    bump = 0.4 * counts.spectra[10].max()
    spectra[10, 30] += bump
    assert bump > 1.5 * SPIKE_THRESHOLD * np.sqrt(counts.spectra[10, 28:33].max())
    _, screening = screened(spectra)
    assert screening.n_spikes == 0


def test_few_channels_are_screened_for_dead_pixels_only():
    spectra = np.full((20, 5), 100.0)
    spectra[4] = 0.0
    spectra[7, 2] = 1e6
    repaired, screening = screened(spectra)
    np.testing.assert_array_equal(repaired, spectra)
    np.testing.assert_array_equal(np.flatnonzero(screening.dead), [4])
    assert screening.spikes.shape == (20, 5)
    assert screening.n_spikes == 0
    assert screening.counts  # known however few the channels


def test_counts_use_poisson_noise_not_the_spectrum_roughness():
    # Smooth counts (no noise): DER_SNR sees no noise and would call a
    # one-count excess a spike; Poisson statistics do not.
    spectra = np.tile(1000.0 + 10 * np.arange(40.0), (30, 1))
    spectra[3, 20] += 40.0  # about one standard deviation of 1200 counts
    assert is_count_data(spectra)
    _, screening = screened(spectra)
    assert screening.n_spikes == 0
    spectra[3, 20] += 0.6 * spectra[3].max()  # a real spike now
    _, screening = screened(spectra)
    np.testing.assert_array_equal(np.argwhere(screening.spikes), [[3, 20]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 7), (3, 9), (130, 50)])
def test_running_median_is_scipys_median_filter(dtype, shape):
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(sum(shape))
    # Few distinct values: ties everywhere, and rows across several blocks.
    spectra = rng.integers(0, 5, shape).astype(dtype) * rng.random(shape[1]).astype(
        dtype
    )
    expected = median_filter(spectra, size=(1, _screening.SPIKE_WIDTH), mode="nearest")
    result = _screening._smooth(spectra)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 2, 7, 1020])
def test_row_medians_are_numpys_medians(dtype, width):
    rng = np.random.default_rng(width)
    values = rng.normal(size=(40, width)).astype(dtype)
    values[:20] = np.round(values[:20])  # ties
    result = _screening.row_medians(values)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, np.median(values, axis=1))


def test_repair_takes_any_rows_in_any_order(counts):
    spectra = _scene_with_everything(counts)
    whole, screening = screened(spectra)
    rows = np.random.default_rng(0).permutation(len(spectra))[:300]
    repaired = screening.repair(spectra[rows], rows)
    np.testing.assert_array_equal(repaired, whole[rows])
    assert screening.n_spikes == 3
    assert not np.array_equal(whole, spectra)  # the scene has spikes
