"""Starts of training: denoising, SPA, VCA, ICA and the candidates of init="auto"."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import make_mixture

from hs_aeunmix import _initialisation as initialisation
from hs_aeunmix.metrics import mean_spectral_angle


@pytest.fixture(scope="module")
def with_pure_pixels():
    rng = np.random.default_rng(0)
    endmembers = rng.random((3, 40)) + 0.1
    fractions = rng.dirichlet(np.full(3, 0.5), 400)
    fractions[:3] = np.eye(3)  # one pure pixel each
    noise = 0.002 * rng.standard_normal((400, 40))
    return fractions @ endmembers + noise, endmembers


def test_denoised_keeps_the_data_and_its_mean(with_pure_pixels):
    spectra, _ = with_pure_pixels
    before = spectra.copy()
    result = initialisation.denoised(spectra.astype(np.float32), 3)
    np.testing.assert_array_equal(spectra, before)
    rows = result.rows(slice(None))
    assert rows.dtype == np.float64
    np.testing.assert_allclose(rows.mean(axis=0), spectra.mean(axis=0), atol=1e-6)
    # Mean plus three components: rank 4 at most.
    assert np.linalg.matrix_rank(rows, tol=1e-8 * np.abs(rows).max()) <= 4
    assert np.abs(rows - spectra).max() < 0.02


def test_denoised_points_keep_distances_and_totals(with_pure_pixels):
    spectra, _ = with_pure_pixels
    result = initialisation.denoised(spectra, 3)
    rows, points = result.rows(slice(None)), result.points()
    assert points.shape == (len(spectra), 4)  # the mean lies off the axes
    np.testing.assert_allclose(points @ points.T, rows @ rows.T, atol=1e-9)
    np.testing.assert_allclose(result.totals(), rows.sum(axis=1), rtol=1e-12)
    assert not result.has_negative_values()
    assert initialisation.denoised(spectra - 0.5, 3).has_negative_values()


def test_successive_projections_find_the_pure_pixels(with_pure_pixels):
    spectra, _ = with_pure_pixels
    rows = initialisation.denoised(spectra, 3).rows(slice(None))
    chosen = initialisation.successive_projections(rows, 3, rows.sum(axis=1))
    assert sorted(chosen) == [0, 1, 2]


def test_spa_weighs_by_total_unless_values_are_negative():
    # Two pure directions; the brightest pixel is a mixture. Divided by
    # their totals, the pure pixels are the vertices; by nothing, the
    # bright mixture would be.
    endmembers = np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.2]])
    fractions = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    scales = np.array([1.0, 1.0, 10.0])
    spectra = (fractions @ endmembers) * scales[:, None]
    result = initialisation.denoised(np.vstack([spectra, spectra]), 2)
    assert sorted(initialisation.spa_on_denoised(result, 2).sum(axis=1)) == (
        pytest.approx([1.2, 1.2])
    )


@pytest.mark.parametrize(("method", "bound"), [("spa", 0.05), ("vca", 0.05)])
def test_vertex_starts_land_near_the_endmembers(with_pure_pixels, method, bound):
    spectra, endmembers = with_pure_pixels
    [start] = initialisation.candidate_starts(spectra, 3, method, seed=0)
    assert start.method == method
    assert start.endmembers.shape == (3, 40)
    assert (start.endmembers >= 0).all()
    assert mean_spectral_angle(start.endmembers, endmembers) < bound


@pytest.fixture(scope="module")
def chequerboard():
    # Blocks of each material: independent enough for ICA to be admissible.
    # With 200 channels FastICA converges in a few iterations; with 100 it
    # does not, and its unconverged answer changes with rounding.
    return make_mixture(counts=200, n_channels=200)


def test_ica_start_is_admissible_on_independent_maps(chequerboard):
    [start] = initialisation.candidate_starts(chequerboard.spectra, 3, "ica", seed=0)
    assert start.method == "ica"
    assert (start.endmembers >= 0).all()
    assert mean_spectral_angle(start.endmembers, chequerboard.endmembers) < 0.2


def test_auto_gives_every_start_and_denoises_once(chequerboard, monkeypatch):
    calls = []
    real = initialisation.denoised

    def counting(*args, **kwargs):
        calls.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(initialisation, "denoised", counting)
    passes = []
    real_moments = initialisation.moments
    monkeypatch.setattr(
        initialisation,
        "moments",
        lambda *args, **kwargs: passes.append(None) or real_moments(*args, **kwargs),
    )
    starts = initialisation.candidate_starts(chequerboard.spectra, 3, "auto", seed=0)
    assert [start.method for start in starts] == list(initialisation.AUTO_STARTS)
    assert len(calls) == 1
    assert len(passes) == 1  # ICA and the denoising share one pass


def test_inadmissible_ica_is_skipped_by_auto_and_refused_alone():
    # Spectra of both signs everywhere: no non-negative independent sources.
    rng = np.random.default_rng(1)
    spectra = rng.standard_normal((300, 30)) @ rng.standard_normal((30, 30))
    assert initialisation.ica_endmembers(spectra, 3, seed=0) is None
    methods = [s.method for s in initialisation.candidate_starts(spectra, 3, "auto", 0)]
    assert "ica" not in methods
    with pytest.raises(ValueError, match="not admissible"):
        initialisation.candidate_starts(spectra, 3, "ica", seed=0)


def test_random_start_is_seeded_pixels():
    spectra = make_mixture(shape=(8, 8)).spectra
    first = initialisation.candidate_starts(spectra, 3, "random", seed=4)[0]
    again = initialisation.candidate_starts(spectra, 3, "random", seed=4)[0]
    np.testing.assert_array_equal(first.endmembers, again.endmembers)
    assert all(
        any(np.array_equal(row, pixel) for pixel in spectra) for row in first.endmembers
    )


def test_flat_start_is_featureless_at_the_data_level_and_seeded():
    spectra = make_mixture(shape=(8, 8)).spectra
    (first,) = initialisation.candidate_starts(spectra, 3, "flat", seed=4)
    (again,) = initialisation.candidate_starts(spectra, 3, "flat", seed=4)
    (other,) = initialisation.candidate_starts(spectra, 3, "flat", seed=5)
    np.testing.assert_array_equal(first.endmembers, again.endmembers)
    assert not np.array_equal(first.endmembers, other.endmembers)
    ripple = first.endmembers / np.abs(spectra).mean()
    # softplus(0.5413 + 0.1 z): one on average, a few per cent apart.
    assert abs(ripple.mean() - 1.0) < 0.01
    assert 0.04 < ripple.std() < 0.09
    # No shape of the data: uncorrelated with the mean spectrum.
    mean_spectrum = spectra.mean(axis=0)
    for row in first.endmembers:
        assert abs(np.corrcoef(row, mean_spectrum)[0, 1]) < 0.5


@pytest.mark.parametrize("method", list(initialisation.STARTS))
def test_every_named_start_gives_non_negative_endmembers(chequerboard, method):
    (start,) = initialisation.candidate_starts(chequerboard.spectra, 3, method, seed=0)
    assert start.method == method
    assert start.endmembers.shape == (3, chequerboard.spectra.shape[1])
    assert (start.endmembers >= 0).all()


def test_the_options_are_the_table_of_starts():
    from hs_aeunmix import AEUnmix

    assert ("auto", *initialisation.STARTS) == initialisation.INITIALISATIONS
    assert set(initialisation.AUTO_STARTS) <= set(initialisation.STARTS)
    allowed = AEUnmix._parameter_constraints["init"][0]
    assert allowed.options == set(initialisation.INITIALISATIONS)


def test_cluster_means_average_the_noise_that_vertex_starts_pick():
    # Three look-alike phases (one shared band, small distinct ones), each
    # pure in a third of the pixels, at a few counts per channel: the most
    # extreme single pixels are mostly noise (0.18-0.21 rad from the phases),
    # the means of the clusters are not (0.03 rad).
    rng = np.random.default_rng(0)
    channels = np.arange(120)
    shared = 1.0 + 3.0 * np.exp(-0.5 * ((channels - 60) / 15.0) ** 2)
    endmembers = np.stack(
        [
            shared + 2.0 * np.exp(-0.5 * ((channels - c) / 4.0) ** 2)
            for c in (25, 85, 105)
        ]
    )
    labels = np.repeat(np.arange(3), 600)
    spectra = rng.poisson(endmembers[labels]).astype(float)
    angles = {
        method: mean_spectral_angle(
            initialisation.candidate_starts(spectra, 3, method, seed=0)[0].endmembers,
            endmembers,
        )
        for method in ("spa", "vca", "kmeans")
    }
    assert angles["kmeans"] < 0.05
    assert angles["kmeans"] < angles["spa"] / 3
    assert angles["kmeans"] < angles["vca"] / 3


# ------------------------------- starts within the directions above the noise
@pytest.fixture(scope="module")
def faint():
    # Five counts per spectrum: the Poisson noise hides the two directions
    # of variation three endmembers need (test__fitting checks the count).
    return make_mixture(counts=0.05).spectra.astype(np.float32)


def test_with_no_direction_above_the_noise_every_start_is_the_mean(faint):
    starts = initialisation.candidate_starts(faint, 3, "auto", 0, directions=0)
    assert [s.method for s in starts] == ["ica", "spa", "vca"]
    for start in starts:
        np.testing.assert_allclose(
            start.endmembers, np.tile(faint.mean(axis=0), (3, 1)), rtol=1e-6
        )


def test_starts_keep_only_the_directions_above_the_noise(faint):
    free = initialisation.candidate_starts(faint, 3, "auto", 0)
    kept = initialisation.candidate_starts(faint, 3, "auto", 0, directions=1)
    mean = faint.mean(axis=0, dtype=np.float64)
    for before, after in zip(free, kept, strict=True):
        # Three points on one line through the mean, in the channels that
        # clipping at zero left alone.
        unclipped = (after.endmembers > 0).all(axis=0)
        assert unclipped.sum() >= 20
        offsets = (after.endmembers - mean)[:, unclipped]
        singular = np.linalg.svd(offsets, compute_uv=False)
        assert singular[1] < 1e-8 * singular[0]
        assert not np.allclose(before.endmembers, after.endmembers)


@pytest.mark.parametrize("directions", [None, 2, 5])
def test_enough_directions_leave_the_starts_as_found(faint, directions):
    free = initialisation.candidate_starts(faint, 3, "auto", 0)
    same = initialisation.candidate_starts(faint, 3, "auto", 0, directions=directions)
    for before, after in zip(free, same, strict=True):
        np.testing.assert_array_equal(before.endmembers, after.endmembers)
