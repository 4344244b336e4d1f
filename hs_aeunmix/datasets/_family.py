"""A seeded, randomised family of synthetic spectrum-image scenes.

The family is used to choose the package's defaults on a *development* half
and to report them on a *held-out* half. Scene ``index`` of a split is drawn
from ``numpy.random.default_rng(SeedSequence(entropy=_FAMILY_ENTROPY,
spawn_key=(split_id, index)))`` with ``split_id`` 0 for ``"development"`` and 1
for ``"held_out"``: the two halves never share a seed, every draw of a scene
comes from that one generator, and the same ``(index, split)`` always gives
bit-identical data (for a given NumPy, SciPy and exspy).

What is drawn, in this order
----------------------------
A fixed block of uniform numbers sets the top-level parameters (so that
overriding one of them leaves the others unchanged):

* ``modality``: ``"eels"`` (40 %), ``"raman"`` (35 %) or ``"generic"`` (25 %).
* ``n_endmembers``: uniform over 2 to 6.
* ``n_channels``: log-uniform over 100 to 2000 (rounded).
* ``shape``: ny and nx independently uniform over 32 to 80.
* ``structure``: uniform over ``"blocks"``, ``"smooth"``, ``"particles"``,
  ``"layers"`` and (only with at least 4 endmembers) ``"cell"``.
* ``pure_pixels``: true or false with probability 1/2 each. Without pure
  pixels, ``max_fraction`` is uniform over ``[max(0.5, 1/n + 0.1), 0.9]`` and
  every fraction of the scene is at most ``max_fraction``.
* noise: Poisson for EELS, Gaussian for Raman, either (1/2 each) for the
  generic spectra. ``dose`` (Poisson: mean expected counts per channel of a
  pure pixel at unit intensity, averaged over the endmembers) is log-uniform
  over 5 to 2000; ``snr`` (Gaussian: mean over pixels of the largest
  noiseless value of the pixel spectrum, divided by the noise standard
  deviation) is log-uniform over 3 to 300.
* ``intensity_variation``: 0 with probability 1/3, else uniform over 0.05 to
  0.5; the relative intensity (thickness, illumination) is a smooth map over
  ``[1 - v, 1 + v]``.
* artefacts, each independently: ``"spikes"`` (1/4; 2 to 10 spikes of 1 to 3
  channels in 1 to 5 pixels, heights log-uniform 2 to 20 times the pixel's
  peak), ``"dead_pixels"`` (1/4; 1 to 4 bad pixels, each dead, i.e. reading
  exactly zero, with probability 0.6, else hot, i.e. a constant offset of 0.2
  to 2 times the mean peak), ``"drift"`` (1/4; a smooth energy drift, largest
  magnitude ``drift_channels`` uniform over 0.3 to 1.5 channels) and, for
  Raman only, ``"baseline"`` (1/2; a smooth positive fluorescence baseline of
  amplitude uniform over 0.1 to 2 times the mean peak).
* two structure scales: ``feature_size`` and ``edge_width`` in pixels (see
  :class:`SceneDescription`).

Then the endmembers of the modality are drawn (with redraws until every pair
of endmembers is at least ``0.02`` rad apart in spectral angle):

* **EELS**: a window (dispersion log-uniform over 0.1 to 1 eV per channel,
  at least 30 eV wide, anchored on a random edge of the library) and then
  materials of the library (1 to 3 elements with stoichiometric weights) of
  which at least ``n - 1`` have an edge in the window; at most one material
  without an edge in the window (probability 1/4, or when only ``n - 1``
  materials of the library have an edge there). K edges and the L2,3 edges
  of Ca to Ge use exspy's hydrogenic cross-sections
  (:class:`exspy.components.EELSCLEdge` with ``GOS="hydrogenic"``; it computes
  K and L shells only). The database lists only ``"L2,3"`` (no ``"L3"``) for
  Na, Al, P, S and Cl, which the hydrogenic L model cannot read, so their
  L2,3 edges use the hydrogenic L3 shape of the nearest element that has one
  (Si for Al, P and S; K for Cl), shifted to the element's onset. M4,5 edges
  (Sr, Zr, Nb, Mo, Ru, Pd, Ag, In, Sn, Ba, lanthanides, Pt, Au) use a
  parametric delayed edge (see :func:`_m45_continuum`) with sharp M5/M4 white
  lines for Ba and the lanthanides. Near-edge peaks are Lorentzians: L3/L2
  white lines of the 3d metals with state-dependent chemical shifts, L3:L2
  ratios and crystal-field splitting, pi*/sigma* peaks of the light elements.
  Each material has a power-law background ``A E^-r`` (``r`` is a scene value
  uniform over 2.2 to 3.8 plus a per-material normal deviation of 0.15,
  clipped to 2 to 4, so that backgrounds are similar as in real data), an
  edge-to-background ratio log-uniform over 0.05 to 0.6 and a relative
  intensity log-uniform over 0.6 to 1.6; spectra are computed on a grid of at
  most 0.1 eV, convolved with a Gaussian resolution of FWHM uniform over 0.3
  to 1.5 eV and averaged over each channel.
* **Raman**: a window log-uniform over 600 to 3500 cm^-1 wide inside 100 to
  3600 cm^-1 and compounds of a 24-compound library (the six biomolecules of
  :func:`~hs_aeunmix.datasets.raman_scene` and 18 minerals, polymers and
  pharmaceuticals) that each have a band of at least 15 % of their strongest
  band inside the window. Bands are pseudo-Voigt profiles (literature
  Lorentzian width, Gaussian instrument FWHM uniform over 2 to 12 cm^-1)
  averaged over each channel; each compound is normalised to a maximum of one
  times a scattering strength log-uniform over 0.5 to 2.
* **generic**: each endmember is a smooth positive continuum
  (``exp`` of a random quadratic) plus 1 to 4 broad Gaussian bands on an axis
  in arbitrary units, like absorption, XAS or NIR spectra.

:func:`describe_scene` stops here and returns the
:class:`SceneDescription`; :func:`random_scene` goes on with the same
generator. The abundances follow the structure (blocks: the blurred
chequerboard of :func:`~hs_aeunmix.datasets.eels_chequerboard` with random
block and filter sizes; smooth: a softmax of smooth Gaussian random fields;
particles: soft ellipses of every phase in a matrix phase; layers: rough
interfaces at a random angle with pure pixels, the diffuse multilayer of
:func:`~hs_aeunmix.datasets.eels_no_pure_pixel` without; cell: the cell of
:func:`~hs_aeunmix.datasets.raman_scene`, its compartments sharpened to pure
with pure pixels). An endmember that the structure leaves without its region
(see Subgroups) gets a small soft disk of its own; without pure pixels all
fractions are then contracted towards ``1 / n`` until the largest is
``max_fraction``. Then the intensity map, the drift, the additive artefacts
and the noise are drawn. The data are::

    noiseless = intensity * (abundances @ endmembers)
    data = noise(drift(noiseless) + artefacts)

where ``drift`` shifts each pixel's spectrum along the signal axis by a
smooth, sub-channel amount (linear interpolation, end values held), so the
true endmembers stay those of the unshifted axis, ``artefacts`` holds the
baseline, the spikes and the dead/hot pixel changes (for a dead pixel it is
minus the drifted spectrum, so that its expectation is zero), and ``noise``
is Poisson sampling or additive Gaussian noise; dead pixels read exactly zero
after the noise.

Subgroups
---------
:attr:`SceneDescription.subgroups` is fixed by the drawn parameters only:

* ``"pure_pixels"`` / ``"no_pure_pixels"``: the ``pure_pixels`` flag. With
  pure pixels, every endmember has at least 9 pixels with a fraction above
  0.98 and 16 above 0.5; without, every fraction is at most ``max_fraction``
  (at most 0.9) and every endmember is still the largest fraction in at
  least 16 pixels (a real region, not a pixel).
* ``"intensity_varying"``: ``intensity_variation >= 0.1``.
* ``"low_dose"``: the lowest third (on the log scale it is drawn on) of the
  modality's noise range: Poisson scenes with ``dose < 5 * 400**(1/3)``
  (about 36.8 counts per channel), Gaussian scenes with
  ``snr < 3 * 100**(1/3)`` (about 13.9).
* ``"artefacts"``: any artefact present (``baseline``, ``spikes``,
  ``dead_pixels`` or ``drift``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from hyperspy.signals import Signal1D
from scipy import ndimage, special

from hs_aeunmix.datasets._common import (
    GroundTruth,
    _check_integer,
    _check_positive_float,
    _check_shape,
    _normalise_rows,
    _smooth_random_field,
)
from hs_aeunmix.datasets._eels import (
    _eels_signal,
    _EELSEndmemberSet,
    _hydrogenic_edge,
    _lorentzian,
    _NearEdgePeak,
)
from hs_aeunmix.datasets._raman import (
    _RAMAN_BANDS,
    _RAMAN_PIXEL_SIZE_UM,
    _bernstein_baseline,
)
from hs_aeunmix.datasets._scenes import (
    _cell_scene,
    _chequerboard_abundances,
    _ellipse_distance,
    _layered_abundances,
    _soft_region,
    _thickness_map,
)

_logger = logging.getLogger(__name__)

# "hs_aeunmix" in ASCII: the root entropy of every scene of the family.
_FAMILY_ENTROPY = int.from_bytes(b"hs_aeunmix", "big")
SPLITS = ("development", "held_out")
MODALITIES = ("eels", "raman", "generic")
STRUCTURES = ("blocks", "smooth", "particles", "layers", "cell")
ARTEFACT_KINDS = ("baseline", "spikes", "dead_pixels", "drift")
NOISE_KINDS = ("poisson", "gaussian")
SUBGROUPS = (
    "pure_pixels",
    "no_pure_pixels",
    "intensity_varying",
    "low_dose",
    "artefacts",
)

_MODALITY_PROBABILITIES = (0.40, 0.35, 0.25)
_N_ENDMEMBERS_RANGE = (2, 6)
_N_CHANNELS_RANGE = (100, 2000)
_SIDE_RANGE = (32, 80)
_MAX_FRACTION_TOP = 0.9
_DOSE_RANGE = (5.0, 2000.0)
_SNR_RANGE = (3.0, 300.0)
# Lowest third, on the log scale the values are drawn on, of each range.
_LOW_DOSE_THRESHOLD = _DOSE_RANGE[0] * (_DOSE_RANGE[1] / _DOSE_RANGE[0]) ** (1 / 3)
_LOW_SNR_THRESHOLD = _SNR_RANGE[0] * (_SNR_RANGE[1] / _SNR_RANGE[0]) ** (1 / 3)
_INTENSITY_VARYING_THRESHOLD = 0.1
_ARTEFACT_PROBABILITY = 0.25
_BASELINE_PROBABILITY = 0.5
_DRIFT_RANGE = (0.3, 1.5)
_BASELINE_RANGE = (0.1, 2.0)
_MIN_SPECTRAL_ANGLE = 0.02
_PURE_THRESHOLD = 0.98
_MIN_PURE_PIXELS = 9
_MIN_DOMINANT_PIXELS = 16
_MAX_ATTEMPTS = 500
# Power applied to the cell-scene fractions when pure pixels are wanted.
_CELL_SHARPENING = 40.0
# Number of uniform numbers drawn first for the top-level parameters.
_N_TOP_LEVEL_DRAWS = 21

_EELS_PIXEL_SIZE_NM = 0.25
_GENERIC_PIXEL_SIZE_UM = 1.0
_EELS_WINDOW_LIMITS_EV = (60.0, 3000.0)
_EELS_MIN_WIDTH_EV = 30.0
_EELS_DISPERSION_RANGE = (0.1, 1.0)
_EELS_RESOLUTION_RANGE = (0.3, 1.5)
_EELS_FINE_STEP_EV = 0.1
_CONTINUUM_REFERENCE_OFFSET_EV = 50.0
_RAMAN_LIMITS = (100.0, 3600.0)
_RAMAN_WIDTH_RANGE = (600.0, 3500.0)
_RAMAN_RESOLUTION_RANGE = (2.0, 12.0)
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


# --------------------------------------------------------------------------
# The description
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneDescription:
    """Every drawn parameter of a scene of the family.

    Attributes
    ----------
    split : {"development", "held_out"}
        Half of the family the scene belongs to.
    index : int
        Scene number within the split.
    modality : {"eels", "raman", "generic"}
        Kind of spectra.
    n_endmembers : int
        Number of endmembers.
    n_channels : int
        Number of spectral channels.
    shape : tuple of int
        Navigation shape ``(ny, nx)``.
    axis_name, axis_units : str
        Name and units of the signal axis.
    axis_offset, axis_scale : float
        Calibration of the signal axis (first channel centre and step).
    structure : {"blocks", "smooth", "particles", "layers", "cell"}
        Spatial structure of the abundances.
    feature_size : float
        Characteristic size in pixels: block side (blocks), correlation
        length of the random fields (smooth), mean particle radius
        (particles), mean layer thickness (layers), cell scene size (cell).
    edge_width : float
        Width of the transitions in pixels: side of the mean filter (blocks),
        width of the softmax transitions (smooth), soft-edge width
        (particles), interface width (layers), membrane width (cell).
    pure_pixels : bool
        Whether every endmember has pure pixels (fraction above 0.98).
    max_fraction : float
        Largest fraction of any endmember; 1.0 with pure pixels.
    noise : {"poisson", "gaussian"}
        Noise model.
    dose : float or None
        Poisson scenes: mean expected counts per channel of a pure pixel at
        unit intensity, averaged over the endmembers; None otherwise.
    snr : float or None
        Gaussian scenes: mean over pixels of the largest noiseless value of
        the pixel spectrum divided by the noise standard deviation.
    intensity_variation : float
        Relative intensity ranges over ``[1 - v, 1 + v]``; 0 means uniform.
    artefacts : tuple of str
        Artefacts present, among ``"baseline"``, ``"spikes"``,
        ``"dead_pixels"`` and ``"drift"``.
    drift_channels : float
        Largest magnitude of the energy drift in channels (0 without drift).
    baseline_amplitude : float
        Fluorescence baseline amplitude relative to the mean peak intensity
        (0 without baseline).
    resolution : float or None
        Instrumental resolution FWHM in signal-axis units (EELS: eV; Raman:
        cm^-1); None for the generic spectra.
    endmember_names : tuple of str
        Name of each endmember.
    endmember_details : tuple of str
        One line per endmember (edges, background exponent, edge jump;
        bands; ...).
    min_spectral_angle : float
        Smallest pairwise spectral angle between the endmembers, in radians.
    """

    split: str
    index: int
    modality: str
    n_endmembers: int
    n_channels: int
    shape: tuple[int, int]
    axis_name: str
    axis_units: str
    axis_offset: float
    axis_scale: float
    structure: str
    feature_size: float
    edge_width: float
    pure_pixels: bool
    max_fraction: float
    noise: str
    dose: float | None
    snr: float | None
    intensity_variation: float
    artefacts: tuple[str, ...]
    drift_channels: float
    baseline_amplitude: float
    resolution: float | None
    endmember_names: tuple[str, ...]
    endmember_details: tuple[str, ...]
    min_spectral_angle: float

    @property
    def spawn_key(self) -> tuple[int, int]:
        """``(split_id, index)`` of the scene's :class:`numpy.random.SeedSequence`."""
        return (SPLITS.index(self.split), self.index)

    @property
    def low_dose(self) -> bool:
        """Whether the noise level is in the lowest third of its range.

        Poisson: ``dose < 5 * 400**(1/3)`` (about 36.8); Gaussian:
        ``snr < 3 * 100**(1/3)`` (about 13.9).
        """
        if self.noise == "poisson":
            return self.dose is not None and self.dose < _LOW_DOSE_THRESHOLD
        return self.snr is not None and self.snr < _LOW_SNR_THRESHOLD

    @property
    def subgroups(self) -> tuple[str, ...]:
        """Subgroups of the scene, from the drawn parameters only.

        ``"pure_pixels"`` or ``"no_pure_pixels"`` (the ``pure_pixels`` flag),
        ``"intensity_varying"`` (``intensity_variation >= 0.1``),
        ``"low_dose"`` (see :attr:`low_dose`) and ``"artefacts"`` (any
        artefact present), in that order.
        """
        groups = ["pure_pixels" if self.pure_pixels else "no_pure_pixels"]
        if self.intensity_variation >= _INTENSITY_VARYING_THRESHOLD:
            groups.append("intensity_varying")
        if self.low_dose:
            groups.append("low_dose")
        if self.artefacts:
            groups.append("artefacts")
        return tuple(groups)

    def as_dict(self) -> dict[str, Any]:
        """All fields plus ``subgroups``, for printing tables."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["subgroups"] = self.subgroups
        return values


# --------------------------------------------------------------------------
# EELS library
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _EdgeSpec:
    """One ionisation edge of an element.

    ``kind`` is ``"K"``, ``"L23"`` or ``"M45"``; ``gos`` is the exspy
    hydrogenic subshell (None for the parametric M4,5 edges); the edge is
    shifted to ``onset`` when it differs from the database onset of ``gos``
    (the L2,3 proxies). ``second_onset`` is the M4 onset of M4,5 edges.
    """

    label: str
    kind: str
    onset: float
    gos: str | None
    second_onset: float | None = None


def _k(symbol: str, onset: float) -> _EdgeSpec:
    return _EdgeSpec(f"{symbol} K", "K", onset, f"{symbol}_K")


def _l23(symbol: str, onset: float, gos: str | None = None) -> _EdgeSpec:
    return _EdgeSpec(f"{symbol} L2,3", "L23", onset, gos or f"{symbol}_L3")


def _m45(symbol: str, m5: float, m4: float) -> _EdgeSpec:
    return _EdgeSpec(f"{symbol} M4,5", "M45", m5, None, m4)


# Onsets of exspy's elements database (eV).
_ELEMENT_EDGES: dict[str, tuple[_EdgeSpec, ...]] = {
    "B": (_k("B", 188.0),),
    "C": (_k("C", 284.0),),
    "N": (_k("N", 401.0),),
    "O": (_k("O", 532.0),),
    "F": (_k("F", 685.0),),
    "Na": (_k("Na", 1072.0),),
    "Mg": (_k("Mg", 1305.0),),
    "Al": (_l23("Al", 73.0, "Si_L3"), _k("Al", 1560.0)),
    "Si": (_l23("Si", 99.2), _k("Si", 1839.0)),
    "P": (_l23("P", 132.0, "Si_L3"), _k("P", 2146.0)),
    "S": (_l23("S", 165.0, "Si_L3"),),
    "Cl": (_l23("Cl", 200.0, "K_L3"),),
    "Ca": (_l23("Ca", 346.0),),
    "Ti": (_l23("Ti", 456.0),),
    "V": (_l23("V", 513.0),),
    "Cr": (_l23("Cr", 575.0),),
    "Mn": (_l23("Mn", 640.0),),
    "Fe": (_l23("Fe", 708.0),),
    "Co": (_l23("Co", 779.0),),
    "Ni": (_l23("Ni", 855.0),),
    "Cu": (_l23("Cu", 931.0),),
    "Zn": (_l23("Zn", 1020.0),),
    "Ga": (_l23("Ga", 1115.0),),
    "Ge": (_l23("Ge", 1217.0),),
    "Sr": (_m45("Sr", 134.0, 134.0),),
    "Zr": (_m45("Zr", 181.0, 181.0),),
    "Nb": (_m45("Nb", 202.3, 205.0),),
    "Mo": (_m45("Mo", 227.0, 228.0),),
    "Ru": (_m45("Ru", 279.0, 279.0),),
    "Pd": (_m45("Pd", 335.0, 340.0),),
    "Ag": (_m45("Ag", 367.0, 373.0),),
    "In": (_m45("In", 443.0, 451.0),),
    "Sn": (_m45("Sn", 485.0, 494.0),),
    "Ba": (_m45("Ba", 781.0, 796.0),),
    "La": (_m45("La", 832.0, 849.0),),
    "Ce": (_m45("Ce", 883.0, 901.0),),
    "Nd": (_m45("Nd", 978.0, 1000.0),),
    "Sm": (_m45("Sm", 1080.0, 1106.0),),
    "Gd": (_m45("Gd", 1185.0, 1217.0),),
    "Dy": (_m45("Dy", 1295.0, 1332.0),),
    "Pt": (_m45("Pt", 2122.0, 2202.0),),
    "Au": (_m45("Au", 2206.0, 2291.0),),
}

# name -> ((element, stoichiometric weight, chemical state), ...). The state
# selects the near-edge structure of the element's edges.
_EELS_MATERIALS: dict[str, tuple[tuple[str, float, str], ...]] = {
    "amorphous C": (("C", 1, "amorphous"),),
    "graphite": (("C", 1, "graphitic"),),
    "diamond": (("C", 1, "diamond"),),
    "PMMA": (("C", 5, "polymer"), ("O", 2, "organic")),
    "BN": (("B", 1, "BN"), ("N", 1, "BN")),
    "B4C": (("B", 4, "boride"), ("C", 1, "carbide")),
    "SiC": (("Si", 1, "carbide"), ("C", 1, "carbide")),
    "Si": (("Si", 1, "element"),),
    "SiO2": (("Si", 1, "oxide"), ("O", 2, "oxide")),
    "Si3N4": (("Si", 3, "nitride"), ("N", 4, "nitride")),
    "Al2O3": (("Al", 2, "oxide"), ("O", 3, "oxide")),
    "AlN": (("Al", 1, "nitride"), ("N", 1, "nitride")),
    "MgO": (("Mg", 1, "oxide"), ("O", 1, "oxide")),
    "MgF2": (("Mg", 1, "fluoride"), ("F", 2, "fluoride")),
    "NaCl": (("Na", 1, "halide"), ("Cl", 1, "halide")),
    "NaF": (("Na", 1, "halide"), ("F", 1, "fluoride")),
    "CaF2": (("Ca", 1, "2+"), ("F", 2, "fluoride")),
    "CaCO3": (("Ca", 1, "2+"), ("C", 1, "carbonate"), ("O", 3, "carbonate")),
    "hydroxyapatite": (("Ca", 5, "2+"), ("P", 3, "phosphate"), ("O", 13, "oxide")),
    "ice": (("O", 1, "water"),),
    "MoS2": (("Mo", 1, "sulfide"), ("S", 2, "sulfide")),
    "ZnS": (("Zn", 1, "2+"), ("S", 1, "sulfide")),
    "GaN": (("Ga", 1, "nitride"), ("N", 1, "nitride")),
    "GeO2": (("Ge", 1, "oxide"), ("O", 2, "oxide")),
    "TiO2": (("Ti", 1, "4+"), ("O", 2, "tm_oxide")),
    "TiN": (("Ti", 1, "3+"), ("N", 1, "tm_nitride")),
    "SrTiO3": (("Sr", 1, "2+"), ("Ti", 1, "4+"), ("O", 3, "tm_oxide")),
    "BaTiO3": (("Ba", 1, "2+"), ("Ti", 1, "4+"), ("O", 3, "tm_oxide")),
    "VO2": (("V", 1, "4+"), ("O", 2, "tm_oxide")),
    "V2O5": (("V", 2, "5+"), ("O", 5, "tm_oxide")),
    "Cr": (("Cr", 1, "metal"),),
    "Cr2O3": (("Cr", 2, "3+"), ("O", 3, "tm_oxide")),
    "MnO": (("Mn", 1, "2+"), ("O", 1, "tm_oxide")),
    "MnO2": (("Mn", 1, "4+"), ("O", 2, "tm_oxide")),
    "Fe": (("Fe", 1, "metal"),),
    "FeO": (("Fe", 1, "2+"), ("O", 1, "tm_oxide")),
    "Fe2O3": (("Fe", 2, "3+"), ("O", 3, "tm_oxide")),
    "Fe3O4": (("Fe", 3, "mixed"), ("O", 4, "tm_oxide")),
    "Co": (("Co", 1, "metal"),),
    "CoO": (("Co", 1, "2+"), ("O", 1, "tm_oxide")),
    "Ni": (("Ni", 1, "metal"),),
    "NiO": (("Ni", 1, "2+"), ("O", 1, "tm_oxide")),
    "Cu": (("Cu", 1, "metal"),),
    "Cu2O": (("Cu", 2, "1+"), ("O", 1, "tm_oxide")),
    "CuO": (("Cu", 1, "2+"), ("O", 1, "tm_oxide")),
    "ZnO": (("Zn", 1, "2+"), ("O", 1, "oxide")),
    "LaMnO3": (("La", 1, "3+"), ("Mn", 1, "3+"), ("O", 3, "tm_oxide")),
    "CeO2": (("Ce", 1, "4+"), ("O", 2, "tm_oxide")),
    "Ce2O3": (("Ce", 2, "3+"), ("O", 3, "tm_oxide")),
    "Nd2Fe14B": (("Nd", 2, "3+"), ("Fe", 14, "metal"), ("B", 1, "boride")),
    "SmCo5": (("Sm", 1, "3+"), ("Co", 5, "metal")),
    "Gd2O3": (("Gd", 2, "3+"), ("O", 3, "tm_oxide")),
    "Dy2O3": (("Dy", 2, "3+"), ("O", 3, "tm_oxide")),
    "ZrO2": (("Zr", 1, "4+"), ("O", 2, "tm_oxide")),
    "Nb": (("Nb", 1, "metal"),),
    "Ru": (("Ru", 1, "metal"),),
    "Pd": (("Pd", 1, "metal"),),
    "Ag": (("Ag", 1, "metal"),),
    "In2O3": (("In", 2, "oxide"), ("O", 3, "oxide")),
    "SnO2": (("Sn", 1, "oxide"), ("O", 2, "oxide")),
    "Pt": (("Pt", 1, "metal"),),
    "Au": (("Au", 1, "metal"),),
}

# Light-element K and L2,3 near-edge peaks: (energy above the database onset
# in eV, FWHM in eV, height relative to the continuum 50 eV above onset).
_LIGHT_PEAKS: dict[tuple[str, str], tuple[tuple[float, float, float], ...]] = {
    ("C K", "amorphous"): ((1.2, 1.8, 0.6), (8.0, 9.0, 0.45)),
    ("C K", "graphitic"): ((1.5, 1.2, 1.3), (7.8, 2.5, 1.0), (13.0, 6.0, 0.5)),
    ("C K", "diamond"): ((5.2, 1.0, 0.6), (8.5, 4.0, 1.2), (13.0, 5.0, 0.6)),
    ("C K", "polymer"): ((1.0, 1.2, 0.8), (4.4, 1.2, 0.6), (9.0, 8.0, 0.5)),
    ("C K", "carbonate"): ((6.3, 1.0, 2.0), (17.0, 6.0, 0.7)),
    ("C K", "carbide"): ((1.5, 2.5, 0.3), (6.0, 6.0, 0.6)),
    ("B K", "BN"): ((4.0, 1.0, 2.5), (11.0, 4.0, 1.0)),
    ("B K", "boride"): ((4.5, 3.0, 0.6), (10.0, 8.0, 0.5)),
    ("N K", "BN"): ((0.5, 1.5, 1.3), (7.0, 5.0, 0.9)),
    ("N K", "nitride"): ((1.0, 2.5, 0.5), (9.0, 8.0, 0.5)),
    ("N K", "tm_nitride"): ((-2.5, 2.0, 0.7), (3.0, 5.0, 0.5)),
    ("O K", "tm_oxide"): ((-1.5, 2.0, 0.9), (1.5, 2.5, 0.5), (9.0, 8.0, 0.6)),
    ("O K", "oxide"): ((6.0, 5.0, 0.8), (14.0, 10.0, 0.4)),
    ("O K", "organic"): ((0.5, 1.5, 0.7), (8.0, 8.0, 0.5)),
    ("O K", "carbonate"): ((2.0, 1.5, 1.2), (9.0, 8.0, 0.6)),
    ("O K", "water"): ((3.5, 2.0, 0.3), (5.5, 3.0, 0.5), (9.0, 6.0, 0.6)),
    ("F K", "fluoride"): ((5.0, 2.5, 0.8), (12.0, 6.0, 0.5)),
    ("Si L2,3", "element"): ((0.8, 1.5, 0.3),),
    ("Si L2,3", "oxide"): ((6.8, 1.5, 0.8), (9.0, 1.5, 0.8), (16.0, 8.0, 0.7)),
    ("Si L2,3", "nitride"): ((4.3, 2.0, 0.6), (11.0, 8.0, 0.5)),
    ("Si L2,3", "carbide"): ((3.8, 3.0, 0.4), (10.0, 8.0, 0.4)),
    ("Al L2,3", "oxide"): ((5.5, 1.5, 0.8), (7.0, 2.0, 0.6), (26.0, 10.0, 0.6)),
    ("Al L2,3", "nitride"): ((4.0, 2.0, 0.5), (12.0, 8.0, 0.4)),
}
# Any other K or light L2,3 edge: a first peak and a broad resonance.
_DEFAULT_LIGHT_PEAKS = ((3.0, 3.0, 0.6), (15.0, 10.0, 0.4))

# 3d (and Ca) L2,3 edges: spin-orbit splitting L2 - L3 (database onsets).
_SPIN_ORBIT_EV = {
    "Ca": 4.0,
    "Ti": 6.0,
    "V": 8.0,
    "Cr": 9.0,
    "Mn": 11.0,
    "Fe": 13.0,
    "Co": 15.0,
    "Ni": 17.0,
    "Cu": 20.0,
    "Zn": 23.0,
}
# L3 white-line position above the database onset by oxidation state.
_CHEMICAL_SHIFT_EV = {
    "metal": 0.5,
    "1+": 1.0,
    "2+": 1.5,
    "mixed": 2.0,
    "3+": 2.5,
    "4+": 3.0,
    "5+": 3.5,
}
# (element, state) -> (L3 height, L3:L2 area ratio, L3 FWHM eV, crystal-field
# splitting eV). d0 ions (Ca2+, Ti4+, V5+) have L3:L2 near 1 and split
# t2g/eg doublets; late metals approach or exceed the statistical 2:1; d10
# (Cu metal, Cu+, Zn2+) have (almost) no white lines.
_WHITE_LINES: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("Ca", "2+"): (2.0, 1.0, 0.8, 1.3),
    ("Ti", "4+"): (2.0, 0.9, 1.2, 2.2),
    ("Ti", "3+"): (1.6, 1.2, 2.0, 0.0),
    ("V", "4+"): (2.5, 1.2, 2.0, 1.5),
    ("V", "5+"): (2.5, 1.0, 1.6, 2.0),
    ("Cr", "metal"): (1.5, 1.6, 2.5, 0.0),
    ("Cr", "3+"): (3.0, 1.8, 2.0, 1.8),
    ("Mn", "2+"): (4.5, 4.5, 1.8, 1.8),
    ("Mn", "3+"): (4.0, 2.8, 2.4, 1.5),
    ("Mn", "4+"): (3.5, 2.0, 2.5, 2.0),
    ("Fe", "metal"): (2.2, 3.3, 2.8, 0.0),
    ("Fe", "2+"): (3.5, 4.5, 2.5, 0.0),
    ("Fe", "3+"): (4.0, 5.2, 2.2, 1.5),
    ("Fe", "mixed"): (3.8, 4.8, 2.6, 1.2),
    ("Co", "metal"): (2.5, 3.0, 2.8, 0.0),
    ("Co", "2+"): (4.5, 4.6, 2.2, 0.0),
    ("Ni", "metal"): (2.2, 2.7, 2.5, 0.0),
    ("Ni", "2+"): (4.5, 3.5, 1.8, 1.8),
    ("Cu", "metal"): (0.3, 2.0, 3.0, 0.0),
    ("Cu", "1+"): (0.6, 2.0, 2.5, 0.0),
    ("Cu", "2+"): (5.0, 2.5, 1.6, 0.0),
    ("Zn", "2+"): (0.2, 2.0, 4.0, 0.0),
}
# M4,5 white lines of Ba and the lanthanides: (M5 height, M5:M4 area ratio,
# M5 FWHM eV); the ratio grows along the series as the 4f shell fills.
_M45_WHITE_LINES: dict[str, tuple[float, float, float]] = {
    "Ba": (6.0, 0.8, 2.0),
    "La": (8.0, 0.85, 1.8),
    "Ce": (8.0, 1.0, 2.2),
    "Nd": (9.0, 1.2, 2.4),
    "Sm": (9.0, 1.35, 2.6),
    "Gd": (10.0, 1.4, 2.6),
    "Dy": (10.0, 1.6, 2.8),
}
# Onset width of the parametric M4,5 continuum: 4d/5d delayed maxima versus
# the prompt (weak) continuum under the lanthanide white lines.
_M45_DELAY_EV = {"lanthanide": 8.0, "delayed": 40.0}
_M45_DECAY_EXPONENT = 3.0
# Continuum of the hydrogenic L3 edges of Ca to As 50 eV above onset, per
# atom, fitted here as a power law of the onset energy (exspy 100 kV, 30 and
# 40 mrad): about 1.73e7 * onset**-2. The parametric M4,5 continuum takes the
# same value at the same distance above its onset.
_M45_REFERENCE_PREFACTOR = 1.73e7
_M45_REFERENCE_EXPONENT = 2.0


@dataclass(frozen=True)
class _DrawnEdge:
    spec: _EdgeSpec
    atoms: float
    peaks: tuple[_NearEdgePeak, ...]
    delay: float = 0.0


@dataclass(frozen=True)
class _DrawnMaterial:
    name: str
    edges: tuple[_DrawnEdge, ...]
    background_exponent: float
    edge_to_background: float
    relative_intensity: float


@functools.cache
def _edge_component(subshell: str, onset: float):
    """Hydrogenic edge component, shifted to ``onset``; cached, only evaluated."""
    edge = _hydrogenic_edge(subshell, 1.0)
    if abs(edge.onset_energy.value - onset) > 1e-9:
        edge.onset_energy.value = onset
    return edge


def _m45_continuum(
    energy: np.ndarray, m5: float, m4: float, delay: float
) -> np.ndarray:
    """Parametric delayed M4,5 continuum per atom.

    Each of M5 (weight 3/5, the 2j + 1 = 6 electrons of 3d5/2) and M4 (2/5)
    is ``x**2 / (1 + x**2) * (E / E_onset)**-3`` above its onset, with
    ``x = (E - E_onset) / delay``: a smooth onset that reaches half height
    ``delay`` eV above the onset (the delayed maximum of 4d and 5d metals for
    ``delay`` of 40 eV) and then decays like a hydrogenic continuum. It is
    scaled to ``1.73e7 * m5**-2`` 50 eV above the M5 onset, the value of the
    hydrogenic L3 edges at the same energy.
    """

    def shape(values: np.ndarray) -> np.ndarray:
        result = np.zeros_like(values, dtype=float)
        for onset, weight in ((m5, 0.6), (m4, 0.4)):
            above = values > onset
            x = (values[above] - onset) / delay
            result[above] += (
                weight
                * x**2
                / (1 + x**2)
                * (values[above] / onset) ** -_M45_DECAY_EXPONENT
            )
        return result

    reference = np.array([m5 + _CONTINUUM_REFERENCE_OFFSET_EV])
    target = _M45_REFERENCE_PREFACTOR * m5**-_M45_REFERENCE_EXPONENT
    return shape(np.asarray(energy, dtype=float)) * (target / shape(reference)[0])


def _edge_continuum(edge: _DrawnEdge, energy: np.ndarray) -> np.ndarray:
    spec = edge.spec
    if spec.kind == "M45":
        assert spec.second_onset is not None
        return _m45_continuum(energy, spec.onset, spec.second_onset, edge.delay)
    assert spec.gos is not None
    return _edge_component(spec.gos, spec.onset).function(energy)


def _jitter(rng: np.random.Generator) -> tuple[float, float, float]:
    """Random (energy shift eV, height factor, width factor) of a peak set."""
    return (
        float(rng.normal(0.0, 0.15)),
        float(np.exp(rng.uniform(math.log(0.8), math.log(1.25)))),
        float(rng.uniform(0.85, 1.15)),
    )


def _split_peak(
    energy: float, fwhm: float, height: float, splitting: float
) -> list[_NearEdgePeak]:
    if splitting <= 0:
        return [_NearEdgePeak(energy, fwhm, height)]
    # t2g (lower, 40 % of the area) and eg (upper, 60 %) doublet.
    return [
        _NearEdgePeak(energy - splitting / 2, fwhm, 0.4 * height * 2),
        _NearEdgePeak(energy + splitting / 2, fwhm, 0.6 * height * 2),
    ]


def _near_edge_peaks(
    rng: np.random.Generator, element: str, spec: _EdgeSpec, state: str
) -> tuple[tuple[_NearEdgePeak, ...], float]:
    """Near-edge peaks of an edge and the M4,5 onset width (0 for K, L)."""
    shift, height_factor, width_factor = _jitter(rng)
    if spec.kind == "M45":
        if element in _M45_WHITE_LINES:
            height, ratio, fwhm = _M45_WHITE_LINES[element]
            assert spec.second_onset is not None
            m5 = spec.onset + 1.5 + shift
            m4 = m5 + (spec.second_onset - spec.onset)
            fwhm *= width_factor
            m4_fwhm = 1.2 * fwhm
            height *= height_factor
            peaks = [
                _NearEdgePeak(m5, fwhm, height),
                _NearEdgePeak(m4, m4_fwhm, height * fwhm / (ratio * m4_fwhm)),
            ]
            if state == "4+":  # Ce4+ final-state satellites
                peaks.append(_NearEdgePeak(m5 + 5.0, 2.5, 0.3 * height))
            delay = _M45_DELAY_EV["lanthanide"] * rng.uniform(0.8, 1.2)
            return tuple(peaks), float(delay)
        delay = _M45_DELAY_EV["delayed"] * rng.uniform(0.7, 1.3)
        return (), float(delay)
    if spec.kind == "L23" and element in _SPIN_ORBIT_EV:
        key = (element, state)
        if key not in _WHITE_LINES:
            return (), 0.0
        height, ratio, fwhm, splitting = _WHITE_LINES[key]
        l3 = spec.onset + _CHEMICAL_SHIFT_EV.get(state, 1.0) + shift
        l2 = l3 + _SPIN_ORBIT_EV[element]
        fwhm *= width_factor
        l2_fwhm = 1.3 * fwhm  # Coster-Kronig broadening of L2
        height *= height_factor
        l2_height = height * fwhm / (ratio * l2_fwhm)
        peaks = _split_peak(l3, fwhm, height, splitting)
        peaks += _split_peak(l2, l2_fwhm, l2_height, splitting)
        if key == ("Mn", "2+"):  # multiplet shoulder of the L3 line
            peaks.append(_NearEdgePeak(l3 + 1.6, 1.5 * fwhm, 0.4 * height))
        return tuple(peaks), 0.0
    if spec.kind == "L23" and element in ("Ga", "Ge"):
        return (), 0.0  # d10: delayed edges without white lines
    table = _LIGHT_PEAKS.get((spec.label, state), _DEFAULT_LIGHT_PEAKS)
    peaks = tuple(
        _NearEdgePeak(
            spec.onset + offset + shift,
            fwhm * width_factor,
            height * height_factor,
        )
        for offset, fwhm, height in table
    )
    return peaks, 0.0


@functools.cache
def _material_edges(name: str) -> tuple[tuple[str, float, str, _EdgeSpec], ...]:
    return tuple(
        (element, atoms, state, spec)
        for element, atoms, state in _EELS_MATERIALS[name]
        for spec in _ELEMENT_EDGES[element]
    )


def _edge_in_window(onset: float, start: float, stop: float) -> bool:
    width = stop - start
    return start + min(0.05 * width, 20.0) <= onset <= stop - min(0.15 * width, 60.0)


def _material_spectrum_fine(
    material: _DrawnMaterial, energy: np.ndarray, window_stop: float
) -> np.ndarray:
    """Unconvolved spectrum on ``energy``: background 1 at the reference."""
    contributing = [e for e in material.edges if e.spec.onset <= window_stop]
    if contributing:
        reference = (
            min(e.spec.onset for e in contributing) + _CONTINUUM_REFERENCE_OFFSET_EV
        )
    else:
        reference = float(energy.mean())
    background = (energy / reference) ** -material.background_exponent
    if not contributing:
        return background
    core_loss = np.zeros_like(energy)
    continuum_at_reference = 0.0
    reference_energy = np.array([reference])
    for edge in contributing:
        continuum = edge.atoms * _edge_continuum(edge, energy)
        if edge.peaks:
            step = edge.atoms * float(
                _edge_continuum(
                    edge,
                    np.array([edge.spec.onset + _CONTINUUM_REFERENCE_OFFSET_EV]),
                )[0]
            )
            for peak in edge.peaks:
                continuum = continuum + step * peak.height * _lorentzian(
                    energy, peak.energy, peak.fwhm
                )
        core_loss += continuum
        continuum_at_reference += edge.atoms * float(
            _edge_continuum(edge, reference_energy)[0]
        )
    if continuum_at_reference > 0:
        core_loss *= material.edge_to_background / continuum_at_reference
    return background + core_loss


def _eels_shapes(
    materials: tuple[_DrawnMaterial, ...],
    offset: float,
    scale: float,
    n_channels: int,
    resolution: float,
) -> np.ndarray:
    """Channel-averaged, resolution-convolved spectra, each summing to one."""
    oversampling = max(1, math.ceil(scale / _EELS_FINE_STEP_EV - 1e-9))
    step = scale / oversampling
    sigma = resolution * _FWHM_TO_SIGMA / step
    padding = math.ceil(4 * sigma) + 2
    index = np.arange(-padding, n_channels * oversampling + padding)
    energy = offset - scale / 2 + step * (index + 0.5)
    stop = offset + scale * (n_channels - 1)
    shapes = np.empty((len(materials), n_channels))
    for row, material in enumerate(materials):
        spectrum = _material_spectrum_fine(material, energy, stop)
        spectrum = ndimage.gaussian_filter1d(spectrum, sigma, mode="nearest")
        spectrum = spectrum[padding : padding + n_channels * oversampling]
        spectrum = spectrum.reshape(n_channels, oversampling).mean(axis=1)
        shapes[row] = spectrum / spectrum.sum()
    return shapes


def _material_detail(material: _DrawnMaterial, start: float, stop: float) -> str:
    edges = [
        e.spec.label
        for e in material.edges
        if _edge_in_window(e.spec.onset, start, stop)
    ]
    edge_text = " + ".join(edges) if edges else "no edge in window"
    return (
        f"{material.name}: {edge_text}; r={material.background_exponent:.2f}; "
        f"edge/background={material.edge_to_background:.2f}; "
        f"intensity={material.relative_intensity:.2f}"
    )


def _draw_eels_materials(
    rng: np.random.Generator,
    names: list[str],
    base_exponent: float,
) -> tuple[_DrawnMaterial, ...]:
    materials = []
    for name in names:
        edges = []
        for element, atoms, state, spec in _material_edges(name):
            peaks, delay = _near_edge_peaks(rng, element, spec, state)
            edges.append(_DrawnEdge(spec, float(atoms), peaks, delay))
        exponent = float(np.clip(base_exponent + rng.normal(0.0, 0.15), 2.0, 4.0))
        ratio = float(np.exp(rng.uniform(math.log(0.05), math.log(0.6))))
        relative = float(np.exp(rng.uniform(math.log(0.6), math.log(1.6))))
        materials.append(_DrawnMaterial(name, tuple(edges), exponent, ratio, relative))
    return tuple(materials)


@dataclass(frozen=True)
class _Spectra:
    """Endmembers and signal axis drawn for a scene."""

    endmembers: np.ndarray
    names: tuple[str, ...]
    details: tuple[str, ...]
    axis_name: str
    axis_units: str
    axis_offset: float
    axis_scale: float
    resolution: float | None


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(math.log(low), math.log(high))))


@functools.cache
def _all_edges() -> tuple[float, ...]:
    onsets = {
        spec.onset
        for name in _EELS_MATERIALS
        for _, _, _, spec in _material_edges(name)
        if _EELS_WINDOW_LIMITS_EV[0] + 10 < spec.onset < 2700.0
    }
    return tuple(sorted(onsets))


def _draw_eels(
    rng: np.random.Generator, n: int, n_channels: int, dose: float
) -> _Spectra:
    resolution = float(rng.uniform(*_EELS_RESOLUTION_RANGE))
    base_exponent = float(rng.uniform(2.2, 3.8))
    low_dispersion = max(_EELS_DISPERSION_RANGE[0], _EELS_MIN_WIDTH_EV / n_channels)
    high_dispersion = min(
        _EELS_DISPERSION_RANGE[1],
        (_EELS_WINDOW_LIMITS_EV[1] - _EELS_WINDOW_LIMITS_EV[0]) / n_channels,
    )
    low_dispersion = min(low_dispersion, high_dispersion)
    anchors = _all_edges()
    library = tuple(_EELS_MATERIALS)
    for _ in range(_MAX_ATTEMPTS):
        dispersion = round(_log_uniform(rng, low_dispersion, high_dispersion), 4)
        width = dispersion * (n_channels - 1)
        anchor = anchors[int(rng.integers(len(anchors)))]
        offset = anchor - rng.uniform(0.1, 0.7) * width
        offset = float(
            np.clip(
                offset,
                _EELS_WINDOW_LIMITS_EV[0],
                _EELS_WINDOW_LIMITS_EV[1] - width,
            )
        )
        offset = round(offset, 1)
        stop = offset + width
        with_edge = [
            name
            for name in library
            if any(
                _edge_in_window(spec.onset, offset, stop)
                for *_, spec in _material_edges(name)
            )
        ]
        without_edge = [name for name in library if name not in with_edge]
        n_bare = int(rng.random() < 0.25)
        if len(with_edge) < n - n_bare:
            n_bare = 1
        if len(with_edge) < n - n_bare or (n_bare and not without_edge):
            continue
        for _ in range(10):
            chosen = list(rng.choice(len(with_edge), n - n_bare, replace=False))
            names = [with_edge[i] for i in chosen]
            if n_bare:
                names.append(without_edge[int(rng.integers(len(without_edge)))])
            names = [names[i] for i in rng.permutation(n)]
            materials = _draw_eels_materials(rng, names, base_exponent)
            shapes = _eels_shapes(materials, offset, dispersion, n_channels, resolution)
            if _min_spectral_angle(shapes) >= _MIN_SPECTRAL_ANGLE:
                relative = np.array([m.relative_intensity for m in materials])
                relative /= relative.mean()
                endmembers = shapes * (relative[:, None] * dose * n_channels)
                return _Spectra(
                    endmembers=endmembers,
                    names=tuple(names),
                    details=tuple(_material_detail(m, offset, stop) for m in materials),
                    axis_name="Energy loss",
                    axis_units="eV",
                    axis_offset=offset,
                    axis_scale=dispersion,
                    resolution=resolution,
                )
    raise RuntimeError(  # pragma: no cover - the library makes this unreachable
        f"Could not draw {n} distinct EELS endmembers over {n_channels} channels."
    )


# --------------------------------------------------------------------------
# Raman library
# --------------------------------------------------------------------------

# (position cm-1, Lorentzian FWHM cm-1, relative height), literature band
# positions (e.g. Lin-Vien et al., The Handbook of Infrared and Raman
# Characteristic Frequencies of Organic Molecules, 1991; RRUFF database for
# the minerals; Ferrari & Robertson 2000 for disordered carbon).
_EXTRA_RAMAN_BANDS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "polystyrene": (
        (621.0, 8.0, 0.08),
        (795.0, 8.0, 0.06),
        (1001.0, 6.0, 1.0),
        (1031.0, 7.0, 0.25),
        (1155.0, 8.0, 0.06),
        (1583.0, 8.0, 0.10),
        (1602.0, 8.0, 0.30),
        (2852.0, 15.0, 0.10),
        (2904.0, 20.0, 0.25),
        (3054.0, 15.0, 0.60),
    ),
    "PMMA": (
        (600.0, 12.0, 0.20),
        (812.0, 12.0, 0.50),
        (987.0, 14.0, 0.20),
        (1450.0, 18.0, 0.40),
        (1728.0, 14.0, 0.30),
        (2845.0, 20.0, 0.20),
        (2952.0, 18.0, 1.0),
        (3000.0, 20.0, 0.30),
    ),
    "calcite": (
        (156.0, 8.0, 0.25),
        (282.0, 10.0, 0.40),
        (712.0, 4.0, 0.12),
        (1086.0, 3.0, 1.0),
        (1436.0, 10.0, 0.05),
        (1749.0, 6.0, 0.04),
    ),
    "aragonite": (
        (153.0, 6.0, 0.30),
        (207.0, 8.0, 0.35),
        (705.0, 4.0, 0.10),
        (1085.0, 3.0, 1.0),
        (1462.0, 10.0, 0.05),
    ),
    "anatase": (
        (144.0, 8.0, 1.0),
        (197.0, 8.0, 0.08),
        (399.0, 20.0, 0.20),
        (516.0, 20.0, 0.20),
        (639.0, 25.0, 0.25),
    ),
    "rutile": (
        (143.0, 10.0, 0.08),
        (235.0, 60.0, 0.25),
        (447.0, 30.0, 0.80),
        (612.0, 35.0, 1.0),
    ),
    "silicon": ((300.0, 30.0, 0.05), (520.7, 4.0, 1.0), (960.0, 40.0, 0.06)),
    "diamond": ((1332.0, 3.0, 1.0),),
    "graphite": ((1350.0, 40.0, 0.50), (1582.0, 20.0, 1.0), (2700.0, 60.0, 0.60)),
    "paracetamol": (
        (465.0, 8.0, 0.30),
        (651.0, 8.0, 0.40),
        (797.0, 8.0, 0.50),
        (857.0, 8.0, 1.0),
        (1168.0, 8.0, 0.60),
        (1236.0, 10.0, 0.50),
        (1324.0, 8.0, 0.60),
        (1371.0, 10.0, 0.30),
        (1561.0, 10.0, 0.40),
        (1610.0, 8.0, 0.80),
        (1648.0, 10.0, 0.50),
        (3064.0, 15.0, 0.30),
    ),
    "ibuprofen": (
        (746.0, 8.0, 0.20),
        (834.0, 8.0, 0.30),
        (1006.0, 8.0, 0.30),
        (1183.0, 10.0, 0.40),
        (1206.0, 10.0, 0.30),
        (1608.0, 10.0, 0.90),
        (2870.0, 15.0, 0.60),
        (2938.0, 15.0, 1.0),
    ),
    "lactose": (
        (356.0, 10.0, 0.60),
        (477.0, 10.0, 0.50),
        (852.0, 10.0, 0.40),
        (877.0, 10.0, 0.30),
        (1085.0, 12.0, 0.50),
        (1121.0, 12.0, 0.40),
        (2890.0, 20.0, 0.60),
        (2980.0, 20.0, 1.0),
    ),
    "cellulose": (
        (380.0, 12.0, 0.50),
        (437.0, 12.0, 0.30),
        (1095.0, 15.0, 1.0),
        (1120.0, 15.0, 0.80),
        (1380.0, 20.0, 0.30),
        (1475.0, 20.0, 0.30),
        (2895.0, 30.0, 0.90),
    ),
    "sulfur": (
        (153.0, 6.0, 0.60),
        (219.0, 6.0, 1.0),
        (248.0, 6.0, 0.20),
        (437.0, 8.0, 0.15),
        (473.0, 6.0, 0.80),
    ),
    "quartz": (
        (128.0, 8.0, 0.30),
        (206.0, 12.0, 0.40),
        (464.0, 8.0, 1.0),
        (808.0, 12.0, 0.05),
        (1081.0, 12.0, 0.05),
        (1160.0, 12.0, 0.05),
    ),
    "polyethylene": (
        (1063.0, 10.0, 0.50),
        (1130.0, 10.0, 0.50),
        (1295.0, 10.0, 0.60),
        (1440.0, 15.0, 0.60),
        (2848.0, 14.0, 1.0),
        (2882.0, 14.0, 0.90),
    ),
    "gypsum": (
        (414.0, 10.0, 0.20),
        (494.0, 10.0, 0.15),
        (1008.0, 6.0, 1.0),
        (1135.0, 8.0, 0.10),
        (3406.0, 25.0, 0.20),
        (3494.0, 25.0, 0.20),
    ),
    "hematite": (
        (225.0, 8.0, 0.70),
        (245.0, 8.0, 0.20),
        (291.0, 10.0, 1.0),
        (411.0, 14.0, 0.40),
        (497.0, 20.0, 0.10),
        (612.0, 20.0, 0.15),
        (1320.0, 60.0, 0.50),
    ),
}
_RAMAN_LIBRARY: dict[str, tuple[tuple[float, float, float], ...]] = {
    **_RAMAN_BANDS,
    **_EXTRA_RAMAN_BANDS,
}
_RAMAN_MIN_BAND_FRACTION = 0.15


def _pseudo_voigt_bands(
    bands: tuple[tuple[float, float, float], ...],
    offset: float,
    scale: float,
    n_channels: int,
    gaussian_fwhm: float,
) -> np.ndarray:
    """Sum of pseudo-Voigt bands averaged over each channel.

    Each band keeps the area of its Lorentzian (height times its FWHM); the
    Voigt FWHM and mixing parameter follow Thompson, Cox and Hastings (J.
    Appl. Cryst. 20, 79, 1987).
    """
    centres = offset + scale * np.arange(n_channels)
    lower, upper = centres - scale / 2, centres + scale / 2
    spectrum = np.zeros(n_channels)
    g = gaussian_fwhm
    for position, lorentz, height in bands:
        fwhm = (
            g**5
            + 2.69269 * g**4 * lorentz
            + 2.42843 * g**3 * lorentz**2
            + 4.47163 * g**2 * lorentz**3
            + 0.07842 * g * lorentz**4
            + lorentz**5
        ) ** 0.2
        ratio = lorentz / fwhm
        eta = 1.36603 * ratio - 0.47719 * ratio**2 + 0.11116 * ratio**3
        area = height * math.pi * lorentz / 2
        half = fwhm / 2
        lorentz_mean = (
            np.arctan((upper - position) / half) - np.arctan((lower - position) / half)
        ) / math.pi
        sigma = fwhm * _FWHM_TO_SIGMA
        gauss_mean = 0.5 * (
            special.erf((upper - position) / (math.sqrt(2) * sigma))
            - special.erf((lower - position) / (math.sqrt(2) * sigma))
        )
        spectrum += area * (eta * lorentz_mean + (1 - eta) * gauss_mean) / scale
    return spectrum


def _raman_eligible(start: float, stop: float) -> list[str]:
    margin = 0.02 * (stop - start)
    names = []
    for name, bands in _RAMAN_LIBRARY.items():
        strongest = max(height for _, _, height in bands)
        if any(
            start + margin <= position <= stop - margin
            and height >= _RAMAN_MIN_BAND_FRACTION * strongest
            for position, _, height in bands
        ):
            names.append(name)
    return names


def _draw_raman(rng: np.random.Generator, n: int, n_channels: int) -> _Spectra:
    resolution = float(rng.uniform(*_RAMAN_RESOLUTION_RANGE))
    for _ in range(_MAX_ATTEMPTS):
        width = _log_uniform(rng, *_RAMAN_WIDTH_RANGE)
        start = round(float(rng.uniform(_RAMAN_LIMITS[0], _RAMAN_LIMITS[1] - width)), 1)
        scale = width / (n_channels - 1)
        stop = start + width
        eligible = _raman_eligible(start, stop)
        if len(eligible) < n:
            continue
        for _ in range(10):
            names = [eligible[i] for i in rng.choice(len(eligible), n, replace=False)]
            strengths = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
            shapes = np.stack(
                [
                    _pseudo_voigt_bands(
                        _RAMAN_LIBRARY[name], start, scale, n_channels, resolution
                    )
                    for name in names
                ]
            )
            shapes /= shapes.max(axis=1, keepdims=True)
            if _min_spectral_angle(shapes) >= _MIN_SPECTRAL_ANGLE:
                details = []
                for name, strength in zip(names, strengths, strict=True):
                    inside = sum(
                        start <= position <= stop
                        for position, _, _ in _RAMAN_LIBRARY[name]
                    )
                    details.append(
                        f"{name}: {inside} bands in window; strength={strength:.2f}"
                    )
                return _Spectra(
                    endmembers=shapes * strengths[:, None],
                    names=tuple(names),
                    details=tuple(details),
                    axis_name="Raman shift",
                    axis_units="cm⁻¹",
                    axis_offset=start,
                    axis_scale=scale,
                    resolution=resolution,
                )
    raise RuntimeError(  # pragma: no cover - the library makes this unreachable
        f"Could not draw {n} distinct Raman endmembers over {n_channels} channels."
    )


# --------------------------------------------------------------------------
# Generic smooth spectra
# --------------------------------------------------------------------------


def _draw_generic(
    rng: np.random.Generator, n: int, n_channels: int, dose: float | None
) -> _Spectra:
    t = np.linspace(0.0, 1.0, n_channels)
    for _ in range(_MAX_ATTEMPTS):
        shapes = np.empty((n, n_channels))
        details = []
        for row in range(n):
            slope, curvature = rng.normal(0.0, 0.8, 2)
            level = rng.uniform(0.2, 1.0)
            continuum = level * np.exp(slope * (t - 0.5) + curvature * (t - 0.5) ** 2)
            n_bands = int(rng.integers(1, 5))
            centres = rng.uniform(0.05, 0.95, n_bands)
            widths = np.exp(rng.uniform(math.log(0.02), math.log(0.15), n_bands))
            heights = np.exp(rng.uniform(math.log(0.2), math.log(1.5), n_bands))
            bands = heights[:, None] * np.exp(
                -0.5 * ((t[None, :] - centres[:, None]) / widths[:, None]) ** 2
            )
            spectrum = continuum + bands.sum(axis=0)
            shapes[row] = spectrum / spectrum.max()
            details.append(
                f"smooth {chr(65 + row)}: {n_bands} Gaussian band(s) on a "
                f"continuum of level {level:.2f}"
            )
        if _min_spectral_angle(shapes) < _MIN_SPECTRAL_ANGLE:
            continue
        if dose is not None:
            relative = np.exp(rng.uniform(math.log(0.6), math.log(1.6), n))
            relative /= relative.mean()
            shapes = shapes / shapes.sum(axis=1, keepdims=True)
            endmembers = shapes * (relative[:, None] * dose * n_channels)
        else:
            endmembers = (
                shapes * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))[:, None]
            )
        return _Spectra(
            endmembers=endmembers,
            names=tuple(f"smooth {chr(65 + row)}" for row in range(n)),
            details=tuple(details),
            axis_name="Spectral coordinate",
            axis_units="a.u.",
            axis_offset=0.0,
            axis_scale=1.0 / (n_channels - 1),
            resolution=None,
        )
    raise RuntimeError(  # pragma: no cover
        f"Could not draw {n} distinct generic endmembers."
    )


def _min_spectral_angle(spectra: np.ndarray) -> float:
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    cosines = np.clip(unit @ unit.T, -1.0, 1.0)
    upper = np.triu_indices(spectra.shape[0], 1)
    return float(np.arccos(cosines[upper]).min())


# --------------------------------------------------------------------------
# Abundances
# --------------------------------------------------------------------------


def _structure_scales(
    structure: str,
    pure: bool,
    shape: tuple[int, int],
    n: int,
    max_fraction: float,
    u_size: float,
    u_edge: float,
) -> tuple[float, float]:
    """``(feature_size, edge_width)`` in pixels from two uniform numbers."""
    ny, nx = shape
    if structure == "blocks":
        largest = int(np.clip(math.floor(math.sqrt(ny * nx / (2 * n))), 4, 16))
        block = 4 + math.floor(u_size * (largest - 3))
        block = min(block, largest)
        if pure:
            n_odd = (max(1, block - 3) + 1) // 2
            filter_size = 1 + 2 * min(math.floor(u_edge * n_odd), n_odd - 1)
        else:
            n_odd = block // 2 + 1
            filter_size = 3 + 2 * min(math.floor(u_edge * n_odd), n_odd - 1)
        return float(block), float(filter_size)
    if structure == "smooth":
        correlation = 3.0 + 7.0 * u_size
        width = 0.5 + 1.5 * u_edge if pure else 3.0 + 7.0 * u_edge
        return correlation, width
    if structure == "particles":
        largest = max(3.5, min(10.0, min(shape) / 6))
        radius = 3.5 + u_size * (largest - 3.5)
        width = 0.3 + 0.6 * u_edge if pure else 1.0 + 3.0 * u_edge
        return radius, width
    if structure == "layers":
        if pure:
            largest = min(14.0, min(shape) / n)
            thickness = min(largest, 4.0 + u_size * max(largest - 4.0, 0.0))
            width = min(0.3 + 0.7 * u_edge, 0.15 * thickness)
            return thickness, width
        # _layered_abundances: thin layers about as diffuse as they are thick.
        thickness = max(ny / (2 * n), 2.0)
        purity = min(max_fraction, 0.95)
        width = thickness / (2 * math.sqrt(2) * special.erfinv(purity))
        return thickness, width
    size = float(min(shape))
    return size, max(size / 64, 0.5)


def _blocks(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    block: int,
    filter_size: int,
    pure: bool,
) -> np.ndarray:
    abundances = _chequerboard_abundances(rng, shape, n, block, filter_size)
    for _ in range(20):
        if not _missing_endmembers(abundances, pure):
            break
        abundances = _chequerboard_abundances(rng, shape, n, block, filter_size)
    return abundances


def _smooth_fields(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    correlation: float,
    width: float,
) -> np.ndarray:
    fields = np.stack(
        [_smooth_random_field(rng, shape, correlation) for _ in range(n)], axis=-1
    )
    # A difference of two unit fields changes by about sqrt(2)/correlation
    # per pixel; the softmax goes from 10 % to 90 % over a log-ratio of 4.4.
    sharpness = 4.4 * correlation / (math.sqrt(2) * width)
    logits = sharpness * fields
    logits -= logits.max(axis=-1, keepdims=True)
    return _normalise_rows(np.exp(logits))


def _particles(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    radius: float,
    width: float,
) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    matrix = int(rng.integers(n))
    abundances = np.zeros((ny, nx, n))
    abundances[..., matrix] = 1.0
    others = [k for k in range(n) if k != matrix]
    per_phase = 0.45 * ny * nx / (math.pi * radius**2) / len(others)
    per_phase = int(np.clip(round(per_phase), 1, 6))
    phases = [k for k in others for _ in range(int(rng.integers(1, per_phase + 1)))]
    identity = np.eye(n)
    for position in rng.permutation(len(phases)):
        phase = phases[position]
        semi_axes = (
            radius * rng.uniform(0.8, 1.25),
            max(radius * rng.uniform(0.6, 1.0), 3.0),
        )
        centre = (rng.uniform(0, ny - 1), rng.uniform(0, nx - 1))
        distance = _ellipse_distance(
            rows, columns, centre, semi_axes, rng.uniform(0, np.pi)
        )
        weight = _soft_region(distance, width)[..., None]
        abundances = (1 - weight) * abundances + weight * identity[phase]
    return _normalise_rows(abundances)


def _interface_layers(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    thickness: float,
    width: float,
) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    angle = rng.uniform(0, np.pi)
    dy, dx = rows - (ny - 1) / 2, columns - (nx - 1) / 2
    across = np.cos(angle) * dx + np.sin(angle) * dy
    along = -np.sin(angle) * dx + np.cos(angle) * dy
    start, extent = across.min(), across.max() - across.min()
    n_layers = max(n, round(extent / thickness))
    thicknesses = rng.uniform(0.75, 1.25, n_layers)
    boundaries = start + np.cumsum(thicknesses * extent / thicknesses.sum())[:-1]
    labels: list[int] = []
    while len(labels) < n_layers:
        order = list(rng.permutation(n))
        if labels and order[0] == labels[-1]:
            order[0], order[-1] = order[-1], order[0]
        labels.extend(int(k) for k in order)
    labels = labels[:n_layers]
    # Rough interfaces: smooth displacement along each interface.
    positions = np.rint(along - along.min()).astype(int)
    roughness = ndimage.gaussian_filter1d(
        rng.standard_normal((max(n_layers - 1, 1), positions.max() + 1)),
        rng.uniform(3.0, 10.0),
        axis=1,
    )
    roughness /= np.maximum(roughness.std(axis=1, keepdims=True), 1e-12)
    amplitude = rng.uniform(0.0, 0.2) * thickness
    below = [
        0.5
        * (
            1
            + special.erf(
                (across - boundary - amplitude * roughness[i][positions])
                / (math.sqrt(2) * width)
            )
        )
        for i, boundary in enumerate(boundaries)
    ]
    abundances = np.zeros((ny, nx, n))
    for layer, label in enumerate(labels):
        upper = below[layer - 1] if layer > 0 else 1.0
        lower = below[layer] if layer < n_layers - 1 else 0.0
        abundances[..., label] += upper - lower
    return _normalise_rows(np.maximum(abundances, 0.0) + 1e-300)


def _missing_endmembers(abundances: np.ndarray, pure: bool) -> list[int]:
    """Endmembers without the region the scene promises."""
    n = abundances.shape[-1]
    if pure:
        pure_counts = (abundances > _PURE_THRESHOLD).sum(axis=(0, 1))
        dominant_counts = (abundances > 0.5).sum(axis=(0, 1))
        return [
            k
            for k in range(n)
            if pure_counts[k] < _MIN_PURE_PIXELS
            or dominant_counts[k] < _MIN_DOMINANT_PIXELS
        ]
    owners = abundances.argmax(axis=-1)
    counts = np.bincount(owners.ravel(), minlength=n)
    return [k for k in range(n) if counts[k] < _MIN_DOMINANT_PIXELS]


def _plant(rng: np.random.Generator, abundances: np.ndarray, phase: int) -> np.ndarray:
    """Blend a pure soft disk of ``phase`` where no other phase needs the room."""
    ny, nx, n = abundances.shape
    radius, width = 4.5, 0.4
    owners = abundances.argmax(axis=-1)
    counts = np.bincount(owners.ravel(), minlength=n)
    spare = counts - (_MIN_DOMINANT_PIXELS + math.pi * (radius + 2) ** 2)
    protected = (owners != phase) & (spare[owners] < 0)
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    margin = radius + 1
    interior = (
        (rows >= margin)
        & (rows <= ny - 1 - margin)
        & (columns >= margin)
        & (columns <= nx - 1 - margin)
    )
    if protected.any():
        distance = ndimage.distance_transform_edt(~protected)
        candidates = interior & (distance >= radius + 2)
        if not candidates.any():
            candidates = interior & ~protected
    else:
        candidates = interior
    if not candidates.any():
        candidates = interior if interior.any() else np.ones((ny, nx), bool)
    flat = np.flatnonzero(candidates)
    row, column = divmod(int(flat[int(rng.integers(flat.size))]), nx)
    distance = np.hypot(rows - row, columns - column) - radius
    weight = _soft_region(distance, width)[..., None]
    return (1 - weight) * abundances + weight * np.eye(n)[phase]


def _contract(abundances: np.ndarray, max_fraction: float) -> np.ndarray:
    uniform = 1.0 / abundances.shape[-1]
    largest = float(abundances.max())
    if largest <= max_fraction:
        return abundances
    factor = (max_fraction - uniform) / (largest - uniform)
    return uniform + factor * (abundances - uniform)


def _build_abundances(
    rng: np.random.Generator, description: SceneDescription
) -> np.ndarray:
    shape, n = description.shape, description.n_endmembers
    pure, structure = description.pure_pixels, description.structure
    size, width = description.feature_size, description.edge_width
    if structure == "blocks":
        abundances = _blocks(rng, shape, n, int(size), int(width), pure)
    elif structure == "smooth":
        abundances = _smooth_fields(rng, shape, n, size, width)
    elif structure == "particles":
        abundances = _particles(rng, shape, n, size, width)
    elif structure == "layers" and pure:
        abundances = _interface_layers(rng, shape, n, size, width)
    elif structure == "layers":
        abundances = _layered_abundances(rng, shape, n, description.max_fraction)
    else:
        abundances = _cell_scene(rng, shape, n)
        if pure:
            # Compartments become pure in their main endmember (medium:
            # water, cytoplasm: protein, nucleus: nucleic acid, droplets:
            # lipid) while the membranes stay soft.
            logits = _CELL_SHARPENING * np.log(np.maximum(abundances, 1e-300))
            logits -= logits.max(axis=-1, keepdims=True)
            abundances = _normalise_rows(np.exp(logits))
    for _ in range(5):
        missing = _missing_endmembers(abundances, pure)
        if not missing:
            break
        for phase in missing:
            abundances = _plant(rng, abundances, phase)
        abundances = _normalise_rows(abundances)
    if not pure:
        abundances = _contract(abundances, description.max_fraction)
    missing = _missing_endmembers(abundances, pure)
    if missing:  # pragma: no cover - planting makes this unreachable
        raise RuntimeError(
            f"Scene {description.index} ({description.split}): endmembers "
            f"{missing} lack the promised region."
        )
    if pure:
        counts = (abundances > _PURE_THRESHOLD).sum(axis=(0, 1))
        _logger.debug("Pure pixels per endmember: %s", counts.tolist())
    return abundances


# --------------------------------------------------------------------------
# Drift and artefacts
# --------------------------------------------------------------------------


def _drift_map(
    rng: np.random.Generator, shape: tuple[int, int], amplitude: float
) -> np.ndarray:
    """Smooth drift in channels over ``[-amplitude, amplitude]``."""
    ny, nx = shape
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:ny, 0:nx]
    wedge = (np.cos(angle) * columns + np.sin(angle) * rows) / max(ny, nx)
    field = wedge + 0.3 * _smooth_random_field(rng, shape, max(min(shape) / 6, 1.0))
    spread = field.max() - field.min()
    if spread == 0:
        return np.zeros(shape)
    return amplitude * (2 * (field - field.min()) / spread - 1)


def _shift_spectra(cube: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Move each pixel's spectrum ``shifts`` channels up (linear interpolation).

    The value at channel ``c`` is the spectrum interpolated at ``c - shift``,
    with the end values held beyond the axis.
    """
    n_channels = cube.shape[-1]
    flat = cube.reshape(-1, n_channels)
    flat_shifts = -shifts.reshape(-1)
    whole = np.floor(flat_shifts).astype(int)
    fraction = (flat_shifts - whole)[:, None]
    pad = int(np.abs(whole).max()) + 1
    shifted = np.empty_like(flat)
    # Pixels sharing the integer part of their shift move as one block.
    for step in np.unique(whole):
        rows = np.flatnonzero(whole == step)
        padded = np.pad(flat[rows], ((0, 0), (pad, pad)), mode="edge")
        low = padded[:, pad + step : pad + step + n_channels]
        high = padded[:, pad + step + 1 : pad + step + 1 + n_channels]
        shifted[rows] = low + fraction[rows] * (high - low)
    return shifted.reshape(cube.shape)


def _add_spikes(
    rng: np.random.Generator, artefacts: np.ndarray, clean: np.ndarray, peak: float
) -> None:
    ny, nx, n_channels = clean.shape
    n_pixels = int(rng.integers(1, min(5, ny * nx) + 1))
    pixels = rng.choice(ny * nx, n_pixels, replace=False)
    for _ in range(int(rng.integers(2, 11))):
        row, column = divmod(int(pixels[int(rng.integers(n_pixels))]), nx)
        width = int(rng.integers(1, 4))
        channel = int(rng.integers(0, n_channels - width + 1))
        pixel_peak = float(clean[row, column].max())
        height = _log_uniform(rng, 2.0, 20.0) * (pixel_peak if pixel_peak > 0 else peak)
        profile = rng.uniform(0.3, 1.0, width)
        artefacts[row, column, channel : channel + width] += (
            height * profile / profile.max()
        )


def _add_bad_pixels(
    rng: np.random.Generator, artefacts: np.ndarray, clean: np.ndarray, peak: float
) -> np.ndarray:
    """Dead and hot pixels; returns the flat indices of the dead ones."""
    ny, nx, _ = clean.shape
    n_bad = int(rng.integers(1, min(4, ny * nx) + 1))
    pixels = rng.choice(ny * nx, n_bad, replace=False)
    dead = rng.random(n_bad) < 0.6
    for pixel, is_dead in zip(pixels, dead, strict=True):
        row, column = divmod(int(pixel), nx)
        if is_dead:
            artefacts[row, column] = -clean[row, column]
        else:
            artefacts[row, column] += rng.uniform(0.2, 2.0) * peak
    return pixels[dead]


# --------------------------------------------------------------------------
# Drawing the parameters
# --------------------------------------------------------------------------

_OVERRIDABLE = (
    "modality",
    "n_endmembers",
    "n_channels",
    "shape",
    "structure",
    "pure_pixels",
    "max_fraction",
    "noise",
    "dose",
    "snr",
    "intensity_variation",
    "artefacts",
    "drift_channels",
    "baseline_amplitude",
)


def _check_number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}.")
    return float(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
    return str(value)


def _check_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Type and range checks that do not depend on the drawn scene."""
    unknown = sorted(set(overrides) - set(_OVERRIDABLE))
    if unknown:
        raise ValueError(
            f"Unknown scene parameter(s) {unknown}; the parameters that can be "
            f"overridden are: {', '.join(_OVERRIDABLE)}."
        )
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if name == "modality":
            checked[name] = _check_choice(name, value, MODALITIES)
        elif name == "n_endmembers":
            value = _check_integer(name, value, _N_ENDMEMBERS_RANGE[0])
            if value > _N_ENDMEMBERS_RANGE[1]:
                raise ValueError(
                    f"n_endmembers must be at most {_N_ENDMEMBERS_RANGE[1]}, "
                    f"got {value}."
                )
            checked[name] = value
        elif name == "n_channels":
            value = _check_integer(name, value, 32)
            if value > 8192:
                raise ValueError(f"n_channels must be at most 8192, got {value}.")
            checked[name] = value
        elif name == "shape":
            checked[name] = _check_shape(value, 16)
        elif name == "structure":
            checked[name] = _check_choice(name, value, STRUCTURES)
        elif name == "pure_pixels":
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"pure_pixels must be a bool, got {value!r}.")
            checked[name] = bool(value)
        elif name == "max_fraction":
            checked[name] = _check_number(name, value, 0.0, _MAX_FRACTION_TOP)
        elif name == "noise":
            checked[name] = _check_choice(name, value, NOISE_KINDS)
        elif name in ("dose", "snr"):
            checked[name] = _check_positive_float(name, value)
        elif name == "intensity_variation":
            checked[name] = _check_number(name, value, 0.0, 0.95)
        elif name == "artefacts":
            if isinstance(value, str) or not isinstance(value, tuple | list):
                raise ValueError(
                    f"artefacts must be a tuple of names among {ARTEFACT_KINDS}, "
                    f"got {value!r}."
                )
            for kind in value:
                _check_choice("each artefact", kind, ARTEFACT_KINDS)
            checked[name] = tuple(k for k in ARTEFACT_KINDS if k in value)
        elif name == "drift_channels":
            checked[name] = _check_number(name, value, 0.0, 20.0)
        else:
            checked[name] = _check_number(name, value, 0.0, 100.0)
    return checked


def _split_id(split: object) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    return SPLITS.index(split)


def _seed_sequence(index: int, split: str) -> np.random.SeedSequence:
    """The seed of scene ``index`` of ``split``."""
    index = _check_integer("index", index, 0)
    return np.random.SeedSequence(
        entropy=_FAMILY_ENTROPY, spawn_key=(_split_id(split), index)
    )


def _pick(u: float, options: tuple[str, ...], weights: tuple[float, ...]) -> str:
    cumulative = np.cumsum(weights) / sum(weights)
    return options[
        min(int(np.searchsorted(cumulative, u, side="right")), len(options) - 1)
    ]


def _from_unit(u: float, low: float, high: float, log: bool = False) -> float:
    if log:
        return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
    return float(low + u * (high - low))


def _conflict(name: str, scene: str, hint: str) -> ValueError:
    return ValueError(f"{name} was given but {scene}; {hint}.")


def _draw(
    index: int, split: str, overrides: dict[str, Any]
) -> tuple[SceneDescription, np.ndarray, np.random.Generator]:
    """Draw a scene's parameters and endmembers; returns the generator too."""
    overrides = _check_overrides(overrides)
    rng = np.random.default_rng(_seed_sequence(index, split))
    u = rng.random(_N_TOP_LEVEL_DRAWS)

    def value(name: str, drawn: Any) -> Any:
        return overrides.get(name, drawn)

    modality = value("modality", _pick(u[0], MODALITIES, _MODALITY_PROBABILITIES))
    low_n, high_n = _N_ENDMEMBERS_RANGE
    n = value("n_endmembers", low_n + min(int(u[1] * (high_n - low_n + 1)), 4))
    n_channels = value(
        "n_channels", round(_from_unit(u[2], *_N_CHANNELS_RANGE, log=True))
    )
    sides = _SIDE_RANGE[1] - _SIDE_RANGE[0] + 1
    shape = value(
        "shape",
        (
            _SIDE_RANGE[0] + min(int(u[3] * sides), sides - 1),
            _SIDE_RANGE[0] + min(int(u[4] * sides), sides - 1),
        ),
    )
    allowed = STRUCTURES if n >= 4 else STRUCTURES[:-1]
    structure = value(
        "structure", allowed[min(int(u[5] * len(allowed)), len(allowed) - 1)]
    )
    if structure == "cell" and n < 4:
        raise ValueError(
            f"The 'cell' structure needs n_endmembers >= 4, got {n} "
            f"(scene {index} of {split!r})."
        )
    pure = value("pure_pixels", bool(u[6] < 0.5))
    low_fraction = max(0.5, 1.0 / n + 0.1)
    max_fraction = _from_unit(u[7], low_fraction, _MAX_FRACTION_TOP)
    if "max_fraction" in overrides:
        if pure:
            raise _conflict(
                "max_fraction",
                f"scene {index} of {split!r} has pure pixels",
                "add pure_pixels=False",
            )
        max_fraction = overrides["max_fraction"]
        if max_fraction <= 1.0 / n:
            raise ValueError(
                f"max_fraction must be above 1/n_endmembers = {1.0 / n:.3f}, "
                f"got {max_fraction}."
            )
    if pure:
        max_fraction = 1.0

    drawn_noise = {"eels": "poisson", "raman": "gaussian"}.get(
        modality, "poisson" if u[8] < 0.5 else "gaussian"
    )
    noise = value("noise", drawn_noise)
    if modality != "generic" and noise != drawn_noise:
        raise ValueError(
            f"{modality} scenes have {drawn_noise} noise; noise={noise!r} is only "
            "possible with modality='generic'."
        )
    scene_text = f"scene {index} of {split!r} has {noise} noise"
    dose = _from_unit(u[9], *_DOSE_RANGE, log=True) if noise == "poisson" else None
    snr = _from_unit(u[10], *_SNR_RANGE, log=True) if noise == "gaussian" else None
    if "dose" in overrides:
        if noise != "poisson":
            raise _conflict(
                "dose", scene_text, "add noise='poisson' or modality='eels'"
            )
        dose = overrides["dose"]
    if "snr" in overrides:
        if noise != "gaussian":
            raise _conflict(
                "snr", scene_text, "add noise='gaussian' or modality='raman'"
            )
        snr = overrides["snr"]

    variation = 0.0 if u[11] < 1 / 3 else _from_unit(u[12], 0.05, 0.5)
    variation = value("intensity_variation", variation)

    drawn_artefacts = {
        "baseline": modality == "raman" and u[17] < _BASELINE_PROBABILITY,
        "spikes": u[13] < _ARTEFACT_PROBABILITY,
        "dead_pixels": u[14] < _ARTEFACT_PROBABILITY,
        "drift": u[15] < _ARTEFACT_PROBABILITY,
    }
    artefacts = value(
        "artefacts", tuple(k for k in ARTEFACT_KINDS if drawn_artefacts[k])
    )
    if "baseline" in artefacts and modality != "raman":
        raise ValueError(
            "The 'baseline' artefact (fluorescence) exists for Raman scenes only; "
            f"scene {index} of {split!r} is {modality}."
        )
    drift = _from_unit(u[16], *_DRIFT_RANGE) if "drift" in artefacts else 0.0
    if "drift_channels" in overrides:
        if "drift" not in artefacts:
            raise _conflict(
                "drift_channels",
                f"scene {index} of {split!r} has no drift",
                "add 'drift' to artefacts",
            )
        drift = overrides["drift_channels"]
    baseline = _from_unit(u[18], *_BASELINE_RANGE) if "baseline" in artefacts else 0.0
    if "baseline_amplitude" in overrides:
        if "baseline" not in artefacts:
            raise _conflict(
                "baseline_amplitude",
                f"scene {index} of {split!r} has no baseline",
                "add 'baseline' to artefacts (Raman only)",
            )
        baseline = overrides["baseline_amplitude"]

    feature_size, edge_width = _structure_scales(
        structure, pure, shape, n, max_fraction, u[19], u[20]
    )

    if modality == "eels":
        assert dose is not None
        spectra = _draw_eels(rng, n, n_channels, dose)
    elif modality == "raman":
        spectra = _draw_raman(rng, n, n_channels)
    else:
        spectra = _draw_generic(rng, n, n_channels, dose)

    description = SceneDescription(
        split=split,
        index=int(index),
        modality=modality,
        n_endmembers=n,
        n_channels=n_channels,
        shape=tuple(shape),
        axis_name=spectra.axis_name,
        axis_units=spectra.axis_units,
        axis_offset=spectra.axis_offset,
        axis_scale=spectra.axis_scale,
        structure=structure,
        feature_size=feature_size,
        edge_width=edge_width,
        pure_pixels=pure,
        max_fraction=max_fraction,
        noise=noise,
        dose=dose,
        snr=snr,
        intensity_variation=variation,
        artefacts=artefacts,
        drift_channels=drift,
        baseline_amplitude=baseline,
        resolution=spectra.resolution,
        endmember_names=spectra.names,
        endmember_details=spectra.details,
        min_spectral_angle=_min_spectral_angle(spectra.endmembers),
    )
    return description, spectra.endmembers, rng


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def describe_scene(
    index: int, split: str = "development", **overrides: Any
) -> SceneDescription:
    """Draw the parameters of a scene without building its data.

    Draws exactly the parameters that :func:`random_scene` draws for the same
    arguments (it runs the same code up to the endmember spectra, which the
    description needs for ``min_spectral_angle``), at a fraction of the cost.

    Parameters
    ----------
    index : int
        Scene number, at least 0.
    split : {"development", "held_out"}
        Half of the family.
    **overrides
        Forced parameters, as in :func:`random_scene`.

    Returns
    -------
    SceneDescription
        The scene's parameters.

    Raises
    ------
    ValueError
        If an argument or an override is invalid.
    """
    description, _, _ = _draw(index, split, overrides)
    return description


def random_scene(
    index: int, split: str = "development", **overrides: Any
) -> tuple[Signal1D, GroundTruth, SceneDescription]:
    """Scene number ``index`` of a split of the synthetic family.

    Every draw comes from ``numpy.random.default_rng`` of
    ``SeedSequence(entropy=_FAMILY_ENTROPY, spawn_key=(split_id, index))``
    (``split_id`` 0 for development, 1 for held out), so the two splits never
    share a seed and the same arguments always give bit-identical data. See
    the module documentation for the distributions.

    Parameters
    ----------
    index : int
        Scene number, at least 0.
    split : {"development", "held_out"}
        Half of the family.
    **overrides
        Force drawn parameters: ``modality``, ``n_endmembers`` (2-6),
        ``n_channels``, ``shape`` (sides of at least 16), ``structure``,
        ``pure_pixels``, ``max_fraction`` (needs ``pure_pixels=False``),
        ``noise`` (generic scenes only), ``dose`` (Poisson scenes), ``snr``
        (Gaussian scenes), ``intensity_variation`` (0 to 0.95),
        ``artefacts`` (a tuple of names among ``"baseline"`` (Raman only),
        ``"spikes"``, ``"dead_pixels"`` and ``"drift"``), ``drift_channels``
        (needs ``"drift"``) and ``baseline_amplitude`` (needs
        ``"baseline"``). Every top-level parameter is drawn from a fixed
        block of uniform numbers before the overrides apply, so forcing one
        leaves the others as drawn (as far as they do not depend on it): for
        example ``artefacts=()`` keeps the endmembers and abundances of the
        scene.

    Returns
    -------
    signal : hyperspy.signals.Signal1D
        The data (float64), shape ``(ny, nx, n_channels)``, navigation axes
        ``y`` and ``x`` with units, calibrated signal axis, a title naming the
        scene, and the description under
        ``original_metadata.synthetic_scene`` (and, with drift, the drift map
        in channels, shape ``(ny, nx)``, under
        ``original_metadata.synthetic_drift_channels``). EELS scenes are
        :class:`exspy.signals.EELSSpectrum`.
    truth : GroundTruth
        Endmembers in data units per unit abundance (EELS and Poisson generic
        scenes: counts at unit intensity), abundances on the simplex,
        ``noiseless = intensity * (abundances @ endmembers)`` before drift and
        artefacts, ``intensity`` (None when uniform) and ``artefacts``, the
        additive nuisance (baseline, spikes, dead/hot pixel changes; None when
        there is none). The data are
        ``noise(drift(noiseless) + artefacts)``, dead pixels reading exactly
        zero; the drift shifts each pixel's spectrum by a smooth sub-channel
        amount, so ``truth.endmembers`` stay those of the unshifted axis.
    description : SceneDescription
        Every drawn parameter and the scene's subgroups.

    Raises
    ------
    ValueError
        If ``split`` or ``index`` is invalid, an override is unknown (the
        message lists the valid names) or invalid, or it contradicts the
        scene (e.g. ``dose`` for a Gaussian-noise scene).

    Examples
    --------
    >>> from hs_aeunmix.datasets import random_scene
    >>> signal, truth, description = random_scene(0, shape=(32, 32))
    >>> signal.data.shape[:2]
    (32, 32)
    """
    description, endmembers, rng = _draw(index, split, overrides)
    abundances = _build_abundances(rng, description)
    shape = description.shape
    intensity = (
        _thickness_map(rng, shape, description.intensity_variation)
        if description.intensity_variation > 0
        else None
    )
    noiseless = abundances @ endmembers
    if intensity is not None:
        noiseless *= intensity[..., None]
    peak = float(noiseless.max(axis=-1).mean())

    clean = noiseless
    drift = None
    if "drift" in description.artefacts:
        drift = _drift_map(rng, shape, description.drift_channels)
        clean = _shift_spectra(noiseless, drift)

    artefacts = None
    dead = np.array([], dtype=int)
    if {"baseline", "spikes", "dead_pixels"} & set(description.artefacts):
        artefacts = np.zeros_like(noiseless)
        if "baseline" in description.artefacts:
            artefacts += (description.baseline_amplitude * peak) * _bernstein_baseline(
                rng, shape, description.n_channels
            )
        if "spikes" in description.artefacts:
            _add_spikes(rng, artefacts, clean, peak)
        if "dead_pixels" in description.artefacts:
            dead = _add_bad_pixels(rng, artefacts, clean, peak)

    expected = clean if artefacts is None else clean + artefacts
    if description.noise == "poisson":
        data = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
    else:
        assert description.snr is not None
        data = expected + rng.normal(0.0, peak / description.snr, expected.shape)
    if dead.size:
        data.reshape(-1, description.n_channels)[dead] = 0.0

    signal = _make_signal(data, description)
    if drift is not None:
        signal.original_metadata.set_item("synthetic_drift_channels", drift)
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=description.endmember_names,
        noiseless=noiseless,
        intensity=intensity,
        artefacts=artefacts,
    )
    _logger.debug(
        "Scene %d of %s: %s, %s",
        description.index,
        split,
        description.modality,
        description.structure,
    )
    return signal, truth, description


def scene_family(
    split: str, n_scenes: int = 60, **overrides: Any
) -> Iterator[tuple[Signal1D, GroundTruth, SceneDescription]]:
    """The first ``n_scenes`` scenes of a split, one at a time.

    Parameters
    ----------
    split : {"development", "held_out"}
        Half of the family.
    n_scenes : int
        Number of scenes, ``random_scene(i, split, **overrides)`` for ``i``
        in ``range(n_scenes)``.
    **overrides
        Forced parameters, as in :func:`random_scene`.

    Returns
    -------
    iterator of (signal, truth, description)
        Built lazily, so that only one scene is in memory at a time.

    Raises
    ------
    ValueError
        If ``split``, ``n_scenes`` or an override name is invalid (checked
        before the first scene is built).
    """
    _split_id(split)
    n_scenes = _check_integer("n_scenes", n_scenes, 0)
    _check_overrides(overrides)

    def scenes() -> Iterator[tuple[Signal1D, GroundTruth, SceneDescription]]:
        for index in range(n_scenes):
            yield random_scene(index, split, **overrides)

    return scenes()


def _make_signal(data: np.ndarray, description: SceneDescription) -> Signal1D:
    names = ", ".join(description.endmember_names)
    title = (
        f"Synthetic {description.modality} scene {description.index} "
        f"({description.split}): {description.structure}; {names}"
    )
    if description.modality == "eels":
        window = _EELSEndmemberSet(
            materials=(),
            energy_offset_ev=description.axis_offset,
            energy_scale_ev=description.axis_scale,
            n_channels=description.n_channels,
            pixel_size_nm=_EELS_PIXEL_SIZE_NM,
            description=title,
        )
        signal = _eels_signal(data, window, title)
    else:
        ny, nx = description.shape
        if description.modality == "raman":
            pixel, units = _RAMAN_PIXEL_SIZE_UM, "µm"
        else:
            pixel, units = _GENERIC_PIXEL_SIZE_UM, "µm"
        axes = [
            {"name": "y", "units": units, "scale": pixel, "offset": 0.0, "size": ny},
            {"name": "x", "units": units, "scale": pixel, "offset": 0.0, "size": nx},
            {
                "name": description.axis_name,
                "units": description.axis_units,
                "scale": description.axis_scale,
                "offset": description.axis_offset,
                "size": description.n_channels,
            },
        ]
        signal = Signal1D(data, axes=axes)
        signal.metadata.General.title = title
        quantity = "Counts" if description.noise == "poisson" else "Intensity (a.u.)"
        signal.metadata.set_item("Signal.quantity", quantity)
    signal.original_metadata.set_item("synthetic_scene", description.as_dict())
    return signal
