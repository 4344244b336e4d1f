"""Starts of training: denoising, SPA, VCA, ICA and the candidates of init="auto"."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_mixture

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
    denoised = initialisation.denoised(spectra.astype(np.float32), 3, seed=0)
    np.testing.assert_array_equal(spectra, before)
    assert denoised.dtype == np.float64
    np.testing.assert_allclose(denoised.mean(axis=0), spectra.mean(axis=0), atol=1e-6)
    # Mean plus three components: rank 4 at most.
    assert np.linalg.matrix_rank(denoised, tol=1e-8 * np.abs(denoised).max()) <= 4
    assert np.abs(denoised - spectra).max() < 0.02


def test_successive_projections_find_the_pure_pixels(with_pure_pixels):
    spectra, _ = with_pure_pixels
    denoised = initialisation.denoised(spectra, 3, seed=0)
    assert sorted(initialisation.successive_projections(denoised, 3)) == [0, 1, 2]


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
    return make_mixture(counts=200)


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
    starts = initialisation.candidate_starts(chequerboard.spectra, 3, "auto", seed=0)
    assert [start.method for start in starts] == list(initialisation.AUTO_STARTS)
    assert len(calls) == 1


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
