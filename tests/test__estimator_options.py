"""Every declared option reaches training (issue 27).

For each option of ``AEUnmix._parameter_constraints`` that shapes what
``fit`` learns, two fits that differ only in that option (a tiny seeded
scene, one or a few epochs) must differ in the way the option promises (the
rows of each training step for ``batch_size``, the recorded loss for the loss
weights, the smoothness of the maps for ``spatial_weight``, ...), and a
third fit with the option equal to the first's must give the identical
model. Options that cannot change what is learned are listed in
:data:`EXEMPT` with the reason; an option declared in neither place fails
:func:`test_every_declared_option_is_covered_or_exempt`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from _helpers import make_mixture

from hs_aeunmix import AEUnmix, _training

SCENE = make_mixture(shape=(8, 8), n_channels=40, counts=200)
GRID = (8, 8)
# A small network, one start, one epoch (50 steps): about 0.1 s a fit.
BASE = {
    "n_components": 3,
    "init": "vca",
    "hidden_layer_sizes": (16,),
    "baseline": None,
    "max_epochs": 1,
    "random_state": 0,
    "show_progressbar": False,
}
CONV = {"encoder": "conv", "n_filters": 4, "kernel_sizes": (3, 5)}


@dataclass(repr=False)
class Fit:
    """A fitted model and what its training loop was given."""

    model: AEUnmix
    # Rows of each training step, in order.
    batch_rows: list[int] = field(default_factory=list)
    # (network, endmembers) Adam step sizes of each training run.
    learning_rates: list[tuple[float, float]] = field(default_factory=list)

    @property
    def first_loss(self) -> float:
        return self.model.history_.train_loss[0]


def _fit_once(model: AEUnmix) -> None:
    model.fit(SCENE.spectra, image_shape=GRID)


def _fit_twice(model: AEUnmix) -> None:
    """The second fit continues the first one's training with warm_start."""
    model.fit(SCENE.spectra, image_shape=GRID)
    model.fit(SCENE.spectra, image_shape=GRID)


def _fit(monkeypatch, options: dict, how: Callable[[AEUnmix], None]) -> Fit:
    """Fit with ``options`` over :data:`BASE`, spying on the training loop."""
    fit = Fit(AEUnmix(**{**BASE, **options}))
    real_epoch, real_adam = _training._train_one_epoch, _training._adam

    def spied_epoch(model, gradients, train_batches, optimizer):
        def batches():
            for batch in train_batches():
                # (spectra, encoder inputs) where the encoder reads scores.
                spectra = batch[0] if isinstance(batch, tuple) else batch
                fit.batch_rows.append(int(spectra.shape[0]))
                yield batch

        return real_epoch(model, gradients, batches, optimizer)

    def spied_adam(groups):
        fit.learning_rates.append((groups[0]["lr"], groups[1]["lr"]))
        return real_adam(groups)

    with monkeypatch.context() as patch, warnings.catch_warnings():
        # A tiny scene trained for an epoch: the stability report complains.
        warnings.simplefilter("ignore", UserWarning)
        patch.setattr(_training, "_train_one_epoch", spied_epoch)
        patch.setattr(_training, "_adam", spied_adam)
        how(fit.model)
    return fit


def _fingerprint(fit: Fit) -> dict:
    """Everything training produced or was given, as arrays and lists."""
    model = fit.model
    return {
        **{
            f"weights {name}": tensor.detach().cpu().numpy()
            for name, tensor in model.module_.state_dict().items()
        },
        "components": model.components_,
        "train_loss": np.array(model.history_.train_loss),
        "validation_loss": np.array(model.history_.validation_loss),
        "batch_rows": np.array(fit.batch_rows),
        "learning_rates": np.array(fit.learning_rates),
    }


def _differences(first: Fit, second: Fit) -> list[str]:
    """Names of the parts of the two fingerprints that are not identical."""
    one, other = _fingerprint(first), _fingerprint(second)
    return sorted(
        name
        for name in one.keys() | other.keys()
        if name not in one
        or name not in other
        or one[name].shape != other[name].shape
        or not np.array_equal(one[name], other[name])
    )


# ----------------------------------------------------------- the promises
def _modules(model: AEUnmix, kind: type) -> list[torch.nn.Module]:
    return [module for module in model.module_.modules() if isinstance(module, kind)]


def _linear_widths(model: AEUnmix) -> list[int]:
    hidden = model.module_.encoder.hidden
    return [layer[0].out_features for layer in hidden]


def _fractions(model: AEUnmix) -> np.ndarray:
    return model.fractions(SCENE.spectra, image_shape=GRID)[0]


def _total_variation(model: AEUnmix) -> float:
    """Mean absolute change of the fraction maps between neighbouring pixels."""
    maps = _fractions(model).reshape(*GRID, -1)
    return float(
        np.abs(np.diff(maps, axis=0)).mean() + np.abs(np.diff(maps, axis=1)).mean()
    )


def _patience_is_all_that_stops(patch) -> None:
    """No epoch ever improves the monitored loss: patience alone ends training."""
    patch.setattr(_training, "evaluate", lambda *args, **kwargs: 1.0)


@dataclass(frozen=True)
class Case:
    """Two values of an option and how a fit with the second differs.

    ``promise(first, second)`` asserts what the option promises of the fits
    with ``values[0]`` and ``values[1]``; ``options`` are further options it
    needs (the loss it weighs, the encoder it shapes); ``setup(monkeypatch)``
    runs before the fits; ``how`` fits the model.
    """

    values: tuple
    promise: Callable[[Fit, Fit], object]
    options: dict = field(default_factory=dict)
    setup: Callable | None = None
    how: Callable[[AEUnmix], None] = _fit_once


def _sad_weight(first: Fit, second: Fit) -> None:
    # mse + w * sad: a hundred times the weight of the angle, a larger loss.
    assert second.first_loss > 2 * first.first_loss


def _penalty_weight(first: Fit, second: Fit) -> None:
    # The penalty is positive: weighing it in raises the recorded loss.
    assert second.first_loss > first.first_loss


CASES: dict[str, Case] = {
    "n_components": Case(
        (3, 2),
        lambda a, b: (
            a.model.components_.shape[0] == 3 and b.model.components_.shape[0] == 2
        ),
    ),
    "encoder": Case(
        ("dense", "conv"),
        lambda a, b: (
            not _modules(a.model, torch.nn.Conv1d)
            and _modules(b.model, torch.nn.Conv1d)
        ),
        options={"n_filters": 4, "kernel_sizes": (3, 5)},
    ),
    "abundance": Case(
        ("sum_to_one", "nonnegative"),
        lambda a, b: (
            np.allclose(_fractions(a.model).sum(axis=1), 1, atol=1e-5)
            and not np.allclose(_fractions(b.model).sum(axis=1), 1, atol=1e-3)
        ),
        options={"pixel_scale": False},
    ),
    "loss": Case(
        ("mse", "poisson"),
        lambda a, b: a.model.loss_ == "mse" and b.model.loss_ == "poisson",
    ),
    "sad_weight": Case((0.01, 1.0), _sad_weight, options={"loss": "mse_sad"}),
    "volume_weight": Case((0.0, 0.1), _penalty_weight),
    "endmember_l21_weight": Case(
        (0.0, 0.1), _penalty_weight, options={"pixel_scale": False}
    ),
    # log det of the normalised endmembers' Gram matrix: of either sign.
    "min_volume_weight": Case((0.0, 0.1), lambda a, b: a.first_loss != b.first_loss),
    "pixel_scale": Case(
        (False, True),
        lambda a, b: (
            not a.model.module_.has_pixel_scale and b.model.module_.has_pixel_scale
        ),
    ),
    "baseline": Case(
        (None, 2),
        lambda a, b: (
            a.model.baseline_components_.shape == (0, 40)
            and b.model.baseline_components_.shape == (2, 40)
        ),
    ),
    "fixed_endmembers": Case(
        (None, SCENE.endmembers[:1]),
        lambda a, b: (
            np.allclose(b.model.components_[0], SCENE.endmembers[0], rtol=1e-5)
            and not np.allclose(a.model.components_[0], SCENE.endmembers[0], rtol=1e-2)
        ),
    ),
    "input_components": Case(
        (16, 8),
        lambda a, b: (
            a.model.module_.input_projection.shape[1] == 16
            and b.model.module_.input_projection.shape[1] == 8
        ),
    ),
    "init": Case(
        ("vca", "random"),
        lambda a, b: a.model.init_ == "vca" and b.model.init_ == "random",
    ),
    "hidden_layer_sizes": Case(
        ((16,), (8, 4)),
        lambda a, b: (
            _linear_widths(a.model) == [16] and _linear_widths(b.model) == [8, 4]
        ),
    ),
    "activation": Case(
        ("leaky_relu", "relu"),
        lambda a, b: (
            (
                _modules(a.model, torch.nn.LeakyReLU)
                and not _modules(a.model, torch.nn.ReLU)
            )
            and (
                _modules(b.model, torch.nn.ReLU)
                and not _modules(b.model, torch.nn.LeakyReLU)
            )
        ),
    ),
    "negative_slope": Case(
        (0.01, 0.3),
        lambda a, b: (
            [m.negative_slope for m in _modules(b.model, torch.nn.LeakyReLU)] == [0.3]
        ),
    ),
    "batch_norm": Case(
        (True, False),
        lambda a, b: (
            _modules(a.model, torch.nn.BatchNorm1d)
            and not _modules(b.model, torch.nn.BatchNorm1d)
        ),
    ),
    "kernel_sizes": Case(
        ((3, 5), (3, 7)),
        lambda a, b: (
            [c.kernel_size[0] for c in _modules(b.model, torch.nn.Conv1d)][:2] == [3, 7]
        ),
        options=CONV,
    ),
    "n_filters": Case(
        (4, 2),
        lambda a, b: (
            [c.out_channels for c in _modules(b.model, torch.nn.Conv1d)][:2] == [2, 2]
        ),
        options=CONV,
    ),
    "dropout": Case(
        (0.0, 0.5),
        lambda a, b: [m.p for m in _modules(b.model, torch.nn.Dropout)] == [0.5],
    ),
    "conv_dropout": Case(
        (0.2, 0.5),
        lambda a, b: [m.p for m in _modules(b.model, torch.nn.Dropout1d)] == [0.5, 0.5],
        options=CONV,
    ),
    "input_noise": Case((0.0, 0.5), lambda a, b: b.model.module_.input_noise == 0.5),
    "gaussian_dropout": Case(
        (0.0, 0.3), lambda a, b: b.model.module_.abundance_noise.rate == 0.3
    ),
    "spatial": Case(
        (False, True),
        lambda a, b: (
            a.model.module_.spatial is None and b.model.module_.spatial is not None
        ),
    ),
    # The prior's effect: a strong total-variation prior smooths the maps.
    "spatial_weight": Case(
        (0.0, 1000.0),
        lambda a, b: _total_variation(b.model) < 0.8 * _total_variation(a.model),
        options={"spatial": True},
    ),
    "max_shift": Case(
        (None, 2.0),
        lambda a, b: (
            not a.model.shifts(SCENE.spectra).any()
            and b.model.shifts(SCENE.spectra).any()
        ),
    ),
    "max_epochs": Case(
        (1, 2),
        lambda a, b: (
            (a.model.n_iter_, b.model.n_iter_) == (1, 2)
            and len(b.batch_rows) == 2 * len(a.batch_rows)
        ),
    ),
    # The pixels each step shows the network: the batch, every step.
    "batch_size": Case(
        (16, 32),
        lambda a, b: set(a.batch_rows) == {16} and set(b.batch_rows) == {32},
    ),
    "learning_rate": Case(
        (1e-3, 1e-2),
        lambda a, b: [rates[0] for rates in b.learning_rates] == [1e-2],
    ),
    "endmember_learning_rate": Case(
        (1e-4, 1e-2),
        lambda a, b: (
            [rates[1] for rates in b.learning_rates] == [1e-2]
            and not np.allclose(a.model.components_, b.model.components_, rtol=1e-3)
        ),
    ),
    "validation_fraction": Case(
        (0.0, 0.25),
        lambda a, b: (
            not a.model.history_.validation_loss
            and len(b.model.history_.validation_loss) == 1
        ),
    ),
    "patience": Case(
        (1, 2),
        lambda a, b: (
            (a.model.n_iter_, b.model.n_iter_) == (2, 3)
            and a.model.history_.stopped_early
            and b.model.history_.stopped_early
        ),
        options={"max_epochs": 5},
        setup=_patience_is_all_that_stops,
    ),
    "random_state": Case(
        (0, 1),
        lambda a, b: not np.array_equal(a.model.components_, b.model.components_),
    ),
    # The second fit continues the first's network, for max_epochs more
    # epochs, instead of starting anew.
    "warm_start": Case(
        (False, True),
        lambda a, b: (
            a.model.history_.initial_loss is None
            and b.model.history_.initial_loss is not None
            and b.model.n_iter_ == 2
            and len(b.batch_rows) == len(a.batch_rows) == 2 * 2 * 50
        ),
        options={"max_epochs": 2},
        how=_fit_twice,
    ),
}

# Options that cannot change what training learns, and why.
EXEMPT: dict[str, str] = {
    "device": (
        "where the network runs, not what it learns (CPU results are pinned "
        "by random_state; the device tests are in test__estimator.py)"
    ),
    "show_progressbar": "display only",
}


def test_every_declared_option_is_covered_or_exempt():
    declared = set(AEUnmix._parameter_constraints)
    forgotten = declared - set(CASES) - set(EXEMPT)
    assert not forgotten, (
        f"Options {sorted(forgotten)} are neither tested to reach training (CASES) "
        "nor exempt with a reason (EXEMPT)."
    )
    assert not set(CASES) & set(EXEMPT)
    assert not (set(CASES) | set(EXEMPT)) - declared
    assert declared == set(AEUnmix._get_param_names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_option_reaches_training(name, monkeypatch):
    case = CASES[name]
    if case.setup is not None:
        case.setup(monkeypatch)
    first, other = case.values

    def fit(value):
        return _fit(monkeypatch, {**case.options, name: value}, case.how)

    reference = fit(first)
    assert _differences(fit(first), reference) == [], "an equal option changed the fit"
    changed = fit(other)
    assert _differences(changed, reference), f"{name}={other!r} changed nothing"
    kept = case.promise(reference, changed)
    assert kept is None or bool(kept), f"{name}={other!r} did not do what it promises"
