"""Reconstruction losses and endmember penalties of the unmixing autoencoder.

Every loss takes ``(reconstruction, target)``, both (n_pixels, n_channels)
in the network's scaled units, and returns the mean over pixels. Penalties
take the endmember matrix ``E`` (n_components, n_channels) in the same
units; they are normalised per channel so that their weights carry over
between data sets of different intensity and channel count (the network's
data are divided by one global scale that brings the mean spectrum's maximum
to one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Penalty = Callable[[torch.Tensor], torch.Tensor]

# The epsilon of the volume term (det(G + eps I) + eps)^(-1/2): keeps it
# finite for collinear endmembers. Jensen et al. do not give its value.
VOLUME_EPSILON = 1e-6

# The delta of the minimum-volume term log det(G + delta I): keeps it finite
# when endmembers become collinear (a relative floor on each eigenvalue).
MIN_VOLUME_DELTA = 1e-3

# Keeps arccos differentiable: its derivative is infinite at +-1.
_COSINE_LIMIT = 1.0 - 1e-7


def pixel_squared_error(
    reconstruction: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Mean squared error over the channels of each pixel, (n_pixels,).

    ``mse_loss`` gives the values and gradients of ``(r - t).square()``
    (bitwise, in the tests) with one fused backward instead of a power's:
    training steps on 1024-channel batches spent most of their time there.
    """
    return functional.mse_loss(reconstruction, target, reduction="none").mean(dim=-1)


def pixel_spectral_angle(
    reconstruction: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Spectral angle (radians) between each reconstructed and measured spectrum.

    Blind to intensity: it fits spectral shapes, which suits data whose
    intensity varies from pixel to pixel for reasons outside the mixing model
    (thickness in EELS, focus in Raman).
    """
    cosine = functional.cosine_similarity(reconstruction, target, dim=-1, eps=1e-12)
    return torch.arccos(cosine.clamp(-_COSINE_LIMIT, _COSINE_LIMIT))


def pixel_poisson_deviance(
    reconstruction: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Poisson deviance of each pixel's counts at rate ``reconstruction``, per channel.

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
    ).mean(dim=-1)


@dataclass(frozen=True)
class LossSpec:
    """What a reconstruction loss needs from the rest of the pipeline.

    Attributes
    ----------
    pixel_loss : callable
        ``pixel_loss(sad_weight)``: the loss of each pixel, (n_pixels,).
    rates : bool
        The reconstruction is a rate that must be positive (a likelihood of
        counts): a reconstruction is clipped above zero before the loss, a
        per-pixel intensity is the maximum-likelihood one instead of the
        least-squares one, and a background fitted by least squares
        (``baseline=``) contradicts it.
    of_residual : bool
        The loss depends on a reconstruction only through its residual
        (the squared error): a background fitted by least squares can then
        be projected out of the spectrum and of the mixture instead of
        being added to the reconstruction
        (:meth:`~hs_aeunmix._networks.UnmixingAutoencoder.residual_pair`).
    """

    pixel_loss: Callable[[float], LossFunction]
    rates: bool = False
    of_residual: bool = False

    @property
    def scale_rule(self) -> str:
        """How a per-pixel intensity is fitted (:mod:`hs_aeunmix._networks`)."""
        return "poisson" if self.rates else "least_squares"


def _squared_error_with_angle(sad_weight: float) -> LossFunction:
    return lambda reconstruction, target: (
        pixel_squared_error(reconstruction, target)
        + sad_weight * pixel_spectral_angle(reconstruction, target)
    )


#: Every reconstruction loss by name. ``loss``'s allowed values and the
#: model file's schema are derived from this table: a new loss is one entry.
LOSS_SPECS: dict[str, LossSpec] = {
    "mse": LossSpec(lambda sad_weight: pixel_squared_error, of_residual=True),
    "sad": LossSpec(lambda sad_weight: pixel_spectral_angle),
    "mse_sad": LossSpec(_squared_error_with_angle),
    "poisson": LossSpec(lambda sad_weight: pixel_poisson_deviance, rates=True),
}
LOSSES = tuple(LOSS_SPECS)


def get_pixel_loss(name: str, *, sad_weight: float) -> LossFunction:
    """The loss called ``name`` (one of :data:`LOSSES`) of each pixel, (n_pixels,).

    ``"mse_sad"`` is ``mse + sad_weight * sad``.
    """
    if name not in LOSS_SPECS:
        raise ValueError(f"loss must be one of {LOSSES}")
    return LOSS_SPECS[name].pixel_loss(sad_weight)


def get_loss(name: str, *, sad_weight: float) -> LossFunction:
    """The loss called ``name``, averaged over pixels (see :func:`get_pixel_loss`)."""
    pixel_loss = get_pixel_loss(name, sad_weight=sad_weight)
    return lambda reconstruction, target: pixel_loss(reconstruction, target).mean()


def endmember_gram(endmembers: torch.Tensor) -> torch.Tensor:
    """``E Eᵀ / n_channels``: mean products of the endmember spectra."""
    return endmembers @ endmembers.T / endmembers.shape[1]


def volume_penalty(endmembers: torch.Tensor) -> torch.Tensor:
    """Inverse volume ``(det(E Eᵀ / B + eps I) + eps)^(-1/2)`` of Jensen et al.

    Small when the endmembers span a large volume, large when two of them
    are nearly collinear: adding it to the loss pushes endmembers apart. The
    Gram matrix is divided by the number of channels ``B`` (see the module
    docstring); ``eps`` is :data:`VOLUME_EPSILON`.
    """
    gram = endmember_gram(endmembers)
    identity = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return (torch.linalg.det(gram + VOLUME_EPSILON * identity) + VOLUME_EPSILON) ** (
        -0.5
    )


def simplex_log_volume(endmembers: torch.Tensor) -> torch.Tensor:
    """``log det(B Ê Êᵀ + delta I)`` of the endmembers normalised to unit sum.

    Normalising each endmember to a unit sum makes the term blind to the
    scale an endmember trades with its abundances, so it measures the shape
    of the simplex the endmembers span (Craig's criterion, as in
    minimum-volume NMF: Fu et al., IEEE TSP 64, 6254 (2016)); ``B`` (the
    channel count) brings the Gram matrix to order one. Small when the
    simplex is tight around the data; adding it to the loss pulls the
    endmembers towards the data until the fit resists.
    """
    sums = endmembers.sum(dim=1, keepdim=True).clamp_min(1e-12)
    normalised = endmembers / sums
    gram = normalised @ normalised.T * endmembers.shape[1]
    identity = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return torch.logdet(gram + MIN_VOLUME_DELTA * identity)


def l21_penalty(endmembers: torch.Tensor) -> torch.Tensor:
    """Sum over endmembers of their root-mean-square value (an l2,1 norm).

    A group penalty: it drives whole endmembers to zero, so that an
    over-specified number of endmembers shrinks to the number the data need.
    """
    # The tiny offset keeps the gradient finite once an endmember is zero.
    return torch.sqrt((endmembers**2).mean(dim=1) + 1e-12).sum()


def endmember_penalty(
    *,
    volume_weight: float,
    l21_weight: float,
    min_volume_weight: float = 0.0,
    loss_floor: float = 1.0,
) -> Penalty | None:
    """The weighted sum of the endmember penalties, or None when all weights are 0.

    ``volume_weight * volume_penalty + l21_weight * l21_penalty +
    min_volume_weight * loss_floor * simplex_log_volume``. ``loss_floor``
    (the loss of the best rank-n approximation of the data, about the noise
    level) makes the minimum-volume weight independent of the data's
    intensity and noise: a weight of 0.01 lets the volume term trade one
    percent of the noise-level loss per unit of log volume.
    """
    if not volume_weight and not l21_weight and not min_volume_weight:
        return None

    def penalty(endmembers: torch.Tensor) -> torch.Tensor:
        total = endmembers.new_zeros(())
        if volume_weight:
            total = total + volume_weight * volume_penalty(endmembers)
        if l21_weight:
            total = total + l21_weight * l21_penalty(endmembers)
        if min_volume_weight:
            total = total + min_volume_weight * loss_floor * simplex_log_volume(
                endmembers
            )
        return total

    return penalty
