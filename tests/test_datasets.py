"""Tests of the synthetic datasets: shapes, calibration, physics and truth."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import assert_on_simplex
from hyperspy.signals import Signal1D

from hs_aeunmix.datasets import (
    GroundTruth,
    eels_chequerboard,
    eels_no_pure_pixel,
    raman_scene,
)

exspy_signals = pytest.importorskip("exspy.signals")


@pytest.fixture(scope="module")
def chequerboard_three():
    return eels_chequerboard(3, random_state=0)


@pytest.fixture(scope="module")
def chequerboard_four():
    return eels_chequerboard(4, shape=(24, 24), random_state=0)


@pytest.fixture(scope="module")
def no_pure_pixel_three():
    return eels_no_pure_pixel(3, random_state=1)


def _energy(signal) -> np.ndarray:
    return signal.axes_manager.signal_axes[0].axis


def _value_at(signal, spectrum: np.ndarray, energy: float) -> float:
    return float(spectrum[np.argmin(np.abs(_energy(signal) - energy))])


# --------------------------------------------------------------------------
# EELS chequerboard
# --------------------------------------------------------------------------


def test_chequerboard_signal_class_shape_and_calibration(chequerboard_three):
    signal, truth = chequerboard_three
    assert isinstance(signal, exspy_signals.EELSSpectrum)
    assert isinstance(truth, GroundTruth)
    assert signal.data.shape == (64, 64, 200)
    assert signal.data.dtype == np.float64
    navigation = signal.axes_manager.navigation_axes
    # HyperSpy lists navigation axes fastest first: x then y.
    assert [axis.name for axis in navigation] == ["x", "y"]
    for axis in navigation:
        assert axis.units == "nm"
        assert axis.scale == pytest.approx(0.12)
    energy = signal.axes_manager.signal_axes[0]
    assert (energy.name, energy.units) == ("Energy loss", "eV")
    assert energy.offset == pytest.approx(700.0)
    assert energy.scale == pytest.approx(1.0)
    assert "chequerboard" in signal.metadata.General.title
    assert signal.metadata.Acquisition_instrument.TEM.beam_energy == 100.0


def test_chequerboard_truth_is_consistent(chequerboard_three):
    _, truth = chequerboard_three
    assert truth.names == ("Co", "Ni", "Pt")
    assert truth.n_endmembers == 3
    assert truth.endmembers.shape == (3, 200)
    assert truth.abundances.shape == (64, 64, 3)
    assert truth.intensity is None
    assert truth.artefacts is None
    assert_on_simplex(truth.abundances)
    np.testing.assert_array_equal(truth.noiseless, truth.abundances @ truth.endmembers)


def test_chequerboard_fractions_follow_the_mean_filter(chequerboard_three):
    _, truth = chequerboard_three
    counts = truth.abundances * 81
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    # Block centres stay pure; block boundaries mix.
    assert np.any(truth.abundances.max(axis=-1) == 1.0)
    assert np.any(truth.abundances.max(axis=-1) < 0.7)


def test_chequerboard_without_filter_is_pure():
    _, truth = eels_chequerboard(3, shape=(16, 16), filter_size=1, random_state=0)
    assert set(np.unique(truth.abundances)) == {0.0, 1.0}


def test_chequerboard_poisson_counts(chequerboard_three):
    signal, truth = chequerboard_three
    assert signal.data.min() >= 0
    np.testing.assert_array_equal(signal.data, np.round(signal.data))
    residual = signal.data - truth.noiseless
    # Poisson: variance equals the mean.
    assert np.var(residual / np.sqrt(truth.noiseless)) == pytest.approx(1.0, rel=0.02)


def test_dose_is_mean_counts_per_channel():
    for dose in (50.0, 400.0):
        _, truth = eels_chequerboard(3, shape=(8, 8), dose=dose, random_state=0)
        assert truth.endmembers.mean() == pytest.approx(dose)


def test_chequerboard_four_endmembers(chequerboard_four):
    signal, truth = chequerboard_four
    assert signal.data.shape == (24, 24, 903)
    assert truth.names == ("TiO2", "Fe2O3", "C", "Si3N4")
    energy = signal.axes_manager.signal_axes[0]
    assert energy.offset == pytest.approx(250.0)
    assert energy.axis[-1] == pytest.approx(1152.0)
    assert signal.axes_manager.navigation_axes[0].scale == pytest.approx(0.5)
    assert_on_simplex(truth.abundances)
    np.testing.assert_array_equal(truth.noiseless, truth.abundances @ truth.endmembers)


def test_seeded_reproducibility():
    first, first_truth = eels_chequerboard(3, shape=(16, 16), random_state=7)
    again, again_truth = eels_chequerboard(3, shape=(16, 16), random_state=7)
    other, other_truth = eels_chequerboard(3, shape=(16, 16), random_state=8)
    np.testing.assert_array_equal(first.data, again.data)
    np.testing.assert_array_equal(first_truth.abundances, again_truth.abundances)
    assert not np.array_equal(first.data, other.data)
    assert not np.array_equal(first_truth.abundances, other_truth.abundances)


def test_generator_is_accepted_as_random_state():
    _, truth = eels_chequerboard(
        3, shape=(16, 16), random_state=np.random.default_rng(3)
    )
    _, same = eels_chequerboard(3, shape=(16, 16), random_state=3)
    np.testing.assert_array_equal(truth.abundances, same.abundances)


def test_truth_arrays_are_private_copies():
    _, truth = eels_chequerboard(3, shape=(8, 8), random_state=0)
    truth.endmembers[:] = 0
    _, fresh = eels_chequerboard(3, shape=(8, 8), random_state=0)
    assert fresh.endmembers.min() > 0


def test_generation_is_fast_after_first_call():
    eels_chequerboard(3, random_state=0)
    start = time.perf_counter()
    eels_chequerboard(3, random_state=1)
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------
# EELS physics
# --------------------------------------------------------------------------


def _jump(signal, spectrum: np.ndarray, onset: float) -> float:
    """Signal just above the onset relative to just below it."""
    return _value_at(signal, spectrum, onset + 1) / _value_at(
        signal, spectrum, onset - 6
    )


def test_three_endmember_edges(chequerboard_three):
    signal, truth = chequerboard_three
    co, ni, pt = truth.endmembers
    assert _jump(signal, co, 779) > 1.3  # Co L3 white line
    assert _jump(signal, co, 794) > 1.1  # Co L2 white line
    assert _jump(signal, ni, 855) > 1.2  # Ni L3 white line
    assert _jump(signal, ni, 779) < 1.0  # no Co in the Ni endmember
    assert _jump(signal, co, 855) < 1.0  # no Ni in the Co endmember
    # Pt is background only: a smooth power law A E^-r.
    assert np.all(np.diff(pt) < 0)
    slope = np.polyfit(np.log(_energy(signal)), np.log(pt), 1)[0]
    assert slope == pytest.approx(-2.7, abs=0.05)


def test_white_line_ratio_is_statistical(chequerboard_three):
    signal, truth = chequerboard_three
    co = truth.endmembers[0]
    energy = _energy(signal)
    pre_edge = (energy > 720) & (energy < 770)
    fit = np.polyfit(np.log(energy[pre_edge]), np.log(co[pre_edge]), 1)
    net = co - np.exp(np.polyval(fit, np.log(energy)))
    l3 = net[np.argmin(np.abs(energy - 779))]
    l2 = net[np.argmin(np.abs(energy - 794))]
    # Heights of equal-width peaks on a rising continuum: close to 2:1.
    assert 1.3 < l3 / l2 < 2.2


def test_edges_sit_on_large_similar_backgrounds(chequerboard_three, chequerboard_four):
    for _, truth in (chequerboard_three, chequerboard_four):
        normalised = truth.endmembers / truth.endmembers.sum(axis=1, keepdims=True)
        cosines = normalised @ normalised.T
        cosines /= np.outer(
            np.linalg.norm(normalised, axis=1), np.linalg.norm(normalised, axis=1)
        )
        angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
        off_diagonal = angles[~np.eye(len(angles), dtype=bool)]
        # Distinct, yet dominated by similar power-law backgrounds.
        assert off_diagonal.min() > 1.0
        assert off_diagonal.max() < 20.0


def test_four_endmember_edges(chequerboard_four):
    signal, truth = chequerboard_four
    tio2, fe2o3, carbon, si3n4 = truth.endmembers
    assert _jump(signal, tio2, 458) > 1.1  # Ti L2,3
    assert _jump(signal, tio2, 531) > 1.05  # O K
    assert _jump(signal, fe2o3, 530) > 1.05  # O K
    assert _jump(signal, fe2o3, 709) > 1.1  # Fe L2,3
    assert _jump(signal, carbon, 285) > 1.1  # C K pi*
    assert _jump(signal, si3n4, 404) > 1.05  # N K
    assert _jump(signal, carbon, 531) < 1.0  # no oxygen in carbon
    assert _jump(signal, si3n4, 458) < 1.0  # no titanium in the nitride
    assert _jump(signal, tio2, 709) < 1.0  # no iron in TiO2


# --------------------------------------------------------------------------
# EELS without pure pixels
# --------------------------------------------------------------------------


def test_no_pure_pixel_bounds_and_truth(no_pure_pixel_three):
    signal, truth = no_pure_pixel_three
    assert isinstance(signal, exspy_signals.EELSSpectrum)
    assert signal.data.shape == (64, 64, 200)
    assert_on_simplex(truth.abundances)
    assert truth.abundances.max() <= 0.7 + 1e-12
    assert truth.abundances.max() == pytest.approx(0.7)
    # Every endmember is a major component somewhere.
    assert np.all(truth.abundances.max(axis=(0, 1)) > 0.5)
    np.testing.assert_array_equal(
        truth.noiseless,
        truth.intensity[..., None] * (truth.abundances @ truth.endmembers),
    )
    assert signal.data.min() >= 0
    np.testing.assert_array_equal(signal.data, np.round(signal.data))


def test_no_pure_pixel_intensity_range(no_pure_pixel_three):
    _, truth = no_pure_pixel_three
    assert truth.intensity.shape == (64, 64)
    assert truth.intensity.min() == pytest.approx(0.7)
    assert truth.intensity.max() == pytest.approx(1.3)
    # Thickness changes smoothly: neighbouring pixels differ little.
    assert np.abs(np.diff(truth.intensity, axis=1)).max() < 0.1


@pytest.mark.parametrize(("n_endmembers", "max_fraction"), [(3, 0.5), (4, 0.6)])
def test_no_pure_pixel_custom_bound(n_endmembers, max_fraction):
    _, truth = eels_no_pure_pixel(
        n_endmembers,
        shape=(32, 24),
        max_fraction=max_fraction,
        thickness_variation=0.0,
        random_state=2,
    )
    assert truth.abundances.shape == (32, 24, n_endmembers)
    assert truth.abundances.max() <= max_fraction + 1e-12
    assert_on_simplex(truth.abundances)
    np.testing.assert_array_equal(truth.intensity, 1.0)


# --------------------------------------------------------------------------
# EELS argument validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("generator", [eels_chequerboard, eels_no_pure_pixel])
@pytest.mark.parametrize("n_endmembers", [2, 5, True, 3.0])
def test_eels_rejects_unknown_endmember_sets(generator, n_endmembers):
    with pytest.raises(ValueError, match="n_endmembers must be 3"):
        generator(n_endmembers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (64,)}, "shape must be"),
        ({"shape": (0, 64)}, r"shape\[0\] must be >= 1"),
        ({"shape": (8.0, 8)}, "must be an integer"),
        ({"block_size": 0}, "block_size must be >= 1"),
        ({"filter_size": 2.5}, "filter_size must be an integer"),
        ({"dose": -1.0}, "dose must be a positive"),
        ({"dose": float("nan")}, "dose must be a positive"),
    ],
)
def test_chequerboard_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        eels_chequerboard(3, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_fraction": 0.3}, r"max_fraction must be in \(1/3, 1\]"),
        ({"max_fraction": 1.5}, r"max_fraction must be in"),
        ({"thickness_variation": 1.0}, r"thickness_variation must be in \[0, 1\)"),
        ({"thickness_variation": -0.1}, "thickness_variation must be in"),
        ({"thickness_variation": "large"}, "thickness_variation must be a number"),
        ({"shape": (5, 64)}, "shape.0. must be at least 6"),
    ],
)
def test_no_pure_pixel_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        eels_no_pure_pixel(3, **kwargs)


# --------------------------------------------------------------------------
# Raman
# --------------------------------------------------------------------------


def test_raman_signal_and_calibration():
    signal, truth = raman_scene(random_state=0)
    assert type(signal) is Signal1D
    assert signal.data.shape == (64, 64, 500)
    assert signal.data.dtype == np.float64
    for axis in signal.axes_manager.navigation_axes:
        assert axis.units == "µm"
        assert axis.scale == pytest.approx(0.5)
    shift = signal.axes_manager.signal_axes[0]
    assert (shift.name, shift.units) == ("Raman shift", "cm⁻¹")
    assert shift.offset == pytest.approx(500.0)
    assert shift.axis[-1] == pytest.approx(3500.0)
    assert truth.names == ("lipid", "protein", "nucleic acid", "water")
    assert "chessboard" in signal.metadata.General.title
    np.testing.assert_allclose(truth.endmembers.max(axis=1), 1.0)


def test_raman_bands_at_literature_positions():
    signal, truth = raman_scene(6, shape=(8, 8), n_channels=3001, random_state=0)
    shift = _energy(signal)
    expected_strongest = {
        "lipid": 2850,
        "protein": 2935,
        "nucleic acid": 782,
        "cytochrome c": 750,
        "carotenoid": 1525,
    }
    for name, position in expected_strongest.items():
        spectrum = truth.endmembers[truth.names.index(name)]
        assert shift[np.argmax(spectrum)] == pytest.approx(position, abs=2)
    protein = truth.endmembers[truth.names.index("protein")]
    fingerprint = (shift > 980) & (shift < 1030)
    assert shift[fingerprint][np.argmax(protein[fingerprint])] == pytest.approx(1003)


@pytest.mark.parametrize("scene", ["chessboard", "gaussian", "dirichlet", "cell"])
def test_raman_scenes_are_on_the_simplex(scene):
    signal, truth = raman_scene(5, shape=(32, 40), scene=scene, snr=None)
    assert truth.abundances.shape == (32, 40, 5)
    assert_on_simplex(truth.abundances)
    np.testing.assert_array_equal(truth.noiseless, truth.abundances @ truth.endmembers)
    np.testing.assert_array_equal(signal.data, truth.noiseless)


def test_raman_chessboard_is_pure_and_gaussian_smooth():
    _, chessboard = raman_scene(4, scene="chessboard", random_state=0)
    assert set(np.unique(chessboard.abundances)) == {0.0, 1.0}
    _, gaussian = raman_scene(4, scene="gaussian", random_state=0)
    assert np.abs(np.diff(gaussian.abundances, axis=0)).max() < 0.2


def test_raman_cell_scene_compartments():
    _, truth = raman_scene(4, scene="cell", snr=None, random_state=4)
    water = truth.abundances[..., truth.names.index("water")]
    nucleic = truth.abundances[..., truth.names.index("nucleic acid")]
    lipid = truth.abundances[..., truth.names.index("lipid")]
    assert water[0, 0] > 0.9  # medium in the corner
    assert nucleic.max() > 0.35  # a nucleus
    assert lipid.max() > 0.6  # lipid droplets


def test_raman_noise_matches_snr():
    signal, truth = raman_scene(4, scene="dirichlet", snr=10.0, random_state=0)
    peak = truth.noiseless.max(axis=-1).mean()
    noise = signal.data - truth.noiseless
    assert noise.std() == pytest.approx(peak / 10.0, rel=0.02)


def test_raman_artefacts_are_outside_the_mixing_truth():
    signal, truth = raman_scene(
        4, scene="gaussian", snr=None, baseline=True, cosmic_rays=15, random_state=0
    )
    assert truth.artefacts is not None
    np.testing.assert_array_equal(truth.noiseless, truth.abundances @ truth.endmembers)
    np.testing.assert_allclose(signal.data, truth.noiseless + truth.artefacts)
    assert truth.artefacts.min() > 0  # positive fluorescence-like baseline

    _, spikes_only = raman_scene(
        4, scene="gaussian", snr=None, cosmic_rays=15, random_state=0
    )
    assert np.count_nonzero(spikes_only.artefacts) == 15
    peak = spikes_only.noiseless.max(axis=-1).mean()
    assert spikes_only.artefacts.max() <= 10 * peak


def test_raman_reproducibility():
    first, _ = raman_scene(4, shape=(16, 16), scene="cell", random_state=5)
    again, _ = raman_scene(4, shape=(16, 16), scene="cell", random_state=5)
    other, _ = raman_scene(4, shape=(16, 16), scene="cell", random_state=6)
    np.testing.assert_array_equal(first.data, again.data)
    assert not np.array_equal(first.data, other.data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_endmembers": 1}, "n_endmembers must be >= 2"),
        ({"n_endmembers": 7}, "n_endmembers must be at most 6"),
        ({"scene": "stripes"}, "scene must be one of"),
        ({"scene": "cell", "n_endmembers": 3}, "needs n_endmembers >= 4"),
        ({"scene": "cell", "shape": (8, 8)}, r"needs min\(shape\) >= 16"),
        ({"n_channels": 10}, "n_channels must be >= 32"),
        ({"snr": 0.0}, "snr must be a positive"),
        ({"baseline": -0.5}, "baseline amplitude must be >= 0"),
        ({"baseline": "yes"}, "baseline must be a bool or a number"),
        ({"cosmic_rays": -1}, "cosmic_rays must be >= 0"),
        ({"cosmic_rays": 10**9}, "cosmic_rays must be at most"),
    ],
)
def test_raman_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        raman_scene(**kwargs)


# Real scans: read from a local folder, checked against the registry's hash;
# nothing is downloaded in the tests (a download fails them).
REAL_DATA = Path(__file__).parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def no_download(monkeypatch):
    import pooch.core

    urls = []

    def refuse(url, *args, **kwargs):
        urls.append(url)
        raise ConnectionError(f"test: no download ({url})")

    monkeypatch.setattr(pooch.core, "stream_download", refuse)
    return urls


def test_a_verified_local_copy_is_read_where_it_lies(monkeypatch, no_download):
    from hs_aeunmix.datasets._real import ENVIRONMENT_VARIABLE, real_scan_path

    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(REAL_DATA))
    path = real_scan_path("lsmo_sto_eels_linescan")
    assert path == REAL_DATA / "exspydemos_LSMO_STO_linescan.hspy"
    assert no_download == []


def test_a_local_copy_that_differs_is_refused_not_replaced(tmp_path, no_download):
    from hs_aeunmix.datasets._real import real_scan_path

    copy = tmp_path / "exspydemos_LSMO_STO_linescan.hspy"
    copy.write_bytes(b"not the published file")
    with pytest.raises(ValueError, match="is not the published lsmo_sto_eels"):
        real_scan_path("lsmo_sto_eels_linescan", folder=tmp_path)
    assert copy.read_bytes() == b"not the published file"
    assert no_download == []


def test_without_a_local_copy_the_file_is_fetched_from_its_repository(
    tmp_path, monkeypatch, no_download
):
    import pooch

    from hs_aeunmix.datasets._real import REAL_SCANS, real_scan_path

    monkeypatch.setattr(pooch, "os_cache", lambda project: tmp_path / project)
    with pytest.raises(ConnectionError, match="no download"):
        real_scan_path("lsmo_sto_eels_linescan", folder=tmp_path / "empty")
    assert no_download == [REAL_SCANS["lsmo_sto_eels_linescan"].url]


def test_an_unknown_real_scan_names_the_known_ones():
    from hs_aeunmix.datasets._real import real_scan_path

    with pytest.raises(ValueError, match="choose one of gaas_solar_cell_eels"):
        real_scan_path("nonexistent")
