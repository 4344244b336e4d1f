"""EELS endmember library: power-law backgrounds, hydrogenic edges, white lines.

Each material is a power-law background plus hydrogenic core-loss
cross-sections (:class:`exspy.components.EELSCLEdge`, no downloaded
database) and Lorentzian near-edge peaks, convolved with the instrumental
resolution. :func:`eels_signal` wraps counts in an ``EELSSpectrum`` with the
microscope parameters of the library.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
from hyperspy.signals import Signal1D
from scipy import ndimage

_logger = logging.getLogger(__name__)

# Nion UltraSTEM conditions of the experimental Pt/Co/Ru/Pt dataset of the
# paper (100 kV); the angles are typical aberration-corrected STEM-EELS values.
_BEAM_ENERGY_KEV = 100.0
_CONVERGENCE_ANGLE_MRAD = 30.0
_COLLECTION_ANGLE_MRAD = 40.0
# Overall instrumental resolution (source energy spread + spectrometer).
_ENERGY_RESOLUTION_FWHM_EV = 1.0
# Near-edge peak heights and edge-to-background ratios are given relative to
# the continuum cross-section this far above the edge onset, where the
# hydrogenic model is reliable and fine structure has faded.
_CONTINUUM_REFERENCE_OFFSET_EV = 50.0
# Extra channels computed on both sides so that the resolution convolution
# does not see the window edges.
_PADDING_CHANNELS = 25


@dataclass(frozen=True)
class _NearEdgePeak:
    """Lorentzian near-edge peak (white line, pi* peak, ...).

    ``height`` is relative to the continuum of the parent edge
    ``_CONTINUUM_REFERENCE_OFFSET_EV`` above its onset.
    """

    energy: float
    fwhm: float
    height: float


@dataclass(frozen=True)
class _CoreLossEdge:
    """Hydrogenic ionisation edge; ``atoms`` is the stoichiometric weight."""

    subshell: str
    atoms: float
    peaks: tuple[_NearEdgePeak, ...] = ()


@dataclass(frozen=True)
class _EELSMaterial:
    """One EELS endmember: background plus core-loss edges.

    ``edge_to_background`` is the ratio of the continuum edge signal (sum of
    all edges, without near-edge peaks) to the background
    ``_CONTINUUM_REFERENCE_OFFSET_EV`` above the first edge onset in the
    window. ``relative_intensity`` sets the total counts of this endmember
    relative to the others (thickness, density and atomic number change the
    total inelastic scattering).
    """

    name: str
    edges: tuple[_CoreLossEdge, ...]
    background_exponent: float
    edge_to_background: float
    relative_intensity: float


@dataclass(frozen=True)
class _EELSEndmemberSet:
    materials: tuple[_EELSMaterial, ...]
    energy_offset_ev: float
    energy_scale_ev: float
    n_channels: int
    pixel_size_nm: float
    description: str


def _white_lines(
    l3_energy: float, l2_energy: float, fwhm: float, l3_height: float
) -> tuple[_NearEdgePeak, _NearEdgePeak]:
    # Statistical 2:1 L3:L2 branching ratio (2j + 1 degeneracy of the 2p3/2
    # and 2p1/2 levels); equal widths make the area ratio the height ratio.
    return (
        _NearEdgePeak(l3_energy, fwhm, l3_height),
        _NearEdgePeak(l2_energy, fwhm, l3_height / 2.0),
    )


# Pt/Co/Ni multilayer analogue of the paper's Pt/Co/Ru/Pt stack, 700-899 eV at
# 1 eV per channel (200 channels). The Ru M4,5 edge of the paper cannot be
# computed with hydrogenic cross-sections (K and L shells only), so the second
# magnetic layer is Ni. As in the paper, the "Pt" endmember is background
# only: the Pt M4,5 edge is at 2122 eV and the weak, broad Pt N edges are
# neglected. Onsets are those of the exspy elements database (Co L3 779 eV,
# L2 794 eV; Ni L3 855 eV, L2 872 eV).
_THREE_ENDMEMBERS = _EELSEndmemberSet(
    materials=(
        _EELSMaterial(
            name="Co",
            edges=(
                _CoreLossEdge(
                    "Co_L3", 1.0, _white_lines(779.0, 794.0, fwhm=3.0, l3_height=3.0)
                ),
            ),
            background_exponent=3.0,
            edge_to_background=0.25,
            relative_intensity=1.0,
        ),
        _EELSMaterial(
            name="Ni",
            edges=(
                _CoreLossEdge(
                    "Ni_L3", 1.0, _white_lines(855.0, 872.0, fwhm=2.5, l3_height=2.2)
                ),
            ),
            background_exponent=2.9,
            edge_to_background=0.2,
            relative_intensity=0.85,
        ),
        _EELSMaterial(
            name="Pt",
            edges=(),
            background_exponent=2.7,
            edge_to_background=0.0,
            relative_intensity=1.15,
        ),
    ),
    energy_offset_ev=700.0,
    energy_scale_ev=1.0,
    n_channels=200,
    pixel_size_nm=0.12,
    description="Pt/Co/Ni multilayer analogue, Co and Ni L2,3 edges",
)

# Oxide/carbon/nitride set, 250-1152 eV at 1 eV per channel (903 channels as
# in the paper): C K (284 eV), N K (401 eV), Ti L2,3 (456 eV), O K (532 eV)
# and Fe L2,3 (708 eV).
_FOUR_ENDMEMBERS = _EELSEndmemberSet(
    materials=(
        _EELSMaterial(
            name="TiO2",
            edges=(
                # Ti4+ (d0): the crystal field splits L3 and L2 into t2g/eg
                # doublets and the L3:L2 ratio is close to 1, far from the
                # statistical 2:1 of the late transition metals.
                _CoreLossEdge(
                    "Ti_L3",
                    1.0,
                    (
                        _NearEdgePeak(457.8, 1.2, 1.2),
                        _NearEdgePeak(460.0, 2.0, 2.0),
                        _NearEdgePeak(463.2, 2.0, 1.3),
                        _NearEdgePeak(465.4, 2.8, 1.6),
                    ),
                ),
                # O K of TiO2: O 2p - Ti 3d (t2g, eg) hybridised pre-peaks.
                _CoreLossEdge(
                    "O_K",
                    2.0,
                    (
                        _NearEdgePeak(531.0, 2.0, 1.2),
                        _NearEdgePeak(533.8, 2.5, 1.0),
                        _NearEdgePeak(543.0, 8.0, 0.6),
                    ),
                ),
            ),
            background_exponent=3.2,
            edge_to_background=0.3,
            relative_intensity=1.0,
        ),
        _EELSMaterial(
            name="Fe2O3",
            edges=(
                _CoreLossEdge(
                    "O_K",
                    3.0,
                    (
                        _NearEdgePeak(530.2, 2.0, 0.9),
                        _NearEdgePeak(541.0, 8.0, 0.6),
                    ),
                ),
                _CoreLossEdge(
                    "Fe_L3", 2.0, _white_lines(709.5, 722.7, fwhm=2.8, l3_height=3.5)
                ),
            ),
            background_exponent=3.0,
            edge_to_background=0.2,
            relative_intensity=1.2,
        ),
        _EELSMaterial(
            name="C",
            edges=(
                # Amorphous carbon: 1s -> pi* at 285 eV and a broad sigma*.
                _CoreLossEdge(
                    "C_K",
                    1.0,
                    (
                        _NearEdgePeak(285.3, 2.0, 0.8),
                        _NearEdgePeak(292.5, 9.0, 0.5),
                    ),
                ),
            ),
            background_exponent=3.4,
            edge_to_background=0.3,
            relative_intensity=0.8,
        ),
        _EELSMaterial(
            name="Si3N4",
            edges=(
                # Only N K falls in the window: Si L2,3 (99 eV) contributes to
                # the background and Si K (1839 eV) is above the window.
                _CoreLossEdge(
                    "N_K",
                    4.0,
                    (
                        _NearEdgePeak(404.5, 4.0, 0.5),
                        _NearEdgePeak(410.0, 7.0, 0.4),
                    ),
                ),
            ),
            background_exponent=3.1,
            edge_to_background=0.15,
            relative_intensity=1.0,
        ),
    ),
    energy_offset_ev=250.0,
    energy_scale_ev=1.0,
    n_channels=903,
    pixel_size_nm=0.5,
    description="TiO2, Fe2O3, amorphous C and Si3N4 (C K, N K, Ti L2,3, O K, Fe L2,3)",
)

_EELS_ENDMEMBER_SETS = {3: _THREE_ENDMEMBERS, 4: _FOUR_ENDMEMBERS}


def _eels_set(n_endmembers: object) -> _EELSEndmemberSet:
    is_integer = isinstance(n_endmembers, int | np.integer) and not isinstance(
        n_endmembers, bool
    )
    if not is_integer or n_endmembers not in _EELS_ENDMEMBER_SETS:
        raise ValueError(
            "n_endmembers must be 3 (Co, Ni, Pt; 200 channels) or 4 (TiO2, "
            f"Fe2O3, C, Si3N4; 903 channels), got {n_endmembers!r}."
        )
    return _EELS_ENDMEMBER_SETS[int(n_endmembers)]


def _lorentzian(energy: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    half_width = fwhm / 2.0
    return 1.0 / (1.0 + ((energy - centre) / half_width) ** 2)


def _exspy():
    """The exspy package, which the EELS and EDS generators need (an extra)."""
    try:
        import exspy
        import exspy.material
    except ImportError as error:
        raise ImportError(
            "The synthetic EELS and EDS datasets are built with exspy (core-loss "
            "edges, X-ray lines), which is not installed. Install it with: "
            "pip install 'hs-aeunmix[eels]'"
        ) from error
    return exspy


def _hydrogenic_edge(subshell: str, energy_scale: float):
    EELSCLEdge = _exspy().components.EELSCLEdge
    edge = EELSCLEdge(subshell, GOS="hydrogenic")
    edge.set_microscope_parameters(
        E0=_BEAM_ENERGY_KEV,
        alpha=_CONVERGENCE_ANGLE_MRAD,
        beta=_COLLECTION_ANGLE_MRAD,
        energy_scale=energy_scale,
    )
    return edge


def _material_spectrum(
    material: _EELSMaterial, energy: np.ndarray, window_start: float, scale: float
) -> np.ndarray:
    """Unconvolved spectrum on ``energy``, background equal to 1 at reference."""
    core_loss = np.zeros_like(energy)
    continuum_at_reference = 0.0
    reference_energy = window_start + _CONTINUUM_REFERENCE_OFFSET_EV
    if material.edges:
        onsets = []
        edges = []
        for edge_spec in material.edges:
            edge = _hydrogenic_edge(edge_spec.subshell, scale)
            onsets.append(edge.onset_energy.value)
            edges.append(edge)
        reference_energy = min(onsets) + _CONTINUUM_REFERENCE_OFFSET_EV
        for edge_spec, edge, onset in zip(material.edges, edges, onsets, strict=True):
            continuum = edge_spec.atoms * edge.function(energy)
            step = edge_spec.atoms * float(
                edge.function(np.array([onset + _CONTINUUM_REFERENCE_OFFSET_EV]))[0]
            )
            for peak in edge_spec.peaks:
                continuum = continuum + step * peak.height * _lorentzian(
                    energy, peak.energy, peak.fwhm
                )
            core_loss += continuum
            continuum_at_reference += edge_spec.atoms * float(
                edge.function(np.array([reference_energy]))[0]
            )
    background = (energy / reference_energy) ** -material.background_exponent
    if continuum_at_reference > 0:
        core_loss *= material.edge_to_background / continuum_at_reference
    return background + core_loss


@functools.cache
def _eels_endmember_shapes(n_endmembers: int) -> np.ndarray:
    """Endmember spectra of a set, each normalised to a total of 1 count.

    The result is cached (the edge integration is the slow part) and
    read-only; callers scale it into new arrays.
    """
    endmember_set = _eels_set(n_endmembers)
    scale = endmember_set.energy_scale_ev
    padded_energy = endmember_set.energy_offset_ev + scale * np.arange(
        -_PADDING_CHANNELS, endmember_set.n_channels + _PADDING_CHANNELS
    )
    sigma_channels = _ENERGY_RESOLUTION_FWHM_EV / (2 * math.sqrt(2 * math.log(2)))
    sigma_channels /= scale
    shapes = np.empty((len(endmember_set.materials), endmember_set.n_channels))
    for index, material in enumerate(endmember_set.materials):
        spectrum = _material_spectrum(
            material, padded_energy, endmember_set.energy_offset_ev, scale
        )
        spectrum = ndimage.gaussian_filter1d(spectrum, sigma_channels, mode="nearest")
        spectrum = spectrum[_PADDING_CHANNELS:-_PADDING_CHANNELS]
        shapes[index] = spectrum / spectrum.sum()
    shapes.setflags(write=False)
    _logger.debug("Computed EELS endmember spectra for %d endmembers", n_endmembers)
    return shapes


def _eels_endmembers(endmember_set: _EELSEndmemberSet, dose: float) -> np.ndarray:
    """Endmember spectra in counts for the given dose (see ``eels_chequerboard``)."""
    shapes = _eels_endmember_shapes(len(endmember_set.materials))
    relative = np.array([m.relative_intensity for m in endmember_set.materials])
    relative = relative / relative.mean()
    return shapes * (relative[:, None] * dose * endmember_set.n_channels)


def _eels_signal(
    data: np.ndarray, endmember_set: _EELSEndmemberSet, title: str
) -> Signal1D:
    ny, nx, n_channels = data.shape
    pixel = endmember_set.pixel_size_nm
    axes = [
        {"name": "y", "units": "nm", "scale": pixel, "offset": 0.0, "size": ny},
        {"name": "x", "units": "nm", "scale": pixel, "offset": 0.0, "size": nx},
        {
            "name": "Energy loss",
            "units": "eV",
            "scale": endmember_set.energy_scale_ev,
            "offset": endmember_set.energy_offset_ev,
            "size": n_channels,
        },
    ]
    signal = _exspy().signals.EELSSpectrum(data, axes=axes)
    signal.metadata.General.title = title
    signal.metadata.set_item("Signal.quantity", "Electrons (Counts)")
    signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", _BEAM_ENERGY_KEV)
    signal.metadata.set_item(
        "Acquisition_instrument.TEM.convergence_angle", _CONVERGENCE_ANGLE_MRAD
    )
    signal.metadata.set_item(
        "Acquisition_instrument.TEM.Detector.EELS.collection_angle",
        _COLLECTION_ANGLE_MRAD,
    )
    return signal
