"""Tests of the held-out risk and of the epoch training keeps by it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import nnls

from hs_aeunmix._baseline import polynomial_basis
from hs_aeunmix._risk import HeldOutRisk, epoch_to_keep, held_out_risks


def test_one_estimator_judges_any_endmembers_as_a_fresh_one_does():
    # Each spectrum's noise and background basis are computed once.
    rng = np.random.default_rng(0)
    endmembers = rng.random((3, 80))
    spectra = rng.poisson(30 * rng.dirichlet([1, 1, 1], 50) @ endmembers) / 30
    basis = polynomial_basis(80, 3)
    risk = HeldOutRisk(spectra, counts_scale=30.0, background=basis)
    for trial in (endmembers, endmembers[::-1] * 2.0, rng.random((3, 80))):
        np.testing.assert_array_equal(
            risk(trial),
            held_out_risks(trial, spectra, counts_scale=30.0, background=basis),
        )


def _design_risks(endmembers, spectra, variance, background):
    """Each spectrum's risk from its own (n_channels, k) design: the definition."""
    risks = []
    for spectrum, spectrum_variance in zip(spectra, variance, strict=True):
        weights = 1.0 / np.sqrt(spectrum_variance)
        design, target = endmembers.T * weights[:, None], spectrum * weights
        terms = 0
        if background is not None:
            basis, _ = np.linalg.qr(background * weights[:, None])
            design = design - basis @ (basis.T @ design)
            target = target - basis @ (basis.T @ target)
            terms = background.shape[1]
        abundances, misfit = nnls(design, target)
        risks.append(misfit**2 + 2.0 * (np.count_nonzero(abundances) + terms))
    return np.array(risks)


@pytest.mark.parametrize("n_components", [1, 3, 7])
@pytest.mark.parametrize("with_background", [False, True])
def test_the_normal_equations_give_each_spectrums_own_design_fit(
    n_components, with_background
):
    rng = np.random.default_rng(n_components)
    endmembers = rng.random((n_components, 120))
    spectra = (
        rng.poisson(40 * rng.dirichlet(np.ones(n_components), 60) @ endmembers) / 40
    )
    background = polynomial_basis(120, 3) if with_background else None
    # Trial endmembers off the truth, so that some coefficients are clipped
    # at zero and the degrees of freedom vary from spectrum to spectrum.
    trial = endmembers + rng.normal(0.0, 0.3, endmembers.shape)
    trial = np.abs(trial)
    risk = HeldOutRisk(spectra, counts_scale=40.0, background=background)
    variance = np.maximum(gaussian_filter1d(spectra, 2.0, axis=1), 1 / 40) / 40
    expected = _design_risks(trial, spectra, variance, background)
    np.testing.assert_allclose(risk(trial), expected, rtol=1e-9)


@pytest.mark.parametrize(
    "extra",
    ["background held", "duplicate", "zero"],
)
def test_an_endmember_that_spans_nothing_new_leaves_every_risk_as_it_was(extra):
    # Left in, rounding of a direction the design does not span would be
    # fitted with a huge coefficient and counted as a degree of freedom.
    rng = np.random.default_rng(5)
    endmembers = rng.random((3, 200))
    spectra = rng.poisson(30 * rng.dirichlet([1, 1, 1], 80) @ endmembers) / 30
    background = polynomial_basis(200, 3)
    added = {
        "background held": 30.0 * background[:, 1] + 40.0 * background[:, 0],
        "duplicate": endmembers[0],
        "zero": np.zeros(200),
    }[extra]
    risk = HeldOutRisk(spectra, counts_scale=30.0, background=background)
    np.testing.assert_allclose(
        risk(np.vstack([endmembers, added])), risk(endmembers), rtol=0, atol=1e-8
    )


def _exceeding(base: np.ndarray, z: float) -> np.ndarray:
    """``base`` plus differences whose mean is exactly ``z`` standard errors."""
    spread = np.random.default_rng(3).normal(size=len(base))
    spread = (spread - spread.mean()) / spread.std(ddof=1)
    return base + z / np.sqrt(len(base)) + spread


def test_the_epoch_tie_is_corrected_for_the_epochs_compared():
    # The kept epoch's risk is 2.4 standard errors above the lowest: beyond
    # the tie for two epochs (z = 2.24), within it for six (z = 2.64).
    lowest = np.random.default_rng(2).normal(100.0, 5.0, 400)
    kept = _exceeding(lowest, 2.4)
    assert epoch_to_keep([2.0, 1.0], [lowest, kept], kept=1) == 0
    far = [lowest + 50.0] * 4
    assert epoch_to_keep([2.0, 1.0, 3, 3, 3, 3], [lowest, kept, *far], kept=1) == 1


def test_the_kept_epoch_is_the_lowest_loss_among_those_tied_with_the_lowest_risk():
    lowest = np.random.default_rng(2).normal(100.0, 5.0, 400)
    tied = _exceeding(lowest, 0.5)
    worse = _exceeding(lowest, 8.0)
    losses = [3.0, 2.0, 1.0, 0.5]
    assert epoch_to_keep(losses, [worse, lowest, tied, worse], kept=3) == 2
    assert epoch_to_keep(losses, [worse, lowest, tied, tied], kept=3) == 3


def test_the_risk_runs_its_products_on_one_blas_thread():
    # Called between training steps: BLAS threads left spinning after its
    # products would take the cores from torch's.
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []

    class Recording(HeldOutRisk):
        def _risks(self, endmembers):
            seen.extend(
                pool["num_threads"]
                for pool in threadpool_info()
                if pool["user_api"] == "blas"
            )
            return super()._risks(endmembers)

    rng = np.random.default_rng(1)
    spectra = rng.random((20, 40))
    with threadpool_limits(limits=2, user_api="blas"):
        outside = [
            p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"
        ]
        Recording(spectra)(rng.random((2, 40)))
    assert seen
    assert set(seen) == {1}
    assert max(outside) == 2 or os.cpu_count() == 1
