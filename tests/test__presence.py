"""Which phases a scan holds: levels, the decision, the zeroed maps (_presence)."""

from __future__ import annotations

import numpy as np

from hs_aeunmix import _presence
from hs_aeunmix._presence import (
    PhaseLevels,
    absent_phases,
    held_in_map,
    phase_levels,
    without_phases,
)

CHANNELS = np.arange(120)


def bands(*centres: float) -> np.ndarray:
    """Endmembers of equal brightness (each sums to one)."""
    shapes = [
        5.0 + 100 * np.exp(-0.5 * ((CHANNELS - centre) / 6.0) ** 2)
        for centre in centres
    ]
    return np.array([shape / shape.sum() for shape in shapes])


ENDMEMBERS = bands(25, 60, 95)


def scan(fractions, counts_per_pixel, seed=0, n_pixels=800):
    """Poisson spectra of Dirichlet mixtures with the given mean ``fractions``."""
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=float)
    present = fractions > 0
    abundances = np.zeros((n_pixels, len(fractions)))
    abundances[:, present] = rng.dirichlet(20 * fractions[present], n_pixels)
    spectra = rng.poisson(counts_per_pixel * abundances @ ENDMEMBERS)
    return spectra.astype(float), abundances


def levels_of(spectra, counts=True, seed=0):
    return phase_levels(
        spectra, ENDMEMBERS, counts=counts, rng=np.random.default_rng(seed)
    )


def test_a_phase_level_is_its_rms_fraction_of_the_signal():
    spectra, abundances = scan([0.5, 0.3, 0.2], 20_000)
    found = levels_of(spectra)
    truth = np.sqrt((abundances**2).mean(axis=0))
    # Pixels rich in a phase show it less clearly (more noise where it
    # lies) and weigh less: a little below the plain RMS.
    assert np.all(found.level < truth)
    np.testing.assert_allclose(found.level, truth, rtol=0.15)
    assert np.all(found.upper > found.level)
    assert found.n_pixels == 800


def test_noise_alone_is_not_taken_for_a_phase():
    # Without subtracting what a needless coefficient fits of the noise,
    # the absent phase's level would be about sqrt(0.5 / m), here 0.006.
    spectra, _ = scan([0.6, 0.4, 0.0], 1000)
    found = levels_of(spectra)
    assert found.level[2] < 0.002
    assert found.upper[2] < 0.005
    assert found.level[:2].min() > 0.3


def test_the_noise_scale_is_measured_not_assumed():
    # Spectra in some unit other than counts (a gain): white noise whose
    # level the full fit measures; the levels do not depend on the unit.
    rng = np.random.default_rng(3)
    abundances = rng.dirichlet([6.0, 4.0, 2.0], 600)
    clean = 20_000 * abundances @ ENDMEMBERS
    spectra = clean + rng.normal(0.0, 2.0, clean.shape)
    once = levels_of(spectra, counts=False)
    scaled = levels_of(spectra * 37.5, counts=False)
    np.testing.assert_allclose(scaled.level, once.level, rtol=1e-6)
    truth = np.sqrt((abundances**2).mean(axis=0))
    np.testing.assert_allclose(once.level, truth, rtol=0.15)


def test_counts_with_a_gain_are_judged_by_the_noise_they_have():
    # Four times the counts' Poisson noise: a needless coefficient then fits
    # four times what the allowance assumes, unless the scale is measured.
    # Unmeasured, the absent phase's level would be 0.005 here.
    spectra, _ = scan([0.6, 0.4, 0.0], 1000)
    found = levels_of(4 * spectra)
    assert found.level[2] < 0.002
    np.testing.assert_allclose(found.level[:2], levels_of(spectra).level[:2], rtol=0.02)


def test_a_low_dose_scan_has_wide_bounds():
    high, _ = scan([0.6, 0.4, 0.0], 20_000)
    low, _ = scan([0.6, 0.4, 0.0], 60)
    found = levels_of(low)
    assert found.upper[2] > 5 * levels_of(high).upper[2]
    # Fewer counts than the noise allowance assumes: the bound stays the
    # scan's detection limit rather than zero.
    assert found.level[2] == 0 < found.upper[2]
    assert found.level[:2].min() > 0.3


def test_a_single_endmember_has_a_level():
    # Without it the fit has no coefficient left (scipy's nnls would crash).
    spectra, _ = scan([1.0, 0.0, 0.0], 1000)
    found = phase_levels(
        spectra, ENDMEMBERS[:1], counts=True, rng=np.random.default_rng(0)
    )
    assert found.level[0] > 0.9
    assert not absent_phases([found] * 4, 1).any()


def test_too_few_spectra_or_channels_give_no_levels():
    spectra, _ = scan([0.5, 0.5, 0.0], 1000, n_pixels=1)
    assert levels_of(spectra) is None
    assert (
        phase_levels(
            np.ones((10, 3)), np.eye(3), counts=True, rng=np.random.default_rng(0)
        )
        is None
    )


def test_pixels_that_hold_mostly_a_phase_are_counted():
    # A precipitate: the third phase alone in 16 of 800 pixels, nowhere else.
    spectra, _ = scan([0.6, 0.4, 0.0], 20_000)
    rng = np.random.default_rng(1)
    spectra[:16] = rng.poisson(20_000 * ENDMEMBERS[2], (16, len(CHANNELS)))
    found = levels_of(spectra)
    assert found.n_needing[2] == found.n_holding[2] == 16
    # Without it, no pixel needs the third phase.
    alone, _ = scan([0.6, 0.4, 0.0], 20_000)
    assert levels_of(alone).n_needing[2] == 0


def test_a_thin_uniform_share_is_needed_by_every_pixel_but_held_by_none():
    # 5 % of every pixel's signal: significant in each pixel at this dose,
    # the pattern of a leak rather than of grains.
    rng = np.random.default_rng(0)
    abundances = np.zeros((800, 3))
    abundances[:, :2] = rng.dirichlet([12.0, 8.0], 800) * 0.95
    abundances[:, 2] = 0.05
    spectra = rng.poisson(20_000 * abundances @ ENDMEMBERS).astype(float)
    found = levels_of(spectra)
    assert found.n_needing[2] == 800
    assert found.n_holding[2] == 0
    np.testing.assert_allclose(found.level[2], 0.05, rtol=0.1)
    # Pixels with more than half of their signal from the first phase.
    assert found.n_holding[0] > 400


def test_a_large_scan_is_tested_on_a_sample(monkeypatch):
    monkeypatch.setattr(_presence, "PRESENCE_PIXELS", 100)
    spectra, _ = scan([0.5, 0.3, 0.2], 5000)
    assert levels_of(spectra).n_pixels == 100


def levels(level, upper=None, holding=None):
    level = np.asarray(level, dtype=float)
    holding = np.zeros(len(level), int) if holding is None else np.asarray(holding)
    return PhaseLevels(
        level, level if upper is None else np.asarray(upper), 100, holding, holding
    )


def test_absent_means_below_a_ratio_of_the_series_median():
    series = [levels([0.4, 0.3]), levels([0.5, 0.2]), levels([0.45, 0.25])]
    typical = 0.2  # the second phase's median level over the five scans
    below = _presence.ABSENT_RATIO * typical * 0.99
    above = _presence.ABSENT_RATIO * typical * 1.01
    found = absent_phases(
        [*series, levels([0.4, 0.0], [0.41, below]), levels([0.4, 0.0], [0.4, above])],
        2,
    )
    np.testing.assert_array_equal(found[-2:], [[False, True], [False, False]])
    assert not found[:3].any()


def test_no_decision_without_a_series_to_compare_with():
    two = [levels([0.4, 0.3]), levels([0.4, 0.0])]
    assert not absent_phases(two, 2).any()
    # Unknown levels (a scan without enough signal) do not count.
    assert not absent_phases([*two, None], 2).any()
    assert absent_phases([*two, levels([0.5, 0.3])], 2)[1, 1]


def test_a_phase_some_pixels_hold_is_not_absent():
    series = [levels([0.4, 0.3]), levels([0.5, 0.2]), levels([0.45, 0.25])]
    grains = levels([0.4, 0.0], [0.4, 0.01], holding=[90, 1])
    assert not absent_phases([*series, grains], 2)[-1, 1]
    assert absent_phases([*series, grains], 2, max_holding=1)[-1, 1]
    assert absent_phases([*series, grains], 2, max_holding=None)[-1, 1]
    thin = levels([0.4, 0.0], [0.4, 0.01], holding=[90, 0])
    assert absent_phases([*series, thin], 2)[-1, 1]


def test_a_scan_is_never_said_to_lack_every_phase():
    series = [levels([0.4, 0.3]), levels([0.5, 0.2]), levels([0.45, 0.25])]
    unlike = levels([0.01, 0.01])
    assert not absent_phases([*series, unlike], 2).any()


def test_a_phase_missing_from_most_scans_is_never_called_absent():
    series = [levels([0.4, 0.01]), levels([0.4, 0.012]), levels([0.4, 0.3])]
    assert not absent_phases(series, 2).any()


def test_a_map_holds_a_phase_where_it_is_most_of_a_pixels_signal():
    # Shares of the signal: loadings times each endmember's total.
    endmembers = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]])
    loadings = np.array(
        [
            [1.0, 0.0, 0.0],  # all the first phase
            [1.0, 1.0, 0.0],  # a third / two thirds
            [0.0, 0.0, 4.0],  # the third phase alone (signal 4)
            [1.0, 0.0, 2.0],  # half and half: neither holds it
            [np.nan, np.nan, np.nan],  # never unmixed
            [0.0, 0.0, 0.0],  # no signal
        ]
    )
    np.testing.assert_array_equal(held_in_map(loadings, endmembers), [1, 1, 1])


def test_zeroed_maps_are_zero_and_the_rest_unchanged():
    rng = np.random.default_rng(0)
    loadings = rng.random((50, 3)) * 1000
    loadings[7] = np.nan
    result = without_phases(loadings, np.array([False, False, True]))
    assert np.all(result[np.arange(50) != 7, 2] == 0)
    assert np.isnan(result[7]).all()
    np.testing.assert_array_equal(result[:, :2], loadings[:, :2])
    # The caller's array is not changed.
    assert np.all(loadings[np.arange(50) != 7, 2] > 0)
