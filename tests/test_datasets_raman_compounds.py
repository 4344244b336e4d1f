"""Tests of the Raman compound scene family: seeds, truth, tags and physics."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hyperspy.signals import Signal1D

from hs_aeunmix.datasets._common import GroundTruth
from hs_aeunmix.datasets._raman_bands import COMPOUNDS, SAMPLE_TYPES
from hs_aeunmix.datasets._raman_compounds import (
    LOW_DOSE_COUNTS,
    MIN_ANGLE,
    STRUCTURES,
    WINDOWS,
    RamanCompoundDescription,
    _in_window,
    _min_angle,
    _shifted_mixture,
    _spectra,
    raman_compound_family,
    raman_compound_scene,
)
from hs_aeunmix.datasets._raman_structures import MIN_DOMINANT, MIN_PURE, PURE_LEVEL

VOCABULARY = {
    "pure_pixels",
    "no_pure_pixels",
    "intensity_varying",
    "low_dose",
    "background",
    "no_background",
    "drift",
    "artefacts",
}
SMALL = {"shape": (24, 24), "n_channels": 300}


@pytest.fixture(scope="module")
def family():
    return list(raman_compound_family("development", n_scenes=8))


def _check_guarantees(truth: GroundTruth, description: RamanCompoundDescription):
    fractions = truth.abundances
    dominant = np.bincount(
        fractions.argmax(-1).ravel(), minlength=description.n_endmembers
    )
    assert dominant.min() >= MIN_DOMINANT
    if description.pure_pixels:
        assert ((fractions > PURE_LEVEL).sum(axis=(0, 1)) >= MIN_PURE).all()
    else:
        assert 0.5 < description.max_fraction <= 0.9
        assert fractions.max() <= description.max_fraction + 1e-12


# --------------------------------------------------------------------------
# Seeds and the family
# --------------------------------------------------------------------------


def test_same_index_and_split_is_bit_identical():
    first = raman_compound_scene(5)
    again = raman_compound_scene(5)
    np.testing.assert_array_equal(first[0].data, again[0].data)
    np.testing.assert_array_equal(first[1].abundances, again[1].abundances)
    np.testing.assert_array_equal(first[1].endmembers, again[1].endmembers)
    assert first[2] == again[2]


def test_development_and_held_out_differ():
    _, _, development = raman_compound_scene(5, "development", **SMALL)
    signal, _, held_out = raman_compound_scene(5, "held_out", **SMALL)
    other, _, _ = raman_compound_scene(5, "development", **SMALL)
    assert held_out.split == "held_out"
    assert development.split == "development"
    assert not np.array_equal(signal.data, other.data)


def test_family_yields_the_scenes_of_the_split(family):
    assert [d.index for _, _, d in family] == list(range(8))
    signal, _, description = raman_compound_scene(3)
    np.testing.assert_array_equal(family[3][0].data, signal.data)
    assert family[3][2] == description
    later = next(raman_compound_family("held_out", n_scenes=1, first=4))
    assert later[2].index == 4
    assert later[2].split == "held_out"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "test"}, "split must be 'development' or 'held_out'"),
        ({"n_scenes": -1}, "n_scenes must be a non-negative integer"),
        ({"first": 1.5}, "first must be a non-negative integer"),
    ],
)
def test_family_validates_its_arguments_at_once(kwargs, match):
    with pytest.raises(ValueError, match=match):
        raman_compound_family(**kwargs)


# --------------------------------------------------------------------------
# Ground truth, signal and description
# --------------------------------------------------------------------------


def test_ground_truth_is_consistent(family):
    for signal, truth, description in family:
        n, shape = description.n_endmembers, description.shape
        assert signal.data.shape == (*shape, description.n_channels)
        assert signal.data.dtype == np.float64
        assert truth.endmembers.shape == (n, description.n_channels)
        assert truth.abundances.shape == (*shape, n)
        assert truth.names == description.compounds
        assert (truth.abundances >= 0).all()
        np.testing.assert_allclose(truth.abundances.sum(-1), 1.0, atol=1e-12)
        gain = 1.0 if truth.intensity is None else truth.intensity[..., None]
        mixture = gain * (truth.abundances @ truth.endmembers)
        np.testing.assert_allclose(truth.noiseless, mixture, rtol=1e-12)
        assert _min_angle(truth.endmembers) >= MIN_ANGLE
        peak = truth.noiseless.mean(axis=(0, 1)).max()
        assert peak == pytest.approx(description.counts)
        _check_guarantees(truth, description)


def test_axes_and_metadata(family):
    signal, _, description = family[0]
    raman = signal.axes_manager.signal_axes[0]
    assert raman.units == "cm⁻¹"
    assert raman.name == "Raman shift"
    assert raman.axis[0] == pytest.approx(description.axis_range[0])
    assert raman.axis[-1] == pytest.approx(description.axis_range[1])
    low_edges, high_edges = WINDOWS[description.window]
    assert low_edges[0] <= raman.axis[0] <= low_edges[1]
    assert high_edges[0] <= raman.axis[-1] <= high_edges[1]
    for axis in signal.axes_manager.navigation_axes:
        assert axis.units == "µm"
        assert axis.scale == pytest.approx(description.pixel_size_um)
    assert isinstance(signal, Signal1D)
    assert signal.metadata.Signal.signal_type == ""
    assert "development #0" in signal.metadata.General.title
    assert description.generator == "raman_compounds"
    assert description.modality == "raman"
    assert description.summary().startswith("raman_compounds development #0:")
    assert "\n" not in description.summary()


# --------------------------------------------------------------------------
# Subgroups
# --------------------------------------------------------------------------


def test_subgroups_follow_their_rules(family):
    for _, truth, d in family:
        tags = set(d.subgroups)
        assert tags <= VOCABULARY
        assert len(tags) == len(d.subgroups)
        assert ("pure_pixels" in tags) == d.pure_pixels
        assert ("no_pure_pixels" in tags) != d.pure_pixels
        assert ("background" in tags) == d.fluorescence
        assert ("no_background" in tags) != d.fluorescence
        assert ("drift" in tags) == (d.shift_channels >= 0.5)
        assert ("low_dose" in tags) == (d.counts < LOW_DOSE_COUNTS)
        assert ("intensity_varying" in tags) == (d.intensity_variation >= 0.1)
        assert ("artefacts" in tags) == (d.cosmic_rays or d.hot_pixels)
        assert (d.fluorescence_ratio is not None) == d.fluorescence
        has_artefacts = d.fluorescence or d.cosmic_rays or d.hot_pixels
        assert (truth.artefacts is not None) == has_artefacts
        if truth.intensity is None:
            assert d.intensity_variation == 0
        else:
            spread = truth.intensity.max() - truth.intensity.min()
            assert spread == pytest.approx(d.intensity_variation)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("pure", [True, False])
def test_pure_and_mixed_guarantees_hold_for_every_structure(structure, pure):
    _, truth, description = raman_compound_scene(
        1, structure=structure, pure_pixels=pure, n_endmembers=6, **SMALL
    )
    assert description.structure == structure
    assert description.subgroups[0] == ("pure_pixels" if pure else "no_pure_pixels")
    _check_guarantees(truth, description)


def test_drift_tag_follows_the_shift():
    _, _, steady = raman_compound_scene(2, shift_channels=0.4, **SMALL)
    _, _, drifting = raman_compound_scene(2, shift_channels=0.5, **SMALL)
    assert "drift" not in steady.subgroups
    assert steady.shift_mode is not None
    assert "drift" in drifting.subgroups


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n_endmembers", 3),
        ("counts", 50.0),
        ("fluorescence", True),
        ("cosmic_rays", True),
        ("shift_channels", 1.5),
        ("pure_pixels", False),
        ("shape", (30, 20)),
        ("n_channels", 512),
        ("sample_type", "polymer"),
        ("window", "wide"),
    ],
)
def test_an_override_changes_only_its_parameter(name, value):
    _, _, base = raman_compound_scene(4)
    signal, truth, changed = raman_compound_scene(4, **{name: value})
    assert getattr(changed, name) == value
    # The structure follows the sample type unless the draw chose layers.
    follows = {"sample_type": {"structure"}}.get(name, set())
    for other in ("sample_type", "n_endmembers", "shape", "n_channels", "window"):
        if other != name and other not in follows:
            assert getattr(changed, other) == getattr(base, other)
    for other in ("counts", "fluorescence", "cosmic_rays", "shift_channels"):
        if other != name:
            assert getattr(changed, other) == getattr(base, other)
    assert signal.data.shape == (*changed.shape, changed.n_channels)
    assert truth.endmembers.shape[0] == changed.n_endmembers


def test_compounds_override_sets_the_endmembers():
    _, truth, description = raman_compound_scene(
        0, compounds=("quartz", "calcite", "hematite"), window="low_wavenumber"
    )
    assert truth.names == ("quartz", "calcite", "hematite")
    assert description.n_endmembers == 3
    assert description.contaminant is None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_endmembers": 7}, r"n_endmembers must be an integer in 2\.\.6, got 7"),
        ({"n_endmembers": True}, r"n_endmembers must be an integer in 2\.\.6"),
        ({"sample_type": "rock"}, r"sample_type must be one of \('mineral', "),
        ({"shape": 30}, r"shape must be a \(ny, nx\) pair of integers in 20\.\.256"),
        ({"shape": (10, 30)}, r"shape\[0\] must be an integer in 20\.\.256"),
        ({"n_channels": 20}, r"n_channels must be an integer in 64\.\.2048"),
        ({"counts": -5}, r"counts must be a number in \[1\.0, 10000000\.0\]"),
        ({"fluorescence": 1}, "fluorescence must be True or False, got 1"),
        ({"cosmic_rays": "yes"}, "cosmic_rays must be True or False"),
        ({"pure_pixels": None}, "pure_pixels must be True or False"),
        ({"shift_channels": 6}, r"shift_channels must be a number in \[0\.0, 5\.0\]"),
        ({"window": "uv"}, r"window must be one of \('fingerprint', "),
        ({"structure": "foam"}, r"structure must be one of \('grains', "),
        ({"compounds": ("quartz", "kryptonite")}, "compounds must be 2 to 6"),
        ({"compounds": ("quartz", "quartz")}, "compounds must be 2 to 6 distinct"),
        (
            {"compounds": ("quartz", "calcite"), "n_endmembers": 3},
            r"n_endmembers \(3\) must equal the number of compounds \(2\)",
        ),
        (
            {"compounds": ("pyrite", "calcite"), "window": "fingerprint_high"},
            r"compounds \['pyrite'\] have no band of at least 15%",
        ),
        ({"colour": "red"}, "Unknown override 'colour'; the overrides are "),
    ],
)
def test_invalid_overrides_are_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        raman_compound_scene(0, **overrides)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1,), "index must be a non-negative integer, got -1"),
        ((1.0,), "index must be a non-negative integer"),
        ((0, "train"), "split must be 'development' or 'held_out', got 'train'"),
    ],
)
def test_invalid_index_or_split_is_rejected(args, match):
    with pytest.raises(ValueError, match=match):
        raman_compound_scene(*args)


# --------------------------------------------------------------------------
# Physics
# --------------------------------------------------------------------------


def _smooth_part(signal, truth, description) -> tuple[float, float]:
    """RMS of a smooth fit to mean(data) - mean(noiseless), and its noise."""
    residual = signal.data.mean(axis=(0, 1)) - truth.noiseless.mean(axis=(0, 1))
    x = np.linspace(-1.0, 1.0, residual.size)
    smooth = np.polynomial.legendre.Legendre.fit(x, residual, 4)(x)
    # Poisson + dark + read noise of a channel, averaged over the pixels.
    variance = (
        truth.noiseless.mean(axis=(0, 1))
        + description.dark_current
        + description.read_noise**2
    ) / (signal.data.shape[0] * signal.data.shape[1])
    # A degree-4 fit to white noise keeps about 5 / n_channels of its power.
    noise = np.sqrt(variance.mean() * 5 / residual.size)
    return float(np.sqrt(np.mean(smooth**2))), float(noise)


@pytest.mark.parametrize("index", [0, 7])
def test_background_is_there_only_with_fluorescence(index):
    clean = {"shift_channels": 0.0, "cosmic_rays": False, "hot_pixels": False}
    without = raman_compound_scene(index, fluorescence=False, **clean)
    assert without[1].artefacts is None
    smooth, noise = _smooth_part(*without)
    assert smooth < 4 * noise
    with_background = raman_compound_scene(index, fluorescence=True, **clean)
    smooth, noise = _smooth_part(*with_background)
    assert smooth > 50 * noise
    np.testing.assert_array_equal(with_background[1].abundances, without[1].abundances)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_polystyrene_band_lands_at_its_literature_position(index):
    signal, truth, _ = raman_compound_scene(
        index, compounds=("polystyrene", "PMMA"), window="fingerprint"
    )
    raman = signal.axes_manager.signal_axes[0]
    near = np.abs(raman.axis - 1001.4) < 15
    top = raman.axis[near][np.argmax(truth.endmembers[0][near])]
    assert abs(top - 1001.4) <= raman.scale


def test_shifted_spectra_match_the_exact_profiles():
    rng = np.random.default_rng(0)
    compounds = [COMPOUNDS["diamond"], COMPOUNDS["polystyrene"]]
    fractions = rng.dirichlet(np.ones(2), size=(4, 5))
    shifts = rng.uniform(-2.0, 2.0, (4, 5))
    intensity = rng.uniform(0.5, 1.0, (4, 5))

    def spectra_at(s):
        return _spectra(compounds, 800.0, 1.0, 600, 3.0, s)

    shifted = _shifted_mixture(spectra_at, fractions, intensity, shifts)
    exact = np.stack(
        [
            intensity[y, x] * fractions[y, x] @ spectra_at(shifts[y, x, None])[0]
            for y in range(4)
            for x in range(5)
        ]
    ).reshape(shifted.shape)
    assert np.abs(shifted - exact).max() < 1e-3 * exact.max()
    # A whole-channel shift moves the diamond line by one channel.
    moved = spectra_at(np.array([0.0, 1.0]))[:, 0]
    assert np.argmax(moved[1]) == np.argmax(moved[0]) + 1


def test_band_tables_cover_every_sample_type_and_window():
    assert len(COMPOUNDS) >= 30
    for compound in COMPOUNDS.values():
        assert max(height for _, _, height in compound.bands) == 1.0
        assert all(fwhm > 0 for _, fwhm, _ in compound.bands)
    # Enough compounds for six endmembers in the narrowest draw of each window.
    for low_edges, high_edges in WINDOWS.values():
        for sample_type in SAMPLE_TYPES:
            eligible = [
                c
                for c in COMPOUNDS.values()
                if sample_type in c.sample_types
                and _in_window(c, low_edges[1], high_edges[0])
            ]
            assert len(eligible) >= 8


def test_a_large_scene_is_fast():
    overrides = {
        "shape": (64, 64),
        "n_channels": 1340,
        "n_endmembers": 6,
        "fluorescence": True,
        "cosmic_rays": True,
        "shift_channels": 2.0,
    }
    raman_compound_scene(0, **overrides)
    start = time.perf_counter()
    raman_compound_scene(0, **overrides)
    assert time.perf_counter() - start < 6.0
