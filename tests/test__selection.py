"""Tests of the choice between starts and of the stability report."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from _helpers import make_mixture

from hs_aeunmix import AEUnmix, ModelMismatchWarning, _estimator, _fitting
from hs_aeunmix._adapters import RESIDUAL_WARNING_FACTOR, warn_if_explained_worse
from hs_aeunmix._baseline import polynomial_basis
from hs_aeunmix._risk import held_out_risks
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
    report = stability(candidates, 1, _pixels(60), directions=4)
    again = StabilityReport.from_dict(report.as_dict())
    assert again.directions == 4
    np.testing.assert_array_equal(again.spread, report.spread)
    np.testing.assert_array_equal(again.support, report.support)
    np.testing.assert_array_equal(again.max_fraction, report.max_fraction)
    assert (again.pixels, again.starts, again.chosen) == (60, ("ica", "vca"), 1)
    assert again.objectives == report.objectives
    assert again.fits == report.fits


def test_a_report_written_before_directions_were_measured_reads_as_unknown():
    candidates = [_candidate("vca", ENDMEMBERS, PURE, 1.0)]
    older = stability(candidates, 0, _pixels(60)).as_dict()
    del older["directions"]
    again = StabilityReport.from_dict(older)
    assert again.directions is None
    assert not again.below_noise


def test_report_table_flags_what_it_found():
    candidates = [
        _candidate("ica", ENDMEMBERS, MIXED, 1.0),
        _candidate("vca", _rotated(0.3), MIXED, 1.0),
    ]
    report = stability(candidates, 0, _pixels(60))
    table = str(report).splitlines()
    assert table[0] == "Starts trained: ica, vca; chosen: ica"
    assert "not identified" in table[2]
    assert "carried by few pixels" in table[3]
    assert len(table) == 2 + 3 + 1
    assert table[-1] == report.verdict
    assert report.verdict.startswith("Not identified: endmembers 0 differ")


# ------------------------------------------------- every clause of a verdict
def _report(spread, support, pixels, directions=None) -> StabilityReport:
    """A report of two starts with the given spread, support and directions."""
    n = len(support)
    return StabilityReport(
        spread=np.array(spread, dtype=float),
        support=np.array(support),
        max_fraction=np.ones(n),
        pixels=pixels,
        starts=("spa", "vca"),
        chosen=1,
        objectives=(1.0, 1.0),
        fits=(1.0, 1.0),
        directions=directions,
    )


@pytest.mark.parametrize(
    ("directions", "identifiable"),
    # Two endmembers need one direction of variation above the noise;
    # unknown (an older model file) says nothing.
    [(0, False), (1, True), (5, True), (None, True)],
)
def test_too_few_directions_above_the_noise_is_not_identified(directions, identifiable):
    report = _report([0.0, 0.0], [500, 500], 1000, directions)
    assert report.identifiable is identifiable
    assert report.below_noise is not identifiable
    if not identifiable:
        assert report.verdict == (
            "Not identified: the spectra vary above their noise along 0 of the 1 "
            "directions the endmembers need"
        )
        assert "Directions of variation above the noise: 0" in str(report)


@pytest.mark.parametrize(
    ("spread", "support", "pixels", "identifiable"),
    [
        # Stable and well supported.
        ([0.0, 0.05], [500, 500], 1000, True),
        # A single start: no spread to judge, the support decides.
        ([np.nan, np.nan], [500, 500], 1000, True),
        # The spread alone decides: equally good starts disagree.
        ([0.0, 1.5 * UNSTABLE_SPREAD], [500, 500], 1000, False),
        ([0.0, UNSTABLE_SPREAD], [500, 500], 1000, True),
        # The support alone decides: an endmember dominates a handful of pixels.
        ([0.0, 0.0], [MIN_SUPPORT - 1, 1001 - MIN_SUPPORT], 1000, False),
        ([0.0, 0.0], [MIN_SUPPORT, 1000 - MIN_SUPPORT], 1000, True),
        # A 10-pixel line scan of 2 endmembers: half an even share (3) is enough.
        ([0.0, 0.0], [3, 7], 10, True),
        ([0.0, 0.0], [2, 8], 10, False),
    ],
)
def test_identifiable_clause_by_clause(spread, support, pixels, identifiable):
    report = _report(spread, support, pixels)
    assert report.identifiable is identifiable
    assert report.verdict.startswith("Identified" if identifiable else "Not identified")


SCENE = make_mixture(shape=(8, 8), n_channels=40, counts=200)
# One start, one epoch: the report describes the network fit returns.
TINY = {
    "init": "vca",
    "max_epochs": 1,
    "hidden_layer_sizes": (16,),
    "baseline": None,
    "random_state": 0,
    "show_progressbar": False,
}


def test_fit_counts_the_support_on_training_and_held_out_pixels():
    # A quarter of the 64 pixels are held out; the support of each endmember
    # is counted on all of them.
    model = AEUnmix(3, validation_fraction=0.25, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # thin support, maybe
        model.fit(SCENE.spectra)
    report = model.stability_
    assert report.pixels == 64
    fractions = model.fractions(SCENE.spectra)[0]
    np.testing.assert_array_equal(report.support, (fractions > 0.5).sum(axis=0))


@pytest.mark.parametrize(
    ("spread", "support", "warned", "directions"),
    [
        ([0.0, 0.0, 0.0], [20, 20, 24], [], 2),
        (
            [0.0, 0.0, 0.0],
            [20, 20, 24],
            [r"The spectra vary more than their noise explains along 1 direction"],
            1,
        ),
        ([0.0, 0.3, 0.0], [20, 20, 24], [r"Endmembers \[1\] are not identified"], 2),
        (
            [0.0, 0.0, 0.0],
            [20, 2, 42],
            [r"Endmembers \[1\] dominate .* fewer than 5"],
            None,
        ),
        (
            [0.3, 0.0, 0.0],
            [20, 2, 42],
            [r"Endmembers \[0\] are not identified", r"Endmembers \[1\] dominate"],
            2,
        ),
    ],
)
def test_fit_warns_about_each_clause_of_the_report(
    monkeypatch, spread, support, warned, directions
):
    monkeypatch.setattr(
        _fitting,
        "stability",
        lambda *args, **kwargs: _report(spread, support, 64, directions),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AEUnmix(3, **TINY).fit(SCENE.spectra)
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert len(messages) == len(warned), messages
    for pattern, message in zip(warned, messages, strict=True):
        assert re.match(pattern, message), message


@pytest.mark.parametrize(("relative_residual", "refused"), [(1.0, True), (0.99, False)])
def test_a_model_no_better_than_zeros_is_refused(
    monkeypatch, relative_residual, refused
):
    # The clause's boundary: a reconstruction whose residual is as large as
    # the data (a model of zeros does that well) is refused.
    monkeypatch.setattr(
        _estimator, "_relative_norm", lambda misfit, spectra: relative_residual
    )
    model = AEUnmix(3, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if refused:
            with pytest.raises(ValueError, match="worse than a model of zeros"):
                model.fit(SCENE.spectra)
        else:
            model.fit(SCENE.spectra)
    assert hasattr(model, "components_") is not refused


class _Reapplied:
    """Stands in for a fitted model reapplied to a scan."""

    def __init__(self, training, scan, *, spatial=False):
        self.training_residual_ = training
        self.spatial = spatial
        self._scan = scan

    def residual_to_noise(self, sample):
        return self._scan


@pytest.mark.parametrize(
    ("model", "warns"),
    [
        # Misfits in units of each scan's noise, compared as a ratio.
        (_Reapplied(1.0, 2.9), False),
        (_Reapplied(1.0, 3.1), True),
        (_Reapplied(2.0, 5.9), False),
        (_Reapplied(2.0, 6.5), True),
        # Nothing to compare with: spatial models, older files.
        (_Reapplied(None, 100.0), False),
        (_Reapplied(1.0, 100.0, spatial=True), False),
    ],
    ids=["below", "above", "ratio-below", "ratio-above", "no-reference", "spatial"],
)
def test_mismatch_warning_clause_by_clause(model, warns):
    assert RESIDUAL_WARNING_FACTOR == 3.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_explained_worse(model, np.zeros((4, 8)))
    mismatches = [w for w in caught if w.category is ModelMismatchWarning]
    assert len(mismatches) == int(warns)


def test_simplex_volume_is_the_log_det_of_the_unit_sum_gram_at_any_scale():
    rng = np.random.default_rng(5)
    endmembers = rng.random((3, 12)) + 0.05
    normalised = endmembers / endmembers.sum(axis=1, keepdims=True)
    expected = np.linalg.slogdet(normalised @ normalised.T * 12)[1]
    # Row sums far below and above one: the normalisation is a division.
    for scales in ([1e-4, 1e-3, 1e-2], [1.0, 1.0, 1.0], [1e3, 10.0, 1e4]):
        scaled = endmembers * np.array(scales)[:, None]
        assert simplex_volume(scaled) == pytest.approx(expected, abs=1e-6)


def test_stability_angles_are_scale_free_and_matched():
    from hs_aeunmix._selection import _angles

    first = ENDMEMBERS * 1e-3  # norms below one
    second = _rotated(0.2)[[2, 0, 1]] * 1e3  # another order, norms above one
    np.testing.assert_allclose(_angles(first, second), [0.2, 0.0, 0.0], atol=1e-6)


def _with_losses(losses):
    history = TrainingHistory(train_loss=[1.0], validation_loss=[1.0], best_epoch=0)
    network = _Network(ENDMEMBERS, PURE)
    return Candidate(network, history, "vca", np.asarray(losses, dtype=float))


@pytest.mark.parametrize(
    ("differences", "is_tied"),
    [
        # Two pixels: standard error (ddof=1) 1, mean 1 <= 2 x 1.
        ([0.0, 2.0], True),
        # Mean 0.2, standard error 0.0894 (ddof=1, n=6): 2.24 errors away,
        # not tied; mean 0.15 with the same spread: 1.68 errors, tied.
        ([0.0, 0.4, 0.0, 0.4, 0.0, 0.4], False),
        ([-0.05, 0.35, -0.05, 0.35, -0.05, 0.35], True),
        # Mean 0.1859: 2.21 errors with ddof=1 (0.0841), but 1.98 with
        # ddof=2 (0.0940): the sample standard deviation decides.
        ([0.0, 0.4, 0.0, 0.4, 0.0, 0.3155], False),
    ],
)
def test_tied_within_two_standard_errors_of_the_paired_differences(
    differences, is_tied
):
    best = np.full(len(differences), 1.0)
    candidates = [_with_losses(best), _with_losses(best + np.array(differences))]
    assert tied(candidates).tolist() == [True, is_tied]


def _thin_cone_counts(seed: int = 0):
    """Two similar endmembers mixed at random, about 3 counts per channel."""
    rng = np.random.default_rng(seed)
    channels = np.arange(120)
    shared = 1 + np.exp(-0.5 * ((channels - 40) / 8) ** 2)
    endmembers = np.stack(
        [
            shared + 0.6 * np.exp(-0.5 * ((channels - centre) / 6) ** 2)
            for centre in (70, 85)
        ]
    )
    fractions = rng.dirichlet([1, 1], 600)
    counts = rng.poisson(3.0 * fractions @ endmembers).astype(float)
    # The same simplex stretched by half its size on each side.
    inflated = np.stack(
        [
            endmembers[0] + 0.5 * (endmembers[0] - endmembers[1]),
            endmembers[1] + 0.5 * (endmembers[1] - endmembers[0]),
        ]
    ).clip(min=0)
    return counts, endmembers, inflated


def _paired_z(first: np.ndarray, second: np.ndarray) -> float:
    differences = first - second
    return differences.mean() / (differences.std(ddof=1) / np.sqrt(len(differences)))


def test_the_risk_rejects_a_simplex_the_noise_inflated_where_the_fit_prefers_it():
    from scipy.optimize import nnls

    counts, true, inflated = _thin_cone_counts()
    # Each pixel's own abundances absorb more of its noise in the wider
    # cone: its least-squares fit is better than the true endmembers'.
    residuals = [
        np.array([nnls(endmembers.T, spectrum)[1] ** 2 for spectrum in counts])
        for endmembers in (true, inflated)
    ]
    assert residuals[1].mean() < residuals[0].mean()
    # The risk counts what the wider cone fits of the noise.
    scale = 7.0
    risks = [
        held_out_risks(endmembers, counts / scale, counts_scale=scale)
        for endmembers in (true, inflated)
    ]
    assert _paired_z(risks[0], risks[1]) < -5


def test_risks_are_in_noise_units_whatever_the_data_scale():
    counts, true, _ = _thin_cone_counts()
    risks = held_out_risks(true, counts / 7.0, counts_scale=7.0)
    # chi-square of about one per channel, plus two per non-zero abundance.
    assert 0.8 * 120 < np.median(risks) < 1.2 * 120 + 4
    np.testing.assert_allclose(
        held_out_risks(true * 3.0, counts / 21.0, counts_scale=21.0), risks
    )
    # Gaussian noise: each spectrum's DER_SNR level, whatever the units.
    rng = np.random.default_rng(1)
    spectra = rng.dirichlet([1, 1], 200) @ true + rng.normal(0, 0.05, (200, 120))
    gaussian = held_out_risks(true, spectra)
    np.testing.assert_allclose(held_out_risks(true, 10 * spectra), gaussian)
    assert 0.8 * 120 < np.median(gaussian) < 1.2 * 120 + 4


def test_a_background_the_basis_spans_changes_no_risk():
    rng = np.random.default_rng(2)
    _, true, _ = _thin_cone_counts()
    spectra = rng.dirichlet([1, 1], 100) @ true + rng.normal(0, 0.05, (100, 120))
    basis = polynomial_basis(120, 2)
    # A straight line (its second differences, hence DER_SNR, are zero).
    sloped = spectra + rng.normal(0, 1, (100, 2)) @ basis.T
    np.testing.assert_allclose(
        held_out_risks(true, sloped, background=basis),
        held_out_risks(true, spectra, background=basis),
        rtol=1e-6,
    )
    # Without the basis, the background is misfit.
    assert (
        held_out_risks(true, sloped).mean() > 2 * held_out_risks(true, spectra).mean()
    )


@pytest.mark.parametrize("favoured", [0, 1, 2])
def test_the_start_kept_is_the_one_of_lowest_held_out_risk(monkeypatch, favoured):
    calls = []

    class Risks:
        def __init__(self, spectra, **kwargs):
            self.n_pixels = len(spectra)

        def __call__(self, endmembers):
            calls.append(None)
            return np.full(self.n_pixels, 1.0 if len(calls) == favoured + 1 else 2.0)

    # One call per start: the starts' training is not judged epoch by epoch.
    monkeypatch.setattr(_fitting, "HeldOutRisk", Risks)
    spectra = make_mixture(shape=(16, 16), counts=100, seed=4).spectra
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = AEUnmix(
            3, init="auto", max_epochs=1, random_state=0, show_progressbar=False
        ).fit(spectra)
    report = model.stability_
    assert len(report.starts) == len(calls) == 3
    assert report.chosen == favoured
    assert report.fits[favoured] == 1.0


def test_count_spectra_are_judged_with_poisson_noise(monkeypatch):
    scales = []

    class Risks:
        def __init__(self, spectra, *, counts_scale, background):
            scales.append(counts_scale)
            self.n_pixels = len(spectra)

        def __call__(self, endmembers):
            return np.ones(self.n_pixels)

    monkeypatch.setattr(_fitting, "HeldOutRisk", Risks)
    counts = make_mixture(shape=(16, 16), counts=100, seed=4).spectra
    options = {"init": "vca", "max_epochs": 1, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        AEUnmix(3, show_progressbar=False, **options).fit(counts)
        AEUnmix(3, show_progressbar=False, **options).fit(counts + 0.5)
    assert scales[0] > 0  # the factor that turns the network's units into counts
    assert scales[1] is None
