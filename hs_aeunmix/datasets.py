"""Synthetic spectrum images with a known ground truth.

The generators in this module build spectrum images that follow the linear
mixing model exactly (before noise), so that unmixing results can be scored
against the true endmembers and abundances with :mod:`hs_aeunmix.metrics`.

* :func:`eels_chequerboard` reproduces the synthetic STEM-EELS protocol of Brun
  et al. (Eur. Phys. J. Appl. Phys. 99, 28, 2024): chequerboard maps made of
  pure blocks, blurred by a mean filter so that pixels mix, linear mixing and
  Poisson noise.
* :func:`eels_no_pure_pixel` uses the same endmembers on a multilayer-like
  scene in which no pixel is pure and the specimen thickness varies, the
  situation in which the paper found that the chequerboard benchmark was too
  optimistic.
* :func:`raman_scene` generates Raman spectrum images of biomolecule mixtures
  on the abundance scenes of Georgiev et al. (PNAS 121, e2407439121, 2024),
  plus a cell-like scene.

The EELS endmembers are computed from physics: a power-law background
:math:`A E^{-r}` and hydrogenic core-loss cross-sections evaluated with
:class:`exspy.components.EELSCLEdge` (which needs no downloaded database),
with near-edge peaks (white lines, pi* peaks) added where the real spectra
have them. The Raman endmembers are sums of Lorentzian bands at literature
positions. Every random draw goes through ``numpy.random.default_rng``, so a
given ``random_state`` always produces the same dataset.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from hyperspy.signals import Signal1D
from scipy import ndimage, special

_logger = logging.getLogger(__name__)

__all__ = ["GroundTruth", "eels_chequerboard", "eels_no_pure_pixel", "raman_scene"]

RandomState = int | np.random.Generator | None


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground truth of a synthetic spectrum image.

    Before noise and artefacts, the data of the returned signal is exactly
    ``noiseless``, and ``noiseless`` is exactly
    ``abundances @ endmembers`` (or
    ``intensity[..., None] * (abundances @ endmembers)`` when ``intensity``
    is given).

    Attributes
    ----------
    endmembers : numpy.ndarray
        Pure spectra, shape ``(n_endmembers, n_channels)``, in the units of the
        signal data per unit abundance (counts for EELS).
    abundances : numpy.ndarray
        Fractional abundances, shape ``(ny, nx, n_endmembers)``, non-negative
        and summing to one over the last axis (to floating-point rounding).
    names : tuple of str
        Name of each endmember, in the order of ``endmembers``.
    noiseless : numpy.ndarray
        Clean data cube, shape ``(ny, nx, n_channels)``.
    intensity : numpy.ndarray or None
        Relative intensity (thickness) map, shape ``(ny, nx)``, that scales
        each mixed spectrum, or None when the intensity is uniform.
    artefacts : numpy.ndarray or None
        Additive signal that is not part of the mixing model (Raman baseline
        and cosmic-ray spikes), shape ``(ny, nx, n_channels)``, or None when
        there is none. The data are ``noiseless + artefacts + noise``.
    """

    endmembers: np.ndarray
    abundances: np.ndarray
    names: tuple[str, ...]
    noiseless: np.ndarray
    intensity: np.ndarray | None = None
    artefacts: np.ndarray | None = None

    @property
    def n_endmembers(self) -> int:
        """Number of endmembers."""
        return self.endmembers.shape[0]


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------


def _check_integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_shape(shape: object, minimum: int = 1) -> tuple[int, int]:
    if not isinstance(shape, tuple | list) or len(shape) != 2:
        raise ValueError(f"shape must be a (ny, nx) pair of integers, got {shape!r}.")
    ny = _check_integer("shape[0]", shape[0], minimum)
    nx = _check_integer("shape[1]", shape[1], minimum)
    return ny, nx


def _check_positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}.")
    return float(value)


# --------------------------------------------------------------------------
# EELS endmember library
# --------------------------------------------------------------------------

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


def _hydrogenic_edge(subshell: str, energy_scale: float):
    try:
        from exspy.components import EELSCLEdge
    except ImportError as error:
        raise ImportError(
            "exspy is required to compute the EELS core-loss edges of the "
            "synthetic datasets."
        ) from error
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
    try:
        from exspy.signals import EELSSpectrum
    except ImportError:
        _logger.warning("exspy is not available: returning a plain Signal1D.")
        signal = Signal1D(data, axes=axes)
    else:
        signal = EELSSpectrum(data, axes=axes)
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


# --------------------------------------------------------------------------
# EELS abundance scenes
# --------------------------------------------------------------------------


def _chequerboard_abundances(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_endmembers: int,
    block_size: int,
    filter_size: int,
) -> np.ndarray:
    ny, nx = shape
    n_blocks = (-(-ny // block_size), -(-nx // block_size))
    block_labels = rng.integers(n_endmembers, size=n_blocks)
    labels = np.repeat(np.repeat(block_labels, block_size, 0), block_size, 1)
    labels = labels[:ny, :nx]
    one_hot = (labels[..., None] == np.arange(n_endmembers)).astype(np.int64)
    # Integer box sums keep the fractions exact multiples of 1/filter_size**2,
    # and edge replication ("nearest") keeps every window full, so each
    # pixel's fractions add up to exactly filter_size**2 / filter_size**2.
    kernel = np.ones((filter_size, filter_size, 1), dtype=np.int64)
    counts = ndimage.convolve(one_hot, kernel, mode="nearest")
    return counts / float(filter_size**2)


def _normalise_rows(values: np.ndarray) -> np.ndarray:
    return values / values.sum(axis=-1, keepdims=True)


def _smooth_random_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float
) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    spread = field.std()
    return (field - field.mean()) / spread if spread > 0 else np.zeros(shape)


def _layered_abundances(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_endmembers: int,
    max_fraction: float,
) -> np.ndarray:
    ny, nx = shape
    row = np.arange(ny, dtype=float)[:, None]
    # A periodic multilayer along y (two periods over the image height) whose
    # layers are about as thin as their interfaces are diffuse, like the
    # 0.5 nm Ru layer of the paper seen with a finite probe: no layer is pure,
    # and the missing fraction goes to its neighbours rather than everywhere.
    mean_thickness = max(ny / (2 * n_endmembers), 2.0)
    # Natural peak purity of a mean layer, erf(T / (2 sqrt(2) w)), set to
    # max_fraction so that only a mild contraction remains for thicker layers.
    target_purity = min(max_fraction, 0.95)
    width = mean_thickness / (2 * math.sqrt(2) * special.erfinv(target_purity))
    # Virtual layers beyond the image keep its top and bottom rows mixed too.
    margin = 4 * (mean_thickness + width)
    thicknesses = [rng.uniform(-margin, 0.0)]
    while thicknesses[-1] < ny + margin:
        thicknesses.append(thicknesses[-1] + mean_thickness * rng.uniform(0.8, 1.2))
    flat_boundaries = np.array(thicknesses)
    roughness = ndimage.gaussian_filter1d(
        rng.standard_normal((flat_boundaries.size, nx)), max(nx / 10, 1.0), axis=1
    )
    roughness /= np.maximum(roughness.std(axis=1, keepdims=True), 1e-12)
    # Sorting keeps the rough interfaces ordered, so that each difference of
    # error functions below is non-negative.
    boundaries = np.sort(
        flat_boundaries[:, None] + 0.1 * mean_thickness * roughness, axis=0
    )
    below = 0.5 * (
        1 + special.erf((row[None] - boundaries[:, None, :]) / (math.sqrt(2) * width))
    )
    stack_order = rng.permutation(n_endmembers)
    layers = np.zeros((ny, nx, n_endmembers))
    for index in range(boundaries.shape[0] - 1):
        endmember = stack_order[index % n_endmembers]
        layers[..., endmember] += below[index] - below[index + 1]
    layers = _normalise_rows(np.maximum(layers, 0.0) + 1e-12)

    # A smooth Dirichlet field adds lateral compositional fluctuations.
    dirichlet = rng.dirichlet(np.full(n_endmembers, 2.0), size=shape)
    dirichlet = _normalise_rows(
        ndimage.gaussian_filter(dirichlet, sigma=(3.0, 3.0, 0.0), mode="reflect")
    )
    abundances = _normalise_rows(0.9 * layers + 0.1 * dirichlet)

    # One global contraction towards the simplex centre keeps the maps smooth
    # and the sum-to-one exact while bounding the largest fraction.
    uniform = 1.0 / n_endmembers
    largest = abundances.max()
    if largest > max_fraction:
        contraction = (max_fraction - uniform) / (largest - uniform)
        abundances = uniform + contraction * (abundances - uniform)
    return abundances


def _thickness_map(
    rng: np.random.Generator, shape: tuple[int, int], variation: float
) -> np.ndarray:
    ny, nx = shape
    if variation == 0 or ny * nx == 1:
        return np.ones(shape)
    # A wedge (FIB lamellae thicken away from their edge) plus smooth bumps.
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:ny, 0:nx]
    wedge = (np.cos(angle) * columns + np.sin(angle) * rows) / max(ny, nx)
    bumps = _smooth_random_field(rng, shape, max(min(shape) / 6, 1.0))
    field = wedge + 0.15 * bumps
    spread = field.max() - field.min()
    if spread == 0:
        return np.ones(shape)
    unit = (field - field.min()) / spread
    return 1.0 - variation + 2.0 * variation * unit


# --------------------------------------------------------------------------
# Public EELS generators
# --------------------------------------------------------------------------

_DEFAULT_EELS_DOSE = 200.0


def eels_chequerboard(
    n_endmembers: int = 3,
    *,
    shape: tuple[int, int] = (64, 64),
    block_size: int = 8,
    filter_size: int = 9,
    dose: float = _DEFAULT_EELS_DOSE,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic STEM-EELS chequerboard spectrum image with Poisson noise.

    Follows the protocol of Brun et al. (2024): the map is divided into
    ``block_size`` x ``block_size`` blocks, each assigned at random to one
    endmember; a ``filter_size`` x ``filter_size`` mean filter then mixes the
    pixels near block boundaries (abundances stay non-negative and sum to
    one); spectra follow the linear mixing model and are degraded by Poisson
    noise.

    Parameters
    ----------
    n_endmembers : {3, 4}
        Endmember set. ``3``: "Co" (Co L2,3 with white lines), "Ni" (Ni L2,3
        with white lines) and "Pt" (background only), 700-899 eV, 200
        channels, 0.12 nm pixels. ``4``: "TiO2" (Ti L2,3 + O K), "Fe2O3"
        (O K + Fe L2,3), "C" (amorphous carbon C K) and "Si3N4" (N K),
        250-1152 eV, 903 channels, 0.5 nm pixels.
    shape : tuple of int
        Navigation shape ``(ny, nx)``.
    block_size : int
        Side of the pure blocks, in pixels.
    filter_size : int
        Side of the mean filter that mixes the blocks, in pixels; ``1``
        keeps all pixels pure.
    dose : float
        Mean expected number of counts per energy channel of a pure pixel,
        averaged over the channels and over the endmembers (the total counts
        of a spectrum are about ``dose * n_channels``). With the default of
        200, a pure Co pixel has ~185 background counts per channel at the
        Co L3 onset; the L3 white line rises ~7 and the continuum edge ~2.5
        times the Poisson noise of one channel above the background: noisy
        but usable, as in a fast STEM-EELS map.
    random_state : int, numpy.random.Generator or None
        Seed or generator for the block assignment and the noise.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Noisy counts (float64, integer-valued), shape ``(ny, nx, n_channels)``
        (a plain :class:`hyperspy.signals.Signal1D` if exspy is missing).
    truth : GroundTruth
        Endmembers in counts per unit abundance, abundances, names and the
        noiseless cube ``abundances @ endmembers``.

    Raises
    ------
    ValueError
        If ``n_endmembers`` is not 3 or 4, or another argument is invalid.

    Notes
    -----
    Each endmember is a power-law background :math:`A E^{-r}` (``r`` between
    2.7 and 3.4) plus hydrogenic core-loss cross-sections computed with
    :class:`exspy.components.EELSCLEdge` (100 keV, 30 mrad convergence, 40 mrad
    collection), stoichiometrically weighted, plus Lorentzian near-edge peaks
    (L3 and L2 white lines with the statistical 2:1 area ratio for Co, Ni and
    Fe; crystal-field split doublets for Ti4+; pi* and sigma* peaks for C),
    convolved with a 1 eV FWHM Gaussian resolution. The continuum edge jump is
    15-30 % of the background 50 eV above the first edge, so the edges sit on
    large, similar backgrounds as in real EELS. The endmember spectra are
    computed once per set and cached.

    Examples
    --------
    >>> from hs_aeunmix.datasets import eels_chequerboard
    >>> signal, truth = eels_chequerboard(3, random_state=0)
    >>> signal.data.shape, truth.names
    ((64, 64, 200), ('Co', 'Ni', 'Pt'))
    """
    endmember_set = _eels_set(n_endmembers)
    shape = _check_shape(shape)
    block_size = _check_integer("block_size", block_size, 1)
    filter_size = _check_integer("filter_size", filter_size, 1)
    dose = _check_positive_float("dose", dose)
    rng = np.random.default_rng(random_state)

    n = len(endmember_set.materials)
    endmembers = _eels_endmembers(endmember_set, dose)
    abundances = _chequerboard_abundances(rng, shape, n, block_size, filter_size)
    noiseless = abundances @ endmembers
    data = rng.poisson(noiseless).astype(np.float64)
    names = tuple(m.name for m in endmember_set.materials)
    title = f"Synthetic EELS chequerboard ({', '.join(names)})"
    signal = _eels_signal(data, endmember_set, title)
    truth = GroundTruth(
        endmembers=endmembers, abundances=abundances, names=names, noiseless=noiseless
    )
    return signal, truth


def eels_no_pure_pixel(
    n_endmembers: int = 3,
    *,
    shape: tuple[int, int] = (64, 64),
    max_fraction: float = 0.7,
    thickness_variation: float = 0.3,
    dose: float = _DEFAULT_EELS_DOSE,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic STEM-EELS multilayer without pure pixels, with thickness changes.

    The endmembers form a periodic multilayer along y (two periods over the
    image height, random stacking order, layer thicknesses varying by
    ±20 %) with rough interfaces of error-function profile, as diffuse as the
    layers are thin, so that the centre of a layer is only about
    ``max_fraction`` pure and the rest belongs to its neighbours. The maps are
    blended (90:10) with a smooth Dirichlet composition field and then
    contracted towards equal fractions so that no pixel has a fraction above
    ``max_fraction``: pure-pixel methods such as VCA fail here, as for the Ru
    layer of the paper. A smooth relative-intensity map (a wedge plus bumps)
    multiplies each spectrum, like a change of specimen thickness.

    Parameters
    ----------
    n_endmembers : {3, 4}
        Endmember set, as in :func:`eels_chequerboard`.
    shape : tuple of int
        Navigation shape ``(ny, nx)``; ``ny`` must be at least 2 * n_endmembers
        so that each layer spans pixels.
    max_fraction : float
        Upper bound of every abundance, in ``(1 / n_endmembers, 1]``. The
        most concentrated pixel reaches it exactly for ``max_fraction`` up to
        about 0.9; above, the diffuse interfaces alone keep the maps below it.
    thickness_variation : float
        Relative intensity ranges over
        ``[1 - thickness_variation, 1 + thickness_variation]``, in ``[0, 1)``.
    dose : float
        Mean expected counts per channel of a pure pixel at relative
        intensity 1 (see :func:`eels_chequerboard`).
    random_state : int, numpy.random.Generator or None
        Seed or generator for the scene and the noise.

    Returns
    -------
    signal : exspy.signals.EELSSpectrum
        Noisy counts (float64, integer-valued), shape ``(ny, nx, n_channels)``.
    truth : GroundTruth
        The abundances sum to one, while the intensity scales the spectra:
        ``truth.noiseless == truth.intensity[..., None] * (truth.abundances @
        truth.endmembers)``. Methods that keep the intensity in the abundances
        (no sum-to-one constraint) therefore estimate ``intensity *
        abundances``.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    endmember_set = _eels_set(n_endmembers)
    n = len(endmember_set.materials)
    shape = _check_shape(shape)
    if shape[0] < 2 * n:
        raise ValueError(
            f"shape[0] must be at least {2 * n} for {n} layers, got {shape[0]}."
        )
    max_fraction = _check_positive_float("max_fraction", max_fraction)
    if not 1.0 / n < max_fraction <= 1.0:
        raise ValueError(
            f"max_fraction must be in (1/{n}, 1] for {n} endmembers, "
            f"got {max_fraction}."
        )
    if isinstance(thickness_variation, bool) or not isinstance(
        thickness_variation, int | float | np.number
    ):
        raise ValueError(
            f"thickness_variation must be a number, got {thickness_variation!r}."
        )
    if not 0.0 <= thickness_variation < 1.0:
        raise ValueError(
            f"thickness_variation must be in [0, 1), got {thickness_variation}."
        )
    dose = _check_positive_float("dose", dose)
    rng = np.random.default_rng(random_state)

    endmembers = _eels_endmembers(endmember_set, dose)
    abundances = _layered_abundances(rng, shape, n, max_fraction)
    intensity = _thickness_map(rng, shape, float(thickness_variation))
    noiseless = intensity[..., None] * (abundances @ endmembers)
    data = rng.poisson(noiseless).astype(np.float64)
    names = tuple(m.name for m in endmember_set.materials)
    title = f"Synthetic EELS multilayer without pure pixels ({', '.join(names)})"
    signal = _eels_signal(data, endmember_set, title)
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=names,
        noiseless=noiseless,
        intensity=intensity,
    )
    return signal, truth


# --------------------------------------------------------------------------
# Raman
# --------------------------------------------------------------------------

_RAMAN_SHIFT_RANGE = (500.0, 3500.0)
_RAMAN_PIXEL_SIZE_UM = 0.5

# (position cm-1, FWHM cm-1, relative height). Positions from the biological
# Raman literature (Movasaghi et al., Appl. Spectrosc. Rev. 42, 493 (2007);
# Czamara et al., J. Raman Spectrosc. 46, 4 (2015); cytochrome c and
# carotenoid resonance bands under 532 nm excitation).
_RAMAN_BANDS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "lipid": (
        (718.0, 14.0, 0.06),  # C-N choline
        (870.0, 20.0, 0.06),  # C-C
        (1065.0, 18.0, 0.12),  # C-C trans
        (1080.0, 25.0, 0.14),  # C-C gauche
        (1128.0, 15.0, 0.10),  # C-C trans
        (1265.0, 20.0, 0.25),  # =C-H in-plane bend
        (1301.0, 18.0, 0.35),  # CH2 twist
        (1440.0, 22.0, 0.55),  # CH2 scissoring
        (1655.0, 20.0, 0.40),  # C=C stretch
        (1745.0, 18.0, 0.15),  # C=O ester
        (2850.0, 25.0, 1.00),  # CH2 symmetric stretch
        (2885.0, 30.0, 0.75),  # CH2 antisymmetric stretch
        (2930.0, 35.0, 0.45),  # CH3 stretch
        (3010.0, 25.0, 0.20),  # =C-H stretch
    ),
    "protein": (
        (621.0, 12.0, 0.06),  # Phe
        (644.0, 12.0, 0.06),  # Tyr
        (760.0, 14.0, 0.10),  # Trp
        (828.0, 15.0, 0.08),  # Tyr Fermi doublet
        (853.0, 15.0, 0.12),  # Tyr Fermi doublet
        (935.0, 25.0, 0.10),  # C-C alpha helix
        (1003.0, 10.0, 0.35),  # Phe ring breathing
        (1032.0, 12.0, 0.10),  # Phe
        (1125.0, 20.0, 0.08),  # C-N
        (1245.0, 40.0, 0.18),  # amide III
        (1340.0, 30.0, 0.20),  # CH deformation, Trp
        (1450.0, 30.0, 0.35),  # CH2/CH3 deformation
        (1555.0, 20.0, 0.08),  # Trp
        (1605.0, 12.0, 0.06),  # Phe
        (1615.0, 12.0, 0.06),  # Tyr
        (1655.0, 40.0, 0.40),  # amide I
        (2875.0, 35.0, 0.35),  # CH2 stretch
        (2935.0, 45.0, 1.00),  # CH3 stretch
        (3060.0, 25.0, 0.10),  # aromatic C-H
    ),
    "nucleic acid": (
        (670.0, 15.0, 0.15),  # T, G
        (728.0, 15.0, 0.25),  # A
        (782.0, 15.0, 0.60),  # C, T ring breathing
        (830.0, 20.0, 0.15),  # O-P-O backbone
        (1095.0, 20.0, 0.50),  # PO2- symmetric stretch
        (1240.0, 30.0, 0.20),  # T, C
        (1340.0, 25.0, 0.35),  # A, G
        (1375.0, 20.0, 0.30),  # T, A, G
        (1420.0, 25.0, 0.20),  # deoxyribose
        (1490.0, 20.0, 0.35),  # G, A
        (1578.0, 20.0, 0.40),  # G, A
        (1670.0, 30.0, 0.30),  # T C=O
        (2900.0, 50.0, 0.30),  # sugar C-H
        (2960.0, 40.0, 0.25),  # C-H
    ),
    "water": (
        (1640.0, 90.0, 0.08),  # H-O-H bend
        (3250.0, 200.0, 0.90),  # O-H stretch, strongly H-bonded
        (3420.0, 200.0, 1.00),  # O-H stretch, weakly H-bonded
    ),
    "cytochrome c": (
        (604.0, 12.0, 0.15),
        (750.0, 12.0, 1.00),  # nu15 pyrrole breathing
        (1128.0, 14.0, 0.55),  # nu22
        (1172.0, 12.0, 0.25),  # nu30
        (1314.0, 14.0, 0.55),  # nu21
        (1362.0, 14.0, 0.40),  # nu4
        (1547.0, 14.0, 0.25),  # nu11
        (1585.0, 14.0, 0.80),  # nu19
        (1638.0, 14.0, 0.25),  # nu10
    ),
    "carotenoid": (
        (1008.0, 10.0, 0.25),  # nu3 C-CH3 rock
        (1157.0, 12.0, 0.75),  # nu2 C-C stretch
        (1525.0, 14.0, 1.00),  # nu1 C=C stretch
        (2160.0, 25.0, 0.05),  # 2 nu2 overtone
        (2670.0, 25.0, 0.08),  # nu1 + nu2 combination
    ),
}
_RAMAN_NAMES = tuple(_RAMAN_BANDS)

RamanScene = Literal["chessboard", "gaussian", "dirichlet", "cell"]
_RAMAN_SCENES = ("chessboard", "gaussian", "dirichlet", "cell")
_DEFAULT_BASELINE_AMPLITUDE = 0.5


def _raman_shift_axis(n_channels: int) -> tuple[float, float]:
    start, stop = _RAMAN_SHIFT_RANGE
    return start, (stop - start) / (n_channels - 1)


def _raman_endmembers(n_endmembers: int, n_channels: int) -> np.ndarray:
    offset, scale = _raman_shift_axis(n_channels)
    centres = offset + scale * np.arange(n_channels)
    lower, upper = centres - scale / 2, centres + scale / 2
    endmembers = np.zeros((n_endmembers, n_channels))
    for index, name in enumerate(_RAMAN_NAMES[:n_endmembers]):
        for position, fwhm, height in _RAMAN_BANDS[name]:
            half_width = fwhm / 2
            # Average of the Lorentzian over each detector pixel, so that
            # narrow bands keep their area on a coarse axis.
            integral = half_width * (
                np.arctan((upper - position) / half_width)
                - np.arctan((lower - position) / half_width)
            )
            endmembers[index] += height * integral / scale
        endmembers[index] /= endmembers[index].max()
    return endmembers


def _chessboard_scene(
    rng: np.random.Generator, shape: tuple[int, int], n_endmembers: int
) -> np.ndarray:
    # As in the PNAS protocol: about n_endmembers pure blocks per side.
    block = max(min(shape) // n_endmembers, 1)
    return _chequerboard_abundances(rng, shape, n_endmembers, block, 1)


def _gaussian_scene(shape: tuple[int, int], n_endmembers: int) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    sigma = max(min(shape) / n_endmembers, 1.0)
    maps = np.empty((ny, nx, n_endmembers))
    for index in range(n_endmembers):
        fraction = (index + 1) / (n_endmembers + 1)
        distance2 = (rows - fraction * ny) ** 2 + (columns - fraction * nx) ** 2
        maps[..., index] = np.exp(-distance2 / (2 * sigma**2))
    return _normalise_rows(np.maximum(maps, 1e-300))


def _soft_region(signed_distance: np.ndarray, edge_width: float) -> np.ndarray:
    return special.expit(-signed_distance / edge_width)


def _ellipse_distance(
    rows: np.ndarray,
    columns: np.ndarray,
    centre: tuple[float, float],
    semi_axes: tuple[float, float],
    angle: float,
) -> np.ndarray:
    """Approximate signed distance (pixels) to an ellipse boundary."""
    dy, dx = rows - centre[0], columns - centre[1]
    along = np.cos(angle) * dx + np.sin(angle) * dy
    across = -np.sin(angle) * dx + np.cos(angle) * dy
    radius = np.hypot(along / semi_axes[0], across / semi_axes[1])
    return (radius - 1.0) * min(semi_axes)


# Composition (fractions of lipid, protein, nucleic acid, water, cytochrome c,
# carotenoid) of the cell compartments. _compartment_composition folds the
# columns of endmembers left out of the library into the closest present one.
_CELL_COMPARTMENTS = {
    "medium": (0.0, 0.03, 0.0, 0.97, 0.0, 0.0),
    "cytoplasm": (0.10, 0.45, 0.05, 0.40, 0.0, 0.0),
    "nucleus": (0.0, 0.35, 0.40, 0.25, 0.0, 0.0),
    "lipid droplet": (0.80, 0.05, 0.0, 0.05, 0.0, 0.10),
    "mitochondrion": (0.15, 0.40, 0.0, 0.20, 0.25, 0.0),
}


def _compartment_composition(name: str, n_endmembers: int) -> np.ndarray:
    full = np.array(_CELL_COMPARTMENTS[name])
    composition = full[:n_endmembers].copy()
    # Endmembers left out of the library are replaced by the closest present
    # one: carotenoid dissolves in lipid, cytochrome c is a protein.
    if n_endmembers < 6:
        composition[0] += full[5]
    if n_endmembers < 5:
        composition[1] += full[4]
    return composition


def _cell_scene(
    rng: np.random.Generator, shape: tuple[int, int], n_endmembers: int
) -> np.ndarray:
    ny, nx = shape
    size = min(shape)
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    edge_width = max(size / 64, 0.5)

    cell_centre = (
        ny / 2 + rng.uniform(-0.05, 0.05) * ny,
        nx / 2 + rng.uniform(-0.05, 0.05) * nx,
    )
    cell_axes = (rng.uniform(0.36, 0.42) * size, rng.uniform(0.28, 0.34) * size)
    cell_angle = rng.uniform(0, np.pi)
    # Low-order harmonics make the membrane irregular like a real cell.
    polar = np.arctan2(rows - cell_centre[0], columns - cell_centre[1])
    harmonics = sum(
        rng.normal(0, 0.03) * np.cos(order * polar + rng.uniform(0, 2 * np.pi))
        for order in (2, 3, 5)
    )
    cell_distance = _ellipse_distance(
        rows, columns, cell_centre, cell_axes, cell_angle
    ) - harmonics * min(cell_axes)
    cell = _soft_region(cell_distance, edge_width)

    nucleus_offset = rng.uniform(-0.25, 0.25, 2) * np.array(cell_axes).min()
    nucleus_centre = (
        cell_centre[0] + nucleus_offset[0],
        cell_centre[1] + nucleus_offset[1],
    )
    nucleus_axes = (0.45 * cell_axes[0], 0.5 * cell_axes[1])
    nucleus_distance = _ellipse_distance(
        rows, columns, nucleus_centre, nucleus_axes, cell_angle + rng.uniform(-0.5, 0.5)
    )
    nucleus = _soft_region(nucleus_distance, edge_width)

    def cytoplasm_positions(count: int) -> list[tuple[float, float]]:
        # Organelles sit in the cytoplasm: inside the cell, outside the nucleus.
        positions: list[tuple[float, float]] = []
        for _ in range(100 * count):
            if len(positions) == count:
                break
            radius = math.sqrt(rng.uniform(0.1, 0.7))
            phi = rng.uniform(0, 2 * np.pi)
            row = cell_centre[0] + radius * cell_axes[1] * math.sin(phi)
            column = cell_centre[1] + radius * cell_axes[0] * math.cos(phi)
            inside = 0 <= row < ny and 0 <= column < nx
            if (
                inside
                and cell[int(row), int(column)] > 0.9
                and nucleus[int(row), int(column)] < 0.1
            ):
                positions.append((row, column))
        return positions

    droplets = np.zeros(shape)
    for row, column in cytoplasm_positions(int(rng.integers(3, 7))):
        radius = rng.uniform(0.025, 0.045) * size
        distance = np.hypot(rows - row, columns - column) - radius
        droplets = np.maximum(droplets, _soft_region(distance, edge_width))
    mitochondria = np.zeros(shape)
    if n_endmembers >= 5:
        for row, column in cytoplasm_positions(int(rng.integers(4, 9))):
            semi_axes = (
                rng.uniform(0.04, 0.07) * size,
                rng.uniform(0.015, 0.025) * size,
            )
            distance = _ellipse_distance(
                rows, columns, (row, column), semi_axes, rng.uniform(0, np.pi)
            )
            mitochondria = np.maximum(mitochondria, _soft_region(distance, edge_width))

    # Nested convex blending keeps every pixel on the simplex.
    abundances = np.broadcast_to(
        _compartment_composition("medium", n_endmembers), (ny, nx, n_endmembers)
    ).copy()
    for name, weight in (
        ("cytoplasm", cell),
        ("nucleus", nucleus * cell),
        ("lipid droplet", droplets * cell),
        ("mitochondrion", mitochondria * cell),
    ):
        composition = _compartment_composition(name, n_endmembers)
        abundances = (1 - weight[..., None]) * abundances + weight[
            ..., None
        ] * composition
    return _normalise_rows(abundances)


def _bernstein_baseline(
    rng: np.random.Generator, shape: tuple[int, int], n_channels: int
) -> np.ndarray:
    """Smooth, non-negative, pixel-dependent baseline shapes with unit mean scale."""
    degree = 3
    t = np.linspace(0.0, 1.0, n_channels)
    basis = np.stack(
        [
            math.comb(degree, k) * t**k * (1 - t) ** (degree - k)
            for k in range(degree + 1)
        ]
    )
    sigma = max(min(shape) / 8, 1.0)
    coefficients = np.stack(
        [_smooth_random_field(rng, shape, sigma) for _ in range(degree + 1)], axis=-1
    )
    # Map to [0.2, 1] so every Bernstein coefficient, hence the baseline, is
    # positive like a fluorescence background.
    low, high = coefficients.min(), coefficients.max()
    if high > low:
        coefficients = 0.2 + 0.8 * (coefficients - low) / (high - low)
    else:
        coefficients = np.full_like(coefficients, 0.6)
    return coefficients @ basis


def raman_scene(
    n_endmembers: int = 4,
    *,
    shape: tuple[int, int] = (64, 64),
    scene: RamanScene = "chessboard",
    n_channels: int = 500,
    snr: float | None = 20.0,
    baseline: bool | float = False,
    cosmic_rays: int = 0,
    random_state: RandomState = None,
) -> tuple[Signal1D, GroundTruth]:
    """Synthetic Raman spectrum image of biomolecule mixtures.

    Parameters
    ----------
    n_endmembers : int
        Number of endmembers, 2 to 6, taken in order from "lipid", "protein",
        "nucleic acid", "water", "cytochrome c" and "carotenoid". Each is a
        sum of Lorentzian bands at literature positions and widths over
        500-3500 cm⁻¹ (fingerprint, CH and OH stretching regions), averaged
        over each channel and normalised to a maximum of 1.
    shape : tuple of int
        Navigation shape ``(ny, nx)``.
    scene : {"chessboard", "gaussian", "dirichlet", "cell"}
        Abundance scene. The first three follow Georgiev et al. (PNAS 2024):
        "chessboard" is about ``n_endmembers`` x ``n_endmembers`` pure blocks
        assigned at random; "gaussian" places Gaussian blobs (width
        ``min(shape) / n_endmembers``) along the diagonal and normalises them
        to sum to one; "dirichlet" draws each pixel from a flat Dirichlet
        distribution. "cell" is a cell in medium (water with a little
        protein) with a cytoplasm, a nucleus, lipid droplets and, when
        cytochrome c is in the library, mitochondria, all with smooth edges;
        it needs ``n_endmembers >= 4`` and ``min(shape) >= 16``.
    n_channels : int
        Number of spectral channels (at least 32).
    snr : float or None
        Signal-to-noise ratio: mean over pixels of the largest noiseless
        intensity of the pixel spectrum, divided by the standard deviation of
        the additive Gaussian noise. None adds no noise.
    baseline : bool or float
        Add a smooth, positive, pixel-dependent fluorescence-like baseline
        (cubic Bernstein polynomial with spatially smooth coefficients).
        True uses an amplitude of 0.5; a float sets the amplitude, relative to
        the mean largest noiseless intensity of the pixel spectra.
    cosmic_rays : int
        Number of single-channel cosmic-ray spikes, placed at random
        pixel/channel positions with heights of 2 to 10 times the mean largest
        noiseless intensity.
    random_state : int, numpy.random.Generator or None
        Seed or generator for the scene, the noise and the artefacts.

    Returns
    -------
    signal : hyperspy.signals.Signal1D
        Spectrum image, shape ``(ny, nx, n_channels)``, navigation axes in µm
        (0.5 µm steps), signal axis "Raman shift" in cm⁻¹.
    truth : GroundTruth
        ``truth.noiseless`` is the linear mixture ``abundances @ endmembers``
        only. The baseline and the cosmic rays are nuisances outside the
        mixing model: they are in ``truth.artefacts`` (None when neither is
        requested), so ``signal.data == noiseless + artefacts + noise``.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type.
    """
    n_endmembers = _check_integer("n_endmembers", n_endmembers, 2)
    if n_endmembers > len(_RAMAN_NAMES):
        raise ValueError(
            f"n_endmembers must be at most {len(_RAMAN_NAMES)}, got {n_endmembers}."
        )
    shape = _check_shape(shape)
    if scene not in _RAMAN_SCENES:
        raise ValueError(f"scene must be one of {_RAMAN_SCENES}, got {scene!r}.")
    if scene == "cell":
        if n_endmembers < 4:
            raise ValueError(
                "The 'cell' scene needs n_endmembers >= 4 (lipid, protein, "
                f"nucleic acid, water), got {n_endmembers}."
            )
        if min(shape) < 16:
            raise ValueError(f"The 'cell' scene needs min(shape) >= 16, got {shape}.")
    n_channels = _check_integer("n_channels", n_channels, 32)
    if snr is not None:
        snr = _check_positive_float("snr", snr)
    if isinstance(baseline, bool):
        baseline_amplitude = _DEFAULT_BASELINE_AMPLITUDE if baseline else 0.0
    elif isinstance(baseline, int | float | np.number) and math.isfinite(baseline):
        if baseline < 0:
            raise ValueError(f"baseline amplitude must be >= 0, got {baseline}.")
        baseline_amplitude = float(baseline)
    else:
        raise ValueError(f"baseline must be a bool or a number, got {baseline!r}.")
    cosmic_rays = _check_integer("cosmic_rays", cosmic_rays, 0)
    n_values = shape[0] * shape[1] * n_channels
    if cosmic_rays > n_values:
        raise ValueError(
            f"cosmic_rays must be at most the number of data values ({n_values})."
        )
    rng = np.random.default_rng(random_state)

    endmembers = _raman_endmembers(n_endmembers, n_channels)
    if scene == "chessboard":
        abundances = _chessboard_scene(rng, shape, n_endmembers)
    elif scene == "gaussian":
        abundances = _gaussian_scene(shape, n_endmembers)
    elif scene == "dirichlet":
        abundances = rng.dirichlet(np.ones(n_endmembers), size=shape)
    else:
        abundances = _cell_scene(rng, shape, n_endmembers)
    noiseless = abundances @ endmembers
    peak_intensity = float(noiseless.max(axis=-1).mean())

    artefacts = None
    if baseline_amplitude > 0 or cosmic_rays > 0:
        artefacts = np.zeros_like(noiseless)
        if baseline_amplitude > 0:
            artefacts += (baseline_amplitude * peak_intensity) * _bernstein_baseline(
                rng, shape, n_channels
            )
        if cosmic_rays > 0:
            positions = rng.choice(n_values, size=cosmic_rays, replace=False)
            heights = rng.uniform(2.0, 10.0, cosmic_rays) * peak_intensity
            artefacts.reshape(-1)[positions] += heights

    data = noiseless.copy() if artefacts is None else noiseless + artefacts
    if snr is not None:
        data += rng.normal(0.0, peak_intensity / snr, size=data.shape)

    offset, scale = _raman_shift_axis(n_channels)
    ny, nx = shape
    axes = [
        {
            "name": "y",
            "units": "µm",
            "scale": _RAMAN_PIXEL_SIZE_UM,
            "offset": 0.0,
            "size": ny,
        },
        {
            "name": "x",
            "units": "µm",
            "scale": _RAMAN_PIXEL_SIZE_UM,
            "offset": 0.0,
            "size": nx,
        },
        {
            "name": "Raman shift",
            "units": "cm⁻¹",
            "scale": scale,
            "offset": offset,
            "size": n_channels,
        },
    ]
    signal = Signal1D(data, axes=axes)
    names = _RAMAN_NAMES[:n_endmembers]
    signal.metadata.General.title = (
        f"Synthetic Raman {scene} scene ({', '.join(names)})"
    )
    signal.metadata.set_item("Signal.quantity", "Intensity (a.u.)")
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=abundances,
        names=names,
        noiseless=noiseless,
        artefacts=artefacts,
    )
    return signal, truth
