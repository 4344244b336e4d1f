"""Mini-batch training loop with early stopping on held-out pixels.

The loop only sees an iterable of mini-batches per epoch (see
:func:`minibatch_stream`), so a source that streams batches from disk or
from dask chunks can feed it unchanged.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hyperspy.defaults_parser import preferences
from hyperspy.external.progressbar import progressbar

from hs_aeunmix._allocator import copied_apart
from hs_aeunmix._losses import LossFunction, Penalty
from hs_aeunmix._networks import MultiBranchConvEncoder, UnmixingAutoencoder
from hs_aeunmix._risk import epoch_to_keep

_logger = logging.getLogger(__name__)


@dataclass
class TrainingHistory:
    """Loss per epoch on the training and held-out validation pixels.

    ``validation_loss`` is empty when no pixels were held out; early stopping
    then watches the training loss. When training continued from fitted
    weights (``warm_start``), ``initial_loss`` is the monitored loss of those
    weights, and ``best_epoch`` stays -1 if no epoch improved on them (the
    starting weights were kept). ``interrupted`` is true when training was
    stopped by Ctrl-C (the best weights so far were kept).
    """

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    initial_loss: float | None = None
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)

    def monitored_loss(self) -> list[float]:
        return self.validation_loss or self.train_loss

    @property
    def best_loss(self) -> float:
        """Monitored loss of the weights the model kept."""
        if self.best_epoch < 0:
            return np.nan if self.initial_loss is None else self.initial_loss
        return self.monitored_loss()[self.best_epoch]

    @property
    def lowest_loss(self) -> float:
        """The lowest monitored loss reached, the starting weights' included.

        What the network could fit, whichever epoch was kept: the held-out
        risk may keep another one (:func:`~hs_aeunmix._risk.epoch_to_keep`).
        """
        losses = self.monitored_loss()
        if self.initial_loss is not None:
            losses = [*losses, self.initial_loss]
        return min(losses) if losses else np.nan

    def followed_by(self, later: TrainingHistory) -> TrainingHistory:
        """This history continued by ``later`` (training resumed from its weights).

        ``later`` was trained with the weights this history kept competing
        (its ``best_epoch`` is -1 when none of its epochs improved on them).
        """
        offset = self.n_epochs
        return TrainingHistory(
            train_loss=[*self.train_loss, *later.train_loss],
            validation_loss=[*self.validation_loss, *later.validation_loss],
            best_epoch=self.best_epoch
            if later.best_epoch < 0
            else offset + later.best_epoch,
            stopped_early=later.stopped_early,
            initial_loss=self.initial_loss,
            seconds=self.seconds + later.seconds,
            interrupted=later.interrupted,
        )

    def as_dict(self) -> dict[str, list[float] | int | bool | float | None]:
        return {
            "train_loss": list(self.train_loss),
            "validation_loss": list(self.validation_loss),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "initial_loss": self.initial_loss,
            "seconds": self.seconds,
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_dict(cls, values: dict) -> TrainingHistory:
        """Inverse of :meth:`as_dict`."""
        return cls(
            train_loss=[float(value) for value in values["train_loss"]],
            validation_loss=[float(value) for value in values["validation_loss"]],
            best_epoch=int(values["best_epoch"]),
            stopped_early=bool(values["stopped_early"]),
            initial_loss=(
                None
                if values["initial_loss"] is None
                else float(values["initial_loss"])
            ),
            seconds=float(values["seconds"]),
            interrupted=bool(values.get("interrupted", False)),
        )

    def __repr__(self) -> str:
        if not self.n_epochs:
            return f"TrainingHistory(no complete epoch, {self.seconds:.1f} s)"
        monitored = "validation" if self.validation_loss else "training"
        best = (
            f"best epoch {self.best_epoch + 1}"
            if self.best_epoch >= 0
            else "starting weights kept"
        )
        ending = (
            ", interrupted"
            if self.interrupted
            else ", stopped early"
            if self.stopped_early
            else ""
        )
        return (
            f"TrainingHistory({self.n_epochs} epochs, {best}{ending}; final "
            f"training loss {self.train_loss[-1]:.4g}, {monitored} loss "
            f"{self.monitored_loss()[-1]:.4g}, best {self.best_loss:.4g}; "
            f"{self.seconds:.1f} s)"
        )

    def plot(self, ax=None):
        """Plot the loss curves; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        epochs = np.arange(1, self.n_epochs + 1)
        ax.plot(epochs, self.train_loss, label="training")
        if self.validation_loss:
            ax.plot(epochs, self.validation_loss, label="validation")
        if self.best_epoch >= 0:
            ax.axvline(self.best_epoch + 1, color="0.6", ls="--", label="best")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Loss")
        ax.legend()
        return ax


# An epoch is this many steps, whatever the size of the scan: training (which
# early stopping ends after a few tens of epochs) costs the same on a small
# scan as on a large one, and a small one is still seen often enough.
STEPS_PER_EPOCH = 50


def minibatch_stream(
    data: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    steps_per_epoch: int = STEPS_PER_EPOCH,
    *,
    encoder_inputs: torch.Tensor | None = None,
) -> Callable[[], Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]]:
    """Return a factory of epochs of ``steps_per_epoch`` shuffled mini-batches.

    Batches are drawn from random permutations of the rows that continue
    across epochs (within a permutation each row is drawn once). The last
    rows of a permutation that do not fill a batch open the next
    permutation's first batch instead of forming a small one (batch
    normalisation cannot normalise a batch of one). Each permutation is
    drawn on the CPU (``generator``) and copied to ``data``'s device once,
    not batch by batch: a copy from the host waits for the GPU's queued work.

    With ``encoder_inputs`` (what the encoder reads of each row of ``data``,
    from :func:`precomputed_encoder_inputs`) each batch is the pair
    ``(spectra, encoder inputs)`` of the same rows.
    """
    n_rows = data.shape[0]
    batch_size = min(batch_size, n_rows)
    steps = steps_per_epoch
    order = torch.randperm(n_rows, generator=generator).to(data.device)
    position = 0

    def epoch() -> Iterator[torch.Tensor]:
        nonlocal order, position
        for _ in range(steps):
            if position + batch_size > n_rows:
                leftover = order[position:]
                following = torch.randperm(n_rows, generator=generator)
                order = torch.cat([leftover, following.to(data.device)])
                position = 0
            rows = order[position : position + batch_size]
            position += batch_size
            # index_select: the same rows as data[rows], about three times
            # faster for rows of 1024 channels.
            spectra = data.index_select(0, rows)
            if encoder_inputs is None:
                yield spectra
            else:
                yield spectra, encoder_inputs.index_select(0, rows)

    return epoch


@torch.no_grad()
def precomputed_encoder_inputs(
    model: UnmixingAutoencoder, data: torch.Tensor, batch_size: int
) -> torch.Tensor | None:
    """What ``model``'s encoder reads of every row of ``data``, once for all steps.

    It depends on fixed buffers only (the input stage does not train), so a
    training step need not recompute it from 1024-channel spectra: a
    quarter of the dense network's step. Only for an encoder reading
    principal-component scores (``None`` otherwise: a copy of the whole
    spectra would double the training data's memory).

    Computed in blocks of the batch's size, the last block ending at the
    last row (it overlaps the one before): a matrix product's rounding can
    depend on its number of rows (in blocks of 1024 rows, or of the few
    rows left over), and blocks of the training batches' size give each
    row the numbers its batch would, bitwise (the tests check it).
    """
    if model.input_projection is None:
        return None
    n_rows = data.shape[0]
    block = min(batch_size, n_rows)
    result = torch.empty(
        (n_rows, model.input_projection.shape[1]), dtype=data.dtype, device=data.device
    )
    for start in [*range(0, n_rows - block, block), n_rows - block]:
        result[start : start + block] = model.encoder_input(data[start : start + block])
    return result


def fixed_batches(data: torch.Tensor, batch_size: int):
    """Factory of the same consecutive batches of ``data`` rows, for evaluation."""

    def epoch():
        for start in range(0, data.shape[0], batch_size):
            yield data[start : start + batch_size]

    return epoch


Objective = Callable[[UnmixingAutoencoder, Any], tuple[torch.Tensor, int]]


def pixel_objective(
    loss_function: LossFunction, penalty: Penalty | None, *, of_residual: bool = False
) -> Objective:
    """Objective of a batch of spectra: the loss plus the endmember penalty.

    ``of_residual``: the loss depends on the reconstruction only through
    its residual (:attr:`~hs_aeunmix._losses.LossSpec.of_residual`), so it
    is computed on the model's
    :meth:`~hs_aeunmix._networks.UnmixingAutoencoder.residual_pair`.
    Returns ``(loss, n_pixels)``.
    """

    def objective(model: UnmixingAutoencoder, batch):
        spectra, encoder_input = batch if isinstance(batch, tuple) else (batch, None)
        if of_residual:
            prediction, target = model.residual_pair(spectra, encoder_input)
        else:
            prediction, _ = model(spectra, encoder_input)
            target = spectra
        loss = loss_function(prediction, target)
        if penalty is not None:
            loss = loss + penalty(model.decoder.endmembers)
        return loss, spectra.shape[0]

    return objective


@torch.no_grad()
def evaluate(
    model: UnmixingAutoencoder, objective: Objective, batches: Iterable
) -> float:
    """Pixel-weighted mean objective of ``model`` in evaluation mode."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        loss, n_pixels = objective(model, batch)
        total += float(loss) * n_pixels
        count += n_pixels
    return total / count


def _adam(groups: list[dict]) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where torch can (about 20 % faster)."""
    try:
        return torch.optim.Adam(groups, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups)


# Training steps of the conv encoder go through torch.compile when a run has
# at least this many: compiling costs 3-10 s on 2 CPU cores (the first time
# in a process, a few seconds later on from torch's disk cache), and saves
# about a third of the paper's step (17 ms eager, 12 ms compiled at batches
# of 128 and 200 channels; ``benchmarks/conv_encoder.py --batch-sizes 128
# --compile``), so it pays after about a thousand steps.
COMPILE_MIN_STEPS = 2000


def compiles_steps(
    model: UnmixingAutoencoder, device: torch.device, n_steps: int
) -> bool:
    """Whether a run of ``n_steps`` training steps of ``model`` is compiled.

    Only the convolutional encoder's steps are: its (batch, channels,
    filters) feature maps are what a fused kernel saves passes over, where
    the dense network's steps are a few small matrix products that compiling
    does not shorten. Only on the CPU and CUDA (torch's compiler does not
    target Apple's MPS), and only in the main thread: a background trainer
    (a live unmixer's adaptation) must not stall for seconds on a compiler.
    ``TORCHDYNAMO_DISABLE=1`` in the environment makes every step eager.
    """
    return (
        isinstance(model.encoder, MultiBranchConvEncoder)
        and device.type in ("cpu", "cuda")
        and n_steps >= COMPILE_MIN_STEPS
        and threading.current_thread() is threading.main_thread()
    )


Gradients = Callable[[UnmixingAutoencoder, torch.Tensor], tuple[torch.Tensor, int]]


def eager_gradients(objective: Objective) -> Gradients:
    """``gradients(model, batch)``: the objective's loss, back-propagated."""

    def gradients(model: UnmixingAutoencoder, batch: torch.Tensor):
        loss, n_pixels = objective(model, batch)
        loss.backward()
        return loss, n_pixels

    return gradients


def compiled_gradients(objective: Objective) -> Gradients:
    """As :func:`eager_gradients`, with the objective through :func:`torch.compile`.

    Where torch cannot compile (no C++ compiler, a platform its compiler
    does not support), the first step says so in a warning and it and every
    later step run eagerly. That first step's gradients are discarded
    before the eager retry; its forward pass may have moved the batch
    normalisation's running statistics once, which the eager steps
    overwrite within a few hundred steps.
    """
    eager = eager_gradients(objective)
    compiled = eager_gradients(torch.compile(objective))
    proven = False

    def gradients(model: UnmixingAutoencoder, batch: torch.Tensor):
        nonlocal compiled, proven
        if proven:
            return compiled(model, batch)
        try:
            result = compiled(model, batch)
        # Any failure: the eager retry raises again what is not the compiler.
        except Exception as error:
            warnings.warn(
                f"torch.compile could not compile the training step ({error!r:.200}); "
                "training runs without it, slower. Set TORCHDYNAMO_DISABLE=1 to "
                "skip the attempt.",
                RuntimeWarning,
                stacklevel=2,
            )
            model.zero_grad(set_to_none=True)
            compiled = eager
            result = eager(model, batch)
        proven = True
        return result

    return gradients


def _train_one_epoch(
    model: UnmixingAutoencoder,
    gradients: Gradients,
    train_batches: Callable[[], Iterable],
    optimizer: torch.optim.Optimizer,
) -> float:
    """One pass of Adam steps; returns the pixel-weighted mean training loss.

    The batches' losses are read back once, after the last step: reading one
    after each step would make the host wait for a GPU at every step instead
    of queueing the next one. The mean is summed in the same order and
    precision either way.
    """
    model.train()
    losses, sizes = [], []
    for batch in train_batches():
        optimizer.zero_grad(set_to_none=True)
        loss, n_pixels = gradients(model, batch)
        optimizer.step()
        model.decoder.clamp_()
        losses.append(loss.detach())
        sizes.append(n_pixels)
    total = 0.0
    for value, n_pixels in zip(torch.stack(losses).tolist(), sizes, strict=True):
        total += value * n_pixels
    return total / sum(sizes)


def resolve_show_progressbar(show_progressbar: bool | None) -> bool:
    """``None`` defers to ``hs.preferences.General.show_progressbar``."""
    if show_progressbar is None:
        return bool(preferences.General.show_progressbar)
    return bool(show_progressbar)


def _risk_judged_state(
    history: TrainingHistory,
    judged: list[tuple[np.ndarray, dict[str, torch.Tensor]]],
) -> dict[str, torch.Tensor] | None:
    """The weights of the epoch the risk keeps; updates ``history.best_epoch``.

    ``judged``: each trained epoch's risks and weights. None where the
    starting weights were kept (no epoch improved on their loss): they are
    not judged (see :func:`train`).
    """
    # Ctrl-C may fall between an epoch's evaluation and its judgement (the
    # best epoch is updated after both).
    n_epochs = min(len(judged), len(history.validation_loss))
    kept = history.best_epoch
    if kept < 0:
        return None
    choice = epoch_to_keep(
        history.validation_loss[:n_epochs],
        [epoch_risks for epoch_risks, _ in judged[:n_epochs]],
        kept,
    )
    if choice != kept:
        _logger.info(
            "The held-out risk of epoch %d's endmembers is worse than the noise "
            "explains; epoch %d is kept",
            kept + 1,
            choice + 1,
        )
        history.best_epoch = choice
    return judged[choice][1]


def train(
    model: UnmixingAutoencoder,
    objective: Objective,
    train_batches: Callable[[], Iterable],
    validation_batches: Callable[[], Iterable] | None,
    *,
    max_epochs: int,
    learning_rate: float,
    endmember_learning_rate: float,
    patience: int,
    starting_weights_compete: bool = False,
    risks: Callable[[UnmixingAutoencoder], np.ndarray] | None = None,
    compile_steps: bool = False,
    show_progressbar: bool | None = None,
    description: str = "Training autoencoder",
) -> TrainingHistory:
    """Train ``model`` with Adam and restore its best weights.

    Parameters
    ----------
    model
        The autoencoder; its decoder is projected back to non-negative weights
        after every step.
    objective
        ``objective(model, batch) -> (loss, n_pixels)``: the loss of one
        batch, penalties included (:func:`pixel_objective`); the recorded and
        monitored losses are this objective, so that early stopping judges
        what is minimised.
    train_batches, validation_batches
        Callables returning one epoch of batches. Without validation
        batches, early stopping watches the training loss.
    max_epochs, learning_rate, endmember_learning_rate, patience
        Training budget, Adam step sizes of the network and of the
        endmembers (the decoder), and the number of epochs without a
        relative improvement of at least 1e-4 after which training stops.
    starting_weights_compete
        Evaluate the model before the first epoch and keep those weights
        unless an epoch improves on them (fine-tuning a trained model).
    risks
        ``risks(model)``: the (n_pixels,) held-out risks of the model's
        endmembers (:class:`~hs_aeunmix._risk.HeldOutRisk`). Every
        trained epoch's risks and weights are kept, and the held-out risk
        may overrule the loss's choice among them
        (:func:`~hs_aeunmix._risk.epoch_to_keep`). Competing starting
        weights are not judged: they were chosen (among starts, by this
        risk) for being lowest, a minimum biased low; they stay where no
        epoch improves on their loss. Needs validation batches.
    compile_steps
        Run the training steps' objective through :func:`torch.compile`
        (:func:`compiled_gradients`; :func:`compiles_steps` says when it
        pays). Evaluation stays eager.
    show_progressbar
        ``None`` follows ``hs.preferences.General.show_progressbar``.
    description
        The progress bar's label (which start, or the final training).

    Returns
    -------
    TrainingHistory

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) ends training like early stopping does:
    the best weights so far are restored, the epochs completed stay in the
    history, ``history.interrupted`` is set and a warning says so. An
    interrupted epoch is not recorded; interrupted before the first epoch
    ended, the starting weights are kept and ``history.best_loss`` is their
    loss.
    """
    if risks is not None and validation_batches is None:
        raise ValueError("risks judge held-out pixels: give validation_batches")
    started = time.perf_counter()
    endmembers = model.decoder.weight
    others = [
        parameter for parameter in model.parameters() if parameter is not endmembers
    ]
    optimizer = _adam(
        [
            {"params": others, "lr": learning_rate},
            {"params": [endmembers], "lr": endmember_learning_rate},
        ]
    )
    history = TrainingHistory()
    best_loss = np.inf
    best_state = copy.deepcopy(model.state_dict())
    # Each trained epoch's risks and weights (these outside the heap, see
    # hs_aeunmix._allocator).
    judged: list[tuple[np.ndarray, dict[str, torch.Tensor]]] = []

    def judge() -> None:
        if risks is not None:
            judged.append((risks(model), copied_apart(model.state_dict())))

    if starting_weights_compete:
        batches = validation_batches or train_batches
        best_loss = history.initial_loss = evaluate(model, objective, batches())
    epochs_without_improvement = 0
    gradients = (compiled_gradients if compile_steps else eager_gradients)(objective)
    if compile_steps:
        # Measured on 2 CPU cores: 19 s with an empty cache, 2.6 s from it.
        _logger.info(
            "The training steps go through torch.compile: the first step compiles "
            "them (tens of seconds the first time on a machine, a few seconds "
            "once torch has cached the kernels)"
        )
    epochs = progressbar(
        range(max_epochs),
        desc=description,
        unit="epoch",
        disable=not resolve_show_progressbar(show_progressbar),
        leave=False,
    )
    try:
        for epoch in epochs:
            train_loss = _train_one_epoch(model, gradients, train_batches, optimizer)
            history.train_loss.append(train_loss)
            if validation_batches is not None:
                history.validation_loss.append(
                    evaluate(model, objective, validation_batches())
                )
                judge()
            monitored = history.monitored_loss()[-1]
            if not np.isfinite(monitored):
                raise FloatingPointError(
                    f"The training loss became {monitored} at epoch {epoch + 1}; "
                    "lower learning_rate or check the data for extreme values."
                )
            epochs.set_postfix(loss=f"{monitored:.4g}", refresh=False)
            if np.isinf(best_loss) or monitored < best_loss - 1e-4 * abs(best_loss):
                best_loss = monitored
                best_state = copy.deepcopy(model.state_dict())
                history.best_epoch = epoch
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
                if epochs_without_improvement >= patience:
                    history.stopped_early = True
                    _logger.info("Early stopping at epoch %d", epoch + 1)
                    break
    except KeyboardInterrupt:
        # The epoch in progress is incomplete: drop what it recorded.
        if validation_batches is not None:
            del history.train_loss[len(history.validation_loss) :]
        history.interrupted = True
        warnings.warn(
            f"Training interrupted after {history.n_epochs} complete epochs; "
            "the best weights so far are kept"
            + (
                f" (epoch {history.best_epoch + 1})."
                if history.best_epoch >= 0
                else "."
            ),
            UserWarning,
            stacklevel=2,
        )
    epochs.close()
    if judged and (judged_state := _risk_judged_state(history, judged)) is not None:
        best_state = judged_state
    model.load_state_dict(best_state)
    model.eval()
    if history.best_epoch < 0 and history.initial_loss is None:
        # Interrupted before an epoch ended: the starting weights are kept,
        # and their loss is what the history reports.
        history.initial_loss = evaluate(
            model, objective, (validation_batches or train_batches)()
        )
    history.seconds = time.perf_counter() - started
    return history
