"""A seeded family of synthetic Raman maps of real compounds.

:func:`raman_compound_scene` draws scene ``index`` of a ``split``
(``"development"`` or ``"held_out"``) from
``np.random.default_rng(np.random.SeedSequence(ENTROPY, spawn_key=(split_id,
index)))`` with ``split_id`` 0 or 1, so the halves never share a seed and a
scene is bit-identical on every call. Every draw goes through that generator.

Top-level parameters
--------------------
First a block of 26 uniforms ``u[0..25]`` is drawn, and the scene-level
parameters are read from it (``int(u * k)`` picks one of ``k`` values):

==  ===================  ==================================================
u   parameter            distribution
==  ===================  ==================================================
0   sample_type          mineral, polymer, pharmaceutical, biological
1   n_endmembers         uniform integer 2..6
2   ny                   uniform integer 24..64
3   nx                   uniform integer 24..64
4   n_channels           uniform integer 300..1340 (a CCD width)
5   window               fingerprint, low_wavenumber, wide, fingerprint_high
6   first channel        uniform over the window's range of lower edges
7   last channel         uniform over the window's range of upper edges
8   counts               log-uniform 20..20000 (see Noise)
9   read_noise           uniform 2..20 e⁻
10  dark current         uniform 0.5..10 e⁻ per spectrum
11  instrument FWHM      uniform 3..15 cm⁻¹ (Gaussian)
12  fluorescence         True with probability 1/2
13  fluorescence ratio   log-uniform 0.2..20 (background / band height)
14  cosmic_rays          True with probability 0.35
15  hot_pixels           True with probability 0.15
16  shift present        with probability 1/2, else shift_channels = 0
17  shift_channels       uniform 0..2 channels (largest shift in the scan)
18  pure_pixels          True with probability 1/2
19  max_fraction         uniform over [max(0.5, 1/n + 0.1), 0.9]
20  intensity present    with probability 0.7, else intensity_variation = 0
21  intensity_variation  uniform 0.02..0.5
22  structure            "layers" with probability 1/4, else the sample
                         type's own (grains, blend, tablet, cell)
23  contaminant          with probability 1/4 one compound comes from
                         outside the sample type
24  pixel size           log-uniform over the sample type's range (µm)
25  boundary blur        uniform 0.3..1.5 pixel (laser spot, depth of focus)
==  ===================  ==================================================

The windows (cm⁻¹, lower edge range / upper edge range) are fingerprint
300-500 / 1700-1900, low_wavenumber 60-150 / 1150-1400, wide 60-200 /
3100-3500 and fingerprint_high 500-800 / 3100-3500. The axis is uniform, from
the lower to the upper edge in ``n_channels`` channels. The pixel sizes are
1-20 µm (mineral), 0.5-5 µm (polymer), 2-20 µm (pharmaceutical) and
0.2-1 µm (biological).

Keyword overrides replace these values after the block is drawn (so
overriding one leaves the others as drawn): ``sample_type``,
``n_endmembers``, ``shape``, ``n_channels``, ``window``, ``counts``,
``read_noise``, ``fluorescence``, ``cosmic_rays``, ``hot_pixels``,
``shift_channels``, ``pure_pixels``, ``intensity_variation``, ``structure``
and ``compounds`` (names from the table, which also sets ``n_endmembers``).
Overrides may leave the drawn ranges: ``shape`` 20..256 per side,
``n_channels`` 64..2048, ``counts`` 1..1e7, ``read_noise`` 0..100,
``shift_channels`` 0..5 and ``intensity_variation`` 0..0.9; an invalid
value raises a ValueError that names the parameter and its allowed values.

Stages
------
The generator then spawns seven independent child generators
(``rng.spawn(7)``), one per stage, so that an override that changes one stage
leaves the random numbers of the others unchanged. In order:

1. Compounds. The eligible compounds of the sample type are those with a band
   of at least 15 % of their strongest band inside the window; ``n`` are
   chosen without replacement (``n - 1`` and one compound of another sample
   type or a substrate, silicon, CaF2 or glass, when there is a contaminant),
   redrawn until every pair of endmembers is at least 0.02 rad apart in
   spectral angle. Each gets a Raman cross-section log-uniform 0.3..3.
   Each band is a pseudo-Voigt (Thompson-Cox-Hastings) of its natural
   Lorentzian width and the instrument's Gaussian width, integrated exactly
   over each channel, with an area proportional to its tabulated height
   times its natural width.
2. Abundances, from the structure: Voronoi grains (multiplicatively weighted,
   stretched along a foliation), a phase-separated blend (soft maximum of
   smooth random fields), a tablet (API and excipient particles of radius
   1-8 pixels in an excipient matrix), a cell (medium, cytoplasm, nucleus,
   granules, lipid droplets and membrane, each compound in the compartment
   its table role prefers), or diffuse layers (wavy interfaces of
   interdiffusion width 0.3-2.5 pixels); then blurred by the boundary blur
   and normalised to fractions. With pure pixels the fractions are sharpened
   (raised to the smallest power 1, 2, 4, ... that gives every compound 9
   pixels above 0.98, renormalised); without, every fraction above
   max_fraction is cut to it and the excess goes to the other compounds in
   proportion to their nearby abundance. A structure is redrawn until every
   compound is the largest fraction in at least 12 pixels.
3. Intensity map (laser power, focus, sample height): ``1 - v * m`` with
   ``v = intensity_variation`` and ``m`` a [0, 1]-scaled mixture of a tilted
   plane, a smooth random field and a power drift along the scan order.
4. Calibration shift: a pattern that is smooth along the scan order or
   constant along each row (laser wavelength drift, line-wise recalibration),
   scaled so that its largest absolute value is ``shift_channels``. The
   shifted spectra are computed exactly on a 0.05-channel grid of shifts and
   interpolated linearly between grid points (sub-channel accuracy).
5. Fluorescence (when drawn): 1-3 broad Gaussians in wavenumber per
   component; a compound-correlated component (one or two compounds
   fluoresce in proportion to their abundance) and a random smooth one,
   mixed, with a photobleaching decay along the scan order in half the
   scenes, times the intensity map; scaled so that its mean peak is the
   fluorescence ratio times the mean peak of the noiseless mixture.
6. Defects: 1-20 cosmic-ray spikes of 1-3 channels, 5-50 times ``counts``
   (when cosmic_rays); 1-3 hot CCD channels with an excess of 0.05-1 times
   ``counts`` and, in half those scenes, a dead channel with no response
   (when hot_pixels). The ground-truth ``artefacts`` hold the background, the
   spikes and the hot-channel excess, and minus the signal on a dead channel.
7. Noise (see below).

Noise
-----
A CCD model, in electrons (gain 1): the expected counts ``λ`` = shifted
mixture + artefacts are read as ``Poisson(λ + d) + Normal(0, read_noise²)
- d`` with ``d`` the dark current, whose mean is subtracted as a dark frame
would (so data can be slightly negative). The endmembers are scaled so that
the largest channel of the mean noiseless spectrum holds ``counts``
electrons. Scenes with ``counts < 200``, the noisiest third of the drawn
log-uniform range, are ``"low_dose"``.

Subgroups
---------
``"pure_pixels"`` or ``"no_pure_pixels"``; ``"intensity_varying"`` when
``intensity_variation >= 0.1``; ``"low_dose"`` when ``counts < 200``;
``"background"`` when there is fluorescence, else ``"no_background"``;
``"drift"`` when ``shift_channels >= 0.5``; ``"artefacts"`` when there are
cosmic rays or hot/dead channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hyperspy.api as hs
import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import GroundTruth, _smooth_random_field
from hs_aeunmix.datasets._raman_bands import COMPOUNDS, SAMPLE_TYPES, Compound
from hs_aeunmix.datasets._raman_structures import build_abundances

ENTROPY = 0x6A3F_91C2_D407_5B8E_2E19_C6A0_7F3D_B125
SPLITS = {"development": 0, "held_out": 1}
WINDOWS = {
    "fingerprint": ((300.0, 500.0), (1700.0, 1900.0)),
    "low_wavenumber": ((60.0, 150.0), (1150.0, 1400.0)),
    "wide": ((60.0, 200.0), (3100.0, 3500.0)),
    "fingerprint_high": ((500.0, 800.0), (3100.0, 3500.0)),
}
NATIVE_STRUCTURES = {
    "mineral": "grains",
    "polymer": "blend",
    "pharmaceutical": "tablet",
    "biological": "cell",
}
STRUCTURES = (*NATIVE_STRUCTURES.values(), "layers")
PIXEL_SIZE_UM = {
    "mineral": (1.0, 20.0),
    "polymer": (0.5, 5.0),
    "pharmaceutical": (2.0, 20.0),
    "biological": (0.2, 1.0),
}
LOW_DOSE_COUNTS = 200.0
MIN_BAND_FRACTION = 0.15
MIN_ANGLE = 0.02
SHIFT_GRID = 0.05
_N_UNIFORMS = 26
# Drawn or overridden parameters that the description repeats as they are.
_DESCRIBED = (
    "sample_type",
    "structure",
    "n_endmembers",
    "shape",
    "n_channels",
    "window",
    "counts",
    "read_noise",
    "pure_pixels",
    "intensity_variation",
    "fluorescence",
    "cosmic_rays",
    "hot_pixels",
    "shift_channels",
)
_MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class RamanCompoundDescription:
    """What was drawn for one scene of :func:`raman_compound_scene`.

    Attributes
    ----------
    split, index : str, int
        Where the scene comes from.
    subgroups : tuple of str
        Tags of the scene (see the module docstring for the rules).
    sample_type, structure : str
        Kind of sample and spatial structure of the abundances.
    compounds : tuple of str
        Endmember names, in the order of the ground truth.
    contaminant : str or None
        The compound from outside the sample type, if any.
    n_endmembers, shape, n_channels : int, (int, int), int
        Sizes of the scene.
    window : str
        Spectral window; ``axis_range`` gives its first and last channel
        centres in cm⁻¹.
    pixel_size_um, instrument_fwhm : float
        Map step (µm) and Gaussian instrument FWHM (cm⁻¹).
    cross_sections : tuple of float
        Relative Raman cross-section of each compound.
    counts, read_noise, dark_current : float
        Peak counts of the mean noiseless spectrum, read noise and dark
        current, in electrons.
    pure_pixels : bool
        Whether every compound has pure pixels.
    max_fraction : float or None
        Largest fraction in the scene without pure pixels (None with them).
    intensity_variation : float
        Relative range of the intensity map (0 when uniform).
    fluorescence : bool
        Whether a fluorescence background was added.
    fluorescence_ratio : float or None
        Mean background peak over mean band peak (None without).
    photobleaching : bool
        Whether the background decays along the scan order.
    cosmic_rays, n_cosmic_rays : bool, int
        Whether there are cosmic-ray spikes, and how many.
    hot_pixels : bool
        Whether there are hot or dead detector channels.
    hot_channels, dead_channels : tuple of int
        Their channel indices.
    shift_channels : float
        Largest absolute calibration shift, in channels.
    shift_mode : str or None
        ``"scan"`` (smooth along the scan order) or ``"row"`` (per row).
    generator, modality : str
        ``"raman_compounds"`` and ``"raman"``.
    """

    split: str
    index: int
    subgroups: tuple[str, ...]
    sample_type: str
    structure: str
    compounds: tuple[str, ...]
    contaminant: str | None
    n_endmembers: int
    shape: tuple[int, int]
    n_channels: int
    window: str
    axis_range: tuple[float, float]
    pixel_size_um: float
    instrument_fwhm: float
    cross_sections: tuple[float, ...]
    counts: float
    read_noise: float
    dark_current: float
    pure_pixels: bool
    max_fraction: float | None
    intensity_variation: float
    fluorescence: bool
    fluorescence_ratio: float | None
    photobleaching: bool
    cosmic_rays: bool
    n_cosmic_rays: int
    hot_pixels: bool
    hot_channels: tuple[int, ...]
    dead_channels: tuple[int, ...]
    shift_channels: float
    shift_mode: str | None
    generator: str = "raman_compounds"
    modality: str = "raman"

    @property
    def peak_snr(self) -> float:
        """Signal-to-noise ratio at the peak of the mean noiseless spectrum."""
        noise = self.counts + self.dark_current + self.read_noise**2
        return self.counts / math.sqrt(noise)

    def summary(self) -> str:
        """One line describing the scene."""
        ny, nx = self.shape
        low, high = self.axis_range
        return (
            f"{self.generator} {self.split} #{self.index}: {self.sample_type} "
            f"{self.structure}, {ny}x{nx}x{self.n_channels} "
            f"({self.window} {low:.0f}-{high:.0f} cm⁻¹), "
            f"{', '.join(self.compounds)}; counts {self.counts:.0f}, "
            f"shift {self.shift_channels:.2f} ch; {', '.join(self.subgroups)}"
        )


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------


def _log_uniform(u: float, low: float, high: float) -> float:
    return float(low * (high / low) ** u)


def _pick(options: tuple, u: float):
    return options[int(u * len(options))]


def _draw_parameters(u: np.ndarray) -> dict:
    return {
        "sample_type": _pick(SAMPLE_TYPES, u[0]),
        "n_endmembers": 2 + int(u[1] * 5),
        "shape": (24 + int(u[2] * 41), 24 + int(u[3] * 41)),
        "n_channels": 300 + int(u[4] * 1041),
        "window": _pick(tuple(WINDOWS), u[5]),
        "counts": _log_uniform(u[8], 20.0, 20000.0),
        "read_noise": float(2.0 + 18.0 * u[9]),
        "fluorescence": bool(u[12] < 0.5),
        "cosmic_rays": bool(u[14] < 0.35),
        "hot_pixels": bool(u[15] < 0.15),
        "shift_channels": 0.0 if u[16] < 0.5 else float(2.0 * u[17]),
        "pure_pixels": bool(u[18] < 0.5),
        "intensity_variation": 0.0 if u[20] < 0.3 else float(0.02 + 0.48 * u[21]),
        "structure": None if u[22] >= 0.25 else "layers",
        "compounds": None,
    }


def _check_choice(name: str, value: object, allowed: tuple) -> object:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def _check_number(
    name: str, value: object, low: float, high: float, integer: bool = False
) -> float:
    kinds = int | np.integer if integer else int | float | np.number
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not low <= value <= high
    ):
        what = (
            f"an integer in {low}..{high}"
            if integer
            else f"a number in [{low}, {high}]"
        )
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return value


def _check_shape(value: object) -> tuple[int, int]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(
            f"shape must be a (ny, nx) pair of integers in 20..256, got {value!r}."
        )
    return (
        int(_check_number("shape[0]", value[0], 20, 256, integer=True)),
        int(_check_number("shape[1]", value[1], 20, 256, integer=True)),
    )


def _check_compounds(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, tuple | list)
        or not 2 <= len(value) <= 6
        or len(set(value)) != len(value)
        or any(name not in COMPOUNDS for name in value)
    ):
        raise ValueError(
            "compounds must be 2 to 6 distinct names among "
            f"{tuple(COMPOUNDS)}, got {value!r}."
        )
    return tuple(value)


_OVERRIDES: dict[str, Callable[[object], object]] = {
    "sample_type": lambda v: _check_choice("sample_type", v, SAMPLE_TYPES),
    "n_endmembers": lambda v: int(_check_number("n_endmembers", v, 2, 6, integer=True)),
    "shape": _check_shape,
    "n_channels": lambda v: int(_check_number("n_channels", v, 64, 2048, integer=True)),
    "window": lambda v: _check_choice("window", v, tuple(WINDOWS)),
    "counts": lambda v: float(_check_number("counts", v, 1.0, 1e7)),
    "read_noise": lambda v: float(_check_number("read_noise", v, 0.0, 100.0)),
    "fluorescence": lambda v: _check_bool("fluorescence", v),
    "cosmic_rays": lambda v: _check_bool("cosmic_rays", v),
    "hot_pixels": lambda v: _check_bool("hot_pixels", v),
    "shift_channels": lambda v: float(_check_number("shift_channels", v, 0.0, 5.0)),
    "pure_pixels": lambda v: _check_bool("pure_pixels", v),
    "intensity_variation": lambda v: float(
        _check_number("intensity_variation", v, 0.0, 0.9)
    ),
    "structure": lambda v: _check_choice("structure", v, STRUCTURES),
    "compounds": _check_compounds,
}


def _apply_overrides(params: dict, overrides: dict) -> dict:
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise ValueError(
            f"Unknown override {unknown[0]!r}; the overrides are "
            f"{', '.join(_OVERRIDES)}."
        )
    checked = {name: _OVERRIDES[name](value) for name, value in overrides.items()}
    compounds = checked.get("compounds")
    if compounds is not None:
        n = checked.setdefault("n_endmembers", len(compounds))
        if n != len(compounds):
            raise ValueError(
                f"n_endmembers ({n}) must equal the number of compounds "
                f"({len(compounds)})."
            )
    params = {**params, **checked}
    if params["structure"] is None:
        params["structure"] = NATIVE_STRUCTURES[params["sample_type"]]
    return params


# --------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------


_TCH_WIDTH = (1.0, 2.69269, 2.42843, 4.47163, 0.07842, 1.0)


def _pseudo_voigt_cdf(x: np.ndarray, fwhm_l: float, fwhm_g: float) -> np.ndarray:
    # Thompson, Cox & Hastings, J. Appl. Cryst. 20, 79 (1987): total width and
    # Lorentzian share of the pseudo-Voigt that matches the Voigt profile.
    fwhm = (
        sum(c * fwhm_g ** (5 - i) * fwhm_l**i for i, c in enumerate(_TCH_WIDTH)) ** 0.2
    )
    ratio = fwhm_l / fwhm
    eta = 1.36603 * ratio - 0.47719 * ratio**2 + 0.11116 * ratio**3
    lorentz = np.arctan(2.0 * x / fwhm) / np.pi
    gauss = 0.5 * special.erf(2.0 * math.sqrt(math.log(2.0)) * x / fwhm)
    return eta * lorentz + (1.0 - eta) * gauss


def _spectra(
    compounds: list[Compound],
    offset: float,
    scale: float,
    n_channels: int,
    fwhm_g: float,
    shifts: np.ndarray,
) -> np.ndarray:
    """Channel-integrated spectra, shape ``(len(shifts), n, n_channels)``.

    The bands move by ``shifts`` channels; band areas are the tabulated
    heights times the natural width, so that a band keeps its intensity when
    the instrument broadens it.
    """
    edges = offset + scale * (np.arange(n_channels + 1) - 0.5)
    moved = edges[None, :] - scale * np.asarray(shifts)[:, None]
    out = np.zeros((len(shifts), len(compounds), n_channels))
    for k, compound in enumerate(compounds):
        strongest = max(height for _, _, height in compound.bands)
        for position, fwhm_l, height in compound.bands:
            cdf = _pseudo_voigt_cdf(moved - position, fwhm_l, fwhm_g)
            out[:, k] += (height / strongest) * fwhm_l * np.diff(cdf, axis=1)
    return out


def _in_window(compound: Compound, low: float, high: float) -> bool:
    strongest = max(height for _, _, height in compound.bands)
    return any(
        low <= position <= high and height >= MIN_BAND_FRACTION * strongest
        for position, _, height in compound.bands
    )


def _min_angle(spectra: np.ndarray) -> float:
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)
    angles = np.arccos(cosine[np.triu_indices(len(spectra), 1)])
    return float(angles.min())


def _choose_compounds(
    rng: np.random.Generator,
    params: dict,
    axis: tuple[float, float, int, float],
    contaminant: bool,
) -> tuple[list[Compound], str | None]:
    low, scale, n_channels, fwhm_g = axis
    high = low + scale * (n_channels - 1)
    zero = np.zeros(1)
    if params["compounds"] is not None:
        chosen = [COMPOUNDS[name] for name in params["compounds"]]
        outside = [c.name for c in chosen if not _in_window(c, low, high)]
        if outside:
            raise ValueError(
                f"compounds {outside} have no band of at least "
                f"{MIN_BAND_FRACTION:.0%} of their strongest in the "
                f"{params['window']} window ({low:.0f}-{high:.0f} cm⁻¹)."
            )
        spectra = _spectra(chosen, low, scale, n_channels, fwhm_g, zero)[0]
        if _min_angle(spectra) < MIN_ANGLE:
            raise ValueError(
                f"compounds {params['compounds']} are closer than "
                f"{MIN_ANGLE} rad in spectral angle."
            )
        return chosen, None
    sample_type, n = params["sample_type"], params["n_endmembers"]
    visible = [c for c in COMPOUNDS.values() if _in_window(c, low, high)]
    native = [c for c in visible if sample_type in c.sample_types]
    foreign = [c for c in visible if sample_type not in c.sample_types]
    n_native = n - int(contaminant)
    for _ in range(_MAX_ATTEMPTS):
        picks = rng.choice(len(native), n_native, replace=False)
        chosen = [native[i] for i in picks]
        if contaminant:
            chosen.append(foreign[int(rng.integers(len(foreign)))])
        spectra = _spectra(chosen, low, scale, n_channels, fwhm_g, zero)[0]
        if _min_angle(spectra) >= MIN_ANGLE:
            return chosen, chosen[-1].name if contaminant else None
    raise RuntimeError(f"no {n} distinct enough {sample_type} compounds.")


# --------------------------------------------------------------------------
# Intensity, shift, background, defects
# --------------------------------------------------------------------------


def _unit_range(values: np.ndarray) -> np.ndarray:
    return (values - values.min()) / np.ptp(values)


def _scan_walk(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # A drift in time: a random walk along the raster order, smoothed.
    steps = rng.standard_normal(shape[0] * shape[1])
    walk = ndimage.gaussian_filter1d(np.cumsum(steps), shape[1], mode="nearest")
    return walk.reshape(shape)


def _intensity(rng, shape, variation: float) -> np.ndarray | None:
    if variation == 0:
        return None
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    tilt = rng.normal(size=2)
    parts = (
        tilt[0] * yy + tilt[1] * xx,
        _smooth_random_field(rng, shape, rng.uniform(3.0, 12.0)),
        _scan_walk(rng, shape),
    )
    mix = rng.dirichlet(np.ones(3))
    pattern = sum(w * _unit_range(p) for w, p in zip(mix, parts, strict=True))
    return 1.0 - variation * _unit_range(pattern)


def _shift_pattern(rng, shape, amplitude: float) -> tuple[np.ndarray, str | None]:
    if amplitude == 0:
        return np.zeros(shape), None
    if rng.random() < 0.5:
        pattern, mode = _scan_walk(rng, shape), "scan"
    else:
        rows = np.cumsum(rng.standard_normal(shape[0]))
        pattern, mode = np.repeat(rows[:, None], shape[1], axis=1), "row"
    pattern = pattern - pattern.mean()
    return pattern * (amplitude / np.abs(pattern).max()), mode


def _shifted_mixture(
    spectra_at: Callable[[np.ndarray], np.ndarray],
    fractions: np.ndarray,
    intensity: np.ndarray,
    shifts: np.ndarray,
) -> np.ndarray:
    low = shifts.min()
    n_grid = math.ceil((shifts.max() - low) / SHIFT_GRID) + 2
    table = spectra_at(low + SHIFT_GRID * np.arange(n_grid))
    position = ((shifts - low) / SHIFT_GRID).ravel()
    lower = np.clip(np.floor(position).astype(int), 0, n_grid - 2)
    weight = (position - lower)[:, None]
    # Linear interpolation between the exact spectra at the two nearest grid
    # shifts, written as one product: pixel -> (grid shift, compound) weights.
    flat = fractions.reshape(-1, fractions.shape[-1])
    coefficients = np.zeros((len(flat), n_grid, flat.shape[1]))
    pixels = np.arange(len(flat))
    coefficients[pixels, lower] = (1.0 - weight) * flat
    coefficients[pixels, lower + 1] = weight * flat
    mixed = coefficients.reshape(len(flat), -1) @ table.reshape(-1, table.shape[-1])
    return intensity[..., None] * mixed.reshape(*shifts.shape, -1)


def _broad_shape(rng, nu: np.ndarray) -> np.ndarray:
    low, high = nu[0], nu[-1]
    span = high - low
    shape = np.zeros_like(nu)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(low - 0.5 * span, high + 1.5 * span)
        sigma = rng.uniform(0.8, 3.0) * span / 2.355
        shape += rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((nu - centre) / sigma) ** 2)
    return shape / shape.max()


def _fluorescence(
    rng, nu: np.ndarray, fractions: np.ndarray, intensity: np.ndarray
) -> tuple[np.ndarray, bool]:
    shape, n = fractions.shape[:2], fractions.shape[-1]
    glowing = rng.choice(n, int(rng.integers(1, min(2, n) + 1)), replace=False)
    # Fluorescence comes from a larger volume than the Raman focus, hence
    # the extra blur of the abundance it follows.
    correlated = sum(
        rng.uniform(0.3, 1.0)
        * ndimage.gaussian_filter(fractions[..., k], 1.5, mode="nearest")[..., None]
        * _broad_shape(rng, nu)
        for k in glowing
    )
    smooth = np.exp(0.6 * _smooth_random_field(rng, shape, rng.uniform(4.0, 15.0)))
    diffuse = smooth[..., None] * _broad_shape(rng, nu)
    mix = rng.random()
    background = (
        mix * correlated / correlated.max() + (1 - mix) * diffuse / diffuse.max()
    )
    bleaching = bool(rng.random() < 0.5)
    if bleaching:
        t = np.linspace(0.0, 1.0, shape[0] * shape[1]).reshape(shape)
        loss, rate = rng.uniform(0.2, 0.8), rng.uniform(1.0, 5.0)
        decay = (1 - np.exp(-rate * t)) / (1 - np.exp(-rate))
        background *= (1.0 - loss * decay)[..., None]
    return background * intensity[..., None], bleaching


def _defects(
    rng, shape, n_channels: int, counts: float, cosmic: bool, hot: bool
) -> tuple[np.ndarray, int, tuple[int, ...], tuple[int, ...]]:
    added = np.zeros((*shape, n_channels))
    n_rays = int(rng.integers(1, 21)) if cosmic else 0
    for _ in range(n_rays):
        y, x = rng.integers(shape[0]), rng.integers(shape[1])
        width = int(rng.integers(1, 4))
        start = int(rng.integers(0, n_channels - width + 1))
        # A spike falls on one CCD pixel and spills into its neighbours.
        profile = rng.uniform(0.2, 1.0, width)
        profile[rng.integers(width)] = 1.0
        added[y, x, start : start + width] += (
            _log_uniform(rng.random(), 5, 50) * counts * profile
        )
    hot_channels: tuple[int, ...] = ()
    dead_channels: tuple[int, ...] = ()
    if hot:
        n_hot = int(rng.integers(1, 4))
        picked = rng.choice(n_channels, n_hot + 1, replace=False)
        hot_channels = tuple(sorted(int(c) for c in picked[:n_hot]))
        for c in hot_channels:
            added[..., c] += _log_uniform(rng.random(), 0.05, 1.0) * counts
        if rng.random() < 0.5:
            dead_channels = (int(picked[-1]),)
    return added, n_rays, hot_channels, dead_channels


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _check_split(split: object) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be 'development' or 'held_out', got {split!r}.")
    return SPLITS[split]


def raman_compound_scene(
    index: int, split: str = "development", **overrides
) -> tuple[hs.signals.Signal1D, GroundTruth, RamanCompoundDescription]:
    """Draw one synthetic Raman map of real compounds.

    Parameters
    ----------
    index : int
        Scene number (>= 0) within the split.
    split : {"development", "held_out"}
        Which half of the family; the halves never share a seed.
    **overrides
        Values that replace the drawn top-level parameters: ``sample_type``,
        ``n_endmembers``, ``shape``, ``n_channels``, ``window``, ``counts``,
        ``read_noise``, ``fluorescence``, ``cosmic_rays``, ``hot_pixels``,
        ``shift_channels``, ``pure_pixels``, ``intensity_variation``,
        ``structure`` and ``compounds`` (see the module docstring).

    Returns
    -------
    signal : hyperspy.signals.Signal1D
        Data ``(ny, nx, n_channels)`` in electrons, Raman shift axis in cm⁻¹
        and navigation axes in µm.
    truth : GroundTruth
        Endmembers on the nominal axis, abundances, noiseless mixture,
        intensity map (None when uniform) and additive artefacts (None when
        there are none).
    description : RamanCompoundDescription
        What was drawn.

    Raises
    ------
    ValueError
        For an unknown split, a negative index, or an unknown or invalid
        override.
    """
    split_id = _check_split(split)
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}.")
    seed = np.random.SeedSequence(ENTROPY, spawn_key=(split_id, int(index)))
    rng = np.random.default_rng(seed)
    u = rng.random(_N_UNIFORMS)
    params = _apply_overrides(_draw_parameters(u), overrides)
    stages = rng.spawn(7)

    shape = params["shape"]
    n, n_channels = params["n_endmembers"], params["n_channels"]
    (low_lo, low_hi), (high_lo, high_hi) = WINDOWS[params["window"]]
    low, high = low_lo + u[6] * (low_hi - low_lo), high_lo + u[7] * (high_hi - high_lo)
    scale = (high - low) / (n_channels - 1)
    fwhm_g = 3.0 + 12.0 * u[11]
    axis = (low, scale, n_channels, fwhm_g)
    compounds, contaminant = _choose_compounds(stages[0], params, axis, u[23] < 0.25)
    cross_sections = np.array([_log_uniform(c, 0.3, 3.0) for c in stages[0].random(n)])

    floor = max(0.5, 1.0 / n + 0.1)
    max_fraction = floor + u[19] * (0.9 - floor)
    blur = 0.3 + 1.2 * u[25]
    fractions = build_abundances(
        stages[1],
        params["structure"],
        shape,
        compounds,
        blur,
        None if params["pure_pixels"] else max_fraction,
    )
    intensity = _intensity(stages[2], shape, params["intensity_variation"])
    gain = np.ones(shape) if intensity is None else intensity

    def spectra_at(shifts: np.ndarray) -> np.ndarray:
        base = _spectra(compounds, low, scale, n_channels, fwhm_g, shifts)
        return base * cross_sections[:, None]

    unit = spectra_at(np.zeros(1))[0]
    peak = (gain[..., None] * (fractions @ unit)).mean(axis=(0, 1)).max()
    to_counts = params["counts"] / peak
    endmembers = unit * to_counts
    noiseless = gain[..., None] * (fractions @ endmembers)

    shifts, shift_mode = _shift_pattern(stages[3], shape, params["shift_channels"])
    if shift_mode is None:
        measured = noiseless.copy()
    else:
        measured = _shifted_mixture(
            lambda s: spectra_at(s) * to_counts, fractions, gain, shifts
        )

    nu = low + scale * np.arange(n_channels)
    additive = np.zeros_like(noiseless)
    ratio, bleaching = None, False
    if params["fluorescence"]:
        ratio = _log_uniform(u[13], 0.2, 20.0)
        background, bleaching = _fluorescence(stages[4], nu, fractions, gain)
        band_height = noiseless.max(axis=-1).mean()
        additive += background * (ratio * band_height / background.max(-1).mean())
    spikes, n_rays, hot_channels, dead_channels = _defects(
        stages[5],
        shape,
        n_channels,
        params["counts"],
        params["cosmic_rays"],
        params["hot_pixels"],
    )
    additive += spikes
    for c in dead_channels:
        additive[..., c] = -measured[..., c]
    has_artefacts = params["fluorescence"] or n_rays > 0 or params["hot_pixels"]

    dark = 0.5 + 9.5 * u[10]
    noise_rng = stages[6]
    data = noise_rng.poisson(measured + additive + dark).astype(float) - dark
    data += noise_rng.normal(0.0, params["read_noise"], data.shape)

    names = tuple(c.name for c in compounds)
    truth = GroundTruth(
        endmembers=endmembers,
        abundances=fractions,
        names=names,
        noiseless=noiseless,
        intensity=intensity,
        artefacts=additive if has_artefacts else None,
    )
    description = RamanCompoundDescription(
        **{key: params[key] for key in _DESCRIBED},
        split=split,
        index=int(index),
        subgroups=_subgroups(params, n_rays > 0),
        compounds=names,
        contaminant=contaminant,
        axis_range=(float(low), float(high)),
        pixel_size_um=_log_uniform(u[24], *PIXEL_SIZE_UM[params["sample_type"]]),
        instrument_fwhm=float(fwhm_g),
        cross_sections=tuple(float(c) for c in cross_sections),
        dark_current=float(dark),
        max_fraction=None if params["pure_pixels"] else float(max_fraction),
        fluorescence_ratio=ratio,
        photobleaching=bleaching,
        n_cosmic_rays=n_rays,
        hot_channels=hot_channels,
        dead_channels=dead_channels,
        shift_mode=shift_mode,
    )
    return _signal(data, description), truth, description


def _subgroups(params: dict, cosmic: bool) -> tuple[str, ...]:
    tags = ["pure_pixels" if params["pure_pixels"] else "no_pure_pixels"]
    if params["intensity_variation"] >= 0.1:
        tags.append("intensity_varying")
    if params["counts"] < LOW_DOSE_COUNTS:
        tags.append("low_dose")
    tags.append("background" if params["fluorescence"] else "no_background")
    if params["shift_channels"] >= 0.5:
        tags.append("drift")
    if cosmic or params["hot_pixels"]:
        tags.append("artefacts")
    return tuple(tags)


def _signal(
    data: np.ndarray, description: RamanCompoundDescription
) -> hs.signals.Signal1D:
    signal = hs.signals.Signal1D(data)
    signal.metadata.General.title = (
        f"Raman compounds {description.split} #{description.index}: "
        f"{description.sample_type} {description.structure} of "
        f"{', '.join(description.compounds)}"
    )
    signal.metadata.Signal.quantity = "Intensity (e⁻)"
    low, high = description.axis_range
    raman = signal.axes_manager.signal_axes[0]
    raman.name, raman.units = "Raman shift", "cm⁻¹"
    raman.offset, raman.scale = low, (high - low) / (description.n_channels - 1)
    for nav, name in zip(signal.axes_manager.navigation_axes, ("x", "y"), strict=True):
        nav.name, nav.units, nav.scale = name, "µm", description.pixel_size_um
    return signal


def raman_compound_family(
    split: str = "development", n_scenes: int = 30, first: int = 0
) -> Iterator[tuple[hs.signals.Signal1D, GroundTruth, RamanCompoundDescription]]:
    """Yield scenes ``first`` to ``first + n_scenes - 1`` of a split.

    Parameters
    ----------
    split : {"development", "held_out"}
        Which half of the family.
    n_scenes : int
        Number of scenes (>= 0).
    first : int
        Index of the first scene (>= 0).

    Returns
    -------
    iterator of tuple
        ``(signal, truth, description)`` as :func:`raman_compound_scene`
        returns them, generated one at a time.
    """
    _check_split(split)
    for name, value in (("n_scenes", n_scenes), ("first", first)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    return (raman_compound_scene(i, split) for i in range(first, first + n_scenes))
