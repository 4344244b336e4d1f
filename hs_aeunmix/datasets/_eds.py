"""An independent family of synthetic EDS (energy-dispersive X-ray) spectrum images.

Each scene is an EDS map, as acquired in an SEM (thick specimen) or a STEM
(thin foil), of a specimen made of 2 to 6 real compounds (:data:`COMPOUNDS`:
oxides, silicates, sulfides, a nitride and a carbide, metals and alloys,
perovskites, III-V semiconductors, salts) with a known ground truth. The
X-ray line energies and relative weights come from eXSpy's offline element
database (:mod:`exspy.material`). It is written independently of the
package's other scene generators, so that defaults chosen on those can be
checked on data they were not tuned on.

Seeding
-------
Scene ``index`` of split ``"development"`` (id 0) or ``"held_out"`` (id 1)
draws everything from ``numpy.random.default_rng(SeedSequence(entropy=
_ENTROPY, spawn_key=(split_id, index)))``: the halves never share a stream,
and a scene is bit-identical on every call.

What is drawn, in order
-----------------------
1. A block of 20 uniforms ``u[0..19]`` sets the top-level parameters, so that
   overriding some (``**overrides``) leaves the others as drawn:
   ``n_endmembers`` uniform on 2..6 (u0); ``shape``, each side uniform on
   32..72 (u1, u2); ``microscope`` "SEM" if u3 < 1/2, else "TEM";
   ``beam_energy`` uniform over 10, 15, 20, 30 kV (SEM) or 80, 120, 200,
   300 kV (TEM) (u4); ``n_channels`` uniform over 512, 1024, 2048 (u5);
   ``dispersion`` uniform over those of 5, 10, 20 eV that make the window
   span 10.24 keV, or 20.48 keV when the beam energy is 20 kV or more (u6);
   ``dose``, the mean total counts per spectrum, log-uniform on [20, 5000]
   (u7); ``pure_pixels`` if u8 < 1/2; ``structure`` uniform over
   :data:`STRUCTURES` (u9); ``intensity_variation`` 0 if u10 < 0.4 (TEM) or
   0.6 (SEM), else uniform on [0.05, 0.5] (TEM, thickness) or [0.02, 0.12]
   (SEM, topography) (u11); ``artefacts`` if u12 < 1/3; the detector's
   FWHM at Mn Ka uniform on [122, 140] eV (u13); the window's cut-off
   energy uniform on [0.3, 0.6] keV (u14); the continuum's share of the
   counts uniform on [0.15, 0.4] (SEM) or [0.05, 0.25] (TEM) (u15); the
   SEM absorption energy uniform on [0.5, 0.9] keV (u16); the pixel size
   log-uniform on [5, 200] nm (SEM) or [0.2, 10] nm (TEM) (u17); the
   take-off angle uniform on [30, 40] (SEM) or [15, 25] degrees (TEM) (u18).
   The window starts at 0 keV with artefacts (a raw spectrum, zero peak
   included) and at 0.1 keV without (cropped above the noise peak).
2. Phases, drawn again together until every two endmembers are 0.02 rad or
   more apart in spectral angle: the first uniform over the compounds, each
   next one, with probability 3/4, uniform over the unused compounds that
   share an element with those drawn (as in real specimens), else over all
   unused compounds.
3. Abundances from the structure, drawn again until every phase is the
   largest fraction in 16 pixels or more (and, with pure pixels, above 0.99
   in 9 pixels or more). Without pure pixels, ``max_fraction`` uniform on
   [max(0.5, 1/n + 0.1), 0.9]; a pixel whose largest fraction exceeds it is
   mixed towards the uniform composition until the largest equals it.
4. The intensity map, mean 1, spanning +/- ``intensity_variation``: a
   thickness wedge plus a smooth field (TEM), or a smooth field (SEM).
5. Artefacts, when on: the zero-energy noise peak (log-uniform on [0.3, 3]
   times the dose); system peaks of one element (TEM: the Cu, Ni or Mo grid;
   SEM: a C or Au coating), uniform on [0.01, 0.05] times the dose; with
   probability 1/2, the sum (pile-up) peak of the strongest line, its counts
   a fraction log-uniform on [0.002, 0.01] of that line's, times the
   pixel's count rate relative to the mean.
6. Poisson noise.

Physics
-------
An element at atomic fraction x emits, in each line of a family (K, L, M)
with critical energy Ec (eXSpy's binding energy, else 1.02 times the
family's highest line) and overvoltage U = E0 / Ec >= 1.5, counts
proportional to ``x w omega(Z) n_s Q(U, Ec) eps(E) A(E)``: ``w`` the line's
database weight, ``omega = Z^4 / (a + Z^4)`` the fluorescence yield (a = 9e5,
1e8, 1e9 for K, L, M), ``n_s`` = 2, 8, 18 electrons; thin foil (TEM)
``Q = ln(U) / (U Ec^2)``, the ionisation cross-section; thick specimen (SEM)
``Q = (U ln U - U + 1) / A_mean``, that cross-section integrated along the
electron's path with a stopping power in 1/E, per atom of unit mass. The
detector efficiency ``eps(E) = exp(-(E_w / E)^3) (1 - exp(-(15.5 / E)^3))``
is the window's transmission and a 0.45 mm Si crystal's absorption. In the
SEM, ``A(E) = (1 - exp(-chi)) / chi`` with ``chi = (E_a / E)^3 (Z_mean / 12)
sin(35 deg) / sin(take-off)`` weakens the low-energy lines. Each line is a
Gaussian of FWHM ``sqrt(FWHM_MnKa^2 + 2.45 (E - 5898.7 eV))`` eV integrated
over each channel. The continuum is Kramers' ``Z (E0 - E) / E`` (mean Z by
mass; thin foil: the mean Z^2 by atom) times ``eps`` and ``A``, evaluated at
the channel centres, and scaled once for the scene so that it holds the
drawn share of the phases' pooled counts.

Ground truth, and how the data depart from it
---------------------------------------------
``GroundTruth.endmembers`` are the phases' channel counts (lines plus
continuum), scaled together so that ``noiseless = intensity * (abundances @
endmembers)`` holds ``dose`` counts per spectrum on average. The data are
``Poisson(noiseless + artefacts)``, integers; ``GroundTruth.artefacts`` holds
the zero, system and sum peaks. Simplifications: no secondary fluorescence,
atomic-number correction, absorption edges or escape peaks; the sum peak
adds counts without taking them from its parent line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import (
    GroundTruth,
    _smooth_random_field,
    checked_override,
    log_uniform_at,
    present_abundances,
    scene_range,
    scene_rng,
)
from hs_aeunmix.datasets._eels import _exspy

Rng = np.random.Generator
Shape = tuple[int, int]
Params = dict[str, Any]

_ENTROPY = 0x6D1E_0B93_4C27_A8F5_91D3_2E70_C4B8_5A16
_SPLITS = {"development": 0, "held_out": 1}
_BEAM_ENERGIES = {"SEM": (10.0, 15.0, 20.0, 30.0), "TEM": (80.0, 120.0, 200.0, 300.0)}
_MIN_OVERVOLTAGE = 1.5
_MIN_ANGLE = 0.02  # rad, between any two endmembers
_MN_KA = 5.8987  # keV
_FLUORESCENCE = {"K": 9e5, "L": 1e8, "M": 1e9}
_ELECTRONS = {"K": 2, "L": 8, "M": 18}
_EDGES = {"K": "K", "L": "L3", "M": "M5"}
_SYSTEM = {"TEM": ("Cu", "Ni", "Mo"), "SEM": ("C", "Au")}

# name -> atoms per formula unit (alloys: atomic per cent).
COMPOUNDS: dict[str, dict[str, float]] = {
    "SiO2": {"Si": 1, "O": 2}, "Al2O3": {"Al": 2, "O": 3},
    "TiO2": {"Ti": 1, "O": 2}, "Fe2O3": {"Fe": 2, "O": 3},
    "MgO": {"Mg": 1, "O": 1}, "ZrO2": {"Zr": 1, "O": 2},
    "HfO2": {"Hf": 1, "O": 2}, "Cr2O3": {"Cr": 2, "O": 3},
    "NiO": {"Ni": 1, "O": 1}, "ZnO": {"Zn": 1, "O": 1},
    "CeO2": {"Ce": 1, "O": 2},
    "Mg2SiO4": {"Mg": 2, "Si": 1, "O": 4}, "CaSiO3": {"Ca": 1, "Si": 1, "O": 3},
    "KAlSi3O8": {"K": 1, "Al": 1, "Si": 3, "O": 8},
    "NaAlSi3O8": {"Na": 1, "Al": 1, "Si": 3, "O": 8},
    "ZrSiO4": {"Zr": 1, "Si": 1, "O": 4},
    "FeS2": {"Fe": 1, "S": 2}, "ZnS": {"Zn": 1, "S": 1}, "PbS": {"Pb": 1, "S": 1},
    "CuFeS2": {"Cu": 1, "Fe": 1, "S": 2},
    "TiN": {"Ti": 1, "N": 1}, "SiC": {"Si": 1, "C": 1},
    "Fe": {"Fe": 1}, "Cu": {"Cu": 1}, "Ni": {"Ni": 1}, "Au": {"Au": 1},
    "Ag": {"Ag": 1},
    "Fe-Cr-Ni steel": {"Fe": 70, "Cr": 19, "Ni": 9, "Mn": 2},
    "Al2Cu": {"Al": 2, "Cu": 1}, "Ti-6Al-4V": {"Ti": 86, "Al": 10, "V": 4},
    "SrTiO3": {"Sr": 1, "Ti": 1, "O": 3}, "BaTiO3": {"Ba": 1, "Ti": 1, "O": 3},
    "LaMnO3": {"La": 1, "Mn": 1, "O": 3},
    "GaAs": {"Ga": 1, "As": 1}, "InP": {"In": 1, "P": 1}, "Si": {"Si": 1},
    "CaCO3": {"Ca": 1, "C": 1, "O": 3}, "NaCl": {"Na": 1, "Cl": 1},
    "BaSO4": {"Ba": 1, "S": 1, "O": 4},
}  # fmt: skip
_NAMES = tuple(COMPOUNDS)


@dataclass(frozen=True)
class EDSDescription:
    """What was drawn for one :func:`eds_scene`.

    Attributes
    ----------
    generator, split, index, modality : str, str, int, str
        ``"eds"``, the split, the scene index and ``"eds"``.
    subgroups : tuple of str
        ``"pure_pixels"`` or ``"no_pure_pixels"``, then those that apply of
        ``"intensity_varying"`` (variation >= 10 %), ``"low_dose"``
        (dose < 300) and ``"artefacts"``.
    n_endmembers, shape, n_channels : int, tuple of int, int
        Number of phases, (ny, nx) and number of channels.
    energy_offset, dispersion : float
        Energy of the first channel's centre (keV) and channel width (eV).
    microscope, beam_energy : str, float
        ``"SEM"`` or ``"TEM"``, and the beam energy (kV).
    dose : float
        Mean total counts per noiseless spectrum (artefacts excluded).
    phases : tuple of str
        Compound names, in endmember order (keys of :data:`COMPOUNDS`).
    lines : tuple of str
        The phases' X-ray lines placed in the window, e.g. ``"Fe_Ka"``.
    structure, pure_pixels, max_fraction : str, bool, float
        One of :data:`STRUCTURES`, whether every phase has pure pixels, and
        the largest fraction of any phase in any pixel.
    intensity_variation : float
        Relative amplitude of the intensity (thickness, topography) map.
    fwhm_mnka, window_cutoff, continuum_share : float
        Detector resolution at Mn Ka (eV), the window's cut-off energy (keV)
        and the continuum's share of the phases' pooled counts.
    absorption_energy, takeoff_angle, pixel_size : float
        SEM absorption energy E_a (keV; 0 for TEM), take-off angle (degrees)
        and scan step (nm).
    artefacts : tuple of str
        Those present of ``"zero_peak"``, ``"system_<element>"`` and
        ``"sum_peak"``.
    """

    generator: str
    split: str
    index: int
    modality: str
    subgroups: tuple[str, ...]
    n_endmembers: int
    shape: Shape
    n_channels: int
    energy_offset: float
    dispersion: float
    microscope: str
    beam_energy: float
    dose: float
    phases: tuple[str, ...]
    lines: tuple[str, ...]
    structure: str
    pure_pixels: bool
    max_fraction: float
    intensity_variation: float
    fwhm_mnka: float
    window_cutoff: float
    continuum_share: float
    absorption_energy: float
    takeoff_angle: float
    pixel_size: float
    artefacts: tuple[str, ...]

    def summary(self) -> str:
        """One line naming the scene and its main parameters."""
        end = self.energy_offset + self.n_channels * self.dispersion / 1000
        return (
            f"eds {self.split}#{self.index}: {self.n_endmembers} phases "
            f"({', '.join(self.phases)}), {self.structure}, "
            f"{self.shape[0]}x{self.shape[1]}x{self.n_channels} "
            f"{self.energy_offset:.1f}-{end:.2f} keV, {self.microscope} "
            f"{self.beam_energy:.0f} kV, dose {self.dose:.0f} "
            f"[{', '.join(self.subgroups)}]"
        )


# --------------------------------------------------------------------------
# Top-level parameters and overrides
# --------------------------------------------------------------------------

# The order is part of the seeding: a scene draws its structure's index.
STRUCTURES = ("grains", "layers", "particles", "precipitates", "gradient")

# name -> (kind, lower bound, upper bound)
_OVERRIDABLE: dict[str, tuple[str, float, float]] = {
    "n_endmembers": ("integer", 2, 6),
    "shape": ("shape", 24, 256),
    "microscope": ("choice", 0, 0),
    "beam_energy": ("number", 5.0, 300.0),
    "n_channels": ("integer", 128, 4096),
    "dispersion": ("number", 1.0, 50.0),
    "dose": ("number", 1.0, 1e7),
    "pure_pixels": ("flag", 0, 1),
    "structure": ("choice", 0, 0),
    "intensity_variation": ("number", 0.0, 0.5),
    "artefacts": ("flag", 0, 1),
}

_CHOICES = {"structure": STRUCTURES, "microscope": tuple(_BEAM_ENERGIES)}


def _checked(name: str, value: Any) -> Any:
    """``value`` of override ``name``, or a ValueError stating what is allowed."""
    choices = _CHOICES.get(name, ())
    return checked_override(name, value, *_OVERRIDABLE[name], choices=choices)


def _pick(u: float, options: tuple) -> Any:
    return options[min(int(u * len(options)), len(options) - 1)]


def _top_level(rng: Rng, overrides: dict[str, Any]) -> Params:
    """Draw the block of uniforms, map it to parameters, apply overrides."""
    unknown = sorted(set(overrides) - set(_OVERRIDABLE))
    if unknown:
        raise TypeError(
            f"Unknown override(s) {unknown}; the parameters that can be set are "
            f"{sorted(_OVERRIDABLE)}."
        )
    given = {name: _checked(name, value) for name, value in overrides.items()}
    if "beam_energy" in given:
        implied = "SEM" if given["beam_energy"] <= 40 else "TEM"
        if given.setdefault("microscope", implied) != implied:
            raise ValueError(
                f"beam_energy={given['beam_energy']:g} kV does not suit "
                f"microscope={given['microscope']!r} (SEM: <= 40 kV, TEM: > 40 kV)."
            )
    u = rng.random(20)
    sem = given.get("microscope", "SEM" if u[3] < 0.5 else "TEM") == "SEM"
    p: Params = {
        "n_endmembers": 2 + min(int(u[0] * 5), 4),
        "shape": (32 + min(int(u[1] * 41), 40), 32 + min(int(u[2] * 41), 40)),
        "microscope": "SEM" if sem else "TEM",
        "beam_energy": _pick(u[4], _BEAM_ENERGIES["SEM" if sem else "TEM"]),
        "n_channels": _pick(u[5], (512, 1024, 2048)),
    }
    p.update({k: given[k] for k in ("beam_energy", "n_channels") if k in given})
    spans = (10.24, 20.48) if p["beam_energy"] >= 20 else (10.24,)
    fits = tuple(d for d in (5, 10, 20) if p["n_channels"] * d / 1000 in spans)
    p["dispersion"] = float(_pick(u[6], fits or (10,)))
    p["dose"] = log_uniform_at(u[7], 20.0, 5000.0)
    p["pure_pixels"] = bool(u[8] < 0.5)
    p["structure"] = _pick(u[9], STRUCTURES)
    if u[10] < (0.6 if sem else 0.4):
        p["intensity_variation"] = 0.0
    else:
        p["intensity_variation"] = (0.02 + 0.1 * u[11]) if sem else 0.05 + 0.45 * u[11]
    p["artefacts"] = bool(u[12] < 1 / 3)
    p.update(given)
    p["fwhm_mnka"] = 122.0 + 18.0 * u[13]
    p["window_cutoff"] = 0.3 + 0.3 * u[14]
    p["continuum_share"] = (0.15 + 0.25 * u[15]) if sem else 0.05 + 0.2 * u[15]
    p["absorption_energy"] = (0.5 + 0.4 * u[16]) if sem else 0.0
    p["pixel_size"] = log_uniform_at(u[17], *((5.0, 200.0) if sem else (0.2, 10.0)))
    p["takeoff_angle"] = (30.0 if sem else 15.0) + 10.0 * u[18]
    p["energy_offset"] = 0.0 if p["artefacts"] else 0.1
    return p


# --------------------------------------------------------------------------
# X-ray physics
# --------------------------------------------------------------------------


@functools.cache
def _element(
    symbol: str,
) -> tuple[int, float, tuple[tuple[str, float, float, float], ...]]:
    """Z, atomic weight and (line, energy keV, weight, Ec keV) of every line."""
    element = _exspy().material.elements[symbol]
    xray = element.Atomic_properties.Xray_lines
    binding = element.Atomic_properties.as_dictionary().get("Binding_energies", {})
    lines = []
    # Iterating a DictionaryTreeBrowser yields (key, value) pairs.
    names = list(xray.keys())
    for name in names:
        family = name[0]
        edge = binding.get(_EDGES[family], {}).get("onset_energy (eV)")
        highest = max(xray[k]["energy (keV)"] for k in names if k[0] == family)
        # Without a tabulated edge, the highest line of the family sits just
        # below it.
        critical = float(edge) / 1000 if edge else 1.02 * highest
        lines.append((name, xray[name]["energy (keV)"], xray[name]["weight"], critical))
    general = element.General_properties
    return int(general.Z), float(general.atomic_weight), tuple(lines)


def _fwhm(p: Params, energy: np.ndarray | float) -> np.ndarray:
    """Detector FWHM (keV) at ``energy`` (keV): Fano statistics plus noise."""
    square = p["fwhm_mnka"] ** 2 + 2.45 * (np.asarray(energy) - _MN_KA) * 1000
    return np.sqrt(np.maximum(square, 1.0)) / 1000


def _channel_edges(p: Params) -> np.ndarray:
    step = p["dispersion"] / 1000
    return p["energy_offset"] + step * (np.arange(p["n_channels"] + 1) - 0.5)


def _peaks(p: Params, energies: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Gaussian peaks integrated over the channels, shape (len(counts), C)."""
    sigma = _fwhm(p, energies)[:, None] / (2 * math.sqrt(2 * math.log(2)))
    cdf = special.ndtr((_channel_edges(p)[None, :] - energies[:, None]) / sigma)
    return counts[:, None] * np.diff(cdf, axis=1)


def _efficiency(p: Params, energy: np.ndarray) -> np.ndarray:
    e = np.maximum(energy, 1e-3)
    return np.exp(-((p["window_cutoff"] / e) ** 3)) * (1 - np.exp(-((15.5 / e) ** 3)))


def _absorption(p: Params, energy: np.ndarray, z_mean: float) -> np.ndarray:
    if p["microscope"] == "TEM":
        return np.ones_like(energy)
    angle = math.sin(math.radians(35)) / math.sin(math.radians(p["takeoff_angle"]))
    chi = (p["absorption_energy"] / np.maximum(energy, 1e-3)) ** 3 * z_mean / 12
    chi *= angle
    return -np.expm1(-chi) / np.maximum(chi, 1e-12)


def _lines(p: Params, formula: dict[str, float]) -> list[tuple[str, float, float]]:
    """(label, energy, counts per atom) of the excited lines in the window."""
    total = sum(formula.values())
    mean_weight = sum(n * _element(el)[1] for el, n in formula.items()) / total
    z_mean = _z_moments(formula)[0]
    lo, hi = _channel_edges(p)[[0, -1]]
    e0 = p["beam_energy"]
    found = []
    for el, n in formula.items():
        z, _, lines = _element(el)
        for name, energy, weight, critical in lines:
            u = e0 / critical
            if u < _MIN_OVERVOLTAGE or not lo <= energy <= hi:
                continue
            family = name[0]
            if p["microscope"] == "TEM":
                q = math.log(u) / (u * critical**2)
            else:
                q = (u * math.log(u) - u + 1) / mean_weight
            yield_ = z**4 / (_FLUORESCENCE[family] + z**4) * _ELECTRONS[family]
            e = np.array([energy])
            detected = _efficiency(p, e) * _absorption(p, e, z_mean)
            counts = n / total * weight * yield_ * q * float(detected[0])
            found.append((f"{el}_{name}", energy, counts))
    return found


def _z_moments(formula: dict[str, float]) -> tuple[float, float]:
    """Mean Z by mass, and mean Z^2 by atom."""
    info = {el: _element(el) for el in formula}
    mass = sum(n * info[el][1] for el, n in formula.items())
    by_mass = sum(n * info[el][1] * info[el][0] for el, n in formula.items()) / mass
    by_atom = sum(n * info[el][0] ** 2 for el, n in formula.items())
    return by_mass, by_atom / sum(formula.values())


def _spectra(p: Params, names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Unscaled endmembers (lines plus continuum) and the lines placed."""
    centres = p["energy_offset"] + p["dispersion"] / 1000 * np.arange(p["n_channels"])
    e0, e = p["beam_energy"], np.maximum(centres, 1e-3)
    lines, continua, labels = [], [], []
    for name in names:
        found = _lines(p, COMPOUNDS[name])
        labels += [label for label, _, _ in found]
        energies = np.array([f[1] for f in found])
        counts = np.array([f[2] for f in found])
        lines.append(_peaks(p, energies, counts).sum(0))
        z_mass, z2_atom = _z_moments(COMPOUNDS[name])
        z = z_mass if p["microscope"] == "SEM" else z2_atom
        kramers = z * np.clip(e0 - e, 0.0, None) / e * p["dispersion"] / 1000
        continua.append(kramers * _efficiency(p, e) * _absorption(p, e, z_mass))
    lines_, continua_ = np.array(lines), np.array(continua)
    share = p["continuum_share"]
    scale = share / (1 - share) * lines_.sum() / continua_.sum()
    return lines_ + scale * continua_, tuple(dict.fromkeys(labels))


def _draw_phases(rng: Rng, p: Params) -> tuple[list[str], np.ndarray, tuple]:
    """Phases whose endmembers are pairwise 0.02 rad apart or more."""
    for _ in range(200):
        phases = [_NAMES[rng.integers(len(_NAMES))]]
        while len(phases) < p["n_endmembers"]:
            shared = {el for name in phases for el in COMPOUNDS[name]}
            pool = [c for c in _NAMES if c not in phases]
            related = [c for c in pool if shared & set(COMPOUNDS[c])]
            if related and rng.random() < 0.75:
                pool = related
            phases.append(pool[rng.integers(len(pool))])
        spectra, lines = _spectra(p, phases)
        unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
        angles = np.arccos(np.clip(unit @ unit.T, -1.0, 1.0)) + np.eye(len(phases))
        if angles.min() >= _MIN_ANGLE:
            return phases, spectra, lines
    raise RuntimeError("No set of phases with distinct spectra was found.")


# --------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------


def _grid(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return yy.astype(float), xx.astype(float)


def _disc(shape: Shape, centre: np.ndarray, radius: float, blur: float) -> np.ndarray:
    yy, xx = _grid(shape)
    return special.ndtr((radius - np.hypot(yy - centre[0], xx - centre[1])) / blur)


def _across(rng: Rng, shape: Shape) -> np.ndarray:
    """Distance along a random direction, with a gentle bow, from the centre."""
    yy, xx = _grid(shape)
    yy, xx = yy - (shape[0] - 1) / 2, xx - (shape[1] - 1) / 2
    angle = rng.uniform(0, 2 * math.pi)
    u, v = yy * math.cos(angle) + xx * math.sin(angle), xx * math.cos(angle)
    return u + rng.uniform(-0.01, 0.01) * (v - yy * math.sin(angle)) ** 2


def _bands(rng: Rng, u: np.ndarray, n: int, width: float) -> np.ndarray:
    """One band per phase across ``u``, erf interfaces of ``width`` times the
    band thickness (interdiffusion, or a rough diffuse interface)."""
    thickness = (np.ptp(u) + 1) * (0.6 / n + 0.4 * rng.dirichlet(np.ones(n)))
    bounds = u.min() - 0.5 + np.cumsum(thickness)[:-1]
    above = [np.ones(u.shape)]
    above += [special.ndtr((u - b) / (width * thickness.min())) for b in bounds]
    above.append(np.zeros(u.shape))
    return np.stack([above[j] - above[j + 1] for j in range(n)], -1)


def _discs(rng: Rng, a: np.ndarray, role: int, radius: tuple, pure: bool) -> list:
    """Embed blurred discs of ``role`` until it leads 20 pixels or more."""
    placed, shape, led = [], a.shape[:2], 0
    for _ in range(400):
        if led >= 20 and (not pure or (a[..., role] > 0.995).sum() >= 12):
            break
        r = rng.uniform(*radius)
        centre = rng.uniform((r, r), (shape[0] - r, shape[1] - r))
        free = a[..., 0][tuple(np.clip(centre.astype(int), 0, None))] > 0.99
        if not free:
            continue
        f = _disc(
            shape, centre, r, rng.uniform(0.3, 0.6) if pure else rng.uniform(1, 2)
        )
        a *= 1 - f[..., None]
        a[..., role] += f
        placed.append((centre, r))
        led = int((a.argmax(-1) == role).sum())
    return placed


def _structure(rng: Rng, name: str, shape: Shape, n: int, pure: bool) -> np.ndarray:
    if name in ("layers", "gradient"):
        # A diffusion couple's interdiffusion zones are wide, a multilayer's
        # interfaces sharp.
        width = rng.uniform(0.03, 0.08) if pure else rng.uniform(0.1, 0.3)
        if name == "gradient" and not pure:
            width *= 2.5
        a = _bands(rng, _across(rng, shape), n, width)
    elif name == "grains":
        seeds = rng.uniform((0, 0), shape, (n + int(rng.integers(0, 2 * n + 1)), 2))
        roles = np.concatenate([np.arange(n), rng.integers(0, n, len(seeds) - n)])
        yy, xx = _grid(shape)
        distance = np.hypot(yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1])
        labels = roles[distance.argmin(-1)]
        blur = rng.uniform(0.3, 0.7) if pure else rng.uniform(1.0, 2.5)
        one_hot = (labels[..., None] == np.arange(n)).astype(float)
        a = ndimage.gaussian_filter(one_hot, (blur, blur, 0), mode="nearest")
    else:
        a = np.zeros((*shape, n))
        a[..., 0] = 1.0
        small = name == "precipitates"
        radius = (1.2, 3.0) if small else (0.07 * min(shape), 0.14 * min(shape))
        shell = not small and n >= 3 and rng.random() < 0.5
        for role in range(1, n - 1 if shell else n):
            placed = _discs(rng, a, role, radius, pure)
        if shell:
            # The last phase coats the particles of the one before.
            for centre, r in placed:
                outer = _disc(shape, centre, r + rng.uniform(2.5, 4.0), 0.5)
                coat = np.clip(outer - a[..., n - 2], 0.0, None) * a[..., 0]
                a[..., 0] -= coat
                a[..., n - 1] += coat
    a = np.clip(a, 0.0, None)
    a /= a.sum(-1, keepdims=True)
    return a[..., rng.permutation(n)]


def _abundances(rng: Rng, p: Params) -> tuple[np.ndarray, float]:
    """Abundances that meet the presence and purity rules, and max_fraction."""
    n, pure = p["n_endmembers"], p["pure_pixels"]
    return present_abundances(
        rng,
        lambda: _structure(rng, p["structure"], p["shape"], n, pure),
        pure=pure,
        pure_above=0.99,
        what=p["structure"],
    )


# --------------------------------------------------------------------------
# Intensity and artefacts
# --------------------------------------------------------------------------


def _intensity(rng: Rng, p: Params) -> np.ndarray | None:
    """Relative intensity, mean 1, spanning +/- the variation: a thickness
    wedge plus a smooth field (TEM foil), or a smooth field (SEM topography)."""
    if p["intensity_variation"] == 0:
        return None
    shape = p["shape"]
    f = _smooth_random_field(rng, shape, rng.uniform(3.0, 10.0))
    if p["microscope"] == "TEM":
        f = rng.uniform(0.5, 2.0) * _across(rng, shape) / max(shape) + 0.3 * f
    f -= f.mean()
    return 1 + p["intensity_variation"] * f / np.abs(f).max()


def _artefacts(
    rng: Rng, p: Params, clean: np.ndarray, parent: np.ndarray, energy: float
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Zero, system and sum peaks (pixels, channels), in counts; ``parent``
    holds each pixel's counts in the strongest line, at ``energy``."""
    dose = p["dose"]
    zero = _peaks(p, np.array([0.0]), np.array([log_uniform_at(rng.random(), 0.3, 3)]))
    added = np.broadcast_to(dose * zero, clean.shape).copy()
    kinds = ["zero_peak"]
    element = _pick(rng.random(), _SYSTEM[p["microscope"]])
    system = _lines(p, {element: 1})
    if system:
        energies = np.array([line[1] for line in system])
        counts = np.array([line[2] for line in system])
        peaks = _peaks(p, energies, counts).sum(0)
        added += rng.uniform(0.01, 0.05) * dose * peaks / peaks.sum()
        kinds.append(f"system_{element}")
    if rng.random() < 0.5 and 2 * energy < _channel_edges(p)[-1]:
        # Pile-up grows with the square of the count rate.
        strength = log_uniform_at(rng.random(), 0.002, 0.01)
        counts = strength * parent**2 / parent.mean()
        added += counts[:, None] * _peaks(p, np.array([2 * energy]), np.ones(1))
        kinds.append("sum_peak")
    return added, tuple(kinds)


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def _signal(data: np.ndarray, p: Params, title: str, elements: list[str]) -> Any:
    exspy = _exspy()
    navigation = {"units": "nm", "scale": p["pixel_size"], "offset": 0.0}
    energy = {
        "name": "Energy",
        "units": "keV",
        "scale": p["dispersion"] / 1000,
        "offset": p["energy_offset"],
    }
    kind = "EDSSEMSpectrum" if p["microscope"] == "SEM" else "EDSTEMSpectrum"
    s = getattr(exspy.signals, kind)(
        data,
        axes=[
            {"size": data.shape[0], "name": "y", **navigation},
            {"size": data.shape[1], "name": "x", **navigation},
            {"size": data.shape[2], **energy},
        ],
    )
    s.metadata.General.title = title
    s.set_microscope_parameters(
        beam_energy=p["beam_energy"],
        elevation_angle=p["takeoff_angle"],
        energy_resolution_MnKa=p["fwhm_mnka"],
        display=False,
    )
    s.metadata.set_item("Sample.elements", sorted(elements))
    return s


# Top-level parameters that the description reports as drawn.
_DESCRIBED = (
    "microscope", "beam_energy", "dose", "structure", "pure_pixels",
    "intensity_variation", "fwhm_mnka", "window_cutoff", "continuum_share",
    "absorption_energy", "takeoff_angle", "pixel_size", "energy_offset",
    "dispersion", "n_channels",
)  # fmt: skip


def eds_scene(
    index: int, split: str = "development", **overrides: Any
) -> tuple[Any, GroundTruth, EDSDescription]:
    """Scene ``index`` of one split of the EDS family.

    The module docstring states what is drawn, in which order, the physics,
    and how the data depart from the ground truth.

    Parameters
    ----------
    index : int
        Scene number, >= 0.
    split : {"development", "held_out"}
        Which half of the family; the halves never share a random stream.
    **overrides
        Values for top-level parameters, which are otherwise drawn:
        ``n_endmembers`` (integer in [2, 6]), ``shape`` (pair of integers in
        [24, 256]), ``microscope`` ("SEM" or "TEM"), ``beam_energy``
        ([5, 300] kV; <= 40 kV is an SEM), ``n_channels`` (integer in
        [128, 4096]), ``dispersion`` ([1, 50] eV), ``dose`` ([1, 1e7]
        counts), ``pure_pixels`` (bool), ``structure`` (one of
        :data:`STRUCTURES`), ``intensity_variation`` ([0, 0.5]) and
        ``artefacts`` (bool). The others stay as drawn.

    Returns
    -------
    signal : exspy.signals.EDSSEMSpectrum or exspy.signals.EDSTEMSpectrum
        Counts (float64 integers), shape (ny, nx, n_channels), energy in keV.
    truth : GroundTruth
        Endmembers, abundances, intensity map and artefacts.
    description : EDSDescription
        What was drawn.

    Raises
    ------
    ValueError
        For a bad ``index``, ``split`` or override value, or a beam energy
        that does not suit the requested microscope.
    TypeError
        For an override that is not a top-level parameter.
    """
    rng = scene_rng(_ENTROPY, split, index, _SPLITS)
    p = _top_level(rng, overrides)
    phases, spectra, lines = _draw_phases(rng, p)
    abundances, max_fraction = _abundances(rng, p)
    intensity = _intensity(rng, p)

    ny, nx = p["shape"]
    relative = np.ones(p["shape"]) if intensity is None else intensity
    endmembers = spectra * (
        p["dose"] / (relative * (abundances @ spectra).sum(-1)).mean()
    )
    noiseless = relative[..., None] * (abundances @ endmembers)
    clean = noiseless.reshape(ny * nx, -1)
    artefacts, kinds = None, ()
    if p["artefacts"]:
        # The strongest line of the scene: the largest channel of the mean
        # spectrum, read as the line nearest to it.
        found = [f for name in phases for f in _lines(p, COMPOUNDS[name])]
        centres = p["energy_offset"] + p["dispersion"] / 1000 * np.arange(
            p["n_channels"]
        )
        peak = centres[clean.mean(0).argmax()]
        energy = min((f[1] for f in found), key=lambda e: abs(e - peak), default=peak)
        channel = int(np.abs(centres - energy).argmin())
        parent = clean[:, channel] / max(clean[:, channel].mean(), 1e-300)
        parent *= clean[:, max(channel - 2, 0) : channel + 3].sum(1).mean()
        added, kinds = _artefacts(rng, p, clean, parent, energy)
        artefacts = added.reshape(ny, nx, -1)
        clean = clean + added
    data = rng.poisson(clean).astype(np.float64).reshape(ny, nx, -1)

    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=tuple(phases),
        noiseless=noiseless,
        intensity=intensity,
        artefacts=artefacts,
    )
    purity = "pure_pixels" if p["pure_pixels"] else "no_pure_pixels"
    tags = (
        ("intensity_varying", p["intensity_variation"] >= 0.1),
        ("low_dose", p["dose"] < 300),
        ("artefacts", bool(kinds)),
    )
    description = EDSDescription(
        generator="eds",
        split=split,
        index=int(index),
        modality="eds",
        subgroups=(purity, *(tag for tag, applies in tags if applies)),
        n_endmembers=len(phases),
        shape=(ny, nx),
        phases=truth.names,
        lines=lines,
        max_fraction=max_fraction,
        artefacts=kinds,
        **{k: p[k] for k in _DESCRIBED},
    )
    elements = sorted({el for name in phases for el in COMPOUNDS[name]})
    title = f"EDS {split} scene {index}: {' + '.join(truth.names)}"
    return _signal(data, p, title, elements), truth, description


def eds_family(
    split: str = "development", n_scenes: int = 30, first: int = 0
) -> Iterator[tuple[Any, GroundTruth, EDSDescription]]:
    """The scenes of ``split`` from ``first`` to ``first + n_scenes - 1``.

    The arguments are checked at once; each scene is generated when the
    iterator reaches it.

    Parameters
    ----------
    split : {"development", "held_out"}
        Which half of the family.
    n_scenes : int
        Number of scenes, >= 0.
    first : int
        First index, >= 0.

    Returns
    -------
    iterator of tuple
        ``(signal, truth, description)`` of each scene, in index order.
    """
    return scene_range(eds_scene, split, n_scenes, first, _SPLITS)
