"""Tests of the EDS scene family (hs_aeunmix.datasets._eds)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("exspy")

from hs_aeunmix.datasets import EDSDescription, eds_family, eds_scene
from hs_aeunmix.datasets._eds import (
    COMPOUNDS,
    STRUCTURES,
    _lines,
    _spectra,
    _top_level,
)

SMALL = {"shape": (24, 24), "n_channels": 512}
VOCABULARY = {
    "pure_pixels",
    "no_pure_pixels",
    "intensity_varying",
    "low_dose",
    "artefacts",
}


@pytest.fixture(scope="module")
def scenes():
    return [eds_scene(index, **SMALL) for index in range(8)]


def _energies(d: EDSDescription) -> np.ndarray:
    return d.energy_offset + d.dispersion / 1000 * np.arange(d.n_channels)


def test_same_index_and_split_give_identical_scenes():
    s1, truth1, d1 = eds_scene(5, "held_out", **SMALL)
    s2, truth2, d2 = eds_scene(5, "held_out", **SMALL)
    np.testing.assert_array_equal(s1.data, s2.data)
    np.testing.assert_array_equal(truth1.noiseless, truth2.noiseless)
    np.testing.assert_array_equal(truth1.abundances, truth2.abundances)
    assert d1 == d2


def test_splits_differ():
    _, _, development = eds_scene(0, "development", **SMALL)
    _, _, held_out = eds_scene(0, "held_out", **SMALL)
    assert development.summary() != held_out.summary()
    assert development.split == "development"
    assert held_out.split == "held_out"


def test_ground_truth_follows_the_mixing_model(scenes):
    for s, truth, d in scenes:
        n = d.n_endmembers
        assert truth.endmembers.shape == (n, d.n_channels)
        assert truth.abundances.shape == (*d.shape, n)
        assert truth.names == d.phases
        assert set(d.phases) <= set(COMPOUNDS)
        assert truth.abundances.min() >= 0
        assert truth.endmembers.min() >= 0
        np.testing.assert_allclose(truth.abundances.sum(-1), 1.0, atol=1e-12)
        scale = np.ones(d.shape) if truth.intensity is None else truth.intensity
        expected = scale[..., None] * (truth.abundances @ truth.endmembers)
        np.testing.assert_allclose(truth.noiseless, expected, rtol=1e-12)
        assert truth.noiseless.sum(-1).mean() == pytest.approx(d.dose, rel=1e-9)
        assert s.data.shape == (*d.shape, d.n_channels)
        assert s.data.dtype == np.float64
        # Poisson counts, without any gain.
        np.testing.assert_array_equal(s.data, np.round(s.data))
        assert s.data.min() >= 0
        if truth.artefacts is not None:
            assert truth.artefacts.shape == truth.noiseless.shape
            assert truth.artefacts.min() >= 0
        unit = truth.endmembers / np.linalg.norm(truth.endmembers, axis=1)[:, None]
        angles = np.arccos(np.clip(unit @ unit.T, -1.0, 1.0))
        assert (angles + np.eye(n)).min() >= 0.02


def test_data_are_poisson_counts_of_noiseless_plus_artefacts():
    s, truth, d = eds_scene(1, artefacts=True, dose=2e5, **SMALL)
    assert truth.artefacts is not None
    mean = truth.noiseless + truth.artefacts
    busy = mean > 20
    residual = (s.data - mean)[busy] / np.sqrt(mean[busy])
    assert abs(residual.mean()) < 0.05
    assert residual.std() == pytest.approx(1.0, rel=0.05)
    # The zero peak sits at 0 keV when the window starts there.
    assert d.energy_offset == 0.0
    assert "zero_peak" in d.artefacts
    assert truth.artefacts.mean((0, 1)).argmax() <= 2


def test_subgroups_follow_their_rules(scenes):
    for _, truth, d in scenes:
        assert set(d.subgroups) <= VOCABULARY
        assert ("pure_pixels" in d.subgroups) != ("no_pure_pixels" in d.subgroups)
        assert ("pure_pixels" in d.subgroups) == d.pure_pixels
        assert ("low_dose" in d.subgroups) == (d.dose < 300)
        assert ("intensity_varying" in d.subgroups) == (d.intensity_variation >= 0.1)
        assert ("artefacts" in d.subgroups) == (truth.artefacts is not None)
        assert ("artefacts" in d.subgroups) == bool(d.artefacts)
        assert (truth.intensity is None) == (d.intensity_variation == 0)
        if truth.intensity is not None:
            assert truth.intensity.mean() == pytest.approx(1.0)
            spread = np.abs(truth.intensity - 1).max()
            assert spread == pytest.approx(d.intensity_variation)
        assert d.generator == "eds"
        assert d.modality == "eds"
        assert d.summary().startswith(f"eds development#{d.index}:")
        assert 20 <= d.dose <= 5000
        assert 122 <= d.fwhm_mnka <= 140


@pytest.mark.parametrize("structure", STRUCTURES)
def test_presence_and_purity_guarantees(structure):
    for pure in (True, False):
        _, truth, d = eds_scene(
            3, structure=structure, pure_pixels=pure, n_endmembers=4, **SMALL
        )
        a = truth.abundances
        largest = np.bincount(a.argmax(-1).ravel(), minlength=4)
        assert largest.min() >= 16
        if pure:
            assert (a > 0.99).sum((0, 1)).min() >= 9
            assert d.subgroups[0] == "pure_pixels"
        else:
            assert a.max() <= d.max_fraction + 1e-12
            assert 0.5 <= d.max_fraction <= 0.9
            assert d.subgroups[0] == "no_pure_pixels"


def test_overriding_one_parameter_leaves_the_others_as_drawn():
    _, _, drawn = eds_scene(2, **SMALL)
    _, _, changed = eds_scene(2, dose=4000.0, artefacts=True, **SMALL)
    assert changed.dose == 4000.0
    assert "artefacts" in changed.subgroups
    for name in (
        "n_endmembers",
        "shape",
        "n_channels",
        "dispersion",
        "structure",
        "pure_pixels",
        "intensity_variation",
        "microscope",
        "beam_energy",
        "fwhm_mnka",
        "pixel_size",
    ):
        assert getattr(changed, name) == getattr(drawn, name), name
    _, _, sem = eds_scene(2, beam_energy=20.0, **SMALL)
    assert (sem.microscope, sem.beam_energy) == ("SEM", 20.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_endmembers": 7}, r"n_endmembers must be an integer in \[2, 6\], got 7\."),
        ({"n_endmembers": 2.0}, r"n_endmembers must be an integer in \[2, 6\]"),
        ({"shape": (10, 40)}, r"shape must be a pair \(ny, nx\) of integers in \[24"),
        ({"n_channels": 20}, r"n_channels must be an integer in \[128, 4096\]"),
        ({"dose": 0}, r"dose must be a number in \[1, 1e\+07\], got 0\."),
        ({"dispersion": 100.0}, r"dispersion must be a number in \[1, 50\]"),
        ({"pure_pixels": "yes"}, r"pure_pixels must be True or False, got 'yes'\."),
        ({"structure": "foam"}, r"structure must be one of \('grains'"),
        (
            {"microscope": "XPS"},
            r"microscope must be one of \('SEM', 'TEM'\), got 'XPS'\.",
        ),
        ({"beam_energy": 1.0}, r"beam_energy must be a number in \[5, 300\]"),
        ({"intensity_variation": 0.9}, r"intensity_variation must be a number in"),
        ({"artefacts": 1}, r"artefacts must be True or False"),
        (
            {"microscope": "SEM", "beam_energy": 200.0},
            r"beam_energy=200 kV does not suit microscope='SEM'",
        ),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        eds_scene(0, **overrides)


def test_unknown_override_and_bad_arguments_are_refused():
    with pytest.raises(TypeError, match=r"Unknown override\(s\) \['noise'\]"):
        eds_scene(0, noise=1)
    with pytest.raises(ValueError, match="split must be 'development' or 'held_out'"):
        eds_scene(0, "test")
    with pytest.raises(ValueError, match="index must be an integer >= 0"):
        eds_scene(-1)
    with pytest.raises(ValueError, match="n_scenes must be an integer >= 0"):
        eds_family(n_scenes=-2)
    with pytest.raises(ValueError, match="split must be"):
        eds_family("train")


def test_family_yields_the_scenes_in_order():
    family = list(eds_family("held_out", n_scenes=2, first=4))
    assert [d.index for _, _, d in family] == [4, 5]
    _, _, d4 = eds_scene(4, "held_out")
    assert family[0][2] == d4


@pytest.mark.parametrize(
    ("microscope", "beam_energy"), [("TEM", 200.0), ("SEM", 20.0), ("SEM", 10.0)]
)
def test_lines_sit_at_their_database_energies(microscope, beam_energy):
    from exspy.material import elements

    p = _top_level(
        np.random.default_rng(0),
        {
            "microscope": microscope,
            "beam_energy": beam_energy,
            "n_channels": 1024,
            "artefacts": False,
        },
    )
    step = p["dispersion"] / 1000
    energies = p["energy_offset"] + step * np.arange(p["n_channels"])
    spectra, labels = _spectra(p, ["Fe", "Cu", "SiO2"])
    fe, cu, silica = spectra
    fe_ka = elements.Fe.Atomic_properties.Xray_lines.Ka["energy (keV)"]
    fe_la = elements.Fe.Atomic_properties.Xray_lines.La["energy (keV)"]
    si_ka = elements.Si.Atomic_properties.Xray_lines.Ka["energy (keV)"]
    # The narrow, intense Fe L may outgrow Fe K; above 2 keV, Fe K leads
    # when it is excited (overvoltage 1.5 or more).
    excited = beam_energy >= 1.5 * 7.112
    found = energies[fe.argmax()]
    assert min(abs(found - fe_ka), abs(found - fe_la)) <= step
    if excited:
        high = energies > 2.0
        assert abs(energies[high][fe[high].argmax()] - fe_ka) <= step
    else:
        assert abs(found - fe_la) <= step
    assert abs(energies[silica.argmax()] - si_ka) <= step
    assert ("Fe_Ka" in labels) == excited
    for label, energy, _ in _lines(p, COMPOUNDS["Cu"]):
        element, line = label.split("_")
        database = elements[element].Atomic_properties.Xray_lines[line]
        assert energy == database["energy (keV)"]
        assert energy * 1.5 < beam_energy
        assert energies[0] - step <= energy <= energies[-1] + step
    assert cu.min() >= 0


def test_each_endmember_peaks_at_one_of_its_lines(scenes):
    for _, truth, d in scenes:
        energies = _energies(d)
        step = d.dispersion / 1000
        p = _top_level(np.random.default_rng(0), {})
        p.update(
            {k: getattr(d, k) for k in ("microscope", "beam_energy", "n_channels")}
        )
        p.update(
            energy_offset=d.energy_offset,
            dispersion=d.dispersion,
            takeoff_angle=d.takeoff_angle,
            absorption_energy=d.absorption_energy,
            window_cutoff=d.window_cutoff,
            fwhm_mnka=d.fwhm_mnka,
        )
        for name, spectrum in zip(d.phases, truth.endmembers, strict=True):
            lines = np.array([e for _, e, _ in _lines(p, COMPOUNDS[name])])
            top = energies[spectrum.argmax()]
            assert np.abs(lines - top).min() <= step, (d.index, name, top)


def test_signal_is_an_eds_spectrum_with_its_axis_in_kev(scenes):
    from exspy.signals import EDSSEMSpectrum, EDSTEMSpectrum

    microscopes = set()
    for s, _, d in scenes:
        microscopes.add(d.microscope)
        expected = EDSSEMSpectrum if d.microscope == "SEM" else EDSTEMSpectrum
        assert type(s) is expected
        assert s.metadata.Signal.signal_type == f"EDS_{d.microscope}"
        assert s.metadata.General.title.startswith(f"EDS development scene {d.index}")
        energy = s.axes_manager.signal_axes[0]
        assert energy.units == "keV"
        assert energy.offset == pytest.approx(d.energy_offset)
        assert energy.scale == pytest.approx(d.dispersion / 1000)
        for axis in s.axes_manager.navigation_axes:
            assert axis.units == "nm"
            assert axis.scale == pytest.approx(d.pixel_size)
        instrument = s.metadata.Acquisition_instrument[d.microscope]
        assert instrument.beam_energy == d.beam_energy
        detector = instrument.Detector.EDS
        assert detector.energy_resolution_MnKa == pytest.approx(d.fwhm_mnka)
        elements = {el for name in d.phases for el in COMPOUNDS[name]}
        assert set(s.metadata.Sample.elements) == elements
    assert microscopes == {"SEM", "TEM"}
