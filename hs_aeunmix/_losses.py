"""Reconstruction losses of the unmixing autoencoder.

Every loss takes ``(reconstruction, target)``, both (n_pixels, n_channels)
in the network's scaled units, and returns the mean over pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch.nn import functional

LOSSES = ("mse", "sad", "mse_sad", "poisson")

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Keeps arccos differentiable: its derivative is infinite at +-1.
_COSINE_LIMIT = 1.0 - 1e-7


def mean_squared_error(
    reconstruction: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Mean squared error over all pixels and channels."""
    return functional.mse_loss(reconstruction, target)


def spectral_angle(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean spectral angle (radians) between reconstructed and measured spectra.

    Blind to intensity: it fits spectral shapes, which suits data whose
    intensity varies from pixel to pixel for reasons outside the mixing model
    (thickness in EELS, focus in Raman).
    """
    cosine = functional.cosine_similarity(reconstruction, target, dim=-1, eps=1e-12)
    return torch.arccos(cosine.clamp(-_COSINE_LIMIT, _COSINE_LIMIT)).mean()


def mse_plus_spectral_angle(
    reconstruction: torch.Tensor, target: torch.Tensor, *, sad_weight: float
) -> torch.Tensor:
    """``mean_squared_error + sad_weight * spectral_angle``."""
    return mean_squared_error(reconstruction, target) + sad_weight * spectral_angle(
        reconstruction, target
    )


def poisson_deviance(
    reconstruction: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Poisson deviance of counts ``target`` at rate ``reconstruction`` (per channel).

    The negative log-likelihood minus that of a perfect fit: same gradient as
    the Poisson negative log-likelihood, but zero at a perfect fit, so
    early stopping can compare relative improvements. Scaling counts and
    rates by one constant scales the deviance by that constant only, so its
    minimiser on the network's scaled data is the one on the raw counts.
    """
    rate = reconstruction.clamp_min(1e-8)
    # xlogy gives 0 * log(0) = 0 for channels without counts.
    return (
        rate - target + torch.xlogy(target, target) - target * torch.log(rate)
    ).mean()


def get_loss(name: str, *, sad_weight: float) -> LossFunction:
    """Return the loss function called ``name`` (one of :data:`LOSSES`)."""
    if name == "mse":
        return mean_squared_error
    if name == "sad":
        return spectral_angle
    if name == "mse_sad":
        return partial(mse_plus_spectral_angle, sad_weight=sad_weight)
    if name == "poisson":
        return poisson_deviance
    raise ValueError(f"loss must be one of {LOSSES}")
