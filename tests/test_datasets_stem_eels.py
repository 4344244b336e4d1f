"""Tests of the STEM-EELS scene family (hs_aeunmix.datasets._stem_eels)."""

from __future__ import annotations

import numpy as np
import pytest

from hs_aeunmix.datasets._stem_eels import (
    STRUCTURES,
    stem_eels_family,
    stem_eels_scene,
)

pytest.importorskip("exspy")

SMALL = {"shape": (32, 32), "n_channels": 150}
VOCABULARY = {
    "pure_pixels",
    "no_pure_pixels",
    "intensity_varying",
    "low_dose",
    "drift",
    "artefacts",
}


@pytest.fixture(scope="module")
def scenes():
    return [stem_eels_scene(index, **SMALL) for index in range(8)]


def test_same_index_and_split_give_identical_scenes():
    s1, truth1, d1 = stem_eels_scene(5, "held_out", **SMALL)
    s2, truth2, d2 = stem_eels_scene(5, "held_out", **SMALL)
    np.testing.assert_array_equal(s1.data, s2.data)
    np.testing.assert_array_equal(truth1.noiseless, truth2.noiseless)
    np.testing.assert_array_equal(truth1.abundances, truth2.abundances)
    np.testing.assert_array_equal(d1.drift_map, d2.drift_map)
    assert d1 == d2


def test_splits_differ():
    _, _, development = stem_eels_scene(0, "development")
    _, _, held_out = stem_eels_scene(0, "held_out")
    assert development.summary() != held_out.summary()
    assert development.split == "development"
    assert held_out.split == "held_out"


def test_ground_truth_follows_the_mixing_model(scenes):
    for s, truth, d in scenes:
        n = d.n_endmembers
        assert truth.endmembers.shape == (n, d.n_channels)
        assert truth.abundances.shape == (*d.shape, n)
        assert truth.names == d.phases
        assert len(d.compositions) == n
        assert truth.abundances.min() >= 0
        np.testing.assert_allclose(truth.abundances.sum(-1), 1.0, atol=1e-12)
        scale = np.ones(d.shape) if truth.intensity is None else truth.intensity
        expected = scale[..., None] * (truth.abundances @ truth.endmembers)
        np.testing.assert_allclose(truth.noiseless, expected, rtol=1e-12)
        total = truth.noiseless.sum(-1).mean() / d.gain
        assert total == pytest.approx(d.dose, rel=1e-9)
        assert s.data.shape == (*d.shape, d.n_channels)
        assert s.data.dtype == np.float64
        unit = truth.endmembers / np.linalg.norm(truth.endmembers, axis=1)[:, None]
        angles = np.arccos(np.clip(unit @ unit.T, -1.0, 1.0))
        assert (angles + np.eye(n)).min() >= 0.02


def test_subgroups_follow_their_rules(scenes):
    for _, truth, d in scenes:
        assert set(d.subgroups) <= VOCABULARY
        assert ("pure_pixels" in d.subgroups) != ("no_pure_pixels" in d.subgroups)
        assert ("pure_pixels" in d.subgroups) == d.pure_pixels
        assert ("low_dose" in d.subgroups) == (d.dose < 300)
        assert ("drift" in d.subgroups) == (d.drift_channels >= 0.5)
        assert ("intensity_varying" in d.subgroups) == (d.thickness_variation >= 0.1)
        assert ("artefacts" in d.subgroups) == (truth.artefacts is not None)
        assert ("artefacts" in d.subgroups) == bool(d.artefacts)
        assert d.drift_channels == pytest.approx(np.abs(d.drift_map).max())
        assert (truth.intensity is None) == (d.thickness_variation == 0)
        assert d.generator == "stem_eels"
        assert d.modality == "eels"
        assert d.summary().startswith(f"stem_eels development#{d.index}:")


@pytest.mark.parametrize("structure", STRUCTURES)
def test_presence_and_purity_guarantees(structure):
    for pure in (True, False):
        if pure and structure == "gradient":
            continue
        _, truth, d = stem_eels_scene(
            3, structure=structure, pure_pixels=pure, n_endmembers=5, **SMALL
        )
        a = truth.abundances
        largest = np.bincount(a.argmax(-1).ravel(), minlength=5)
        assert largest.min() >= 16
        if pure:
            assert (a > 0.98).sum((0, 1)).min() >= 9
            assert d.subgroups[0] == "pure_pixels"
        else:
            assert a.max() <= d.max_fraction + 1e-12
            assert max(0.5, 1 / 5 + 0.1) <= d.max_fraction <= 0.9
            assert d.subgroups[0] == "no_pure_pixels"


def test_gradient_has_no_pure_pixels_and_pure_request_changes_structure():
    _, _, d = stem_eels_scene(0, structure="gradient", **SMALL)
    assert not d.pure_pixels
    # Scene 0 draws the gradient structure: asking for pure pixels keeps
    # pure pixels and moves to another structure.
    _, _, drawn = stem_eels_scene(0, **SMALL)
    assert drawn.structure == "gradient"
    _, _, pure = stem_eels_scene(0, pure_pixels=True, **SMALL)
    assert pure.pure_pixels
    assert pure.structure != "gradient"


def test_overriding_one_parameter_leaves_the_others_as_drawn():
    _, _, drawn = stem_eels_scene(2)
    _, _, changed = stem_eels_scene(2, dose=5000.0, t_lambda=0.5)
    assert changed.dose == 5000.0
    assert changed.t_lambda == 0.5
    for name in (
        "n_endmembers",
        "shape",
        "n_channels",
        "dispersion",
        "structure",
        "pure_pixels",
        "thickness_variation",
        "beam_energy",
        "collection_angle",
        "resolution_fwhm",
        "gain",
    ):
        assert getattr(changed, name) == getattr(drawn, name), name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_endmembers": 7}, r"n_endmembers must be an integer in \[2, 6\], got 7\."),
        ({"n_endmembers": 2.0}, r"n_endmembers must be an integer in \[2, 6\]"),
        ({"shape": (10, 40)}, r"shape must be a pair \(ny, nx\) of integers in \[24"),
        ({"shape": 40}, r"shape must be a pair \(ny, nx\)"),
        ({"n_channels": 20}, r"n_channels must be an integer in \[64, 4096\]"),
        ({"dose": 0}, r"dose must be a number in \[1, 1e\+07\], got 0\."),
        ({"drift_channels": -1.0}, r"drift_channels must be a number in \[0, 10\]"),
        ({"dispersion": 5.0}, r"dispersion must be a number in \[0.01, 2\]"),
        ({"pure_pixels": "yes"}, r"pure_pixels must be True or False, got 'yes'\."),
        ({"structure": "foam"}, r"structure must be one of \('interface'"),
        ({"t_lambda": 3.0}, r"t_lambda must be a number in \[0, 1.5\]"),
        ({"thickness_variation": 0.9}, r"thickness_variation must be a number in"),
        ({"beam_energy": 30}, r"beam_energy must be a number in \[60, 300\]"),
        ({"artefacts": 1}, r"artefacts must be True or False"),
        (
            {"structure": "gradient", "pure_pixels": True},
            r"pure_pixels=True is incompatible with structure='gradient'",
        ),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        stem_eels_scene(0, **overrides)


def test_unknown_override_and_bad_arguments_are_refused():
    with pytest.raises(TypeError, match=r"Unknown override\(s\) \['noise'\]"):
        stem_eels_scene(0, noise=1)
    with pytest.raises(ValueError, match="split must be 'development' or 'held_out'"):
        stem_eels_scene(0, "test")
    with pytest.raises(ValueError, match="index must be an integer >= 0"):
        stem_eels_scene(-1)
    with pytest.raises(ValueError, match="n_scenes must be an integer >= 0"):
        stem_eels_family(n_scenes=-2)


def test_family_yields_the_scenes_in_order():
    family = list(stem_eels_family("held_out", n_scenes=2, first=4))
    assert [d.index for _, _, d in family] == [4, 5]
    _, _, d4 = stem_eels_scene(4, "held_out")
    assert family[0][2] == d4


def test_signal_is_an_eels_spectrum_with_physical_axes(scenes):
    from exspy.signals import EELSSpectrum

    for s, _, d in scenes[:3]:
        assert isinstance(s, EELSSpectrum)
        assert s.metadata.Signal.signal_type == "EELS"
        assert s.metadata.General.title.startswith(
            f"STEM-EELS development scene {d.index}"
        )
        energy = s.axes_manager.signal_axes[0]
        assert energy.units == "eV"
        assert energy.name == "Energy loss"
        assert energy.offset == pytest.approx(d.energy_offset)
        assert energy.scale == pytest.approx(d.dispersion)
        for axis in s.axes_manager.navigation_axes:
            assert axis.units == "nm"
            assert axis.scale == pytest.approx(d.pixel_size)
        tem = s.metadata.Acquisition_instrument.TEM
        assert tem.beam_energy == d.beam_energy
        assert tem.convergence_angle == pytest.approx(d.convergence_angle)
        assert tem.Detector.EELS.collection_angle == pytest.approx(d.collection_angle)
        assert 10 <= d.collection_angle <= 100
        for edge in d.edges:
            assert edge.split()[1] in {"K", "L2,3", "M4,5", "M2,3"}


def test_gain_scales_data_and_ground_truth():
    # Scene 3 draws a detector gain.
    s, truth, d = stem_eels_scene(3, **SMALL)
    assert d.gain != 1.0
    model = s.metadata.Signal.Noise_properties.Variance_linear_model
    assert model.gain_factor == pytest.approx(d.gain)
    assert s.data.mean() == pytest.approx(truth.noiseless.mean(), rel=0.1)


def _best_shift(spectrum: np.ndarray, reference: np.ndarray) -> float:
    """Shift (channels, positive to higher energy) of ``reference`` that
    fits ``spectrum`` best, to 0.05 channel."""
    channels = np.arange(reference.size, dtype=float)
    inner = slice(8, -8)
    residuals = []
    shifts = np.arange(-4.0, 4.001, 0.05)
    for shift in shifts:
        model = np.interp(channels - shift, channels, reference)[inner]
        scale = model @ spectrum[inner] / (model @ model)
        residuals.append(np.sum((spectrum[inner] - scale * model) ** 2))
    return float(shifts[int(np.argmin(residuals))])


def test_drift_shifts_each_pixel_spectrum_by_its_drift():
    s, truth, d = stem_eels_scene(
        1,
        drift_channels=2.0,
        pure_pixels=True,
        structure="grains",
        dose=1e6,
        t_lambda=0.0,
        thickness_variation=0.0,
        artefacts=False,
        **SMALL,
    )
    assert d.drift_channels == pytest.approx(2.0)
    assert "drift" in d.subgroups
    pure = truth.abundances.max(-1) > 0.98
    phase = truth.abundances.argmax(-1)
    # The pure pixels with the largest and smallest drift, and one between.
    candidates = np.flatnonzero(pure.ravel())
    drifts = d.drift_map.ravel()[candidates]
    chosen = candidates[[np.argmax(drifts), np.argmin(drifts), len(drifts) // 2]]
    data = s.data.reshape(-1, d.n_channels)
    for pixel in chosen:
        reference = truth.endmembers[phase.ravel()[pixel]]
        found = _best_shift(data[pixel], reference)
        assert found == pytest.approx(d.drift_map.ravel()[pixel], abs=0.25)
    assert np.ptp(drifts) > 1.0


def test_without_drift_or_plural_scattering_data_follow_the_ground_truth():
    s, truth, d = stem_eels_scene(
        6, drift_channels=0.0, t_lambda=0.0, artefacts=False, dose=1e6, **SMALL
    )
    assert d.drift_kind == "none"
    assert not d.drift_map.any()
    variance = d.gain * truth.noiseless + d.read_noise**2
    residual = (s.data - truth.noiseless) / np.sqrt(variance)
    assert abs(residual.mean()) < 0.05
    assert residual.std() == pytest.approx(1.0, rel=0.05)


def test_plural_scattering_keeps_the_mean_thickness_endmembers():
    _, single, _ = stem_eels_scene(7, t_lambda=0.0, **SMALL)
    _, plural, d = stem_eels_scene(7, t_lambda=0.8, **SMALL)
    assert d.t_lambda == 0.8
    # Plural scattering moves counts to higher energy losses.
    centre = np.arange(d.n_channels)
    mean_single = (single.endmembers @ centre) / single.endmembers.sum(1)
    mean_plural = (plural.endmembers @ centre) / plural.endmembers.sum(1)
    assert np.all(mean_plural > mean_single)
