"""The family's EELS material library: elements and compounds, their edges.

Each material lists its ionisation edges (onset, shape, near-edge peaks,
chemical shifts); :func:`_draw_eels` draws a scene's materials, energy window,
dispersion and resolution, and renders their spectra with the hydrogenic
edges of :mod:`hs_aeunmix.datasets._eels` (see
:mod:`hs_aeunmix.datasets._family` for how scenes are drawn).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hs_aeunmix.datasets._common import (
    _FWHM_TO_SIGMA,
    _MAX_ATTEMPTS,
    _MIN_SPECTRAL_ANGLE,
    _log_uniform,
    _min_spectral_angle,
    _Spectra,
)
from hs_aeunmix.datasets._eels import (
    _CONTINUUM_REFERENCE_OFFSET_EV,
    _hydrogenic_edge,
    _lorentzian,
    _NearEdgePeak,
)

_EELS_WINDOW_LIMITS_EV = (60.0, 3000.0)
_EELS_MIN_WIDTH_EV = 30.0
_EELS_DISPERSION_RANGE = (0.1, 1.0)
_EELS_RESOLUTION_RANGE = (0.3, 1.5)
_EELS_FINE_STEP_EV = 0.1


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
