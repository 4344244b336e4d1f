"""What each endmember is: its edges or bands, and when it is not one.

:meth:`AEUnmix.describe_endmembers <hs_aeunmix.AEUnmix.describe_endmembers>`
returns one :class:`EndmemberDescription` per endmember: the pixels it
dominates and its spread (from ``stability_``), its share of the intensity
(when spectra are given), and what the spectrum itself shows, read from the
axis's units and signal type (:func:`axis_kind`).

EELS (eV or keV, or signal type "EELS"): ionisation edges
----------------------------------------------------------
Onsets found on the spectrum and named from eXSpy's edge database, with a
confidence: see :mod:`hs_aeunmix._edges` for how, and what it was measured
to name.

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

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import find_peaks, peak_widths

from hs_aeunmix._baseline import (
    AUTO_DEGREE,
    RAMAN_UNITS,
    lowest_polynomial_below,
    polynomial_basis,
)
from hs_aeunmix._edges import Edge, _describe_eels, known_elements
from hs_aeunmix._screening import der_snr_noise

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
        Radians between the starts' solutions (stability report); None
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
    elements: Sequence[str] | None = None,
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
    elements : sequence of str, optional
        EELS: the elements the specimen holds (chemical symbols); only their
        edges are named, other onsets are listed as unidentified. Without
        it every element of eXSpy's database is a candidate. Other axes
        have no edges: it is not read there.

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
        eels = _describe_eels(
            list(spectra[:, order]), energy[order], known_elements(elements)
        )
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
