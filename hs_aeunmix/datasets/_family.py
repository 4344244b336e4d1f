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
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from hyperspy.signals import Signal1D

from hs_aeunmix.datasets._artefacts import (
    _add_bad_pixels,
    _add_spikes,
    _drift_map,
    _shift_spectra,
)
from hs_aeunmix.datasets._common import (
    GroundTruth,
    _check_integer,
    _check_positive_float,
    _check_shape,
    _min_spectral_angle,
)
from hs_aeunmix.datasets._eels import (
    _eels_signal,
    _EELSEndmemberSet,
)
from hs_aeunmix.datasets._eels_materials import _draw_eels
from hs_aeunmix.datasets._generic import _draw_generic
from hs_aeunmix.datasets._raman import (
    _RAMAN_PIXEL_SIZE_UM,
    _bernstein_baseline,
    _draw_raman,
)
from hs_aeunmix.datasets._scenes import (
    _build_abundances,
    _structure_scales,
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
# Number of uniform numbers drawn first for the top-level parameters.
_N_TOP_LEVEL_DRAWS = 21

_EELS_PIXEL_SIZE_NM = 0.25
_GENERIC_PIXEL_SIZE_UM = 1.0


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
