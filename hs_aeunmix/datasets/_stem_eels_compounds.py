"""The compounds of the STEM-EELS scenes (:mod:`._stem_eels`) and their edges.

:data:`COMPOUNDS` lists each compound's formula, Drude plasmon energy and,
per edge, its chemical shift and near-edge peaks; edge onsets come from
eXSpy's element database (:func:`_onset`). Part of the independent STEM-EELS
simulator: it shares nothing with the family's EELS library
(:mod:`._eels_materials`), on purpose.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Peaks = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class _Compound:
    name: str
    formula: str
    plasmon: float  # Drude plasmon energy, eV
    # shell -> (chemical shift in eV, peaks as (offset from the shifted onset
    # in eV, FWHM in eV, height in edge jumps)); a shell of the formula's
    # elements that is not listed has no shift and no peaks.
    edges: Mapping[str, tuple[float, Peaks]]


def _c(name: str, formula: str, plasmon: float, **edges: Any) -> _Compound:
    return _Compound(name, formula, plasmon, edges)


# Peak positions and heights follow the published spectra in their main
# features (which peaks exist, their order and rough splittings), not in
# detail.
# fmt: off
COMPOUNDS: tuple[_Compound, ...] = (
    _c("TiO2 (rutile)", "TiO2", 25.5,
      Ti_L3=(0, ((1.8, 0.6, 4), (4.3, 1.6, 5), (7.2, 1.2, 3.5), (9.5, 2, 4))),
      O_K=(-1, ((-0.2, 1, 1.6), (2.5, 1.3, 1.8), (8, 4, 1), (14, 5, 0.7)))),
    _c("Ti2O3", "Ti2O3", 24.0,
      Ti_L3=(-0.5, ((1, 1.5, 3.8), (3.2, 2, 3), (6.6, 1.8, 2.6), (8.7, 2.2, 2.2))),
      O_K=(-0.5, ((0, 1.4, 1.2), (3, 2, 1), (9, 5, 1), (16, 6, 0.6)))),
    _c("SrTiO3", "SrTiO3", 22.5,
      Ti_L3=(0, ((1.9, 0.6, 4.2), (4.2, 1.3, 5.5), (7.3, 1.2, 3.6), (9.5, 2, 4.2))),
      O_K=(-1, ((0, 1, 1.3), (2.8, 1.3, 1.4), (6, 3, 0.8), (11, 4, 1))),
      Sr_M23=(0, ((0, 3, 0.5), (11, 3, 0.4)))),
    _c("BaTiO3", "BaTiO3", 22.0,
      Ti_L3=(0, ((1.8, 0.7, 3.9), (4, 1.5, 4.8), (7.2, 1.3, 3.4), (9.4, 2.1, 4))),
      O_K=(-1, ((-0.2, 1.1, 1.2), (2.6, 1.4, 1), (7, 3, 0.9), (13, 5, 0.8))),
      Ba_M45=(0, ((0.5, 1.8, 6), (15.5, 1.9, 7.5)))),
    _c("LaMnO3", "LaMnO3", 21.0,
      Mn_L3=(0, ((1.8, 2, 6.5), (12.3, 2.5, 3))),
      O_K=(-1, ((-1.5, 1.2, 0.9), (4.5, 2.5, 0.8), (11, 4, 1))),
      La_M45=(0, ((0.5, 1.6, 8), (17.5, 1.8, 9)))),
    _c("MnO", "MnO", 21.0,
      Mn_L3=(0, ((0.5, 1.2, 8), (2, 1.5, 2.5), (11.5, 2, 3.5))),
      O_K=(0, ((-0.5, 1.2, 0.8), (6, 3, 1.1), (11, 5, 0.8)))),
    _c("MnO2", "MnO2", 23.0,
      Mn_L3=(0, ((3.5, 2, 6.5), (13.5, 2.5, 3.2))),
      O_K=(-1, ((-0.5, 1.1, 1.5), (2.5, 1.3, 0.8), (10, 5, 1)))),
    _c("Cr2O3", "Cr2O3", 24.0,
      Cr_L3=(0, ((2, 1.2, 6), (4, 1.5, 2), (11.5, 2.2, 3))),
      O_K=(-1, ((-0.5, 1.1, 1.2), (1.8, 1.3, 0.9), (9, 5, 1)))),
    _c("Fe2O3 (hematite)", "Fe2O3", 22.5,
      Fe_L3=(0, ((0.3, 1, 2), (1.9, 1.4, 6.5), (14.8, 2.4, 2.8))),
      O_K=(-1, ((-1.5, 1, 1.3), (0.2, 1.2, 1), (8, 5, 1.1), (16, 5, 0.6)))),
    _c("FeO (wustite)", "FeO", 22.0,
      Fe_L3=(0, ((0.3, 1.4, 6.5), (2.3, 1.5, 2), (13.3, 2.4, 2.8))),
      O_K=(0, ((-1, 1.5, 0.5), (6, 4, 1.2), (12, 5, 0.7)))),
    _c("Fe3O4 (magnetite)", "Fe3O4", 22.5,
      Fe_L3=(0, ((0.6, 1.4, 4.5), (1.9, 1.5, 4), (14.2, 2.6, 2.6))),
      O_K=(-1, ((-1, 1.2, 1), (0.8, 1.3, 0.6), (8, 5, 1.1), (15, 5, 0.6)))),
    _c("NiO", "NiO", 22.5,
      Ni_L3=(-2, ((0.5, 1, 7), (2.5, 1.2, 1.8), (18.8, 2, 2.5))),
      O_K=(0, ((0, 1, 1.2), (6, 3, 1), (10, 3, 0.9), (18, 6, 0.6)))),
    _c("CoO", "CoO", 22.0,
      Co_L3=(0, ((-0.5, 1.2, 6.5), (1.3, 1.3, 2), (15.5, 2.2, 2.8))),
      O_K=(0, ((-0.3, 1.2, 0.9), (6, 4, 1), (13, 5, 0.6)))),
    _c("CuO", "CuO", 22.0,
      Cu_L3=(-1, ((0, 1, 9), (20, 1.3, 4))),
      O_K=(-1, ((-1.5, 0.9, 1.6), (9, 5, 1)))),
    _c("ZnO", "ZnO", 19.0,
      Zn_L3=(0, ((10, 6, 0.8), (20, 8, 0.6))),
      O_K=(0, ((3, 2, 0.9), (6, 2, 0.9), (9, 3, 1), (17, 6, 0.6)))),
    _c("Al2O3 (corundum)", "Al2O3", 24.0,
      O_K=(3, ((3.5, 2.5, 1.8), (10, 6, 1.1), (23, 8, 0.5))),
      Al_L23=(5, ((0.6, 1.2, 1.5), (3.5, 1.5, 1.2), (21, 8, 0.7))),
      Al_K=(6, ((1, 3, 1.3), (7, 5, 0.8)))),
    _c("SiO2 (amorphous)", "SiO2", 22.5,
      O_K=(3, ((3, 3, 1.9), (23, 10, 0.8))),
      Si_L3=(6.5, ((0.5, 1, 1.5), (2.8, 1.2, 1.3), (9.5, 5, 1), (23.5, 10, 0.6))),
      Si_K=(2, ((6, 3, 1.5),))),
    _c("MgO", "MgO", 22.5,
      O_K=(1, ((4, 2, 1.3), (7, 2, 1), (13, 4, 1.1), (25, 8, 0.7))),
      Mg_K=(5, ((2, 3, 1.2), (11, 5, 0.8)))),
    _c("CaO", "CaO", 20.5,
      Ca_L3=(0, ((1.9, 0.5, 1), (3.3, 0.6, 5.5), (5.3, 0.5, 0.9), (6.7, 0.7, 4.5))),
      O_K=(0, ((0, 1.2, 0.8), (5, 3, 1.2), (12, 5, 0.9)))),
    _c("CeO2", "CeO2", 26.0,
      O_K=(-1, ((-1, 1, 1.4), (2, 1.3, 1), (6, 3, 1), (12, 5, 0.7))),
      Ce_M45=(0, ((0.5, 1.8, 6.5), (5.5, 2, 1.2), (18.5, 2, 7.5), (23.5, 2, 1.3)))),
    _c("CaCO3 (calcite)", "CaCO3", 22.0,
      C_K=(4, ((2.3, 0.8, 4), (13.5, 3, 1.6))),
      Ca_L3=(0, ((2, 0.5, 1.2), (3.4, 0.6, 5), (5.4, 0.5, 1.1), (6.8, 0.7, 4.2))),
      O_K=(0, ((0.7, 1, 1.6), (8, 4, 1.2), (18, 6, 0.8)))),
    _c("h-BN", "BN", 26.5,
      B_K=(0, ((3.8, 0.6, 5), (10, 3, 2))),
      N_K=(0, ((0.3, 0.8, 4), (7.5, 3, 1.6), (15, 6, 0.7)))),
    _c("TiN", "TiN", 24.5,
      Ti_L3=(-1, ((2.5, 2.2, 3.5), (8.2, 2.6, 2.5))),
      N_K=(-4, ((1.5, 1.5, 1.5), (4, 2, 1.2), (12, 5, 1)))),
    _c("CrN", "CrN", 24.0,
      Cr_L3=(0, ((1, 2, 5), (9.5, 2.5, 2.6))),
      N_K=(-3, ((0, 1.5, 1.2), (3, 2, 1), (11, 5, 1)))),
    _c("Si3N4", "Si3N4", 23.5,
      N_K=(0, ((4, 4, 1.6), (14, 8, 0.9))),
      Si_L3=(3.5, ((1.5, 2, 1), (9.5, 5, 0.8))),
      Si_K=(1, ((6, 3, 1),))),
    _c("GaN", "GaN", 19.5,
      N_K=(0, ((0.5, 1.5, 1), (3.5, 2, 1.1), (6.5, 2.5, 1), (14, 6, 0.7))),
      Ga_L3=(0, ((4, 4, 0.5),))),
    _c("AlN", "AlN", 21.0,
      N_K=(0, ((1, 2, 0.9), (4.5, 2.5, 1.4), (9, 3, 1), (17, 6, 0.6))),
      Al_L23=(3, ((1, 1.5, 1.2), (4, 2, 1))),
      Al_K=(5, ((2, 3, 1.1),))),
    _c("amorphous C", "C", 24.0, C_K=(0.0, ((1.0, 1.5, 1.5), (8, 8, 1.2)))),
    _c("graphite", "C", 27.0,
      C_K=(0, ((1.5, 0.6, 3.5), (7.7, 0.4, 2), (9, 5, 1.5), (18, 6, 0.8)))),
    _c("diamond", "C", 33.0,
      C_K=(4.5, ((0.7, 0.5, 2.2), (3.5, 3, 1.6), (8.5, 3, 1.2), (13.5, 6, 0.9)))),
    _c("SiC", "SiC", 22.0,
      C_K=(0.5, ((5.5, 3, 1.4), (13.5, 6, 1))),
      Si_L3=(2, ((2, 2, 0.9), (8, 4, 0.8))),
      Si_K=(0, ((6, 3, 0.9),))),
    _c("TiC", "TiC", 24.5,
      C_K=(-1, ((0, 1.5, 1.1), (5, 2, 1), (13, 6, 0.9))),
      Ti_L3=(-0.5, ((2.3, 2, 3), (8, 2.5, 2.2)))),
    _c("B4C", "B4C", 25.0,
      B_K=(0, ((4, 1.5, 1.5), (12, 6, 1))),
      C_K=(0, ((1.5, 1.5, 0.8), (9, 5, 1.2)))),
    _c("CaF2", "CaF2", 20.0,
      Ca_L3=(0, ((1.6, 0.5, 0.8), (3.3, 0.6, 6), (5, 0.5, 0.6), (6.6, 0.7, 5))),
      F_K=(0, ((5, 2, 1.4), (11, 4, 1.2), (21, 8, 0.6)))),
    _c("Si", "Si", 16.7,
      Si_L3=(0, ((0.6, 0.7, 0.6), (9, 5, 0.5))), Si_K=(0, ((3, 2, 0.6),))),
    _c("Ti", "Ti", 17.6, Ti_L3=(-1.5, ((2.0, 2.5, 2.6), (8.0, 2.8, 1.8)))),
    _c("Fe", "Fe", 23.0, Fe_L3=(0.0, ((0.8, 2.2, 5.5), (13.8, 2.6, 2.0)))),
    _c("Co", "Co", 21.0, Co_L3=(0.0, ((0.0, 2.2, 5.5), (15.0, 2.6, 2.0)))),
    _c("Ni", "Ni", 20.0, Ni_L3=(-2.0, ((0.0, 2.0, 5.0), (17.2, 2.4, 1.8)))),
    _c("Cu", "Cu", 20.0, Cu_L3=(0.0, ((2, 3, 0.6), (7, 5, 0.5)))),
)

_ELEMENT_SHELLS = {
    "B": ("B_K",), "C": ("C_K",), "N": ("N_K",), "O": ("O_K",), "F": ("F_K",),
    "Mg": ("Mg_K",), "Al": ("Al_L23", "Al_K"), "Si": ("Si_L3", "Si_K"),
    "Ca": ("Ca_L3",), "Ti": ("Ti_L3",), "Cr": ("Cr_L3",), "Mn": ("Mn_L3",),
    "Fe": ("Fe_L3",), "Co": ("Co_L3",), "Ni": ("Ni_L3",), "Cu": ("Cu_L3",),
    "Zn": ("Zn_L3",), "Ga": ("Ga_L3",), "Sr": ("Sr_M45", "Sr_M23", "Sr_L3"),
    "Ba": ("Ba_M45",), "La": ("La_M45",), "Ce": ("Ce_M45",),
}
# fmt: on

# Edges outside the hydrogenic model: shell -> (database subshell of the
# onset, delay of the step centre after the onset in eV, step width in eV,
# step height in O K jumps, as if O K were at this onset, scaled as E^-2).
_STEP_EDGES = {
    "Al_L23": ("L2,3", 5.0, 3.0, 3.0),
    "Sr_M45": ("M5", 15.0, 10.0, 1.5),
    "Sr_M23": ("M3", 1.0, 2.0, 0.3),
    "Ba_M45": ("M5", 2.0, 2.0, 0.8),
    "La_M45": ("M5", 2.0, 2.0, 0.8),
    "Ce_M45": ("M5", 2.0, 2.0, 0.8),
}
_EDGE_LABELS = {"K": "K", "L3": "L2,3", "L23": "L2,3", "M45": "M4,5", "M23": "M2,3"}


def _exspy() -> Any:
    try:
        import exspy
    except ImportError as error:  # pragma: no cover - exspy is the eels extra
        raise ImportError(
            "The STEM-EELS scenes are built with exspy: pip install exspy"
        ) from error
    return exspy


def _composition(formula: str) -> dict[str, int]:
    return {el: int(k or 1) for el, k in re.findall(r"([A-Z][a-z]?)(\d*)", formula)}


@functools.cache
def _onset(shell: str) -> float:
    """Tabulated onset (eV) of ``shell`` in eXSpy's element database."""
    element, subshell = shell.split("_")
    subshell = _STEP_EDGES[shell][0] if shell in _STEP_EDGES else subshell
    energies = _exspy().material.elements[element].Atomic_properties.Binding_energies
    return float(energies[subshell]["onset_energy (eV)"])


def _edge_onsets(compound: _Compound) -> dict[str, float]:
    """Onset of every edge of ``compound``, chemical shift included."""
    return {
        shell: _onset(shell) + compound.edges.get(shell, (0.0, ()))[0]
        for element in _composition(compound.formula)
        for shell in _ELEMENT_SHELLS[element]
    }
