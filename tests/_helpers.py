"""Test helpers: small synthetic linear mixtures with known answers, and runners.

Imported by the tests as ``from _helpers import ...`` (pytest puts this
folder on ``sys.path``); fixtures live in ``conftest.py``, which pytest
advises never to import.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import hyperspy.api as hs
import numpy as np
from scipy.ndimage import uniform_filter

import hs_aeunmix  # noqa: F401  (enables algorithm="ae")


@dataclass(frozen=True)
class Mixture:
    spectra: np.ndarray  # (n_pixels, n_channels)
    endmembers: np.ndarray  # (n_endmembers, n_channels)
    abundances: np.ndarray  # (ny, nx, n_endmembers)


def make_mixture(
    shape=(32, 32), n_channels=100, n_endmembers=3, counts=None, seed=0
) -> Mixture:
    """Gaussian-band endmembers on a blurred chequerboard of 4 x 4 blocks."""
    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    endmembers = np.stack(
        [
            50
            + 400 * np.exp(-0.5 * ((channels - centre) / 6.0) ** 2)
            + 150
            * np.exp(-0.5 * ((channels - (centre * 1.7) % n_channels) / 10.0) ** 2)
            for centre in np.linspace(15, 85, n_endmembers) * n_channels / 100
        ]
    )
    labels = rng.integers(0, n_endmembers, (shape[0] // 4 + 1, shape[1] // 4 + 1))
    labels = labels.repeat(4, 0).repeat(4, 1)[: shape[0], : shape[1]]
    abundances = np.stack(
        [
            uniform_filter((labels == k).astype(float), 5, mode="nearest")
            for k in range(n_endmembers)
        ],
        axis=-1,
    )
    abundances /= abundances.sum(-1, keepdims=True)
    if counts is not None:
        # Rescale so that the mean pixel spectrum holds ``counts`` counts per channel.
        clean = abundances.reshape(-1, n_endmembers) @ endmembers
        endmembers = endmembers * counts / clean.mean()
    spectra = abundances.reshape(-1, n_endmembers) @ endmembers
    if counts is not None:
        spectra = rng.poisson(spectra).astype(float)
    return Mixture(spectra, endmembers, abundances)


def to_signal(mixture: Mixture) -> hs.signals.Signal1D:
    ny, nx, _ = mixture.abundances.shape
    signal = hs.signals.Signal1D(mixture.spectra.reshape(ny, nx, -1).copy())
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.units, energy.offset, energy.scale = "Energy", "eV", 280.0, 0.5
    for axis, name in zip(signal.axes_manager.navigation_axes, "xy", strict=True):
        axis.name, axis.units, axis.scale, axis.offset = name, "nm", 0.2, 1.0
    signal.metadata.General.title = "synthetic mixture"
    return signal


# A few epochs from one start: for tests of behaviour, not of accuracy (an
# epoch is 50 steps whatever the scan).
FAST = {"max_epochs": 2, "init": "vca", "show_progressbar": False, "random_state": 0}


def train_through_hyperspy(signal, output_dimension=3, **options):
    """``s.decomposition(algorithm="ae")`` quietly and seeded; returns the model."""
    return signal.decomposition(
        algorithm="ae",
        output_dimension=output_dimension,
        return_info=True,
        print_info=False,
        **{"random_state": 0, "show_progressbar": False, **options},
    )


def last_line_of_python(code: str, *arguments: str) -> str:
    """The last line ``code`` prints, run in a fresh interpreter (an error fails)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


def assert_on_simplex(abundances: np.ndarray) -> None:
    """Every row of ``abundances`` (last axis) is non-negative and sums to one."""
    assert abundances.min() >= 0
    np.testing.assert_allclose(abundances.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def background_autoencoder(
    n_channels: int,
    n_components: int,
    n_terms: int,
    *,
    pixel_total: float | None,
    max_shift: float | None = None,
):
    """A small dense autoencoder with a polynomial background of ``n_terms``."""
    import torch

    from hs_aeunmix._baseline import polynomial_basis
    from hs_aeunmix._networks import NetworkOptions, build_autoencoder

    torch.manual_seed(0)
    basis = polynomial_basis(n_channels, n_terms).astype(np.float32)
    return build_autoencoder(
        NetworkOptions(hidden_layer_sizes=(16,)),
        endmembers=torch.rand(n_components, n_channels),
        input_mean=torch.zeros(n_channels),
        input_scale=torch.ones(n_channels),
        pixel_total=pixel_total,
        baseline_basis=torch.from_numpy(basis),
        max_shift=max_shift,
    )
