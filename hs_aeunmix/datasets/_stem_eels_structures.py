"""Spatial structures of the STEM-EELS scenes (:mod:`._stem_eels`).

Each structure (:data:`._stem_eels.STRUCTURES`: an interface, precipitates,
layers, grains, core-shell particles, a gradient) draws abundances of shape
(ny, nx, n) on the simplex; :func:`_abundances` draws them again until the
presence and purity rules hold and mixes them down to ``max_fraction``
without pure pixels (step 3 of :mod:`._stem_eels`'s docstring).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import _smooth_random_field, present_abundances

Rng = np.random.Generator
Shape = tuple[int, int]
Params = dict[str, Any]


def _coordinates(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return yy.astype(float), xx.astype(float)


def _rotated(shape: Shape, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates across (u) and along (v) a direction, from the centre."""
    yy, xx = _coordinates(shape)
    yy, xx = yy - (shape[0] - 1) / 2, xx - (shape[1] - 1) / 2
    c, s = math.cos(angle), math.sin(angle)
    return yy * c + xx * s, xx * c - yy * s


def _rough(rng: Rng, v: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth random displacement (pixels) along the coordinate ``v``."""
    knots = np.arange(math.floor(v.min()), math.ceil(v.max()) + 2)
    profile = _smooth_random_field(rng, (knots.size,), rng.uniform(2.0, 6.0))
    return amplitude * np.interp(v, knots, profile)


def _spread_points(rng: Rng, n: int, shape: Shape, spacing: float) -> np.ndarray:
    """``n`` points about ``spacing`` apart or more (less where crowded)."""
    points: list[np.ndarray] = []
    while len(points) < n:
        for _ in range(200):
            point = rng.uniform((0, 0), shape)
            if all(np.hypot(*(point - q)) >= spacing for q in points):
                points.append(point)
                break
        else:
            spacing *= 0.8
    return np.array(points)


def _place(
    rng: Rng, shape: Shape, radius: float, placed: list, gap: float
) -> np.ndarray | None:
    """A centre for a disc clear of the ``placed`` (centre, radius) discs."""
    for _ in range(100):
        centre = rng.uniform((radius, radius), (shape[0] - radius, shape[1] - radius))
        if all(np.hypot(*(centre - c)) > radius + r + gap for c, r in placed):
            placed.append((centre, radius))
            return centre
    return None


def _disc(shape: Shape, centre: np.ndarray, radius: float, blur: float) -> np.ndarray:
    """Fraction of each column inside a foil-spanning disc, edge blurred."""
    yy, xx = _coordinates(shape)
    return special.ndtr((radius - np.hypot(yy - centre[0], xx - centre[1])) / blur)


def _with_roles(rng: Rng, by_role: np.ndarray) -> np.ndarray:
    """Normalise, and give the structural roles to random endmembers."""
    by_role = np.clip(by_role, 0.0, None)
    by_role /= by_role.sum(-1, keepdims=True)
    return by_role[..., np.argsort(rng.permutation(by_role.shape[-1]))]


def _add_precipitates(rng: Rng, a: np.ndarray, roles: range, pure: bool) -> None:
    """Embed discs of radius 1 to 4 pixels of each role into ``a``."""
    placed: list = []
    for role in roles:
        mean_radius = rng.uniform(1.5 if pure else 1.0, 4.0)
        largest = purest = 0
        while largest < 20 or (pure and purest < 10):
            radius = float(np.clip(mean_radius * rng.uniform(0.8, 1.2), 1.0, 4.0))
            centre = _place(rng, a.shape[:2], radius, placed, 2.0)
            if centre is None:
                return
            f = _disc(a.shape[:2], centre, radius, rng.uniform(0.2, 0.5))
            a *= 1 - f[..., None]
            a[..., role] += f
            largest, purest = largest + (f > 0.5).sum(), purest + (f > 0.98).sum()


def _interface(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """A wavy, rough diffuse interface; a third phase segregated along it as
    an interlayer; any others as precipitates."""
    u, v = _rotated(shape, rng.uniform(0, 2 * math.pi))
    size = math.sqrt(shape[0] * shape[1])
    wave = (
        rng.uniform(0, 0.08)
        * size
        * np.sin(
            2 * math.pi * v / (rng.uniform(0.5, 1.5) * size)
            + rng.uniform(0, 2 * math.pi)
        )
    )
    d = u - rng.uniform(-0.15, 0.15) * size - wave - _rough(rng, v, rng.uniform(0, 1.5))
    step = special.ndtr(d / rng.uniform(0.5, 2.0 if pure else 6.0))
    a = np.zeros((*shape, n))
    a[..., 0], a[..., 1] = 1 - step, step
    if n >= 3:
        half, blur = rng.uniform(2.5, 4.5), rng.uniform(0.3, 0.8)
        layer = special.ndtr((d + half) / blur) - special.ndtr((d - half) / blur)
        a *= 1 - layer[..., None]
        a[..., 2] = layer
    _add_precipitates(rng, a, range(3, n), pure)
    return _with_roles(rng, a)


def _precipitates(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """A matrix holding small precipitates of every other phase."""
    a = np.zeros((*shape, n))
    a[..., 0] = 1.0
    _add_precipitates(rng, a, range(1, n), pure)
    return _with_roles(rng, a)


def _layers(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """A stack of one layer per phase, with rough diffuse interfaces."""
    u, v = _rotated(shape, rng.uniform(-0.4, 0.4) + math.pi / 2 * rng.integers(2))
    thickness = (np.ptp(u) + 1) * (0.6 / n + 0.4 * rng.dirichlet(np.ones(n)))
    above = [np.ones(shape)]
    for bound in u.min() - 0.5 + np.cumsum(thickness)[:-1]:
        d = u - bound - _rough(rng, v, rng.uniform(0, 1.5))
        above.append(special.ndtr(d / rng.uniform(0.3, 1.2 if pure else 3.0)))
    above.append(np.zeros(shape))
    return _with_roles(rng, np.stack([above[j] - above[j + 1] for j in range(n)], -1))


def _grains(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """Voronoi grains, possibly elongated, with blurred boundaries."""
    n_seeds = n + int(rng.integers(0, 2 * n + 1))
    seeds = _spread_points(
        rng, n_seeds, shape, 0.6 * math.sqrt(shape[0] * shape[1] / n_seeds)
    )
    roles = np.concatenate([np.arange(n), rng.integers(0, n, n_seeds - n)])
    stretch = math.exp(rng.uniform(-0.4, 0.4))
    yy, xx = _coordinates(shape)
    dy, dx = yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1]
    labels = roles[np.hypot(dy * stretch, dx / stretch).argmin(-1)]
    one_hot = (labels[..., None] == np.arange(n)).astype(float)
    blur = rng.uniform(0.3, 0.8 if pure else 1.8)
    return _with_roles(
        rng, ndimage.gaussian_filter(one_hot, (blur, blur, 0), mode="nearest")
    )


def _core_shell(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """Particles on a support: the other phases pair up as (core, shell)
    types, an odd one out (or the only one) making bare particles."""
    a = np.zeros((*shape, n))
    a[..., 0] = 1.0
    placed: list = []
    for kind in (tuple(range(1, n)[i : i + 2]) for i in range(0, n - 1, 2)):
        for _ in range(1 + int(rng.integers(2))):
            core = max(3.0, rng.uniform(0.06, 0.12) * min(shape))
            outer = core + (rng.uniform(3.0, 5.0) if len(kind) == 2 else 0.0)
            centre = _place(rng, shape, outer, placed, 1.0)
            if centre is None:
                break
            blur = rng.uniform(0.3, 0.7 if pure else 1.5)
            particle, inner = (
                _disc(shape, centre, outer, blur),
                _disc(shape, centre, core, blur),
            )
            a *= 1 - particle[..., None]
            a[..., kind[0]] += inner
            a[..., kind[-1]] += particle - inner
    return _with_roles(rng, a)


def _gradient(rng: Rng, shape: Shape, n: int, pure: bool) -> np.ndarray:
    """A smooth composition gradient between diffuse centres (never pure)."""
    size = math.sqrt(shape[0] * shape[1])
    centres = _spread_points(rng, n, shape, 0.6 * size / math.sqrt(n))
    yy, xx = _coordinates(shape)
    distance = np.hypot(yy[..., None] - centres[:, 0], xx[..., None] - centres[:, 1])
    logits = -((distance / (rng.uniform(0.25, 0.5) * size)) ** 2)
    logits += 0.3 * np.stack(
        [_smooth_random_field(rng, shape, size / 6) for _ in range(n)], -1
    )
    return _with_roles(rng, np.exp(logits - logits.max(-1, keepdims=True)))


# The order is part of the seeding: a scene draws its structure's index.
_STRUCTURES = {
    "interface": _interface,
    "precipitates": _precipitates,
    "layers": _layers,
    "grains": _grains,
    "core_shell": _core_shell,
    "gradient": _gradient,
}
STRUCTURES = tuple(_STRUCTURES)


def _abundances(rng: Rng, p: Params) -> tuple[np.ndarray, float]:
    """Abundances that meet the presence and purity rules, and max_fraction."""
    n, pure = p["n_endmembers"], p["pure_pixels"]
    return present_abundances(
        rng,
        lambda: _STRUCTURES[p["structure"]](rng, p["shape"], n, pure),
        pure=pure,
        pure_above=0.98,
        what=p["structure"],
    )
