"""Tests of the choice between starts and of the stability report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hs_aeunmix._selection import (
    MIN_SUPPORT,
    UNSTABLE_SPREAD,
    Candidate,
    StabilityReport,
    choose,
    simplex_volume,
    stability,
    tied,
)
from hs_aeunmix._training import TrainingHistory


class _Decoder:
    def __init__(self, endmembers: np.ndarray) -> None:
        self.endmembers = torch.tensor(endmembers, dtype=torch.float32)
        self.weight = self.endmembers.T


class _Network:
    """Stands in for a trained network: fixed endmembers, fixed fractions."""

    def __init__(self, endmembers: np.ndarray, fractions: np.ndarray) -> None:
        self.decoder = _Decoder(endmembers)
        self._fractions = torch.tensor(fractions, dtype=torch.float32)

    def eval(self) -> None:
        pass

    def encode(self, spectra: torch.Tensor) -> torch.Tensor:
        # Pixel i (its index is stored in the first channel) has fractions i.
        return self._fractions[spectra[:, 0].long()]


# Held-out pixel losses: a noise pattern shared by every candidate (the
# same pixels are noisy for all of them) plus each one's own small part.
_NOISE = np.random.default_rng(0).exponential(1.0, 400)


def _candidate(start, endmembers, fractions, loss, *, own_noise=0.01, seed=1):
    history = TrainingHistory(train_loss=[loss], validation_loss=[loss], best_epoch=0)
    own = own_noise * np.random.default_rng(seed).standard_normal(len(_NOISE))
    losses = loss * _NOISE / _NOISE.mean() + own
    return Candidate(_Network(endmembers, fractions), history, start, losses)


def _pixels(n):
    return np.arange(n, dtype=np.float32)[:, None]


ENDMEMBERS = np.eye(3, 8) + 0.1
# 60 pixels, each endmember pure in 20 of them.
PURE = np.repeat(np.eye(3), 20, axis=0)
# 60 pixels, no endmember above 0.5 anywhere.
MIXED = np.full((60, 3), 1 / 3)


def _rotated(angle):
    """ENDMEMBERS with the first one turned by ``angle`` radians."""
    turned = ENDMEMBERS.copy()
    unit = turned[0] / np.linalg.norm(turned[0])
    normal = np.zeros(8)
    normal[-1] = 1.0
    normal -= normal @ unit * unit
    normal /= np.linalg.norm(normal)
    turned[0] = np.cos(angle) * unit + np.sin(angle) * normal
    return turned


# The same three endmembers with the first one moved towards the others:
# a smaller simplex (the data inside it would fit both equally).
SMALLER = ENDMEMBERS.copy()
SMALLER[0] = 0.8 * ENDMEMBERS[0] + 0.1 * (ENDMEMBERS[1] + ENDMEMBERS[2])


def test_simplex_volume_orders_nested_simplices_and_ignores_scale():
    assert simplex_volume(SMALLER) < simplex_volume(ENDMEMBERS)
    assert simplex_volume(5 * ENDMEMBERS) == pytest.approx(simplex_volume(ENDMEMBERS))


def test_among_candidates_tied_within_the_noise_the_smallest_simplex_wins():
    candidates = [
        _candidate("ica", ENDMEMBERS, MIXED, 1.0, seed=1),
        _candidate("spa", SMALLER, PURE, 1.0002, seed=2),
        _candidate("vca", ENDMEMBERS, PURE, 1.0001, seed=3),
    ]
    # SPA fits worst, by far less than the noise of the pixel differences.
    assert tied(candidates).all()
    assert choose(candidates) == 1


def test_a_fit_worse_than_the_noise_explains_is_never_chosen():
    candidates = [
        _candidate("ica", SMALLER, MIXED, 1.05, seed=1),
        _candidate("vca", ENDMEMBERS, PURE, 1.0, seed=2),
    ]
    # 5 % worse on every pixel: far beyond the paired standard error.
    assert tied(candidates).tolist() == [False, True]
    assert choose(candidates) == 1
    # The same excess hidden in noisy pixel differences is a tie.
    noisy = [
        _candidate("ica", SMALLER, MIXED, 1.05, own_noise=3.0, seed=1),
        _candidate("vca", ENDMEMBERS, PURE, 1.0, own_noise=3.0, seed=2),
    ]
    assert choose(noisy) == 0


def test_a_diverged_candidate_is_never_chosen():
    candidates = [
        _candidate("ica", SMALLER, MIXED, 1.0, seed=1),
        _candidate("vca", ENDMEMBERS, PURE, 1.0, seed=2),
    ]
    candidates[0].losses[3] = np.nan
    assert choose(candidates) == 1


def test_a_single_start_is_chosen():
    assert choose([_candidate("ica", ENDMEMBERS, PURE, 1.0)]) == 0
    assert choose([_candidate("vca", ENDMEMBERS, PURE, 1.0)]) == 0


def test_spread_is_the_largest_angle_to_any_other_start():
    candidates = [
        _candidate("ica", ENDMEMBERS, PURE, 1.0),
        _candidate("spa", _rotated(0.05), PURE, 1.0),
        _candidate("vca", _rotated(0.2), PURE, 1.0),
    ]
    # The rows of the others are matched to the chosen one's, in any order.
    candidates[2].module.decoder.endmembers = candidates[2].module.decoder.endmembers[
        [2, 0, 1]
    ]
    report = stability(candidates, 0, _pixels(60))
    np.testing.assert_allclose(report.spread, [0.2, 0.0, 0.0], atol=1e-3)
    assert report.unstable.tolist() == [0]
    assert not report.identifiable
    assert report.support.tolist() == [20, 20, 20]
    assert report.pixels == 60
    assert report.starts == ("ica", "spa", "vca")


def test_agreeing_starts_are_identifiable():
    candidates = [
        _candidate("spa", ENDMEMBERS, PURE, 1.0),
        _candidate("vca", _rotated(UNSTABLE_SPREAD / 2), PURE, 1.0),
    ]
    report = stability(candidates, 1, _pixels(60))
    assert report.identifiable
    assert np.isnan(stability(candidates[:1], 0, _pixels(60)).spread).all()


def test_support_counts_held_out_pixels_too():
    fractions = PURE.copy()
    fractions[:17] = [0.4, 0.6, 0.0]  # endmember 0 dominates pixels 17-19 only
    candidates = [_candidate("vca", ENDMEMBERS, fractions, 1.0)]
    training, held_out = _pixels(60)[:18], _pixels(60)[18:]
    report = stability(candidates, 0, training, held_out)
    assert report.support[0] == 3
    assert report.pixels == 60
    assert report.thin.tolist() == [0]


@pytest.mark.parametrize(
    ("pixels", "support", "thin"),
    [
        # A scan of many pixels: fewer than MIN_SUPPORT is thin.
        (1000, [4, 500, 496], [0]),
        (1000, [MIN_SUPPORT, 500, 495], []),
        # A 10-pixel line scan with 2 endmembers: half an even share is 3.
        (10, [3, 7], []),
        (10, [2, 8], [0]),
        # A single pixel that dominates nowhere is still thin.
        (10, [0, 10], [0]),
    ],
)
def test_thin_support_scales_with_small_scans(pixels, support, thin):
    n = len(support)
    report = StabilityReport(
        spread=np.zeros(n),
        support=np.array(support),
        max_fraction=np.ones(n),
        pixels=pixels,
        starts=("vca",),
        chosen=0,
        objectives=(1.0,),
        fits=(1.0,),
    )
    assert report.thin.tolist() == thin


def test_report_round_trips_through_json_form():
    candidates = [
        _candidate("ica", ENDMEMBERS, PURE, 1.0),
        _candidate("vca", _rotated(0.3), MIXED, 2.0),
    ]
    report = stability(candidates, 1, _pixels(60))
    again = StabilityReport.from_dict(report.as_dict())
    np.testing.assert_array_equal(again.spread, report.spread)
    np.testing.assert_array_equal(again.support, report.support)
    np.testing.assert_array_equal(again.max_fraction, report.max_fraction)
    assert (again.pixels, again.starts, again.chosen) == (60, ("ica", "vca"), 1)
    assert again.objectives == report.objectives
    assert again.fits == report.fits


def test_report_table_flags_what_it_found():
    candidates = [
        _candidate("ica", ENDMEMBERS, MIXED, 1.0),
        _candidate("vca", _rotated(0.3), MIXED, 1.0),
    ]
    table = str(stability(candidates, 0, _pixels(60))).splitlines()
    assert table[0] == "Starts trained: ica, vca; chosen: ica"
    assert "not identified" in table[2]
    assert "carried by few pixels" in table[3]
    assert len(table) == 2 + 3
