"""What every generator shares: the ground truth, argument checks, smooth fields."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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


def _normalise_rows(values: np.ndarray) -> np.ndarray:
    return values / values.sum(axis=-1, keepdims=True)


def _smooth_random_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float
) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    spread = field.std()
    return (field - field.mean()) / spread if spread > 0 else np.zeros(shape)


# Shared by the family's spectral libraries (EELS, Raman, generic).
_MIN_SPECTRAL_ANGLE = 0.02
_MAX_ATTEMPTS = 500
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


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


def _min_spectral_angle(spectra: np.ndarray) -> float:
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    cosines = np.clip(unit @ unit.T, -1.0, 1.0)
    upper = np.triu_indices(spectra.shape[0], 1)
    return float(np.arccos(cosines[upper]).min())
