"""Raman endmember library: Lorentzian bands of biomolecules, fluorescence baselines."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from hs_aeunmix.datasets._common import (
    _FWHM_TO_SIGMA,
    _MAX_ATTEMPTS,
    _MIN_SPECTRAL_ANGLE,
    _log_uniform,
    _min_spectral_angle,
    _smooth_random_field,
    _Spectra,
)

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


# The family's Raman compounds (see hs_aeunmix.datasets._family).
_RAMAN_LIMITS = (100.0, 3600.0)
_RAMAN_WIDTH_RANGE = (600.0, 3500.0)
_RAMAN_RESOLUTION_RANGE = (2.0, 12.0)


# (position cm-1, Lorentzian FWHM cm-1, relative height), literature band
# positions (e.g. Lin-Vien et al., The Handbook of Infrared and Raman
# Characteristic Frequencies of Organic Molecules, 1991; RRUFF database for
# the minerals; Ferrari & Robertson 2000 for disordered carbon).
_EXTRA_RAMAN_BANDS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "polystyrene": (
        (621.0, 8.0, 0.08),
        (795.0, 8.0, 0.06),
        (1001.0, 6.0, 1.0),
        (1031.0, 7.0, 0.25),
        (1155.0, 8.0, 0.06),
        (1583.0, 8.0, 0.10),
        (1602.0, 8.0, 0.30),
        (2852.0, 15.0, 0.10),
        (2904.0, 20.0, 0.25),
        (3054.0, 15.0, 0.60),
    ),
    "PMMA": (
        (600.0, 12.0, 0.20),
        (812.0, 12.0, 0.50),
        (987.0, 14.0, 0.20),
        (1450.0, 18.0, 0.40),
        (1728.0, 14.0, 0.30),
        (2845.0, 20.0, 0.20),
        (2952.0, 18.0, 1.0),
        (3000.0, 20.0, 0.30),
    ),
    "calcite": (
        (156.0, 8.0, 0.25),
        (282.0, 10.0, 0.40),
        (712.0, 4.0, 0.12),
        (1086.0, 3.0, 1.0),
        (1436.0, 10.0, 0.05),
        (1749.0, 6.0, 0.04),
    ),
    "aragonite": (
        (153.0, 6.0, 0.30),
        (207.0, 8.0, 0.35),
        (705.0, 4.0, 0.10),
        (1085.0, 3.0, 1.0),
        (1462.0, 10.0, 0.05),
    ),
    "anatase": (
        (144.0, 8.0, 1.0),
        (197.0, 8.0, 0.08),
        (399.0, 20.0, 0.20),
        (516.0, 20.0, 0.20),
        (639.0, 25.0, 0.25),
    ),
    "rutile": (
        (143.0, 10.0, 0.08),
        (235.0, 60.0, 0.25),
        (447.0, 30.0, 0.80),
        (612.0, 35.0, 1.0),
    ),
    "silicon": ((300.0, 30.0, 0.05), (520.7, 4.0, 1.0), (960.0, 40.0, 0.06)),
    "diamond": ((1332.0, 3.0, 1.0),),
    "graphite": ((1350.0, 40.0, 0.50), (1582.0, 20.0, 1.0), (2700.0, 60.0, 0.60)),
    "paracetamol": (
        (465.0, 8.0, 0.30),
        (651.0, 8.0, 0.40),
        (797.0, 8.0, 0.50),
        (857.0, 8.0, 1.0),
        (1168.0, 8.0, 0.60),
        (1236.0, 10.0, 0.50),
        (1324.0, 8.0, 0.60),
        (1371.0, 10.0, 0.30),
        (1561.0, 10.0, 0.40),
        (1610.0, 8.0, 0.80),
        (1648.0, 10.0, 0.50),
        (3064.0, 15.0, 0.30),
    ),
    "ibuprofen": (
        (746.0, 8.0, 0.20),
        (834.0, 8.0, 0.30),
        (1006.0, 8.0, 0.30),
        (1183.0, 10.0, 0.40),
        (1206.0, 10.0, 0.30),
        (1608.0, 10.0, 0.90),
        (2870.0, 15.0, 0.60),
        (2938.0, 15.0, 1.0),
    ),
    "lactose": (
        (356.0, 10.0, 0.60),
        (477.0, 10.0, 0.50),
        (852.0, 10.0, 0.40),
        (877.0, 10.0, 0.30),
        (1085.0, 12.0, 0.50),
        (1121.0, 12.0, 0.40),
        (2890.0, 20.0, 0.60),
        (2980.0, 20.0, 1.0),
    ),
    "cellulose": (
        (380.0, 12.0, 0.50),
        (437.0, 12.0, 0.30),
        (1095.0, 15.0, 1.0),
        (1120.0, 15.0, 0.80),
        (1380.0, 20.0, 0.30),
        (1475.0, 20.0, 0.30),
        (2895.0, 30.0, 0.90),
    ),
    "sulfur": (
        (153.0, 6.0, 0.60),
        (219.0, 6.0, 1.0),
        (248.0, 6.0, 0.20),
        (437.0, 8.0, 0.15),
        (473.0, 6.0, 0.80),
    ),
    "quartz": (
        (128.0, 8.0, 0.30),
        (206.0, 12.0, 0.40),
        (464.0, 8.0, 1.0),
        (808.0, 12.0, 0.05),
        (1081.0, 12.0, 0.05),
        (1160.0, 12.0, 0.05),
    ),
    "polyethylene": (
        (1063.0, 10.0, 0.50),
        (1130.0, 10.0, 0.50),
        (1295.0, 10.0, 0.60),
        (1440.0, 15.0, 0.60),
        (2848.0, 14.0, 1.0),
        (2882.0, 14.0, 0.90),
    ),
    "gypsum": (
        (414.0, 10.0, 0.20),
        (494.0, 10.0, 0.15),
        (1008.0, 6.0, 1.0),
        (1135.0, 8.0, 0.10),
        (3406.0, 25.0, 0.20),
        (3494.0, 25.0, 0.20),
    ),
    "hematite": (
        (225.0, 8.0, 0.70),
        (245.0, 8.0, 0.20),
        (291.0, 10.0, 1.0),
        (411.0, 14.0, 0.40),
        (497.0, 20.0, 0.10),
        (612.0, 20.0, 0.15),
        (1320.0, 60.0, 0.50),
    ),
}
_RAMAN_LIBRARY: dict[str, tuple[tuple[float, float, float], ...]] = {
    **_RAMAN_BANDS,
    **_EXTRA_RAMAN_BANDS,
}
_RAMAN_MIN_BAND_FRACTION = 0.15


def _pseudo_voigt_bands(
    bands: tuple[tuple[float, float, float], ...],
    offset: float,
    scale: float,
    n_channels: int,
    gaussian_fwhm: float,
) -> np.ndarray:
    """Sum of pseudo-Voigt bands averaged over each channel.

    Each band keeps the area of its Lorentzian (height times its FWHM); the
    Voigt FWHM and mixing parameter follow Thompson, Cox and Hastings (J.
    Appl. Cryst. 20, 79, 1987).
    """
    centres = offset + scale * np.arange(n_channels)
    lower, upper = centres - scale / 2, centres + scale / 2
    spectrum = np.zeros(n_channels)
    g = gaussian_fwhm
    for position, lorentz, height in bands:
        fwhm = (
            g**5
            + 2.69269 * g**4 * lorentz
            + 2.42843 * g**3 * lorentz**2
            + 4.47163 * g**2 * lorentz**3
            + 0.07842 * g * lorentz**4
            + lorentz**5
        ) ** 0.2
        ratio = lorentz / fwhm
        eta = 1.36603 * ratio - 0.47719 * ratio**2 + 0.11116 * ratio**3
        area = height * math.pi * lorentz / 2
        half = fwhm / 2
        lorentz_mean = (
            np.arctan((upper - position) / half) - np.arctan((lower - position) / half)
        ) / math.pi
        sigma = fwhm * _FWHM_TO_SIGMA
        gauss_mean = 0.5 * (
            special.erf((upper - position) / (math.sqrt(2) * sigma))
            - special.erf((lower - position) / (math.sqrt(2) * sigma))
        )
        spectrum += area * (eta * lorentz_mean + (1 - eta) * gauss_mean) / scale
    return spectrum


def _raman_eligible(start: float, stop: float) -> list[str]:
    margin = 0.02 * (stop - start)
    names = []
    for name, bands in _RAMAN_LIBRARY.items():
        strongest = max(height for _, _, height in bands)
        if any(
            start + margin <= position <= stop - margin
            and height >= _RAMAN_MIN_BAND_FRACTION * strongest
            for position, _, height in bands
        ):
            names.append(name)
    return names


def _draw_raman(rng: np.random.Generator, n: int, n_channels: int) -> _Spectra:
    resolution = float(rng.uniform(*_RAMAN_RESOLUTION_RANGE))
    for _ in range(_MAX_ATTEMPTS):
        width = _log_uniform(rng, *_RAMAN_WIDTH_RANGE)
        start = round(float(rng.uniform(_RAMAN_LIMITS[0], _RAMAN_LIMITS[1] - width)), 1)
        scale = width / (n_channels - 1)
        stop = start + width
        eligible = _raman_eligible(start, stop)
        if len(eligible) < n:
            continue
        for _ in range(10):
            names = [eligible[i] for i in rng.choice(len(eligible), n, replace=False)]
            strengths = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
            shapes = np.stack(
                [
                    _pseudo_voigt_bands(
                        _RAMAN_LIBRARY[name], start, scale, n_channels, resolution
                    )
                    for name in names
                ]
            )
            shapes /= shapes.max(axis=1, keepdims=True)
            if _min_spectral_angle(shapes) >= _MIN_SPECTRAL_ANGLE:
                details = []
                for name, strength in zip(names, strengths, strict=True):
                    inside = sum(
                        start <= position <= stop
                        for position, _, _ in _RAMAN_LIBRARY[name]
                    )
                    details.append(
                        f"{name}: {inside} bands in window; strength={strength:.2f}"
                    )
                return _Spectra(
                    endmembers=shapes * strengths[:, None],
                    names=tuple(names),
                    details=tuple(details),
                    axis_name="Raman shift",
                    axis_units="cm⁻¹",
                    axis_offset=start,
                    axis_scale=scale,
                    resolution=resolution,
                )
    raise RuntimeError(  # pragma: no cover - the library makes this unreachable
        f"Could not draw {n} distinct Raman endmembers over {n_channels} channels."
    )
