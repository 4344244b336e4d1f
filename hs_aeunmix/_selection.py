"""Choosing among networks trained from different starts, and saying how sure.

The reconstruction loss of a linear mixing model is nearly flat across the
non-negative factorisations that enclose the data: two starts can end with
the same held-out loss and different endmembers, and the fit alone cannot
choose. Two priors can: the geometry of the data's cone (SPA, VCA), which
identifies the endmembers when pure pixels exist (they are the data's
vertices), and statistical independence of the abundances (ICA), which can
identify endmembers that no pixel shows pure, but is biased where pure
regions exist (their abundances exclude each other: far from independent).
:func:`choose` therefore asks ICA itself: when its admissible solution
(nearly non-negative spectra and abundances, see
:mod:`hs_aeunmix._initialisation`) finds every endmember nearly pure
(fraction > :data:`PURE_FRACTION`) in at least :data:`PURE_SHARE` of the
pixels, the data hold pure regions and the vertex starts are used (the one
with the lowest held-out objective: the fit plus the penalties,
``min_volume_weight`` included); when it finds some endmember (nearly)
never pure, its independent components are used.

Why, as measured on the development half of the scene family
(``benchmarks/family.py``; screening on). On 47 scenes, the vertex start
alone gave a median / 90th percentile spectral angle of 0.073 / 0.44 rad
and ICA where admissible 0.070 / 0.35; the best held-out fit among the
starts 0.073 / 0.44; the minimum volume among the starts whose fit was
within 1-10 % of the best 0.085 / 0.44; the best start in hindsight 0.066 /
0.23. ICA was far better on Raman scenes without pure pixels (0.02-0.15
rad against 0.2-0.5), where it fitted the held-out pixels 0.5-50 % *worse*
than the vertex starts (neither the fit nor the volume would have chosen
it), and worse where pure regions exist (0.10 against 0.03 rad; 0.16
against 0.05 on a test mixture of pure blocks). On the 14 scenes where ICA
was admissible, its solution found some endmember pure in fewer than 1 %
of the pixels (0-36 pixels) on every scene where it was clearly the better
choice, and every endmember pure in 3 % or more (109-2,300 pixels) where
the vertex start was.

Every start is first trained for :data:`CANDIDATE_EPOCHS` epochs, which
decides the basin each one ends in; the chosen one then trains on. The
report (:class:`StabilityReport`, ``model.stability_``) says, per
endmember:

* ``spread``: the largest spectral angle between the chosen endmember and
  its match (Hungarian assignment) in the other candidates. Each start
  stands for a prior (pure pixels, independence) and all of them explain the
  data nearly equally well: endmembers that differ between them are not
  identified by the data alone;
* ``support``: the number of pixels (training and held-out) where the
  endmember's fraction exceeds one half, and ``max_fraction``: an endmember
  carried by a handful of pixels may be a spike, a dead pixel or an
  inclusion, and one that is never dominant is extrapolated beyond the data.

``AEUnmix.fit`` warns when an endmember's spread exceeds
:data:`UNSTABLE_SPREAD` or its support is below :data:`MIN_SUPPORT` pixels
(on a scan of fewer than ``2 * MIN_SUPPORT * n_components`` pixels, half an
even share of them).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from hs_aeunmix._networks import UnmixingAutoencoder
from hs_aeunmix._training import TrainingHistory

_logger = logging.getLogger(__name__)

# Epochs each start is trained for before one is chosen to train on.
CANDIDATE_EPOCHS = 6
# ICA's solution shows pure regions when every endmember holds a fraction
# above PURE_FRACTION in at least PURE_SHARE of the pixels (and 5 pixels).
PURE_FRACTION = 0.9
PURE_SHARE = 0.01
# Endmembers that move by more than this between equally good solutions
# (radians, about 6 degrees) are reported as not identifiable.
UNSTABLE_SPREAD = 0.1
# Endmembers dominant (fraction > 0.5) in fewer pixels are reported; on a
# scan too small for that (a short line scan), fewer than half of an even
# share of its pixels.
MIN_SUPPORT = 5
_SUPPORT_SAMPLE = 20000


@dataclass
class Candidate:
    """A network trained from one start.

    ``losses``: its loss on each held-out pixel (the fit is their mean).
    """

    module: UnmixingAutoencoder
    history: TrainingHistory
    start: str
    fit: float = np.nan
    losses: np.ndarray | None = None


@dataclass(frozen=True)
class StabilityReport:
    """How well the data determine each endmember (see the module docstring).

    Attributes
    ----------
    spread : numpy.ndarray
        (n_components,) radians; NaN when a single start was trained.
    support : numpy.ndarray
        (n_components,) pixels (training and held-out, at most 20000
        sampled) with a fraction above 0.5.
    max_fraction : numpy.ndarray
        (n_components,) largest fraction over those pixels.
    pixels : int
        The number of pixels ``support`` was counted on.
    starts : tuple of str
        The starts trained, in order; ``chosen`` indexes them.
    chosen : int
    objectives, fits : tuple of float
        Held-out objective (fit plus penalties) and fit of each candidate.
    """

    spread: np.ndarray
    support: np.ndarray
    max_fraction: np.ndarray
    pixels: int
    starts: tuple[str, ...]
    chosen: int
    objectives: tuple[float, ...]
    fits: tuple[float, ...]

    @property
    def unstable(self) -> np.ndarray:
        """Endmembers whose spread exceeds :data:`UNSTABLE_SPREAD`."""
        return np.flatnonzero(np.nan_to_num(self.spread) > UNSTABLE_SPREAD)

    @property
    def min_support(self) -> int:
        """:data:`MIN_SUPPORT`, or half an even share of a smaller scan's pixels."""
        return int(min(MIN_SUPPORT, math.ceil(self.pixels / (2 * len(self.support)))))

    @property
    def thin(self) -> np.ndarray:
        """Endmembers dominant in fewer than :attr:`min_support` pixels."""
        return np.flatnonzero(self.support < self.min_support)

    @property
    def identifiable(self) -> bool:
        """No endmember is unstable or thinly supported."""
        return not (len(self.unstable) or len(self.thin))

    def as_dict(self) -> dict:
        """JSON-ready form (model files)."""
        return {
            "spread": [None if np.isnan(v) else float(v) for v in self.spread],
            "support": [int(v) for v in self.support],
            "max_fraction": [float(v) for v in self.max_fraction],
            "pixels": int(self.pixels),
            "starts": list(self.starts),
            "chosen": int(self.chosen),
            "objectives": [float(v) for v in self.objectives],
            "fits": [float(v) for v in self.fits],
        }

    @classmethod
    def from_dict(cls, values: dict) -> StabilityReport:
        """Inverse of :meth:`as_dict`."""
        return cls(
            spread=np.array(
                [np.nan if v is None else float(v) for v in values["spread"]]
            ),
            support=np.array(values["support"], dtype=int),
            max_fraction=np.array(values["max_fraction"], dtype=float),
            pixels=int(values["pixels"]),
            starts=tuple(values["starts"]),
            chosen=int(values["chosen"]),
            objectives=tuple(float(v) for v in values["objectives"]),
            fits=tuple(float(v) for v in values["fits"]),
        )

    def __str__(self) -> str:
        lines = [
            f"Starts trained: {', '.join(self.starts)}; chosen: "
            f"{self.starts[self.chosen]}",
            "endmember  spread (rad)  pixels > 0.5  max fraction",
        ]
        for index, (spread, support, fraction) in enumerate(
            zip(self.spread, self.support, self.max_fraction, strict=True)
        ):
            flag = ""
            if index in self.unstable:
                flag = "  <- not identified: equally good solutions differ"
            elif index in self.thin:
                flag = "  <- carried by few pixels"
            shown = "  n/a" if np.isnan(spread) else f"{spread:5.3f}"
            lines.append(
                f"{index:>9}  {shown:>12}  {support:>12}  {fraction:12.2f}{flag}"
            )
        return "\n".join(lines)


def _angles(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Angle between each row of ``first`` and its Hungarian match in ``second``."""
    unit_first = first / np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-30)
    unit_second = second / np.maximum(
        np.linalg.norm(second, axis=1, keepdims=True), 1e-30
    )
    cosines = np.clip(unit_first @ unit_second.T, -1.0, 1.0)
    rows, columns = linear_sum_assignment(-cosines)
    angles = np.empty(len(first))
    angles[rows] = np.arccos(cosines[rows, columns])
    return angles


# Spectra encoded at once.
_BATCH = 2048


def _fractions(module: UnmixingAutoencoder, *blocks: np.ndarray) -> np.ndarray:
    """Fractions of a uniform sample of the rows of ``blocks`` (taken together)."""
    step = max(1, sum(len(block) for block in blocks) // _SUPPORT_SAMPLE)
    module.eval()
    with torch.no_grad():
        device = module.decoder.weight.device
        # A batch of sampled rows at a time: the encoder's temporaries are
        # each the size of its input.
        abundances = torch.cat(
            [
                module.encode(torch.from_numpy(rows[start : start + _BATCH]).to(device))
                for rows in (block[::step] for block in blocks)
                for start in range(0, len(rows), _BATCH)
            ]
        )
    abundances = abundances.cpu().numpy().astype(np.float64)
    totals = abundances.sum(axis=1, keepdims=True)
    return np.divide(
        abundances, totals, out=np.zeros_like(abundances), where=totals > 0
    )


def shows_pure_regions(module: UnmixingAutoencoder, train_data: np.ndarray) -> bool:
    """Whether every endmember of ``module`` is nearly pure in a region."""
    fractions = _fractions(module, train_data)
    pure = (fractions > PURE_FRACTION).sum(axis=0)
    return bool(pure.min() >= max(5, PURE_SHARE * len(fractions)))


# Development switch (removed once chosen): "ica_pure" (the rule above) or
# "tied_min_volume".
RULE = "ica_pure"
TIE_Z = 2.0


def tied(candidates: list[Candidate]) -> np.ndarray:
    """Candidates whose held-out fit the noise cannot tell from the best one's.

    For each candidate, the pixel-wise differences of its held-out losses
    from the best candidate's: it is tied when their mean is within
    :data:`TIE_Z` standard errors of zero.
    """
    fits = np.array([candidate.fit for candidate in candidates])
    best = candidates[int(np.nanargmin(fits))].losses
    keep = np.zeros(len(candidates), dtype=bool)
    for index, candidate in enumerate(candidates):
        differences = candidate.losses - best
        error = (
            differences.std(ddof=1) / np.sqrt(len(differences))
            if len(differences) > 1
            else 0.0
        )
        keep[index] = differences.mean() <= TIE_Z * error
    return keep


def simplex_volume(endmembers: np.ndarray) -> float:
    """``log det`` of the Gram matrix of the endmembers scaled to unit sum."""
    sums = np.maximum(endmembers.sum(axis=1, keepdims=True), 1e-30)
    normalised = endmembers / sums
    gram = normalised @ normalised.T * endmembers.shape[1]
    sign, value = np.linalg.slogdet(gram + 1e-9 * np.eye(len(gram)))
    return float(value) if sign > 0 else -np.inf


def choose(candidates: list[Candidate], train_data: np.ndarray) -> int:
    """Index of the candidate of the module docstring.

    ``history.best_loss`` is each candidate's held-out objective. A
    candidate whose training was interrupted before its first epoch ended
    (Ctrl-C) is not chosen while another one has trained.
    """
    trained = [index for index, c in enumerate(candidates) if c.history.n_epochs]
    if trained and len(trained) < len(candidates):
        return trained[choose([candidates[index] for index in trained], train_data)]
    if RULE == "tied_min_volume" and all(c.losses is not None for c in candidates):
        keep = tied(candidates)
        volumes = np.array(
            [
                simplex_volume(
                    c.module.decoder.endmembers.detach().cpu().numpy().astype(float)
                )
                if k
                else np.inf
                for c, k in zip(candidates, keep, strict=True)
            ]
        )
        return int(np.argmin(volumes))
    starts = [candidate.start for candidate in candidates]
    if "ica" in starts:
        ica = starts.index("ica")
        if len(starts) == 1 or not shows_pure_regions(
            candidates[ica].module, train_data
        ):
            return ica
    objectives = np.array(
        [
            np.inf if candidate.start == "ica" else candidate.history.best_loss
            for candidate in candidates
        ]
    )
    return int(np.argmin(objectives))


def stability(
    candidates: list[Candidate], chosen: int, *pixels: np.ndarray
) -> StabilityReport:
    """The report of the module docstring for ``candidates[chosen]``.

    ``candidates[i].fit`` is the held-out data fit (without penalties),
    ``history.best_loss`` the held-out objective; ``pixels`` are the blocks
    of spectra (training and held-out) the support is counted on.
    """
    objectives = np.array([candidate.history.best_loss for candidate in candidates])
    fits = np.array([candidate.fit for candidate in candidates])
    endmembers = [
        candidate.module.decoder.endmembers.detach().cpu().numpy().astype(np.float64)
        for candidate in candidates
    ]
    others = [index for index in range(len(candidates)) if index != chosen]
    spread = np.full(endmembers[chosen].shape[0], np.nan)
    if others:
        spread = np.max(
            [_angles(endmembers[chosen], endmembers[index]) for index in others],
            axis=0,
        )
    fractions = _fractions(candidates[chosen].module, *pixels)
    return StabilityReport(
        spread=spread,
        support=(fractions > 0.5).sum(axis=0),
        max_fraction=fractions.max(axis=0),
        pixels=len(fractions),
        starts=tuple(candidate.start for candidate in candidates),
        chosen=chosen,
        objectives=tuple(float(value) for value in objectives),
        fits=tuple(float(value) for value in fits),
    )
