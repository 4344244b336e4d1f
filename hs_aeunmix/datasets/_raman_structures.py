"""Spatial structures of the abundances of :mod:`._raman_compounds` scenes.

Each structure returns non-negative weights ``(ny, nx, n)``, one map per
compound; :func:`build_abundances` blurs and normalises them to fractions,
makes the pure or mixed regime and redraws until every compound is the
largest fraction in enough pixels. The module docstring of
:mod:`._raman_compounds` describes what is drawn.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import _smooth_random_field
from hs_aeunmix.datasets._raman_bands import Compound

MIN_DOMINANT = 12
MIN_PURE = 9
PURE_LEVEL = 0.98
_MAX_ATTEMPTS = 100
_CELL_COMPARTMENTS = (
    "cytoplasm",
    "nucleus",
    "granules",
    "droplets",
    "membrane",
    "medium",
)


def _one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return (labels[..., None] == np.arange(n)).astype(float)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return yy.astype(float), xx.astype(float)


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, centre, semi_axes, angle: float
) -> np.ndarray:
    dy, dx = yy - centre[0], xx - centre[1]
    along = dy * math.cos(angle) + dx * math.sin(angle)
    across = -dy * math.sin(angle) + dx * math.cos(angle)
    return (along / semi_axes[0]) ** 2 + (across / semi_axes[1]) ** 2 <= 1.0


def _grains(rng, shape, compounds, blur) -> np.ndarray:
    n = len(compounds)
    n_grains = n * int(rng.integers(2, 6))
    seeds = rng.uniform((0.0, 0.0), shape, size=(n_grains, 2))
    # The first n grains give each mineral at least one; the rest follow modal
    # proportions, as in a rock.
    modes = rng.dirichlet(np.full(n, 2.0))
    phase = np.concatenate([np.arange(n), rng.choice(n, n_grains - n, p=modes)])
    # Multiplicative weights curve the boundaries and spread the grain sizes;
    # the stretch mimics a foliation.
    weight = rng.lognormal(0.0, 0.25, n_grains)
    angle, stretch = rng.uniform(0.0, np.pi), rng.uniform(1.0, 2.5)
    yy, xx = _grid(shape)
    dy, dx = yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1]
    along = (dy * math.cos(angle) + dx * math.sin(angle)) / stretch
    across = -dy * math.sin(angle) + dx * math.cos(angle)
    owner = np.argmin(np.hypot(along, across) / weight, axis=-1)
    return _one_hot(phase[owner], n)


def _blend(rng, shape, compounds, blur) -> np.ndarray:
    n = len(compounds)
    domain = rng.uniform(1.5, 5.0)
    fields = np.stack([_smooth_random_field(rng, shape, domain) for _ in range(n)], -1)
    # Offsets give unequal volume fractions; a small temperature gives the
    # sharp interfaces of strongly immiscible polymers.
    logits = (fields + rng.normal(0.0, 0.6, n)) / rng.uniform(0.05, 0.4)
    return np.exp(logits - logits.max(axis=-1, keepdims=True))


def _tablet(rng, shape, compounds, blur) -> np.ndarray:
    n = len(compounds)
    roles = [c.role for c in compounds]
    matrix = roles.index("excipient") if "excipient" in roles else 0
    owner = np.full(shape, matrix)
    largest = min(8.0, min(shape) / 4.0)
    particles = []
    for k in sorted(set(range(n)) - {matrix}):
        target, area = rng.uniform(0.04, 0.18) * shape[0] * shape[1], 0.0
        while area < target:
            radius = largest ** rng.random()  # log-uniform from 1 pixel
            aspect = rng.uniform(0.6, 1.0)
            particles.append((k, radius, aspect))
            area += np.pi * radius**2 * aspect
    yy, xx = _grid(shape)
    # Painting in random order lets particles of different ingredients overlap
    # as they do in a compressed powder.
    for i in rng.permutation(len(particles)):
        k, radius, aspect = particles[i]
        centre = rng.uniform((0.0, 0.0), shape)
        mask = _ellipse(
            yy, xx, centre, (radius, radius * aspect), rng.uniform(0, np.pi)
        )
        owner[mask] = k
    return _one_hot(owner, n)


def _cell_compartments(compounds: list[Compound]) -> dict[str, int]:
    def preferred(compound: Compound) -> str:
        if compound.role in _CELL_COMPARTMENTS:
            return compound.role
        return "medium" if compound.role == "substrate" else "granules"

    wanted = [preferred(c) for c in compounds]
    # A cell always has cytoplasm: it goes to the compound that prefers it,
    # else to the first that does not belong outside the cell.
    if "cytoplasm" in wanted:
        first = wanted.index("cytoplasm")
    else:
        inside = [k for k, w in enumerate(wanted) if w != "medium"]
        first = inside[0] if inside else 0
    taken = {"cytoplasm": first}
    for k, want in enumerate(wanted):
        if k != first:
            order = (want, *(c for c in _CELL_COMPARTMENTS if c != want))
            taken[next(c for c in order if c not in taken)] = k
    return taken


def _cell(rng, shape, compounds, blur) -> np.ndarray:
    taken = _cell_compartments(compounds)
    yy, xx = _grid(shape)
    size = min(shape)
    centre = np.asarray(shape) / 2.0 + rng.uniform(-0.1, 0.1, 2) * size
    radius = rng.uniform(0.33, 0.45) * size
    aspect, angle = rng.uniform(0.7, 1.0), rng.uniform(0.0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    along = dy * math.cos(angle) + dx * math.sin(angle)
    across = (-dy * math.sin(angle) + dx * math.cos(angle)) / aspect
    polar = np.arctan2(across, along)
    # Low harmonics of the outline give the irregular shape of an adherent cell.
    wobble = sum(
        a * np.cos(m * polar + p)
        for m, a, p in zip(
            (2, 3, 4),
            rng.uniform(0.0, 0.06, 3),
            rng.uniform(0, 2 * np.pi, 3),
            strict=True,
        )
    )
    edge = np.hypot(along, across) - radius * (1.0 + wobble)
    inside = edge < 0
    # A membrane one blur wider than a pixel keeps about 60 % at its centre
    # after the blur, enough to stay the largest fraction there.
    membrane = np.abs(edge) <= (rng.uniform(1.0, 1.5) + blur) / 2.0
    nucleus_centre = centre + rng.uniform(-0.2, 0.2, 2) * radius
    nucleus_axis = rng.uniform(0.35, 0.55) * radius
    nucleus = _ellipse(
        yy,
        xx,
        nucleus_centre,
        (nucleus_axis, nucleus_axis * rng.uniform(0.75, 1.0)),
        rng.uniform(0.0, np.pi),
    )
    cytoplasm_id = taken["cytoplasm"]
    # Without a medium the cell sits among neighbours of the same kind.
    owner = np.where(inside, cytoplasm_id, taken.get("medium", cytoplasm_id))
    free = inside & ~membrane
    if "nucleus" in taken:
        owner[nucleus & free] = taken["nucleus"]
        free &= ~nucleus
    candidates = np.flatnonzero(free)
    distance = np.hypot(yy - nucleus_centre[0], xx - nucleus_centre[1]).ravel()
    # Mitochondria-like granules crowd around the nucleus; droplets are
    # anywhere in the cytoplasm.
    near = np.exp(-distance[candidates] / (0.5 * radius))
    for name, count, sizes, weights in (
        ("granules", rng.integers(5, 16), ((1.5, 3.0), (0.8, 1.3)), near),
        ("droplets", rng.integers(3, 11), ((1.0, 2.5), (1.0, 2.5)), None),
    ):
        if name not in taken or candidates.size == 0:
            continue
        p = None if weights is None else weights / weights.sum()
        for flat in rng.choice(candidates, count, p=p):
            semi = (rng.uniform(*sizes[0]), rng.uniform(*sizes[1]))
            blob = _ellipse(
                yy, xx, np.unravel_index(flat, shape), semi, rng.uniform(0, np.pi)
            )
            owner[blob & free] = taken[name]
    if "membrane" in taken:
        owner[membrane] = taken["membrane"]
    return _one_hot(owner, len(compounds))


def _layers(rng, shape, compounds, blur) -> np.ndarray:
    n = len(compounds)
    sequence = [int(k) for k in rng.permutation(n)]
    # Up to two repeated layers, never on a layer of the same compound, as in
    # laminates, coatings or sediments.
    for _ in range(int(rng.integers(0, 3))):
        sequence.append(int(rng.choice([k for k in range(n) if k != sequence[-1]])))
    thickness = rng.dirichlet(np.full(len(sequence), 4.0))
    angle = rng.uniform(0.0, np.pi)
    yy, xx = _grid(shape)
    depth = yy * math.cos(angle) + xx * math.sin(angle)
    depth -= depth.min()
    bounds = np.cumsum(thickness)[:-1] * depth.max()
    wavy = _smooth_random_field(rng, shape, rng.uniform(4.0, 10.0))
    depth = depth + rng.uniform(0.0, 1.5) * wavy
    width = rng.uniform(0.3, 2.5)
    below = 0.5 * (
        1.0 + special.erf((depth[..., None] - bounds) / (width * math.sqrt(2)))
    )
    edges = np.concatenate(
        [np.ones(shape)[..., None], below, np.zeros(shape)[..., None]], -1
    )
    weights = np.zeros((*shape, n))
    for layer, k in enumerate(sequence):
        weights[..., k] += edges[..., layer] - edges[..., layer + 1]
    return np.clip(weights, 0.0, None)


STRUCTURES = {
    "grains": _grains,
    "blend": _blend,
    "tablet": _tablet,
    "cell": _cell,
    "layers": _layers,
}


def _sharpen(fractions: np.ndarray) -> np.ndarray | None:
    log = np.log(np.maximum(fractions, 1e-300))
    for power in 2.0 ** np.arange(11):
        logits = power * log
        sharp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        sharp /= sharp.sum(axis=-1, keepdims=True)
        if ((sharp > PURE_LEVEL).sum(axis=(0, 1)) >= MIN_PURE).all():
            return sharp
    return None


def _cap(fractions: np.ndarray, max_fraction: float) -> np.ndarray:
    # max_fraction > 0.5, so at most one compound per pixel is cut and the
    # others, which share 1 - max_fraction, cannot overtake it.
    excess = np.clip(fractions - max_fraction, 0.0, None)
    receives = excess == 0
    nearby = ndimage.gaussian_filter(fractions, (3.0, 3.0, 0.0), mode="nearest")
    share = (nearby + 1e-6) * receives
    share /= share.sum(axis=-1, keepdims=True)
    return fractions - excess + excess.sum(axis=-1, keepdims=True) * share


def build_abundances(
    rng: np.random.Generator,
    structure: str,
    shape: tuple[int, int],
    compounds: list[Compound],
    blur: float,
    max_fraction: float | None,
) -> np.ndarray:
    """Fractions ``(ny, nx, n)`` of ``compounds`` in a ``structure``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every draw.
    structure : str
        A key of :data:`STRUCTURES`.
    shape : (int, int)
        Map size ``(ny, nx)``.
    compounds : list of Compound
        The endmembers; their roles place them in tablets and cells.
    blur : float
        Gaussian blur of the boundaries, in pixels.
    max_fraction : float or None
        None for pure pixels (every compound at least ``MIN_PURE`` pixels
        above ``PURE_LEVEL``), else the largest fraction allowed (> 0.5).

    Returns
    -------
    numpy.ndarray
        Fractions on the simplex, each compound the largest in at least
        ``MIN_DOMINANT`` pixels.

    Raises
    ------
    RuntimeError
        When no draw meets the guarantees (too small a map).
    """
    build, n = STRUCTURES[structure], len(compounds)
    for _ in range(_MAX_ATTEMPTS):
        weights = build(rng, shape, compounds, blur)
        weights = ndimage.gaussian_filter(weights, (blur, blur, 0.0), mode="nearest")
        fractions = weights / weights.sum(axis=-1, keepdims=True)
        if max_fraction is None:
            fractions = _sharpen(fractions)
        else:
            fractions = _cap(fractions, max_fraction)
        if fractions is not None:
            dominant = np.bincount(fractions.argmax(-1).ravel(), minlength=n)
            if dominant.min() >= MIN_DOMINANT:
                return fractions
    raise RuntimeError(f"cannot build {structure} abundances of shape {shape}.")
