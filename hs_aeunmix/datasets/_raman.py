"""Raman endmember library: Lorentzian bands of biomolecules, fluorescence baselines."""

from __future__ import annotations

import math

import numpy as np

from hs_aeunmix.datasets._common import _smooth_random_field

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
