"""Drift-aware decoding: each pixel's mixture shifted along the spectral axis.

An energy drift (EELS: the high tension or the spectrometer drifting during a
scan) or a calibration shift (Raman: the laser wavelength) moves every
pixel's spectrum along the axis by a small, pixel-dependent amount. A linear
mixing model cannot follow it: its endmembers become the blurred average of
the shifted spectra, and the shift's derivative takes an endmember of its
own. With ``shift=True`` each pixel's mixture ``m = a @ E`` is reproduced as
``m(j - d)``: shifted by ``d`` channels (linear interpolation, end values
held), so that the endmembers stay sharp.

The offset ``d`` is not learned by the network but solved for each spectrum
in closed form, like its intensity: a few Gauss-Newton steps on the squared
residual with a Gaussian prior ``d ~ N(0, tau²)`` (maximum a posteriori),
weighted by the pixel's noise variance (its DER_SNR estimate), and clamped
to ``±max_shift``. At low dose the data say little about ``d`` and the prior
shrinks it towards zero instead of fitting noise; no endmember is changed by
the estimate (it is held fixed, as an expectation step, when the network's
weights are updated). The same estimate serves a scan the model has never
seen. The mean offset over a scan is not identified (the endmembers could
move by the same amount the other way): the prior centres the endmembers on
the scan's mean position.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

# Gauss-Newton steps per estimate: the second corrects the first's
# linearisation for offsets of a channel or more.
GAUSS_NEWTON_STEPS = 3
# The prior's standard deviation, as a fraction of ``max_shift``: an offset
# at the bound is two standard deviations away.
PRIOR_FRACTION = 0.5
# sqrt(pi / 2) / sqrt(6): the standard deviation of independent Gaussian
# noise from the mean absolute value of its second differences (whose
# variance is six times the noise's).
_MEAN_ABSOLUTE = 0.5116634


def shifted(spectra: torch.Tensor, shifts: torch.Tensor, reach: int) -> torch.Tensor:
    """``spectra[i](j - shifts[i])`` by linear interpolation, end values held.

    ``spectra`` (n, n_channels), ``shifts`` (n, 1) in channels (positive:
    towards higher channels), at most ``reach`` channels either way.
    Differentiable in both. Linear interpolation is a convolution with a
    triangular kernel centred on ``-shift``: each row is a weighted sum of
    its ``2 reach + 3`` integer shifts, taken as views of the padded rows.
    """
    reach = reach + 1
    n_channels = spectra.shape[1]
    padded = functional.pad(
        spectra.unsqueeze(1), (reach, reach), mode="replicate"
    ).squeeze(1)
    offsets = torch.arange(
        -reach, reach + 1, dtype=spectra.dtype, device=spectra.device
    )
    weights = (1 - (offsets + shifts).abs()).clamp_min(0)  # (n, 2 reach + 1)
    result = weights[:, :1] * padded[:, :n_channels]
    for k in range(1, 2 * reach + 1):
        result = result + weights[:, k : k + 1] * padded[:, k : k + n_channels]
    return result


def noise_variance(spectra: torch.Tensor) -> torch.Tensor:
    """Each spectrum's noise variance (n, 1) from its second differences.

    The mean absolute value of ``2 x_j - x_{j-2} - x_{j+2}`` (six times the
    noise variance for independent noise) rather than DER_SNR's median,
    which costs ten times more: sharp features of the spectrum raise it a
    little, which only makes the offsets' prior count more.
    """
    if spectra.shape[1] < 5:
        return spectra.new_ones((spectra.shape[0], 1))
    differences = (2 * spectra[:, 2:-2] - spectra[:, :-4] - spectra[:, 4:]).abs()
    sigma = _MEAN_ABSOLUTE * differences.mean(dim=1, keepdim=True)
    return sigma.square()


@torch.no_grad()
def estimate_shifts(
    spectra: torch.Tensor,
    unit: torch.Tensor,
    max_shift: float,
    *,
    free_intensity: bool,
) -> torch.Tensor:
    """Each spectrum's offset (n, 1), in channels, given its mixture ``unit``.

    Maximises ``N(spectra | s unit(j - d), sigma²) N(d | 0, tau²)`` over
    ``d`` (and ``s >= 0`` when ``free_intensity``, else ``s = 1``) by
    :data:`GAUSS_NEWTON_STEPS` Gauss-Newton steps from ``d = 0``;
    ``sigma²`` is the spectrum's DER_SNR noise variance and ``tau =
    PRIOR_FRACTION * max_shift``. The result is clamped to ``±max_shift``.
    """
    precision = 1.0 / (PRIOR_FRACTION * max_shift) ** 2
    noise = noise_variance(spectra).clamp_min(
        1e-12 * spectra.square().mean(dim=1, keepdim=True).clamp_min(1e-30)
    )
    reach = math.ceil(max_shift)
    offsets = spectra.new_zeros((spectra.shape[0], 1))
    for _ in range(GAUSS_NEWTON_STEPS):
        model = shifted(unit, offsets, reach)
        scale = spectra.new_ones(offsets.shape)
        if free_intensity:
            scale = (
                (spectra * model).sum(dim=1, keepdim=True)
                / model.square().sum(dim=1, keepdim=True).clamp_min(1e-30)
            ).clamp_min(0)
        residual = spectra - scale * model
        # d/dd of s m(j - d) is -s m'(j - d).
        jacobian = -scale * torch.gradient(model, dim=1)[0]
        curvature = jacobian.square().sum(dim=1, keepdim=True)
        offsets = (
            (residual * jacobian).sum(dim=1, keepdim=True) + offsets * curvature
        ) / (curvature + noise * precision)
        offsets = offsets.clamp(-max_shift, max_shift)
    return offsets
