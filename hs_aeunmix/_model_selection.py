"""Choosing the number of endmembers: :func:`scan_components`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from hyperspy.external.progressbar import progressbar

from hs_aeunmix import _hyperspy_internals as internals
from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._losses import volume_penalty
from hs_aeunmix._training import resolve_show_progressbar
from hs_aeunmix.presets import PAPER_TRAINING

_logger = logging.getLogger(__name__)

# A model is good enough when its validation loss is within this fraction of
# the lowest validation loss of the scan (the noise floor the largest models
# reach): more endmembers improve the fit by less than that.
LOSS_TOLERANCE = 0.05
# Each model is trained to convergence, endmembers included, so that the
# losses compare what n endmembers can explain rather than how far training
# got: the papers' regime (one step size, up to 200 epochs, patience 20).
SCAN_TRAINING = {
    name: PAPER_TRAINING[name]
    for name in (
        "learning_rate",
        "endmember_learning_rate",
        "batch_size",
        "max_epochs",
        "patience",
    )
}


@dataclass(frozen=True)
class ComponentScan:
    """Validation and volume losses of one model per number of endmembers.

    Attributes
    ----------
    n_components : numpy.ndarray of int
        Numbers of endmembers tried, increasing.
    validation_loss : numpy.ndarray
        Reconstruction loss on the held-out pixels (the same pixels for every
        model) of the weights kept by early stopping.
    volume_loss : numpy.ndarray
        Inverse volume ``(det(E Eᵀ / B + εI) + ε)^(-1/2)`` of the trained
        endmembers, computed after training as in Jensen et al.: it rises
        steeply once endmembers become nearly collinear. Capped at
        ``ε^(-1/2) = 1000``.
    suggested : int
        Suggested number of endmembers.
    reason : str
        Why, in words and numbers.
    models : tuple of AEUnmix
        The trained models, in the order of ``n_components``.
    """

    n_components: np.ndarray
    validation_loss: np.ndarray
    volume_loss: np.ndarray
    suggested: int
    reason: str
    models: tuple[AEUnmix, ...]

    def model(self, n_components: int) -> AEUnmix:
        """The trained model with ``n_components`` endmembers."""
        matches = np.flatnonzero(self.n_components == n_components)
        if matches.size == 0:
            raise ValueError(
                f"n_components={n_components} was not scanned; scanned: "
                f"{self.n_components.tolist()}."
            )
        return self.models[int(matches[0])]

    def __str__(self) -> str:
        lines = ["n_components  validation loss  volume loss"]
        for n, loss, volume in zip(
            self.n_components, self.validation_loss, self.volume_loss, strict=True
        ):
            marker = "  <- suggested" if n == self.suggested else ""
            lines.append(f"{n:>12}  {loss:>15.6g}  {volume:>11.4g}{marker}")
        return "\n".join([*lines, self.reason])

    def plot(self, ax=None):
        """Validation loss and volume loss against the number of endmembers.

        The layout of figure 1 of Jensen et al.; returns the matplotlib axes
        of the validation loss (the volume loss has its own, logarithmic,
        y axis on the right).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        ax.plot(self.n_components, self.validation_loss, "o-", label="validation")
        ax.axvline(self.suggested, color="0.6", ls="--", label="suggested")
        ax.set_xlabel("Number of endmembers")
        ax.set_ylabel("Validation reconstruction loss")
        volume_axes = ax.twinx()
        volume_axes.semilogy(
            self.n_components, self.volume_loss, "s:", color="C1", label="volume"
        )
        volume_axes.set_ylabel("Volume loss (post hoc)")
        handles = ax.get_legend_handles_labels()
        volume_handles = volume_axes.get_legend_handles_labels()
        ax.legend(handles[0] + volume_handles[0], handles[1] + volume_handles[1])
        return ax


def _spectra(data) -> np.ndarray:
    if hasattr(data, "axes_manager"):
        if data.axes_manager.signal_dimension != 1:
            raise ValueError(
                "scan_components unmixes 1-D spectra, but this signal has signal "
                f"dimension {data.axes_manager.signal_dimension}."
            )
        if internals.is_lazy(data):
            raise NotImplementedError(
                "scan_components trains models on data in memory; this signal is "
                "lazy. Load it with s.compute() (or crop it first)."
            )
        return np.asarray(data.data).reshape(-1, data.axes_manager.signal_size)
    return np.asarray(data)


def _suggest(numbers: np.ndarray, losses: np.ndarray) -> tuple[int, str]:
    floor = float(losses.min())
    good = np.flatnonzero(losses <= floor * (1 + LOSS_TOLERANCE))
    index = int(good[0])
    suggested = int(numbers[index])
    reason = (
        f"Suggested n = {suggested}: the smallest number of endmembers whose "
        f"validation loss ({losses[index]:.4g}) is within "
        f"{LOSS_TOLERANCE:.0%} of the lowest in the scan ({floor:.4g} at n = "
        f"{int(numbers[int(np.argmin(losses))])})"
    )
    if index > 0:
        reason += (
            f"; n = {int(numbers[index - 1])} fits "
            f"{losses[index - 1] / floor - 1:.1%} worse than that."
        )
    else:
        reason += (
            ". It is the smallest n scanned: scan smaller numbers to make sure "
            "fewer endmembers do not do as well."
        )
    if index == len(numbers) - 1:
        reason += " It is also the largest n scanned: scan larger numbers."
    return suggested, reason


def scan_components(
    data,
    n_components: Iterable[int] = range(2, 13),
    *,
    random_state: int | None = 0,
    show_progressbar: bool | None = None,
    **options,
) -> ComponentScan:
    """Train one model per number of endmembers and suggest the number to use.

    Every model holds out the same pixels (same ``random_state``), so their
    validation losses compare the same spectra (the lowest each model
    reached, :attr:`~hs_aeunmix._training.TrainingHistory.lowest_loss`).
    The model with ``n + 1``
    endmembers starts from the endmembers of the model with ``n`` plus the
    spectrum that model reproduces worst, so each step only has to learn
    what the previous model missed. The suggestion is the smallest number
    of endmembers whose validation loss is within 5 % of the lowest one in
    the scan: beyond it, endmembers mostly fit noise. The post hoc volume
    loss of Jensen et al. is reported beside it (and plotted); on EELS data,
    whose endmembers share most of their intensity, it saturates already at
    the true number and is not used for the suggestion.

    Parameters
    ----------
    data : HyperSpy Signal1D or array of shape (n_pixels, n_channels)
        Spectra (a signal is used whole: crop it or remove bad pixels first).
    n_components : iterable of int
        Numbers of endmembers to try (at least two).
    random_state : int or None
        Seed shared by all models.
    show_progressbar : bool or None
        Progress over the models; ``None`` follows HyperSpy's preference.
    **options
        Other :class:`AEUnmix` options, used for every model (``init`` is
        set by the scan). Unless given, the training options are those of
        :data:`SCAN_TRAINING`: every model trained to convergence.

    Returns
    -------
    ComponentScan
        Losses per number of endmembers, the suggestion and its reason, and
        the trained models (``scan.model(n)``); ``scan.plot()`` draws the
        losses.
    """
    if "init" in options:
        raise TypeError(
            "scan_components sets init itself (each model starts from the "
            "previous one); leave init out."
        )
    numbers = np.array(sorted(set(n_components)), dtype=int)
    if numbers.size < 2 or numbers[0] < 1:
        raise ValueError(
            "scan_components needs at least two numbers of endmembers, all "
            f"positive, got {list(n_components)!r}."
        )
    spectra = _spectra(data)
    models: list[AEUnmix] = []
    losses, volumes = [], []
    previous: AEUnmix | None = None
    steps = progressbar(
        numbers,
        desc="Scanning numbers of endmembers",
        disable=not resolve_show_progressbar(show_progressbar),
        leave=False,
    )
    for n in steps:
        init = "vca" if previous is None else _grown_endmembers(previous, spectra, n)
        model = AEUnmix(
            int(n),
            init=init,
            random_state=random_state,
            show_progressbar=False,
            **{**SCAN_TRAINING, **options},
        )
        with warnings.catch_warnings():
            # Said once (the first fit) rather than once per model.
            if models:
                warnings.filterwarnings(
                    "ignore", message="The data contain .* negative"
                )
            model.fit(spectra)
        models.append(model)
        # What n endmembers can fit: the epoch kept may be another one, when
        # the held-out risk judged its endmembers better.
        losses.append(model.history_.lowest_loss)
        scaled = torch.from_numpy(model.components_ / model.data_scale_)
        volumes.append(float(volume_penalty(scaled)))
        previous = model
        _logger.info("n=%d: validation loss %.6g", n, losses[-1])
    losses_array = np.array(losses)
    suggested, reason = _suggest(numbers, losses_array)
    return ComponentScan(
        n_components=numbers,
        validation_loss=losses_array,
        volume_loss=np.array(volumes),
        suggested=suggested,
        reason=reason,
        models=tuple(models),
    )


def _grown_endmembers(model: AEUnmix, spectra: np.ndarray, n: int) -> np.ndarray:
    """``model``'s endmembers plus the spectra it reproduces worst, ``n`` in all."""
    residual = spectra - model.inverse_transform(model.transform(spectra))
    worst = np.argsort(-np.square(residual).sum(axis=1))
    missing = n - model.components_.shape[0]
    return np.vstack([model.components_, spectra[worst[:missing]]])
