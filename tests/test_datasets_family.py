"""Tests of the randomised scene family: seeds, truth, overrides, subgroups."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from _helpers import assert_on_simplex
from hyperspy.signals import Signal1D

from hs_aeunmix.datasets import (
    GroundTruth,
    SceneDescription,
    _artefacts,
    _eels_materials,
    _family,
    _scenes,
    describe_scene,
    random_scene,
    scene_family,
)

exspy_signals = pytest.importorskip("exspy.signals")

# Small scenes keep the tests fast; the overrides leave the rest as drawn.
SMALL = {"shape": (32, 32), "n_channels": 150}


@pytest.fixture(scope="module")
def development() -> list[SceneDescription]:
    return [describe_scene(index, "development") for index in range(60)]


@pytest.fixture(scope="module")
def held_out() -> list[SceneDescription]:
    return [describe_scene(index, "held_out") for index in range(60)]


@pytest.fixture(scope="module")
def scene_zero():
    return random_scene(0)


def _expected_noiseless(truth: GroundTruth) -> np.ndarray:
    mixed = truth.abundances @ truth.endmembers
    return mixed if truth.intensity is None else truth.intensity[..., None] * mixed


# --------------------------------------------------------------------------
# Seeds: determinism and disjoint splits
# --------------------------------------------------------------------------


def test_same_index_and_split_give_bit_identical_scenes(scene_zero):
    signal, truth, description = scene_zero
    again, again_truth, again_description = random_scene(0, "development")
    np.testing.assert_array_equal(again.data, signal.data)
    np.testing.assert_array_equal(again_truth.endmembers, truth.endmembers)
    np.testing.assert_array_equal(again_truth.abundances, truth.abundances)
    np.testing.assert_array_equal(again_truth.noiseless, truth.noiseless)
    assert again_description == description


@pytest.mark.parametrize("modality", ["eels", "raman", "generic"])
def test_every_random_stage_is_seeded(modality):
    # All artefacts and, for the generic spectra, Gaussian noise.
    overrides = {"modality": modality, "artefacts": ("spikes", "dead_pixels", "drift")}
    if modality == "raman":
        overrides["artefacts"] += ("baseline",)
    if modality == "generic":
        overrides["noise"] = "gaussian"
    first = random_scene(3, **overrides, **SMALL)
    second = random_scene(3, **overrides, **SMALL)
    np.testing.assert_array_equal(first[0].data, second[0].data)
    np.testing.assert_array_equal(first[1].artefacts, second[1].artefacts)


def test_different_indices_give_different_scenes():
    first = random_scene(0, modality="raman", **SMALL)
    second = random_scene(1, modality="raman", **SMALL)
    assert first[2] != second[2]
    assert not np.array_equal(first[0].data, second[0].data)
    assert not np.array_equal(first[1].abundances, second[1].abundances)


def test_splits_use_disjoint_seeds(development, held_out):
    dev_keys = {d.spawn_key for d in development}
    held_keys = {d.spawn_key for d in held_out}
    assert dev_keys == {(0, index) for index in range(60)}
    assert held_keys == {(1, index) for index in range(60)}
    dev_states = {
        tuple(_family._seed_sequence(i, "development").generate_state(4))
        for i in range(60)
    }
    held_states = {
        tuple(_family._seed_sequence(i, "held_out").generate_state(4))
        for i in range(60)
    }
    assert len(dev_states) == len(held_states) == 60
    assert not dev_states & held_states
    assert [d.endmember_names for d in development] != [
        d.endmember_names for d in held_out
    ]


def test_scene_zero_differs_between_splits():
    dev = random_scene(0, "development", modality="eels", **SMALL)
    held = random_scene(0, "held_out", modality="eels", **SMALL)
    assert dev[2].split == "development"
    assert held[2].split == "held_out"
    assert not np.array_equal(dev[0].data, held[0].data)
    assert not np.array_equal(dev[1].endmembers, held[1].endmembers)


def test_describe_scene_draws_what_random_scene_draws(scene_zero, development):
    assert scene_zero[2] == development[0]
    for index in (1, 2, 3):
        overrides = {"shape": (24, 20), "n_channels": 100}
        assert (
            describe_scene(index, "held_out", **overrides)
            == random_scene(index, "held_out", **overrides)[2]
        )


def test_scene_family_yields_the_random_scenes():
    family = list(scene_family("held_out", 2, **SMALL))
    assert len(family) == 2
    for index, (signal, _, description) in enumerate(family):
        expected = random_scene(index, "held_out", **SMALL)
        assert description == expected[2]
        np.testing.assert_array_equal(signal.data, expected[0].data)


def test_an_override_keeps_the_other_draws():
    plain = random_scene(4, **SMALL)
    clean = random_scene(4, artefacts=("drift", "spikes"), **SMALL)
    assert clean[2].endmember_names == plain[2].endmember_names
    np.testing.assert_array_equal(clean[1].endmembers, plain[1].endmembers)
    np.testing.assert_array_equal(clean[1].abundances, plain[1].abundances)


# --------------------------------------------------------------------------
# The signal and its ground truth
# --------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["eels", "raman", "generic"])
def test_signal_and_truth_are_consistent(modality):
    signal, truth, description = random_scene(
        2, modality=modality, intensity_variation=0.3, **SMALL
    )
    assert description.modality == modality
    expected_class = exspy_signals.EELSSpectrum if modality == "eels" else Signal1D
    assert isinstance(signal, expected_class)
    assert signal.data.shape == (32, 32, 150)
    assert signal.data.dtype == np.float64
    assert np.isfinite(signal.data).all()
    y, x = signal.axes_manager.navigation_axes[::-1]
    assert (y.name, x.name) == ("y", "x")
    assert y.units
    assert x.units
    assert y.scale > 0
    axis = signal.axes_manager.signal_axes[0]
    assert axis.name == description.axis_name
    assert axis.units == description.axis_units
    assert axis.offset == description.axis_offset
    assert axis.scale == description.axis_scale
    title = signal.metadata.General.title
    assert modality in title
    assert "scene 2" in title
    assert signal.original_metadata.synthetic_scene.modality == modality

    assert isinstance(truth, GroundTruth)
    assert truth.names == description.endmember_names
    assert truth.endmembers.shape == (description.n_endmembers, 150)
    assert truth.endmembers.min() >= 0
    assert_on_simplex(truth.abundances)
    assert truth.intensity is not None
    assert truth.intensity.min() >= 0.7 - 1e-12
    assert truth.intensity.max() <= 1.3
    np.testing.assert_allclose(truth.noiseless, _expected_noiseless(truth), rtol=1e-12)
    assert description.min_spectral_angle >= 0.02


@pytest.mark.parametrize(
    "overrides",
    [
        {"modality": "eels", "dose": 1e8},
        {"modality": "raman", "snr": 1e6},
        {"modality": "generic", "noise": "poisson", "dose": 1e8},
    ],
    ids=["eels", "raman", "generic"],
)
def test_clean_high_dose_data_approach_the_noiseless_cube(overrides):
    signal, truth, description = random_scene(
        5, artefacts=(), intensity_variation=0.0, **SMALL, **overrides
    )
    assert truth.artefacts is None
    assert truth.intensity is None
    error = np.abs(signal.data - truth.noiseless).max() / truth.noiseless.max()
    assert error < 0.01
    if description.noise == "poisson":
        np.testing.assert_array_equal(signal.data, np.round(signal.data))


def test_every_endmember_of_the_family_is_distinct(development, held_out):
    assert min(d.min_spectral_angle for d in development + held_out) >= 0.02


def test_the_eels_library_is_computable():
    # Every material over a window covering all its edges: the hydrogenic
    # subshell names, the L2,3 proxies and the parametric M4,5 edges.
    rng = np.random.default_rng(0)
    for name in _eels_materials._EELS_MATERIALS:
        (material,) = _eels_materials._draw_eels_materials(rng, [name], 3.0)
        onsets = [edge.spec.onset for edge in material.edges]
        start = max(60.0, min(onsets) - 30.0)
        n_channels = int(max(onsets) + 100.0 - start)
        shape = _eels_materials._eels_shapes((material,), start, 1.0, n_channels, 1.0)[
            0
        ]
        assert np.isfinite(shape).all()
        assert shape.min() > 0
        # Each edge rises above what the core loss was just below its onset
        # (delayed M4,5 edges within 80 eV).
        energy = np.arange(start, start + n_channels, 0.1)
        background = dataclasses.replace(material, edge_to_background=0.0)
        core_loss = _eels_materials._material_spectrum_fine(
            material, energy, energy[-1]
        ) - _eels_materials._material_spectrum_fine(background, energy, energy[-1])
        for onset in onsets:
            below = core_loss[np.searchsorted(energy, onset - 5)]
            above = core_loss[(energy >= onset) & (energy <= onset + 80)].max()
            assert above > 1.05 * below, (name, onset)


# --------------------------------------------------------------------------
# Abundances: pure pixels and structures
# --------------------------------------------------------------------------


def _check_pure_pixel_promise(abundances: np.ndarray, description) -> None:
    assert_on_simplex(abundances)
    n = description.n_endmembers
    if description.pure_pixels:
        assert description.max_fraction == 1.0
        assert (abundances.max(axis=(0, 1)) > 0.98).all()
        assert ((abundances > 0.98).sum(axis=(0, 1)) >= 9).all()
        assert ((abundances > 0.5).sum(axis=(0, 1)) > 5).all()
    else:
        assert description.max_fraction <= 0.9
        assert abundances.max() <= description.max_fraction + 1e-12
        owners = np.bincount(abundances.argmax(axis=-1).ravel(), minlength=n)
        assert (owners >= 16).all()


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "no_pure"])
@pytest.mark.parametrize("structure", _family.STRUCTURES)
def test_each_structure_keeps_the_pure_pixel_promise(structure, pure):
    signal, truth, description = random_scene(
        7,
        structure=structure,
        pure_pixels=pure,
        n_endmembers=5,
        shape=(48, 40),
        n_channels=100,
    )
    assert description.structure == structure
    assert description.pure_pixels is pure
    assert description.structure in signal.metadata.General.title
    _check_pure_pixel_promise(truth.abundances, description)


def test_the_family_keeps_the_pure_pixel_promise(development):
    # Abundances only (same code path as random_scene), for speed.
    for index in range(0, 60, 2):
        description, _, rng = _family._draw(index, "development", {})
        assert description == development[index]
        abundances = _scenes._build_abundances(rng, description)
        assert abundances.shape[:2] == description.shape
        _check_pure_pixel_promise(abundances, description)


# --------------------------------------------------------------------------
# Artefacts
# --------------------------------------------------------------------------


def test_spikes_are_tall_and_narrow():
    signal, truth, description = random_scene(
        3, modality="raman", artefacts=("spikes",), snr=1e6, **SMALL
    )
    assert description.artefacts == ("spikes",)
    spiky = truth.artefacts > 0
    assert 2 <= spiky.sum() <= 30
    pixels = np.argwhere(spiky.any(axis=-1))
    assert 1 <= len(pixels) <= 5
    peak = truth.noiseless[tuple(pixels[0])].max()
    assert truth.artefacts[tuple(pixels[0])].max() >= 2 * peak
    np.testing.assert_allclose(
        signal.data, truth.noiseless + truth.artefacts, atol=1e-3 * peak
    )


def test_dead_pixels_read_zero_and_hot_pixels_are_offset():
    found = Counter()
    for index in range(4):
        signal, truth, _ = random_scene(
            index, modality="eels", artefacts=("dead_pixels",), **SMALL
        )
        changed = np.argwhere((truth.artefacts != 0).any(axis=-1))
        assert 1 <= len(changed) <= 4
        for row, column in changed:
            spectrum = signal.data[row, column]
            if not spectrum.any():
                found["dead"] += 1
                np.testing.assert_allclose(
                    truth.artefacts[row, column], -truth.noiseless[row, column]
                )
            else:
                found["hot"] += 1
                offset = truth.artefacts[row, column]
                assert offset.min() > 0
                assert np.ptp(offset) == 0
    assert found["dead"]
    assert found["hot"]


def test_drift_shifts_the_spectra_by_sub_channel_amounts():
    signal, truth, description = random_scene(
        1,
        modality="eels",
        artefacts=("drift",),
        drift_channels=1.2,
        dose=1e9,
        **SMALL,
    )
    assert truth.artefacts is None
    drift = signal.original_metadata.synthetic_drift_channels
    assert drift.shape == description.shape
    np.testing.assert_allclose(np.abs(drift).max(), 1.2)
    shifted = _artefacts._shift_spectra(truth.noiseless, drift)
    scale = truth.noiseless.max()
    assert np.abs(signal.data - shifted).max() / scale < 0.005
    assert np.abs(signal.data - truth.noiseless).max() / scale > 0.02


def test_shift_matches_linear_interpolation():
    rng = np.random.default_rng(0)
    cube = rng.random((3, 4, 50))
    shifts = rng.uniform(-2.5, 2.5, (3, 4))
    shifted = _artefacts._shift_spectra(cube, shifts)
    channels = np.arange(50)
    for row in range(3):
        for column in range(4):
            expected = np.interp(
                channels - shifts[row, column], channels, cube[row, column]
            )
            np.testing.assert_allclose(shifted[row, column], expected, atol=1e-12)


def test_raman_baseline_is_smooth_and_positive():
    _signal, truth, description = random_scene(
        6,
        modality="raman",
        artefacts=("baseline",),
        baseline_amplitude=1.0,
        **SMALL,
    )
    assert description.baseline_amplitude == 1.0
    peak = truth.noiseless.max(axis=-1).mean()
    assert truth.artefacts.min() > 0
    assert 0.1 * peak < truth.artefacts.max() <= 1.0 * peak + 1e-9
    curvature = np.abs(np.diff(truth.artefacts, 2, axis=-1)).max()
    assert curvature < 1e-3 * peak


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------


def test_overrides_force_the_drawn_parameters():
    signal, truth, description = random_scene(
        0,
        modality="raman",
        n_endmembers=3,
        shape=(32, 40),
        n_channels=120,
        pure_pixels=False,
        max_fraction=0.7,
        structure="particles",
        snr=50.0,
        intensity_variation=0.0,
        artefacts=(),
    )
    assert signal.data.shape == (32, 40, 120)
    assert description.n_endmembers == truth.n_endmembers == 3
    assert (description.structure, description.snr) == ("particles", 50.0)
    assert description.max_fraction == 0.7
    assert not description.pure_pixels
    assert truth.abundances.max() <= 0.7 + 1e-12
    assert description.artefacts == ()
    assert truth.artefacts is None
    assert truth.intensity is None
    assert description.dose is None


def test_unknown_overrides_raise_and_list_the_valid_ones():
    with pytest.raises(ValueError, match="colour") as error:
        random_scene(0, colour="red")
    for name in ("modality", "n_endmembers", "pure_pixels", "artefacts"):
        assert name in str(error.value)
    with pytest.raises(ValueError, match="can be overridden"):
        describe_scene(0, colour="red")
    with pytest.raises(ValueError, match="can be overridden"):
        scene_family("development", 3, colour="red")  # eager, before iteration


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"modality": "xray"}, "modality must be one of"),
        ({"n_endmembers": 7}, "at most 6"),
        ({"n_endmembers": 1}, ">= 2"),
        ({"shape": (8, 32)}, ">= 16"),
        ({"pure_pixels": 1}, "must be a bool"),
        ({"artefacts": "spikes"}, "tuple of names"),
        ({"artefacts": ("smudge",)}, "each artefact"),
        ({"modality": "eels", "artefacts": ("baseline",)}, "Raman scenes only"),
        ({"modality": "raman", "dose": 10.0}, "noise='poisson'"),
        ({"modality": "eels", "snr": 10.0}, "noise='gaussian'"),
        ({"modality": "eels", "noise": "gaussian"}, "only possible"),
        ({"structure": "cell", "n_endmembers": 3}, "n_endmembers >= 4"),
        ({"pure_pixels": True, "max_fraction": 0.7}, "pure_pixels=False"),
        ({"pure_pixels": False, "n_endmembers": 2, "max_fraction": 0.4}, "above"),
        ({"artefacts": (), "drift_channels": 1.0}, "add 'drift'"),
        ({"intensity_variation": 1.5}, "intensity_variation"),
    ],
)
def test_invalid_overrides_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        describe_scene(0, **arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"index": -1}, "index must be >= 0"),
        ({"index": 1.5}, "index must be an integer"),
        ({"split": "test"}, "split must be one of"),
    ],
)
def test_invalid_index_or_split_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        random_scene(**{"index": 0, **arguments})


# --------------------------------------------------------------------------
# Subgroups and the composition of the family
# --------------------------------------------------------------------------


def test_subgroups_follow_the_documented_rules(development, held_out):
    for description in development + held_out:
        groups = set(description.subgroups)
        assert ("pure_pixels" in groups) is description.pure_pixels
        assert ("no_pure_pixels" in groups) is (not description.pure_pixels)
        assert ("intensity_varying" in groups) is (
            description.intensity_variation >= 0.1
        )
        if description.noise == "poisson":
            low = description.dose < 5 * 400 ** (1 / 3)
        else:
            low = description.snr < 3 * 100 ** (1 / 3)
        assert ("low_dose" in groups) is low
        assert ("artefacts" in groups) is bool(description.artefacts)
        assert description.as_dict()["subgroups"] == description.subgroups
        expected_noise = {"eels": "poisson", "raman": "gaussian"}
        if description.modality in expected_noise:
            assert description.noise == expected_noise[description.modality]
        assert (description.dose is None) is (description.noise == "gaussian")


def test_subgroups_use_the_drawn_parameters_only():
    low = describe_scene(
        0, modality="eels", dose=10.0, artefacts=(), intensity_variation=0.05
    )
    assert "low_dose" in low.subgroups
    assert "artefacts" not in low.subgroups
    assert "intensity_varying" not in low.subgroups
    high = describe_scene(0, modality="raman", snr=200.0, artefacts=("drift",))
    assert "low_dose" not in high.subgroups
    assert "artefacts" in high.subgroups


@pytest.mark.parametrize("split", ["development", "held_out"])
def test_the_first_60_scenes_cover_every_kind(split, development, held_out):
    descriptions = development if split == "development" else held_out
    count = Counter()
    for description in descriptions:
        count[description.modality] += 1
        count[description.structure] += 1
        count[f"n={description.n_endmembers}"] += 1
        count.update(description.artefacts)
        count.update(description.subgroups)
        count[description.noise] += 1
    kinds = (
        *_family.MODALITIES,
        *_family.STRUCTURES,
        "n=2",
        "n=6",
        *_family.ARTEFACT_KINDS,
        *_family.SUBGROUPS,
        *_family.NOISE_KINDS,
    )
    scarce = {kind: count[kind] for kind in kinds if count[kind] < 4}
    assert not scarce, f"too few scenes of some kinds: {scarce}"
    assert {d.shape[0] for d in descriptions} <= set(range(32, 81))
    assert min(d.n_channels for d in descriptions) >= 100
    assert max(d.n_channels for d in descriptions) <= 2000
