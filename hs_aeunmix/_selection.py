"""Choosing among networks trained from different starts, and saying how sure.

The reconstruction loss of a linear mixing model is nearly flat across the
non-negative factorisations that enclose the data: starts from different
priors (the vertices of the data's cone for SPA and VCA, statistical
independence for ICA) end with held-out fits that differ little and
endmembers that can differ much. :func:`choose` uses the fit only as far as
the noise lets it decide, then a prior that identifies the endmembers:

1. **Tied within the noise, by the held-out risk.** Each candidate's
   endmembers are judged on held-out spectra by
   :func:`~hs_aeunmix._risk.held_out_risks`:
   each spectrum's non-negative least-squares fit on them, in units of its
   noise, plus twice the abundances that fit leaves non-zero (Stein's
   unbiased estimate of the fitted spectrum's error against the noiseless
   one). A candidate is kept when the mean of its pixel-wise excess over
   the best candidate's risks is within :data:`TIE_Z` standard errors of
   zero (a paired test: the noise of each pixel cancels between the two
   candidates, what remains is how differently they explain it). A
   candidate whose risk is worse than the noise explains is never chosen,
   however good its prior.
2. **Minimum volume among the tied ones.** Of the kept candidates, the one
   whose endmembers (scaled to unit sum) span the smallest simplex (the
   ``log det`` of their Gram matrix, :func:`simplex_volume`): Craig's
   criterion, which identifies the endmembers when the data are
   sufficiently scattered in the simplex (Fu, Huang, Sidiropoulos & Ma,
   IEEE SPM 36, 59 (2019)), whether or not pure pixels exist. Any enclosing
   simplex fits the data; the smallest one is the one the data determine.

**Why the risk and not the fit** (until 2026-12-04 the candidates were
compared by the networks' own loss on the held-out pixels). A held-out
pixel is held out of training, but its abundances are still fitted to it:
a simplex inflated by the noise leaves every pixel more room to absorb its
own noise, so it fits better than the true one. On two low-dose held-out
STEM-EELS scenes (6 and 9, looked at to find out why the default lost
there) the true endmembers fitted 600 sampled pixels (non-negative least
squares, a free intensity each) worse than the kept ones by 14 and 28
standard errors of the paired difference, while their risk on 800 pixels
was lower by 19 and 35; the candidates' risks ranked them as their angles
to the truth did (ICA < SPA < VCA on both; exploratory scripts, not
kept). The degrees-of-freedom term charges each pixel for the abundances
it fits, which is what the inflated simplex spends on noise. A second
estimate of the same risk, predicting each spectrum's odd channels from
its even ones and back (abundances fitted on half the channels), chose
like the risk on STEM-EELS and Raman but picked a worse start on one
family scene of eight (development angle median 0.089 -> 0.166 rad) and
was not taken.

Measured (``benchmarks/ablation.py``, variant "spatial, SURE selection"
against "spatial", the previous default; median / 90th percentile of the
angle, then of the abundance RMSE): chosen on the development scenes (8
per generator), where it changed nothing on the family (0.089 / 0.377,
RMSE 0.072 -> 0.073 / 0.197), was better on STEM-EELS (0.198 / 0.499 ->
0.162 / 0.489 rad, RMSE 0.240 / 0.417 -> 0.214 / 0.355) and changed Raman
by rounding (0.137 / 0.686 -> 0.135 / 0.686, RMSE 0.048 -> 0.051 / 0.232);
then checked on the held-out scenes (10 per generator):

* scene family: 0.105 / 0.235 -> 0.094 / 0.279 rad, RMSE 0.215 / 0.279 ->
  0.222 / 0.374 (3 scenes better, 1 worse by more than 0.01 rad: an EELS
  scene at low dose without pure pixels, 0.107 -> 0.256);
* STEM-EELS: 0.177 / 0.393 -> 0.133 / 0.328 rad, RMSE 0.189 / 0.383 ->
  0.188 / 0.383 (3 / 0);
* Raman compounds: 0.430 / 0.659 -> 0.384 / 0.648 rad, RMSE 0.132 / 0.268
  -> 0.128 / 0.229 (3 / 0).

Ten more held-out scenes per generator (10-19), drawn and run only after
the rule was in place (the previous rule run on them from the commit
before it): family 0.096 / 0.563 -> 0.099 / 0.584 rad, RMSE 0.162 / 0.299
-> 0.168 / 0.303 (1 / 2 by angle, 1 / 3 by RMSE); STEM-EELS 0.238 / 0.686
-> 0.244 / 0.517 rad, RMSE 0.261 / 0.428 -> 0.277 / 0.407 (5 / 1, 2 / 4);
Raman 0.347 / 0.765 -> 0.260 / 0.734 rad, RMSE 0.083 / 0.344 -> 0.052 /
0.217 (4 / 0, 3 / 1). Over all 60 held-out scenes the endmembers are
closer on 19 and farther on 4 (by more than 0.01 rad), but the maps are
better on 12 and worse on 10 (by more than 0.01 in RMSE): on STEM-EELS the
RMSE median over the 20 scenes goes 0.209 -> 0.254 (90th percentile 0.423
-> 0.403; why is not established, see the README), and on
the family the RMSE median goes 0.186 -> 0.205 (p90 0.299 -> 0.328), while
Raman's goes 0.103 / 0.283 -> 0.099 / 0.229. Kept because the endmembers,
which are what the choice of start decides, are closer on every
generator, and it removes a bias the previous rule had by construction;
the maps' losses are reported in the README.

A k-means start (``init="kmeans"``: the mean spectra of k-means clusters
of the denoised pixels' shapes) was tried as a fourth candidate and is not
one (``benchmarks/ablation.py``, rows "k-means start among the candidates"
against "default"). At low dose the vertex starts pick pixels of fewer
distinct phases than endmembers (STEM-EELS: 7 of 8 development scenes,
``benchmarks/start_picks.py``) and a cluster mean averages the noise of
hundreds of pixels. On the development scenes (8 per generator) it was
better on every generator, so leave-one-generator-out admitted it (median /
90th percentile of the angle, before -> after; abundance RMSE median):

* scene family: 0.089 / 0.387 -> 0.089 / 0.338 rad (2 better / 1 worse);
  RMSE 0.083 -> 0.082;
* STEM-EELS: 0.227 / 0.500 -> 0.218 / 0.345 rad (3 / 2); RMSE 0.332 -> 0.319;
* Raman compounds: 0.135 / 0.687 -> 0.060 / 0.399 rad (2 / 0); RMSE
  0.051 -> 0.043.

The held-out halves (10 scenes each, ``--split held_out``) did not confirm
it: STEM-EELS angles 0.177 / 0.393 -> 0.115 / 0.190 rad (7 / 0) but RMSE
median 0.231 -> 0.268; scene family 0.105 / 0.235 -> 0.102 / 0.249 rad,
RMSE 0.235 -> 0.261; Raman 0.430 / 0.659 -> 0.433 / 0.708 rad, RMSE
0.138 -> 0.132. The minimum-volume rule kept the k-means network on 9 of 10
STEM-EELS scenes (on the development scenes its answers are still wider
than the true simplex, median spread 1.71 against the default's 2.17:
``benchmarks/simplex_spread.py``); the abundance RMSE was
worse by more than 0.01 on 6 of the 10 scenes and better on 3 (family 0
better / 4 worse, Raman 2 / 3): better endmember shapes bought with worse
maps, so the default stays as it was.

Starts found on spectra averaged over 3 x 3 neighbourhoods (noise divided
by up to 9 where the phases vary slowly) were tried as three more
candidates and are not (``benchmarks/averaged_starts.py``, development
scenes): Raman compounds 0.135 / 0.686 -> 0.056 / 0.230 rad (two failed
scenes recovered), STEM-EELS 0.162 / 0.489 -> 0.168 / 0.369 with RMSE
median 0.214 -> 0.241, the family 0.089 / 0.377 -> 0.156 / 0.404. On the
family's scene 5 (no pure pixels) the averaged SPA and VCA networks had
the lowest held-out risk (279.8 against ICA's 280.5) with angles 0.31-0.34
against 0.08: averaging shrinks the simplex, and the risk's 2 per non-zero
abundance rewards a simplex whose fits clip to zero, which the truth of a
scene without pure pixels never does. A known limit of this rule.

Averaging the starts' endmembers (matched by angle) instead of choosing
one was tried and is not done (``benchmarks/ablation.py``, "average of the
tied starts" and "average of all starts", development scenes): the tied
ones' mean changed no scene by more than 0.01 rad on any generator, and the
mean of all starts was worse on 4 of 8 scenes of the family and of
STEM-EELS and 3 of 8 Raman scenes (median angle 0.089 -> 0.120, 0.163 ->
0.249, 0.135 -> 0.145 rad).

The ICA start is trained whenever its components yield positive weights
(its spectra clipped at zero): training repairs a slightly negative start,
and the noise test discards one that does not fit.

Why, as measured (``benchmarks/ablation.py`` at commit 7a2d4d6, where the
previous rule and this one were switches; development scenes of the three
independently written generators, 12 each, leave-one-generator-out). The
previous rule kept ICA's network when its solution showed some endmember
never pure, and the best held-out objective among the vertex starts
otherwise; its ICA start was admitted only when nearly non-negative. This
rule (median / 90th percentile of the mean spectral angle, previous ->
now; scenes better / worse by more than 0.01 rad):

* scene family: 0.078 / 0.367 -> 0.058 / 0.369 rad, 3 / 0;
* STEM-EELS: 0.328 / 0.537 -> 0.227 / 0.541 rad, 4 / 1 (abundance RMSE
  median 0.283 -> 0.332: worse);
* Raman compounds: 0.250 / 1.077 -> 0.250 / 1.077 rad, 0 / 1.

Chosen on any two generators, the same rule was the best of the variants
tried there, and on the one left out it was as above: better on two,
neutral on Raman. Its parts alone did less: minimum volume among tied
candidates with the old admission of ICA changed two scenes in 36 (one
each way), and admitting ICA always under the old rule helped STEM-EELS
(5 / 1) but hurt Raman (0 / 3). Training the candidates 15 epochs instead
of 6 before choosing changed nothing (0 / 1 over 36 scenes), so they stay
at 6.

Every start is first trained for :data:`CANDIDATE_EPOCHS` epochs, which
decides the basin each one ends in; the chosen one then trains on. The
report (:class:`StabilityReport`, ``model.stability_``) says, per
endmember:

* ``spread``: the largest spectral angle between the chosen endmember and
  its match (Hungarian assignment) in the other candidates. Each start
  stands for a prior (pure pixels, independence): endmembers that differ
  between them depend on the prior more than the data pin them down. The
  other starts need not fit as well: after their brief training, no other
  start's held-out fit tied with the kept one's within the noise on 15 of
  30 held-out scenes (6 / 6 / 3 of 10 for the family / STEM-EELS / Raman;
  10 of 24 development scenes; ``benchmarks/start_ties.py``, measured when
  ties were judged by the networks' held-out fit). Counting
  every start, the largest spread still ranks the scenes by the kept
  model's error (rank correlation 0.78 / 0.70 / -0.16 on the held-out
  scenes, 0.81 / 0.83 / 0.69 on the development ones); counting only tied
  starts would leave about half the scenes without a spread;
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
from hs_aeunmix._risk import within_noise
from hs_aeunmix._training import TrainingHistory

_logger = logging.getLogger(__name__)

# Epochs each start is trained for before one is chosen to train on.
CANDIDATE_EPOCHS = 6
# Candidates within this many standard errors of the best held-out risk are
# tied (about 2.5 % one-sided for a worse candidate that is in truth equal).
TIE_Z = 2.0
# Endmembers that move by more than this between the starts' solutions
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

    ``losses``: the held-out risk of its endmembers on each held-out
    spectrum (:func:`~hs_aeunmix._risk.held_out_risks`), in noise units.
    """

    module: UnmixingAutoencoder
    history: TrainingHistory
    start: str
    losses: np.ndarray

    @property
    def fit(self) -> float:
        """The mean held-out risk."""
        return float(self.losses.mean())


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
        Held-out objective (the network's loss plus penalties) and mean
        held-out risk (:func:`~hs_aeunmix._risk.held_out_risks`) of each candidate.
    directions : int or None
        Directions along which the training spectra vary more than their
        noise explains (:func:`~hs_aeunmix._subspace.directions_above_noise`):
        ``n`` endmembers at one intensity need ``n - 1``. None in model
        files written before it was measured (format 2 files of 2026-12-05
        and earlier).
    """

    spread: np.ndarray
    support: np.ndarray
    max_fraction: np.ndarray
    pixels: int
    starts: tuple[str, ...]
    chosen: int
    objectives: tuple[float, ...]
    fits: tuple[float, ...]
    directions: int | None = None

    @property
    def below_noise(self) -> bool:
        """Whether the spectra vary above their noise along fewer directions
        than the endmembers need (``n_components - 1``): the variance does
        not identify some endmembers (a phase held by a few pixels adds
        little of it, though its pixels may stand out of their noise)."""
        return self.directions is not None and self.directions < len(self.spread) - 1

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
    def unidentified(self) -> np.ndarray:
        """Endmembers that are unstable or thinly supported, in order."""
        return np.union1d(self.unstable, self.thin)

    @property
    def identifiable(self) -> bool:
        """No endmember is unstable or thinly supported, and the spectra vary
        above their noise along as many directions as the endmembers need."""
        return not len(self.unidentified) and not self.below_noise

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
            "directions": self.directions,
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
            directions=(
                None if values.get("directions") is None else int(values["directions"])
            ),
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
                flag = "  <- not identified: the starts' solutions differ"
            elif index in self.thin:
                flag = "  <- carried by few pixels"
            shown = "  n/a" if np.isnan(spread) else f"{spread:5.3f}"
            lines.append(
                f"{index:>9}  {shown:>12}  {support:>12}  {fraction:12.2f}{flag}"
            )
        if self.directions is not None:
            lines.append(
                f"Directions of variation above the noise: {self.directions} "
                f"({len(self.spread)} endmembers need {len(self.spread) - 1})"
            )
        lines.append(self.verdict)
        return "\n".join(lines)

    @property
    def verdict(self) -> str:
        """One line: whether every endmember is identified, and if not why."""
        if self.identifiable:
            return "Identified: every endmember (stable across starts, well supported)"
        reasons = []
        if len(self.unstable):
            reasons.append(
                f"endmembers {_listed(self.unstable)} differ by more than "
                f"{UNSTABLE_SPREAD} rad between starts"
            )
        if len(self.thin):
            reasons.append(
                f"endmembers {_listed(self.thin)} dominate fewer than "
                f"{self.min_support} pixels"
            )
        if self.below_noise:
            reasons.append(
                f"the spectra vary above their noise along {self.directions} "
                f"of the {len(self.spread) - 1} directions the endmembers need"
            )
        return "Not identified: " + "; ".join(reasons)


def _listed(indices: np.ndarray) -> str:
    return ", ".join(str(int(index)) for index in indices)


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


def tied(candidates: list[Candidate]) -> np.ndarray:
    """Candidates whose held-out risk the noise cannot tell from the best one's.

    For each candidate, the pixel-wise differences of its held-out risks
    from the best candidate's: it is tied when their mean is within
    :data:`TIE_Z` standard errors of zero.
    """
    fits = np.array([candidate.fit for candidate in candidates])
    best = candidates[int(np.argmin(np.where(np.isfinite(fits), fits, np.inf)))].losses
    return np.array(
        [within_noise(candidate.losses, best, TIE_Z) for candidate in candidates]
    )


def simplex_volume(endmembers: np.ndarray) -> float:
    """``log det`` of the Gram matrix of the endmembers scaled to unit sum."""
    sums = np.maximum(endmembers.sum(axis=1, keepdims=True), 1e-30)
    normalised = endmembers / sums
    gram = normalised @ normalised.T * endmembers.shape[1]
    # The ridge keeps the determinant of coinciding endmembers finite.
    return float(np.linalg.slogdet(gram + 1e-9 * np.eye(len(gram)))[1])


def choose(candidates: list[Candidate]) -> int:
    """Index of the candidate of the module docstring.

    Each candidate's ``losses`` are its held-out pixel losses. A candidate
    whose training was interrupted before its first epoch ended (Ctrl-C) is
    not chosen while another one has trained.
    """
    trained = [index for index, c in enumerate(candidates) if c.history.n_epochs]
    if trained and len(trained) < len(candidates):
        return trained[choose([candidates[index] for index in trained])]
    keep = tied(candidates)
    volumes = [
        simplex_volume(
            candidate.module.decoder.endmembers.detach().cpu().numpy().astype(float)
        )
        if kept
        else np.inf
        for candidate, kept in zip(candidates, keep, strict=True)
    ]
    return int(np.argmin(volumes))


def stability(
    candidates: list[Candidate],
    chosen: int,
    *pixels: np.ndarray,
    directions: int | None = None,
) -> StabilityReport:
    """The report of the module docstring for ``candidates[chosen]``.

    ``candidates[i].fit`` is the held-out data fit (without penalties),
    ``history.best_loss`` the held-out objective; ``pixels`` are the blocks
    of spectra (training and held-out) the support is counted on;
    ``directions`` as in :class:`StabilityReport`.
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
        directions=directions,
    )
