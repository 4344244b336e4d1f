"""What each endmember is: its edges or bands, and when it is not one.

:meth:`AEUnmix.describe_endmembers <hs_aeunmix.AEUnmix.describe_endmembers>`
returns one :class:`EndmemberDescription` per endmember: the pixels it
dominates and its spread (from ``stability_``), its share of the intensity
(when spectra are given), and what the spectrum itself shows, read from the
axis's units and signal type (:func:`axis_kind`).

EELS (eV or keV, or signal type "EELS"): ionisation edges
----------------------------------------------------------
Onsets (:func:`find_onsets`). Before every channel a power law ``A E**-r``
is fitted to a pre-edge window (a straight line in log-log, for all channels
at once from running sums) and extrapolated over the window after it. An
onset is a rise of the mean log ratio of spectrum to background of at least
:data:`MIN_JUMP` (2 %), at least :data:`SIGNIFICANCE` (5) standard errors,
that does not turn negative over a longer window (sustained), on a
background whose exponent is plausible (:data:`EXPONENT_RANGE`; after the
first onset, no steeper than the first background by more than 1.5: a
steeper "background" is the falling tail of near-edge peaks). The standard
error combines the noise of the mean (DER_SNR on second differences, a
running median over 41 channels because counting noise follows the signal,
never below 0.1 % so that a noiseless simulated endmember is not held to
zero noise) and the extrapolation's uncertainty from the fit's own residuals,
which grows on a curved or short pre-edge. Windows grow with the energy:
pre-edge max(4 eV, 5 % of E), rise max(3 eV, 1 %), sustained max(10 eV, 3 %).
Each next onset is looked for with a pre-edge window that starts after the
previous onset's rise, so that near-edge structure (white lines, sigma*
resonances) is not read as new edges. A second pass with windows three to
five times longer finds delayed edges (4d M4,5, whose maximum comes 40 eV after the
onset) where no onset was found nearby; an onset whose rise keeps growing
(twice its first rise over the longer window) is also called gradual. Edges
near the window's start are still found: the pre-edge window is then
whatever the window holds (8 channels or more), and its shortness widens the
standard error.

Names (eXSpy's database, ``exspy.material.elements[el]["Atomic_properties"]
["Binding_energies"][shell]``: ``onset_energy (eV)``, ``relevance``,
``edge`` shape, ``threshold``). Every tabulated edge within three sigma of an
onset is a candidate, weighted by its closeness ``exp(-d**2 / 2 sigma**2)``
with sigma = 3 eV + 0.5 % of E (chemical shifts of a few eV grow with the
energy; resolution and white lines move the apparent onset by an eV or two;
on the late side of a gradual onset sigma grows by 4 % of E for delayed
edges), and by:

* 1/4 for Minor edges and those the database gives no shape for (the O and
  N shells of radioactive elements): Major edges are the ones seen;
* 1/4 for a delayed edge (a "Delayed maximum" shell, other than K and L,
  without a sharp threshold peak) at an onset that rises promptly;
* 1/4 when the element's first Major edge in the window, below this one,
  shows no onset (Gd M4 without Gd M5 is not Gd);
* 3 for an element named with confidence (0.3 or more, from a Major edge)
  in the same spectrum, whose Minor edges (L1) then count as Major, or in
  another endmember of the same model: a sample's endmembers share its
  elements.

The element with the largest weight is named; its confidence is its edge's
closeness times its share of the weights of all candidate elements, so it
falls with the distance and with ambiguity (Cu L3 and Pr M5 are both at
931 eV: 0.5 at most; exact ties go to the lighter element). The background
exponent ``r`` is the fit before the first onset (over the whole window
when there is none).

Measured on the true endmembers of the package's generators
(``benchmarks/describe.py``, 30 EELS scenes of each): the endmembers whose
every element with an edge in the window is named, and the named elements
that are really there, are 91 % and 89 % for ``random_scene`` and 93 % and
89 % for ``stem_eels_scene`` on the development half (where the weights
above were chosen), 93 % / 89 % and 95 % / 87 % on the held-out half. With
the counting noise of an endmember averaged over 1000 pixels, 89 % / 88 %
and 85 % / 87 %; over 100 pixels (a few counts per channel for the STEM
scenes), 84 % / 87 % and 56 % / 82 %: weak edges drown before names go
wrong. What it misses is mostly the delayed M4,5 edges of 4d metals (In,
Sn, Nb), edges that coincide with another element's (N K at 401 eV and
Sc L3 at 402 eV) and large chemical shifts at low energy (Si L2,3 in SiO2,
6 eV above Si's).

Raman (cm⁻¹): bands
-------------------
The spectrum's broad curvature is removed first, as the package's own
Raman background model does (the highest cubic below the spectrum,
:func:`hs_aeunmix._baseline.lowest_polynomial_below`: a local envelope would
clip the top off a fluorescence hump), then a smooth lower envelope (SNIP
clipping over +/- 60 cm⁻¹, wider than the bands). :func:`scipy.signal.find_peaks`
keeps the peaks whose prominence is at least :data:`RAMAN_SIGNIFICANCE` (10)
DER_SNR noise standard deviations (a peak's prominence runs from its top to
the deeper neighbouring dip, and Gaussian noise spans +/- 4 sigma over
thousands of channels) and :data:`RAMAN_MIN_HEIGHT` (2 %) of the tallest;
positions are refined on a parabola, widths are full widths at half maximum.

Duplicates and collapse (:func:`endmember_warnings`)
----------------------------------------------------
Two endmembers closer than :data:`DUPLICATE_ANGLE` (0.01 rad) are one.
0.05 rad would be too wide for EELS: distinct phases on a common power-law
background lie 0.02-0.05 rad apart (the scene generators require 0.02 rad
between their endmembers, and a quarter to a third of their EELS scenes
hold a pair closer than 0.04 rad). An endmember is
collapsed when it carries less than :data:`MIN_SHARE` (1 %) of the
reconstructed intensity of the spectra given or, without spectra, when it
dominates no pixel and never reaches a fraction of one half (stability
report). Either says: try fewer components.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks, peak_widths
from sklearn.utils.validation import check_is_fitted

from hs_aeunmix._baseline import (
    AUTO_DEGREE,
    RAMAN_UNITS,
    lowest_polynomial_below,
    polynomial_basis,
)
from hs_aeunmix._screening import der_snr_noise

if TYPE_CHECKING:
    from hs_aeunmix._estimator import AEUnmix

# Noise: DER_SNR's scale of the median absolute second difference (Stoehr et
# al. 2008), in a running median this many channels wide, and never below
# this fraction of the signal.
_DER_SNR = 1.482602 / math.sqrt(6.0)
_NOISE_WINDOW = 41
_RELATIVE_NOISE_FLOOR = 1e-3
# Onsets: a rise of MIN_JUMP (log units) and SIGNIFICANCE standard errors
# above a background whose exponent lies in EXPONENT_RANGE (and, after the
# first onset, within _EXPONENT_MARGIN above the first background's).
MIN_JUMP = 0.02
SIGNIFICANCE = 5.0
EXPONENT_RANGE = (0.0, 6.5)
_EXPONENT_MARGIN = 1.5
_MIN_PRE_CHANNELS = 8
_MIN_POST_CHANNELS = 3
# A rise that keeps growing to this multiple over the sustained window is
# gradual.
_STILL_RISING = 2.0


@dataclass(frozen=True)
class _Scale:
    """Window lengths in eV: (constant, fraction of E), the larger applies."""

    pre: tuple[float, float]
    rise: tuple[float, float]
    sustain: tuple[float, float]


_FINE = _Scale(pre=(4.0, 0.05), rise=(3.0, 0.01), sustain=(10.0, 0.03))
_COARSE = _Scale(pre=(15.0, 0.15), rise=(10.0, 0.05), sustain=(30.0, 0.12))

# Names: sigma of the distance to a tabulated onset, its growth on the late
# side of gradual onsets of delayed edges, and the weight factors.
ENERGY_SIGMA_EV = 3.0
ENERGY_SIGMA_FRACTION = 0.005
_DELAY_FRACTION = 0.04
_UNLIKELY = 0.25
_COHERENCE = 3.0
_CONFIDENT = 0.3

# Duplicates and collapse (see the module docstring).
DUPLICATE_ANGLE = 0.01
MIN_SHARE = 0.01

# short_description breaks its lines before this width.
_LINE_WIDTH = 88

# Raman bands (see the module docstring); the envelope's half-width in cm⁻¹.
RAMAN_SIGNIFICANCE = 10.0
RAMAN_MIN_HEIGHT = 0.02
_RAMAN_ENVELOPE_WIDTH = 60.0


# -------------------------------------------------------------------- records
@dataclass(frozen=True)
class Edge:
    """An ionisation edge named on a spectrum.

    Attributes
    ----------
    element : str
        Chemical symbol.
    shell : str
        Subshell as eXSpy's database writes it (``"K"``, ``"L3"``, ``"M5"``).
    tabulated_eV : float
        The database's onset energy.
    onset_eV : float
        Where the spectrum starts to rise above its background.
    confidence : float
        In [0, 1]; falls with the distance between the two energies and with
        the weight of other candidate edges near the onset.
    """

    element: str
    shell: str
    tabulated_eV: float
    onset_eV: float
    confidence: float

    def __str__(self) -> str:
        return f"{self.element} {self.shell} ({self.tabulated_eV:.0f} eV)"


@dataclass(frozen=True)
class Band:
    """A Raman band: centre and FWHM in axis units, height relative to the tallest."""

    position: float
    fwhm: float
    relative_height: float


@dataclass(frozen=True)
class EndmemberWarning:
    """Two endmembers that are one, or an endmember that carries nothing.

    Attributes
    ----------
    kind : {"duplicate", "collapsed"}
    endmembers : tuple of int
        The two duplicates, or the collapsed one.
    message : str
        What was found and what to try.
    """

    kind: str
    endmembers: tuple[int, ...]
    message: str


@dataclass(frozen=True)
class EndmemberDescription:
    """What one endmember is (see :mod:`hs_aeunmix._describe`).

    Attributes
    ----------
    index : int
    kind : {"eels", "raman", "generic"}
        How the axis was read (:func:`axis_kind`).
    support : int or None
        Pixels the endmember dominates (fraction above one half), from the
        stability report; None without one.
    spread : float or None
        Radians between equally good solutions (stability report); None
        without one or with a single start.
    intensity_share : float or None
        Its share of the reconstructed intensity of the spectra given; None
        without spectra.
    edges : tuple of Edge
        EELS: the edges named, by onset.
    unidentified_onsets_eV : tuple of float
        EELS: onsets no tabulated edge is near.
    background_exponent : float or None
        EELS: ``r`` of the power law fitted before the first onset.
    bands : tuple of Band
        Raman: the bands, by position.
    warnings : tuple of EndmemberWarning
        Those that involve this endmember.
    summary : str
        One line for people.
    """

    index: int
    kind: str
    support: int | None = None
    spread: float | None = None
    intensity_share: float | None = None
    edges: tuple[Edge, ...] = ()
    unidentified_onsets_eV: tuple[float, ...] = ()
    background_exponent: float | None = None
    bands: tuple[Band, ...] = ()
    warnings: tuple[EndmemberWarning, ...] = ()
    summary: str = ""

    @property
    def elements(self) -> tuple[str, ...]:
        """The elements named, in the order of their first edge."""
        return tuple(dict.fromkeys(edge.element for edge in self.edges))


# ---------------------------------------------------------------- axis kinds
def _bare(units: str | None) -> str:
    return (units or "").replace(" ", "").lower()


def axis_kind(units: str | None, signal_type: str | None = None) -> str:
    """``"eels"``, ``"raman"`` or ``"generic"``, from an axis's units and signal type.

    EELS: units eV or keV, or signal type "EELS"; Raman: a wavenumber unit
    (cm⁻¹, 1/cm, ...) or signal type "Raman".
    """
    kind = (signal_type or "").strip().lower()
    if _bare(units) in ("ev", "kev") or kind == "eels":
        return "eels"
    if _bare(units) in {_bare(unit) for unit in RAMAN_UNITS} or kind == "raman":
        return "raman"
    return "generic"


# ------------------------------------------------------------ EELS: onsets
@dataclass(frozen=True)
class Onset:
    """A rise of a spectrum above its extrapolated power-law background.

    Attributes
    ----------
    energy : float
        eV.
    jump : float
        Mean log ratio of spectrum to background just after the onset (0.1:
        10 % above the background).
    significance : float
        The jump in standard errors.
    exponent : float
        ``r`` of the background fitted before it.
    gradual : bool
        A delayed rise: found with the long windows only, or still growing.
    """

    energy: float
    jump: float
    significance: float
    exponent: float
    gradual: bool


@dataclass(frozen=True)
class _Scan:
    """Power-law fits before, and the rise after, every channel."""

    jump: np.ndarray
    significance: np.ndarray
    sustained: np.ndarray
    exponent: np.ndarray
    intercept: np.ndarray
    usable: np.ndarray
    rise_end: np.ndarray


def _local_noise(spectrum: np.ndarray) -> np.ndarray:
    """Per-channel noise standard deviation: DER_SNR in a running window."""
    second = np.abs(2.0 * spectrum[2:-2] - spectrum[:-4] - spectrum[4:])
    second = np.pad(second, 2, mode="edge")
    size = min(_NOISE_WINDOW, spectrum.size)
    return _DER_SNR * ndimage.median_filter(second, size=size, mode="nearest")


def _width(energy: np.ndarray, length: tuple[float, float]) -> np.ndarray:
    return np.maximum(length[0], length[1] * energy)


def _scan(
    energy: np.ndarray,
    log_x: np.ndarray,
    log_y: np.ndarray,
    variance: np.ndarray,
    scale: _Scale,
    floor: int,
) -> _Scan:
    """Fit ``log y = a + b log E`` before each channel and measure the rise after.

    All windows at once from running sums: the regression of each pre-edge
    window, its extrapolation over the windows after the channel, and the
    standard error of the mean rise (noise of the mean plus the
    extrapolation's uncertainty from the fit's residuals). Pre-edge windows
    must start at ``floor`` or later.
    """
    n = energy.size
    index = np.arange(n)
    start = np.searchsorted(energy, energy - _width(energy, scale.pre))
    start = np.maximum(np.minimum(start, index - _MIN_PRE_CHANNELS), 0)
    rise_end = np.searchsorted(energy, energy + _width(energy, scale.rise))
    rise_end = np.minimum(np.maximum(rise_end, index + _MIN_POST_CHANNELS), n)
    long_end = np.searchsorted(energy, energy + _width(energy, scale.sustain))
    long_end = np.minimum(np.maximum(long_end, rise_end), n)
    prefix = {
        name: np.concatenate([[0.0], np.cumsum(values)])
        for name, values in (
            ("x", log_x),
            ("y", log_y),
            ("xx", log_x * log_x),
            ("xy", log_x * log_y),
            ("yy", log_y * log_y),
            ("v", variance),
        )
    }

    def total(name: str, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return prefix[name][high] - prefix[name][low]

    count = np.maximum(index - start, 1)
    sx, sy = total("x", start, index), total("y", start, index)
    sxx = total("xx", start, index) - sx * sx / count
    sxy = total("xy", start, index) - sx * sy / count
    syy = total("yy", start, index) - sy * sy / count
    fitted = sxx > 0
    slope = np.divide(sxy, sxx, out=np.zeros(n), where=fitted)
    intercept = (sy - slope * sx) / count
    residual = np.maximum(syy - slope * sxy, 0.0) / np.maximum(count - 2, 1)
    residual = np.maximum(residual, total("v", start, index) / count)
    spread = np.where(fitted, sxx, np.inf)

    def rise(end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.maximum(end - index, 1)
        mean_x = total("x", index, end) / m
        excess = total("y", index, end) / m - (intercept + slope * mean_x)
        lever = (mean_x - sx / count) ** 2 / spread
        error = total("v", index, end) / m**2 + residual * (1 / count + lever)
        return excess, np.sqrt(error)

    jump, error = rise(rise_end)
    sustained, _ = rise(long_end)
    usable = (
        fitted
        & (start >= floor)
        & (index - start >= _MIN_PRE_CHANNELS)
        & (rise_end - index >= _MIN_POST_CHANNELS)
    )
    return _Scan(
        jump=jump,
        significance=jump / error,
        sustained=sustained,
        exponent=-slope,
        intercept=intercept,
        usable=usable,
        rise_end=rise_end,
    )


def _first_run(mask: np.ndarray) -> np.ndarray | None:
    """Indices of the first run of consecutive True values, if any."""
    hits = np.flatnonzero(mask)
    if not hits.size:
        return None
    breaks = np.flatnonzero(np.diff(hits) > 1)
    return hits[: breaks[0] + 1] if breaks.size else hits


def _onsets_at(
    energy: np.ndarray,
    log_x: np.ndarray,
    log_y: np.ndarray,
    variance: np.ndarray,
    scale: _Scale,
    gradual: bool,
    background: float | None,
) -> list[Onset]:
    """Onsets one after the other, each background fitted after the previous rise."""
    low, high = EXPONENT_RANGE
    if background is not None:
        high = min(high, background + _EXPONENT_MARGIN)
    onsets: list[Onset] = []
    floor = after = 0
    while True:
        scan = _scan(energy, log_x, log_y, variance, scale, floor)
        found = (
            scan.usable
            & (scan.exponent >= low)
            & (scan.exponent <= high)
            & (scan.jump >= MIN_JUMP)
            & (scan.significance >= SIGNIFICANCE)
            & (scan.sustained >= 0)
        )
        found[:after] = False
        run = _first_run(found)
        if run is None:
            return onsets
        # The rise is largest where the fitted window ends just before the edge.
        best = int(run[np.argmax(scan.jump[run])])
        width = int(scan.rise_end[best] - best)
        window = np.arange(max(best - width, 0), best + width)
        excess = log_y - (scan.intercept[best] - scan.exponent[best] * log_x)
        smooth = ndimage.uniform_filter1d(excess, 3, mode="nearest")[window]
        if gradual:
            onset = _extrapolated_start(energy[window], smooth, scan.jump[best])
        else:
            above = window[smooth >= 0.5 * scan.jump[best]]
            onset = float(energy[above[0]] if above.size else energy[best])
        rising = scan.sustained[best] >= _STILL_RISING * scan.jump[best]
        onsets.append(
            Onset(
                energy=onset,
                jump=float(scan.jump[best]),
                significance=float(scan.significance[best]),
                exponent=float(scan.exponent[best]),
                gradual=bool(gradual or rising),
            )
        )
        floor = max(int(np.searchsorted(energy, onset)), best) + width
        after = int(run[-1]) + 1


def _extrapolated_start(energy: np.ndarray, excess: np.ndarray, jump: float) -> float:
    """Where a slow rise starts: its flank's square root extrapolated to zero.

    A delayed edge rises about quadratically above its onset, so the square
    root of the excess is about linear there.
    """
    flank = (excess > 0.1 * jump) & (excess < 0.8 * jump)
    if flank.sum() < 2:
        return float(energy[0])
    slope, intercept = np.polyfit(energy[flank], np.sqrt(excess[flank]), 1)
    if slope <= 0:
        return float(energy[flank][0])
    return float(np.clip(-intercept / slope, energy[0], energy[flank][0]))


def find_onsets(
    spectrum: np.ndarray, energy: np.ndarray
) -> tuple[list[Onset], float | None]:
    """Onsets of the rises of an EELS spectrum above its power-law background.

    Parameters
    ----------
    spectrum : numpy.ndarray
        One spectrum (counts or any intensity).
    energy : numpy.ndarray
        Energy loss of each channel in eV, increasing; channels at zero or
        below are left out.

    Returns
    -------
    onsets : list of Onset
        By energy.
    exponent : float or None
        ``r`` of the power law before the first onset (over the whole window
        without one); None when too few channels lie there.
    """
    spectrum = np.asarray(spectrum, dtype=float)
    energy = np.asarray(energy, dtype=float)
    keep = energy > 0
    spectrum, energy = spectrum[keep], energy[keep]
    if energy.size < _MIN_PRE_CHANNELS + _MIN_POST_CHANNELS or spectrum.max() <= 0:
        return [], None
    positive = np.maximum(spectrum, 1e-6 * spectrum.max())
    log_x = np.log(energy) - np.log(energy).mean()
    log_y = np.log(positive)
    relative = np.maximum(_local_noise(spectrum) / positive, _RELATIVE_NOISE_FLOOR)
    arrays = (energy, log_x, log_y, relative**2)
    first = _onsets_at(*arrays, _FINE, gradual=False, background=None)
    background = first[0].exponent if first else None
    fine = _onsets_at(*arrays, _FINE, gradual=False, background=background)
    onsets = list(fine)
    for onset in _onsets_at(*arrays, _COARSE, gradual=True, background=background):
        near = max(_COARSE.sustain[0], _COARSE.sustain[1] * onset.energy)
        if all(abs(onset.energy - other.energy) > near for other in fine):
            onsets.append(onset)
    onsets.sort(key=lambda onset: onset.energy)
    before = energy < (onsets[0].energy if onsets else np.inf)
    if before.sum() < _MIN_PRE_CHANNELS:
        return onsets, None
    return onsets, float(-np.polyfit(log_x[before], log_y[before], 1)[0])


# ------------------------------------------------------ EELS: edge database
@dataclass(frozen=True)
class _TabulatedEdge:
    element: str
    shell: str
    energy: float
    major: bool
    delayed: bool
    atomic_number: int


@functools.cache
def _edge_table() -> tuple[_TabulatedEdge, ...]:
    """Every subshell of eXSpy's elements database, by onset energy.

    ``elements[el]["Atomic_properties"]["Binding_energies"][shell]`` holds
    ``onset_energy (eV)``, ``relevance`` (Major, Minor), ``edge`` (the shape:
    "Abrupt onset", "Delayed maximum", ...) and ``threshold`` ("Sharp peak"
    for white lines). Shells ending in "a" (K1a, L1a) repeat others and are
    skipped, as :func:`exspy.utils.eels.get_edges_near_energy` does. Major
    means Major with a shape given; delayed, a "Delayed maximum" (or "Very
    delayed") shell without a sharp threshold peak, other than K and L
    (whose cross-sections rise at their onset).
    """
    try:
        from exspy.material import elements
    except ImportError as error:  # pragma: no cover - exspy is the eels extra
        raise ImportError(
            "Naming EELS edges reads eXSpy's edge database: pip install exspy"
        ) from error
    table = []
    for element, properties in elements.as_dictionary().items():
        if not isinstance(properties, dict):  # the tree's __doc__
            continue
        shells = properties.get("Atomic_properties", {}).get("Binding_energies", {})
        for shell, entry in shells.items():
            if shell.endswith("a"):
                continue
            shape = str(entry.get("edge", "")).strip().lower()
            sharp = str(entry.get("threshold", "")).strip().lower() == "sharp peak"
            table.append(
                _TabulatedEdge(
                    element=element,
                    shell=shell,
                    energy=float(entry["onset_energy (eV)"]),
                    major=entry.get("relevance") == "Major" and bool(shape),
                    delayed="delayed" in shape and not sharp and shell[0] not in "KL",
                    atomic_number=int(properties["General_properties"]["Z"]),
                )
            )
    # At equal energies the lighter (more common) element comes first and
    # wins exact ties (Cu L3 and Pr M5 at 931 eV).
    table.sort(key=lambda entry: (entry.energy, entry.atomic_number))
    return tuple(table)


@functools.cache
def _major_edges(element: str) -> tuple[_TabulatedEdge, ...]:
    return tuple(e for e in _edge_table() if e.element == element and e.major)


def _sigma(energy: float) -> float:
    return ENERGY_SIGMA_EV + ENERGY_SIGMA_FRACTION * energy


@dataclass(frozen=True)
class _Context:
    """What naming an onset may use: the window, all onsets, known elements."""

    start: float
    onsets: tuple[float, ...]
    own: frozenset[str]
    sample: frozenset[str]


def _missing_partner(entry: _TabulatedEdge, context: _Context) -> bool:
    """Whether the element's first Major edge in the window, below ``entry``,
    shows no onset (it would have been seen first)."""
    for other in _major_edges(entry.element):
        sigma = _sigma(other.energy)
        if other.energy < context.start + _FINE.pre[0] + 2 * sigma:
            continue
        if other.energy > entry.energy - sigma:
            return False
        return all(abs(onset - other.energy) > 2 * sigma for onset in context.onsets)
    return False


def _closeness(entry: _TabulatedEdge, onset: Onset) -> float:
    """``exp(-d**2 / 2 sigma**2)``, sigma wider on the late side of delayed edges."""
    distance = onset.energy - entry.energy
    sigma = _sigma(onset.energy)
    if onset.gradual and entry.delayed and distance > 0:
        sigma += _DELAY_FRACTION * onset.energy
    if abs(distance) > 3 * sigma:
        return 0.0
    return math.exp(-0.5 * (distance / sigma) ** 2)


def _weight(entry: _TabulatedEdge, onset: Onset, context: _Context) -> float:
    """Closeness times the prior factors of the module docstring."""
    weight = _closeness(entry, onset)
    if not weight:
        return 0.0
    own = entry.element in context.own
    if not (entry.major or own):
        weight *= _UNLIKELY
    if entry.delayed and not onset.gradual:
        weight *= _UNLIKELY
    if _missing_partner(entry, context):
        weight *= _UNLIKELY
    if own or entry.element in context.sample:
        weight *= _COHERENCE
    return weight


def _identify(onset: Onset, context: _Context) -> Edge | None:
    """The tabulated edge an onset most likely is; None when none is near."""
    best: dict[str, tuple[_TabulatedEdge, float]] = {}
    for entry in _edge_table():
        weight = _weight(entry, onset, context)
        if weight > best.get(entry.element, (None, 0.0))[1]:
            best[entry.element] = (entry, weight)
    if not best:
        return None
    entry, weight = max(best.values(), key=lambda item: item[1])
    share = weight / sum(w for _, w in best.values())
    return Edge(
        element=entry.element,
        shell=entry.shell,
        tabulated_eV=entry.energy,
        onset_eV=round(onset.energy, 2),
        confidence=round(_closeness(entry, onset) * share, 3),
    )


def _name_edges(
    onsets: Sequence[Onset],
    start: float,
    own: frozenset[str] = frozenset(),
    sample: frozenset[str] = frozenset(),
) -> tuple[tuple[Edge, ...], tuple[float, ...]]:
    """Edges named for the onsets (one per subshell), and the onsets left unnamed."""
    context = _Context(start, tuple(o.energy for o in onsets), own, sample)
    edges: dict[tuple[str, str], Edge] = {}
    unknown = []
    for onset in onsets:
        edge = _identify(onset, context)
        if edge is None:
            unknown.append(round(onset.energy, 2))
            continue
        key = (edge.element, edge.shell)
        if key not in edges or edge.confidence > edges[key].confidence:
            edges[key] = edge
    ordered = tuple(sorted(edges.values(), key=lambda edge: edge.onset_eV))
    return ordered, tuple(unknown)


def _confident(edges: Sequence[Edge]) -> frozenset[str]:
    """Elements named with confidence from a Major edge (a Minor one alone is
    too often near-edge structure that falls on it)."""
    return frozenset(
        edge.element
        for edge in edges
        if edge.confidence >= _CONFIDENT
        and any(major.shell == edge.shell for major in _major_edges(edge.element))
    )


def _describe_eels(
    spectra: Sequence[np.ndarray], energy: np.ndarray
) -> list[tuple[tuple[Edge, ...], tuple[float, ...], float | None]]:
    """(edges, unnamed onsets, background exponent) of spectra of one sample.

    Two passes: the second favours the elements the first named with
    confidence, in the same spectrum or in another.
    """
    found = [find_onsets(spectrum, energy) for spectrum in spectra]
    start = float(energy[energy > 0][0]) if (energy > 0).any() else 0.0
    first = [_confident(_name_edges(onsets, start)[0]) for onsets, _ in found]
    sample = frozenset().union(*first)
    described = []
    for (onsets, exponent), own in zip(found, first, strict=True):
        edges, unknown = _name_edges(onsets, start, own, sample)
        described.append((edges, unknown, exponent))
    return described


def find_edges(
    spectrum: np.ndarray, energy: np.ndarray
) -> tuple[tuple[Edge, ...], float | None]:
    """The ionisation edges of one EELS spectrum, and its background exponent.

    Parameters
    ----------
    spectrum : numpy.ndarray
    energy : numpy.ndarray
        Energy loss of each channel in eV, increasing.

    Returns
    -------
    edges : tuple of Edge
        By onset.
    exponent : float or None
        See :func:`find_onsets`.
    """
    ((edges, _, exponent),) = _describe_eels([np.asarray(spectrum, float)], energy)
    return edges, exponent


# ----------------------------------------------------------- Raman: bands
def _lower_envelope(spectrum: np.ndarray, half_width: int) -> np.ndarray:
    """SNIP clipping: the smooth curve under the bands (Ryan et al. 1988)."""
    envelope = spectrum.copy()
    for p in range(1, half_width + 1):
        average = 0.5 * (envelope[: -2 * p] + envelope[2 * p :])
        envelope[p:-p] = np.minimum(envelope[p:-p], average)
    return envelope


def _vertex(values: np.ndarray, peak: int) -> float:
    """Sub-channel position of a maximum: the parabola through three channels."""
    if peak in (0, values.size - 1):
        return float(peak)
    below, centre, above = values[peak - 1 : peak + 2]
    curvature = below - 2 * centre + above
    return float(peak + (0.5 * (below - above) / curvature if curvature < 0 else 0))


def find_bands(spectrum: np.ndarray, shift: np.ndarray) -> tuple[Band, ...]:
    """The bands of a Raman spectrum above its smooth lower envelope.

    Parameters
    ----------
    spectrum : numpy.ndarray
    shift : numpy.ndarray
        Raman shift of each channel (cm⁻¹), monotonic.

    Returns
    -------
    tuple of Band
        By position; heights relative to the tallest band.
    """
    spectrum = np.asarray(spectrum, dtype=float)
    shift = np.asarray(shift, dtype=float)
    if spectrum.size < 5:
        return ()
    step = abs(float(shift[-1] - shift[0])) / (shift.size - 1)
    half_width = int(np.clip(_RAMAN_ENVELOPE_WIDTH / step, 2, spectrum.size // 4))
    # The broad curvature first (a fluorescence hump would be clipped off by
    # a local envelope), then what is left under the bands.
    basis = polynomial_basis(spectrum.size, AUTO_DEGREE)
    flattened = spectrum - lowest_polynomial_below(spectrum, basis)
    signal = flattened - _lower_envelope(flattened, half_width)
    tallest = float(signal.max())
    if tallest <= 0:
        return ()
    noise = float(der_snr_noise(spectrum[None])[0])
    threshold = max(RAMAN_SIGNIFICANCE * noise, RAMAN_MIN_HEIGHT * tallest)
    peaks, _ = find_peaks(signal, prominence=threshold)
    if not peaks.size:
        return ()
    _, _, left, right = peak_widths(signal, peaks, rel_height=0.5)
    channels = np.arange(shift.size)
    heights = signal[peaks]
    bands = [
        Band(
            position=float(np.interp(_vertex(signal, peak), channels, shift)),
            fwhm=float(
                abs(np.interp(r, channels, shift) - np.interp(lo, channels, shift))
            ),
            relative_height=float(height / heights.max()),
        )
        for peak, lo, r, height in zip(peaks, left, right, heights, strict=True)
    ]
    return tuple(sorted(bands, key=lambda band: band.position))


# ------------------------------------------------ duplicates and collapse
def endmember_warnings(
    spectra: np.ndarray,
    *,
    shares: np.ndarray | None = None,
    support: np.ndarray | None = None,
    max_fraction: np.ndarray | None = None,
    duplicate_angle: float = DUPLICATE_ANGLE,
    min_share: float = MIN_SHARE,
) -> list[EndmemberWarning]:
    """Endmembers that are the same spectrum, or that carry no intensity.

    Parameters
    ----------
    spectra : numpy.ndarray
        (n_components, n_channels).
    shares : numpy.ndarray, optional
        Each endmember's share of the reconstructed intensity: below
        ``min_share``, it is collapsed.
    support, max_fraction : numpy.ndarray, optional
        From the stability report, used without ``shares``: an endmember
        that dominates no pixel and never reaches a fraction of one half is
        collapsed.
    duplicate_angle : float
        Radians: two endmembers closer than this are duplicates.
    min_share : float

    Returns
    -------
    list of EndmemberWarning
        Duplicates (by pair), then collapsed endmembers.
    """
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    n = spectra.shape[0]
    advice = f"try n_components={n - 1}" if n > 1 else "check the data"
    norms = np.linalg.norm(spectra, axis=1)
    unit = spectra / np.where(norms > 0, norms, 1.0)[:, None]
    angles = np.arccos(np.clip(unit @ unit.T, -1.0, 1.0))
    found = [
        EndmemberWarning(
            "duplicate",
            (i, j),
            f"endmembers {i} and {j} are one spectrum ({angles[i, j]:.3f} rad "
            f"apart, below {duplicate_angle:g}): {advice}.",
        )
        for i in range(n)
        for j in range(i + 1, n)
        if norms[i] > 0 and norms[j] > 0 and angles[i, j] < duplicate_angle
    ]
    for k in range(n):
        if shares is not None:
            if shares[k] < min_share:
                found.append(
                    EndmemberWarning(
                        "collapsed",
                        (k,),
                        f"endmember {k} carries {100 * shares[k]:.2g} % of the "
                        f"intensity (below {100 * min_share:g} %): {advice}.",
                    )
                )
        elif (
            support is not None
            and max_fraction is not None
            and support[k] == 0
            and max_fraction[k] < 0.5
        ):
            found.append(
                EndmemberWarning(
                    "collapsed",
                    (k,),
                    f"endmember {k} dominates no pixel (largest fraction "
                    f"{max_fraction[k]:.2f}): {advice}.",
                )
            )
    return found


# ------------------------------------------------------------ descriptions
def describe_spectra(
    spectra: np.ndarray,
    axis: np.ndarray | None = None,
    *,
    units: str | None = None,
    signal_type: str | None = None,
    support: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    max_fraction: np.ndarray | None = None,
    shares: np.ndarray | None = None,
) -> list[EndmemberDescription]:
    """Describe endmember spectra on an axis; no fitted model needed.

    Parameters
    ----------
    spectra : numpy.ndarray
        (n_components, n_channels).
    axis : numpy.ndarray, optional
        Position of each channel; without it the spectra are generic.
    units, signal_type : str, optional
        Choose the description (:func:`axis_kind`); keV is read as 1000 eV.
    support, spread, max_fraction : numpy.ndarray, optional
        Per endmember, from a stability report.
    shares : numpy.ndarray, optional
        Per endmember share of the intensity.

    Returns
    -------
    list of EndmemberDescription
        One per endmember, in order.
    """
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    n = spectra.shape[0]
    kind = "generic" if axis is None else axis_kind(units, signal_type)
    warnings = endmember_warnings(
        spectra, shares=shares, support=support, max_fraction=max_fraction
    )
    eels: list[tuple[tuple[Edge, ...], tuple[float, ...], float | None]]
    eels = [((), (), None)] * n
    if kind == "eels":
        energy = np.asarray(axis, dtype=float) * (
            1000.0 if _bare(units) == "kev" else 1.0
        )
        order = np.argsort(energy)
        eels = _describe_eels(list(spectra[:, order]), energy[order])
    descriptions = []
    for k in range(n):
        edges, unknown, exponent = eels[k]
        description = EndmemberDescription(
            index=k,
            kind=kind,
            support=None if support is None else int(support[k]),
            spread=_finite(spread, k),
            intensity_share=_finite(shares, k),
            edges=edges,
            unidentified_onsets_eV=unknown,
            background_exponent=exponent,
            bands=find_bands(spectra[k], np.asarray(axis)) if kind == "raman" else (),
            warnings=tuple(w for w in warnings if k in w.endmembers),
        )
        descriptions.append(_with_summary(description, units))
    return descriptions


def _finite(values: np.ndarray | None, k: int) -> float | None:
    if values is None or not np.isfinite(values[k]):
        return None
    return float(values[k])


def _tallest_bands(bands: Sequence[Band], count: int) -> list[Band]:
    tallest = sorted(bands, key=lambda band: -band.relative_height)[:count]
    return sorted(tallest, key=lambda band: band.position)


def _what(description: EndmemberDescription, n_bands: int) -> str:
    """Edges, bands or nothing, in a few words."""
    if description.edges:
        return ", ".join(str(edge) for edge in description.edges)
    if description.bands:
        positions = ", ".join(
            f"{band.position:.0f}"
            for band in _tallest_bands(description.bands, n_bands)
        )
        return f"bands at {positions}"
    return {"eels": "no edge", "raman": "no band"}.get(description.kind, "")


def _with_summary(
    description: EndmemberDescription, units: str | None
) -> EndmemberDescription:
    parts = [_what(description, 5)]
    if description.bands and units:
        parts[0] += f" {units}"
    if description.background_exponent is not None:
        parts.append(f"background r={description.background_exponent:.2f}")
    if description.intensity_share is not None:
        parts.append(f"{100 * description.intensity_share:.1f} % of the intensity")
    if description.support is not None:
        parts.append(f"dominates {description.support} pixels")
    if description.spread is not None:
        parts.append(f"spread {description.spread:.3f} rad")
    parts.extend(warning.message for warning in description.warnings)
    summary = f"{description.index}: " + "; ".join(part for part in parts if part)
    return replace(description, summary=summary)


def short_description(descriptions: Sequence[EndmemberDescription]) -> str:
    """A few lines for ``print_info``: ``0: Fe L3 (708 eV), O K (532 eV); 1: ...``.

    Raman endmembers show their three tallest bands; duplicates and
    collapsed endmembers are marked.
    """
    parts = []
    for description in descriptions:
        text = _what(description, 3) or "-"
        flags = dict.fromkeys(warning.kind for warning in description.warnings)
        if flags:
            text += f" ({', '.join(flags)})"
        parts.append(f"{description.index}: {text}")
    # Lines break between endmembers only.
    lines = [""]
    for part in parts:
        joined = f"{lines[-1]}; {part}" if lines[-1] else part
        if lines[-1] and len(joined) > _LINE_WIDTH:
            lines[-1] += ";"
            lines.append(part)
        else:
            lines[-1] = joined
    return "\n".join(lines)


def intensity_shares(model: AEUnmix, X, **geometry) -> np.ndarray:
    """Each endmember's share of the intensity ``model`` reconstructs for ``X``.

    Pixel ``p`` holds ``intensity_p * fraction_pk * components_[k]``, whose
    total over the channels is ``intensity_p * fraction_pk`` times the
    endmember's total; summed over the pixels and divided by the sum over
    the endmembers.
    """
    fractions, intensity = model.fractions(X, **geometry)
    totals = np.clip(model.components_, 0.0, None).sum(axis=1)
    carried = (fractions * intensity[:, None]).sum(axis=0) * totals
    whole = float(carried.sum())
    return carried / whole if whole > 0 else np.zeros_like(carried)


def describe_model(model: AEUnmix, X=None, **geometry) -> list[EndmemberDescription]:
    """Describe a fitted model's endmembers (:meth:`AEUnmix.describe_endmembers`).

    Parameters
    ----------
    model : AEUnmix
        Fitted.
    X : array-like of shape (n_pixels, n_channels), optional
        Spectra (the training spectra, or a sample of them) that give each
        endmember's share of the intensity.
    **geometry
        ``image_shape`` and ``navigation_mask``, for spatial models.

    Returns
    -------
    list of EndmemberDescription
    """
    check_is_fitted(model, "components_")
    spectra = np.asarray(model.components_, dtype=float)
    calibration = model.signal_calibration_
    axis = units = signal_type = None
    if calibration is not None:
        # Signal-masked channels were not trained: the components skip them.
        values = calibration.values
        if values.size != spectra.shape[1]:
            values = values[calibration.trained_channels]
        if values.size == spectra.shape[1]:
            axis, units = values, calibration.units
            signal_type = calibration.signal_type
    report = model.stability_
    shares = None if X is None else intensity_shares(model, X, **geometry)
    return describe_spectra(
        spectra,
        axis,
        units=units,
        signal_type=signal_type,
        support=None if report is None else report.support,
        spread=None if report is None else report.spread,
        max_fraction=None if report is None else report.max_fraction,
        shares=shares,
    )
