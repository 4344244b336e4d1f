"""What every generator shares: the ground truth, argument checks, smooth fields."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


# --------------------------------------------------------------------------
# What the independent generators' conventions share
# --------------------------------------------------------------------------


def checked_override(
    name: str, value: Any, kind: str, lo: float, hi: float, choices: tuple = ()
) -> Any:
    """``value`` of a scene override, or a ValueError stating what is allowed.

    ``kind`` is ``"integer"`` or ``"number"`` (in ``[lo, hi]``), ``"shape"``
    (a pair of integers in ``[lo, hi]``), ``"flag"`` (a bool) or
    ``"choice"`` (one of ``choices``).
    """

    def integer(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if kind == "integer" and integer(value) and lo <= value <= hi:
        return int(value)
    pair = isinstance(value, tuple | list) and len(value) == 2
    if kind == "shape" and pair and all(integer(v) and lo <= v <= hi for v in value):
        return int(value[0]), int(value[1])
    number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if kind == "number" and number and lo <= value <= hi:
        return float(value)
    if kind == "flag" and isinstance(value, bool | np.bool_):
        return bool(value)
    if kind == "choice" and value in choices:
        return str(value)
    allowed = {
        "integer": f"an integer in [{lo}, {hi}]",
        "shape": f"a pair (ny, nx) of integers in [{lo}, {hi}]",
        "number": f"a number in [{lo:g}, {hi:g}]",
        "flag": "True or False",
        "choice": f"one of {choices}",
    }[kind]
    raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def present_abundances(
    rng: np.random.Generator,
    draw: Callable[[], np.ndarray],
    *,
    pure: bool,
    pure_above: float,
    what: str,
) -> tuple[np.ndarray, float]:
    """Abundances from ``draw()`` in which every phase is present, and max_fraction.

    Drawn again (up to 50 times) until every phase is the largest fraction
    in 16 pixels or more and, with ``pure`` pixels, above ``pure_above`` in
    9 pixels or more; without them, capped by :func:`capped_fractions`
    (``max_fraction`` 1 with them). ``what`` names the structure in the
    error raised when no draw meets the rules.
    """
    for _ in range(50):
        abundances = draw()
        n = abundances.shape[-1]
        present = np.bincount(abundances.argmax(-1).ravel(), minlength=n).min() >= 16
        if present and (not pure or (abundances > pure_above).sum((0, 1)).min() >= 9):
            break
    else:
        raise RuntimeError(f"No {what} abundances met the presence rules.")
    if pure:
        return abundances, 1.0
    return capped_fractions(rng, abundances)


def capped_fractions(
    rng: np.random.Generator, abundances: np.ndarray
) -> tuple[np.ndarray, float]:
    """Abundances whose largest fraction is at most a drawn ``max_fraction``.

    ``max_fraction`` is uniform on ``[max(0.5, 1/n + 0.1), 0.9]``; a pixel
    whose largest fraction exceeds it is mixed towards the uniform
    composition until the largest equals it, which keeps the order of the
    phases in every pixel (each stays the largest where it was). Returns
    the abundances and ``max_fraction``.
    """
    n = abundances.shape[-1]
    max_fraction = rng.uniform(max(0.5, 1 / n + 0.1), 0.9)
    top = abundances.max(-1, keepdims=True)
    mix = np.clip((top - max_fraction) / np.maximum(top - 1 / n, 1e-12), 0.0, 1.0)
    return (1 - mix) * abundances + mix / n, float(max_fraction)


def log_uniform_at(u: float, lo: float, hi: float) -> float:
    """The value at ``u`` in [0, 1] of a log-uniform draw on [lo, hi]."""
    return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))


def check_scene_index(name: str, value: Any) -> None:
    """A scene index (or count) must be an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")


def check_split(split: str, splits: dict[str, int]) -> None:
    """A split must be one of ``splits`` (``"development"``, ``"held_out"``)."""
    if split not in splits:
        raise ValueError(f"split must be 'development' or 'held_out', got {split!r}.")


def scene_rng(
    entropy: int, split: str, index: int, splits: dict[str, int]
) -> np.random.Generator:
    """The random stream of scene ``index`` of ``split``, the arguments checked.

    ``SeedSequence(entropy, spawn_key=(splits[split], index))``: the splits
    never share a stream, and a scene is the same on every call.
    """
    check_scene_index("index", index)
    check_split(split, splits)
    seed = np.random.SeedSequence(
        entropy=entropy, spawn_key=(splits[split], int(index))
    )
    return np.random.default_rng(seed)


def scene_range(
    scene: Callable[[int, str], Any],
    split: str,
    n_scenes: int,
    first: int,
    splits: dict[str, int],
) -> Iterator[Any]:
    """``scene(i, split)`` for ``i`` from ``first`` on, ``n_scenes`` of them.

    The arguments are checked at once; each scene is generated when the
    iterator reaches it.
    """
    check_split(split, splits)
    check_scene_index("n_scenes", n_scenes)
    check_scene_index("first", first)
    return (scene(i, split) for i in range(first, first + n_scenes))
