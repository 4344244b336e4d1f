"""EELS edges of a spectrum: where they start and which element they are.

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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
    # The elements the user says the specimen holds: no other is named.
    allowed: frozenset[str] | None = None


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
        if context.allowed is not None and entry.element not in context.allowed:
            continue
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
    allowed: frozenset[str] | None = None,
) -> tuple[tuple[Edge, ...], tuple[float, ...]]:
    """Edges named for the onsets (one per subshell), and the onsets left unnamed."""
    context = _Context(start, tuple(o.energy for o in onsets), own, sample, allowed)
    edges: dict[tuple[str, str], Edge] = {}
    unknown = []
    for onset in onsets:
        edge = _identify(onset, context)
        if edge is None:
            unknown.append(round(onset.energy, 2))
            continue
        key = (edge.element, edge.shell)
        if key in edges:
            # One onset per subshell: the less confident is listed, not lost.
            kept, edge = sorted(
                (edges[key], edge), key=lambda e: e.confidence, reverse=True
            )
            unknown.append(edge.onset_eV)
            edge = kept
        edges[key] = edge
    ordered = tuple(sorted(edges.values(), key=lambda edge: edge.onset_eV))
    return ordered, tuple(sorted(unknown))


def _confident(edges: Sequence[Edge]) -> frozenset[str]:
    """Elements named with confidence from a Major edge (a Minor one alone is
    too often near-edge structure that falls on it)."""
    return frozenset(
        edge.element
        for edge in edges
        if edge.confidence >= _CONFIDENT
        and any(major.shell == edge.shell for major in _major_edges(edge.element))
    )


@functools.cache
def tabulated_elements() -> frozenset[str]:
    """The elements with edges in eXSpy's database."""
    return frozenset(entry.element for entry in _edge_table())


def split_elements(elements: str | Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """``elements`` (one symbol or several) as those eXSpy's database knows
    and those it does not, each in the order given."""
    if isinstance(elements, str):
        elements = [elements]
    given = [str(element) for element in elements]
    tabulated = tabulated_elements()
    known = tuple(element for element in given if element in tabulated)
    return known, [element for element in given if element not in tabulated]


def known_elements(elements: Sequence[str] | None) -> frozenset[str] | None:
    """``elements`` checked against eXSpy's database (None: any element)."""
    if elements is None:
        return None
    known, unknown = split_elements(elements)
    if unknown:
        unknown = sorted(set(unknown))
        raise ValueError(
            f"elements {unknown} have no edges in eXSpy's database; give chemical "
            "symbols such as 'Fe' or 'La' (as in s.add_elements)."
        )
    return frozenset(known)


def _describe_eels(
    spectra: Sequence[np.ndarray],
    energy: np.ndarray,
    elements: frozenset[str] | None = None,
) -> list[tuple[tuple[Edge, ...], tuple[float, ...], float | None]]:
    """(edges, unnamed onsets, background exponent) of spectra of one sample.

    Two passes: the second favours the elements the first named with
    confidence, in the same spectrum or in another. With ``elements`` (what
    the specimen is known to hold, :func:`known_elements`) only their edges
    are named; other onsets stay unnamed.
    """
    found = [find_onsets(spectrum, energy) for spectrum in spectra]
    start = float(energy[energy > 0][0]) if (energy > 0).any() else 0.0
    first = [
        _confident(_name_edges(onsets, start, allowed=elements)[0])
        for onsets, _ in found
    ]
    sample = frozenset().union(*first)
    described = []
    for (onsets, exponent), own in zip(found, first, strict=True):
        edges, unknown = _name_edges(onsets, start, own, sample, elements)
        described.append((edges, unknown, exponent))
    return described


def find_edges(
    spectrum: np.ndarray, energy: np.ndarray, elements: Sequence[str] | None = None
) -> tuple[tuple[Edge, ...], float | None]:
    """The ionisation edges of one EELS spectrum, and its background exponent.

    Parameters
    ----------
    spectrum : numpy.ndarray
    energy : numpy.ndarray
        Energy loss of each channel in eV, increasing.
    elements : sequence of str, optional
        The elements the specimen holds: only their edges are named.

    Returns
    -------
    edges : tuple of Edge
        By onset.
    exponent : float or None
        See :func:`find_onsets`.
    """
    ((edges, _, exponent),) = _describe_eels(
        [np.asarray(spectrum, float)], energy, known_elements(elements)
    )
    return edges, exponent
