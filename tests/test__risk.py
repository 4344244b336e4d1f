"""Tests of the held-out risk and of the epoch training keeps by it."""

from __future__ import annotations

import numpy as np

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
