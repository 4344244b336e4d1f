"""Generic smooth spectra for the family's scenes that are neither EELS nor Raman.

Sums of broad Gaussian bands on a smooth continuum over an arbitrary axis
(see :mod:`hs_aeunmix.datasets._family`).
"""

from __future__ import annotations

import math

import numpy as np

from hs_aeunmix.datasets._common import (
    _MAX_ATTEMPTS,
    _MIN_SPECTRAL_ANGLE,
    _min_spectral_angle,
    _Spectra,
)


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
