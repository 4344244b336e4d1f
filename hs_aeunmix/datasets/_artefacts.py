"""Artefacts of the family's scenes: energy drift, spikes, dead and hot pixels.

Applied to a scene's noiseless or noisy cube by
:mod:`hs_aeunmix.datasets._family`.
"""

from __future__ import annotations

import numpy as np

from hs_aeunmix.datasets._common import (
    _log_uniform,
    _smooth_random_field,
)


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
