"""Abundance scenes: where each endmember sits on the scan.

Every function returns fractions of shape ``(ny, nx, n_endmembers)`` that are
non-negative and sum to one per pixel, or (:func:`thickness_map`) a relative
intensity map.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import _normalise_rows, _smooth_random_field

_logger = logging.getLogger(__name__)


def _chequerboard_abundances(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_endmembers: int,
    block_size: int,
    filter_size: int,
) -> np.ndarray:
    ny, nx = shape
    n_blocks = (-(-ny // block_size), -(-nx // block_size))
    block_labels = rng.integers(n_endmembers, size=n_blocks)
    labels = np.repeat(np.repeat(block_labels, block_size, 0), block_size, 1)
    labels = labels[:ny, :nx]
    one_hot = (labels[..., None] == np.arange(n_endmembers)).astype(np.int64)
    # Integer box sums keep the fractions exact multiples of 1/filter_size**2,
    # and edge replication ("nearest") keeps every window full, so each
    # pixel's fractions add up to exactly filter_size**2 / filter_size**2.
    kernel = np.ones((filter_size, filter_size, 1), dtype=np.int64)
    counts = ndimage.convolve(one_hot, kernel, mode="nearest")
    return counts / float(filter_size**2)


def _layered_abundances(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_endmembers: int,
    max_fraction: float,
) -> np.ndarray:
    ny, nx = shape
    row = np.arange(ny, dtype=float)[:, None]
    # A periodic multilayer along y (two periods over the image height) whose
    # layers are about as thin as their interfaces are diffuse, like the
    # 0.5 nm Ru layer of the paper seen with a finite probe: no layer is pure,
    # and the missing fraction goes to its neighbours rather than everywhere.
    mean_thickness = max(ny / (2 * n_endmembers), 2.0)
    # Natural peak purity of a mean layer, erf(T / (2 sqrt(2) w)), set to
    # max_fraction so that only a mild contraction remains for thicker layers.
    target_purity = min(max_fraction, 0.95)
    width = mean_thickness / (2 * math.sqrt(2) * special.erfinv(target_purity))
    # Virtual layers beyond the image keep its top and bottom rows mixed too.
    margin = 4 * (mean_thickness + width)
    thicknesses = [rng.uniform(-margin, 0.0)]
    while thicknesses[-1] < ny + margin:
        thicknesses.append(thicknesses[-1] + mean_thickness * rng.uniform(0.8, 1.2))
    flat_boundaries = np.array(thicknesses)
    roughness = ndimage.gaussian_filter1d(
        rng.standard_normal((flat_boundaries.size, nx)), max(nx / 10, 1.0), axis=1
    )
    roughness /= np.maximum(roughness.std(axis=1, keepdims=True), 1e-12)
    # Sorting keeps the rough interfaces ordered, so that each difference of
    # error functions below is non-negative.
    boundaries = np.sort(
        flat_boundaries[:, None] + 0.1 * mean_thickness * roughness, axis=0
    )
    below = 0.5 * (
        1 + special.erf((row[None] - boundaries[:, None, :]) / (math.sqrt(2) * width))
    )
    stack_order = rng.permutation(n_endmembers)
    layers = np.zeros((ny, nx, n_endmembers))
    for index in range(boundaries.shape[0] - 1):
        endmember = stack_order[index % n_endmembers]
        layers[..., endmember] += below[index] - below[index + 1]
    layers = _normalise_rows(np.maximum(layers, 0.0) + 1e-12)

    # A smooth Dirichlet field adds lateral compositional fluctuations.
    dirichlet = rng.dirichlet(np.full(n_endmembers, 2.0), size=shape)
    dirichlet = _normalise_rows(
        ndimage.gaussian_filter(dirichlet, sigma=(3.0, 3.0, 0.0), mode="reflect")
    )
    abundances = _normalise_rows(0.9 * layers + 0.1 * dirichlet)

    # One global contraction towards the simplex centre keeps the maps smooth
    # and the sum-to-one exact while bounding the largest fraction.
    uniform = 1.0 / n_endmembers
    largest = abundances.max()
    if largest > max_fraction:
        contraction = (max_fraction - uniform) / (largest - uniform)
        abundances = uniform + contraction * (abundances - uniform)
    return abundances


def _thickness_map(
    rng: np.random.Generator, shape: tuple[int, int], variation: float
) -> np.ndarray:
    ny, nx = shape
    if variation == 0 or ny * nx == 1:
        return np.ones(shape)
    # A wedge (FIB lamellae thicken away from their edge) plus smooth bumps.
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:ny, 0:nx]
    wedge = (np.cos(angle) * columns + np.sin(angle) * rows) / max(ny, nx)
    bumps = _smooth_random_field(rng, shape, max(min(shape) / 6, 1.0))
    field = wedge + 0.15 * bumps
    spread = field.max() - field.min()
    if spread == 0:
        return np.ones(shape)
    unit = (field - field.min()) / spread
    return 1.0 - variation + 2.0 * variation * unit


def _chessboard_scene(
    rng: np.random.Generator, shape: tuple[int, int], n_endmembers: int
) -> np.ndarray:
    # As in the PNAS protocol: about n_endmembers pure blocks per side.
    block = max(min(shape) // n_endmembers, 1)
    return _chequerboard_abundances(rng, shape, n_endmembers, block, 1)


def _gaussian_scene(shape: tuple[int, int], n_endmembers: int) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    sigma = max(min(shape) / n_endmembers, 1.0)
    maps = np.empty((ny, nx, n_endmembers))
    for index in range(n_endmembers):
        fraction = (index + 1) / (n_endmembers + 1)
        distance2 = (rows - fraction * ny) ** 2 + (columns - fraction * nx) ** 2
        maps[..., index] = np.exp(-distance2 / (2 * sigma**2))
    return _normalise_rows(np.maximum(maps, 1e-300))


def _soft_region(signed_distance: np.ndarray, edge_width: float) -> np.ndarray:
    return special.expit(-signed_distance / edge_width)


def _ellipse_distance(
    rows: np.ndarray,
    columns: np.ndarray,
    centre: tuple[float, float],
    semi_axes: tuple[float, float],
    angle: float,
) -> np.ndarray:
    """Approximate signed distance (pixels) to an ellipse boundary."""
    dy, dx = rows - centre[0], columns - centre[1]
    along = np.cos(angle) * dx + np.sin(angle) * dy
    across = -np.sin(angle) * dx + np.cos(angle) * dy
    radius = np.hypot(along / semi_axes[0], across / semi_axes[1])
    return (radius - 1.0) * min(semi_axes)


# Composition (fractions of lipid, protein, nucleic acid, water, cytochrome c,
# carotenoid) of the cell compartments. _compartment_composition folds the
# columns of endmembers left out of the library into the closest present one.
_CELL_COMPARTMENTS = {
    "medium": (0.0, 0.03, 0.0, 0.97, 0.0, 0.0),
    "cytoplasm": (0.10, 0.45, 0.05, 0.40, 0.0, 0.0),
    "nucleus": (0.0, 0.35, 0.40, 0.25, 0.0, 0.0),
    "lipid droplet": (0.80, 0.05, 0.0, 0.05, 0.0, 0.10),
    "mitochondrion": (0.15, 0.40, 0.0, 0.20, 0.25, 0.0),
}


def _compartment_composition(name: str, n_endmembers: int) -> np.ndarray:
    full = np.array(_CELL_COMPARTMENTS[name])
    composition = full[:n_endmembers].copy()
    # Endmembers left out of the library are replaced by the closest present
    # one: carotenoid dissolves in lipid, cytochrome c is a protein.
    if n_endmembers < 6:
        composition[0] += full[5]
    if n_endmembers < 5:
        composition[1] += full[4]
    return composition


def _cell_scene(
    rng: np.random.Generator, shape: tuple[int, int], n_endmembers: int
) -> np.ndarray:
    ny, nx = shape
    size = min(shape)
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    edge_width = max(size / 64, 0.5)

    cell_centre = (
        ny / 2 + rng.uniform(-0.05, 0.05) * ny,
        nx / 2 + rng.uniform(-0.05, 0.05) * nx,
    )
    cell_axes = (rng.uniform(0.36, 0.42) * size, rng.uniform(0.28, 0.34) * size)
    cell_angle = rng.uniform(0, np.pi)
    # Low-order harmonics make the membrane irregular like a real cell.
    polar = np.arctan2(rows - cell_centre[0], columns - cell_centre[1])
    harmonics = sum(
        rng.normal(0, 0.03) * np.cos(order * polar + rng.uniform(0, 2 * np.pi))
        for order in (2, 3, 5)
    )
    cell_distance = _ellipse_distance(
        rows, columns, cell_centre, cell_axes, cell_angle
    ) - harmonics * min(cell_axes)
    cell = _soft_region(cell_distance, edge_width)

    nucleus_offset = rng.uniform(-0.25, 0.25, 2) * np.array(cell_axes).min()
    nucleus_centre = (
        cell_centre[0] + nucleus_offset[0],
        cell_centre[1] + nucleus_offset[1],
    )
    nucleus_axes = (0.45 * cell_axes[0], 0.5 * cell_axes[1])
    nucleus_distance = _ellipse_distance(
        rows, columns, nucleus_centre, nucleus_axes, cell_angle + rng.uniform(-0.5, 0.5)
    )
    nucleus = _soft_region(nucleus_distance, edge_width)

    def cytoplasm_positions(count: int) -> list[tuple[float, float]]:
        # Organelles sit in the cytoplasm: inside the cell, outside the nucleus.
        positions: list[tuple[float, float]] = []
        for _ in range(100 * count):
            if len(positions) == count:
                break
            radius = math.sqrt(rng.uniform(0.1, 0.7))
            phi = rng.uniform(0, 2 * np.pi)
            row = cell_centre[0] + radius * cell_axes[1] * math.sin(phi)
            column = cell_centre[1] + radius * cell_axes[0] * math.cos(phi)
            inside = 0 <= row < ny and 0 <= column < nx
            if (
                inside
                and cell[int(row), int(column)] > 0.9
                and nucleus[int(row), int(column)] < 0.1
            ):
                positions.append((row, column))
        return positions

    droplets = np.zeros(shape)
    for row, column in cytoplasm_positions(int(rng.integers(3, 7))):
        radius = rng.uniform(0.025, 0.045) * size
        distance = np.hypot(rows - row, columns - column) - radius
        droplets = np.maximum(droplets, _soft_region(distance, edge_width))
    mitochondria = np.zeros(shape)
    if n_endmembers >= 5:
        for row, column in cytoplasm_positions(int(rng.integers(4, 9))):
            semi_axes = (
                rng.uniform(0.04, 0.07) * size,
                rng.uniform(0.015, 0.025) * size,
            )
            distance = _ellipse_distance(
                rows, columns, (row, column), semi_axes, rng.uniform(0, np.pi)
            )
            mitochondria = np.maximum(mitochondria, _soft_region(distance, edge_width))

    # Nested convex blending keeps every pixel on the simplex.
    abundances = np.broadcast_to(
        _compartment_composition("medium", n_endmembers), (ny, nx, n_endmembers)
    ).copy()
    for name, weight in (
        ("cytoplasm", cell),
        ("nucleus", nucleus * cell),
        ("lipid droplet", droplets * cell),
        ("mitochondrion", mitochondria * cell),
    ):
        composition = _compartment_composition(name, n_endmembers)
        abundances = (1 - weight[..., None]) * abundances + weight[
            ..., None
        ] * composition
    return _normalise_rows(abundances)


# Abundances of the family's scenes (see hs_aeunmix.datasets._family).
_PURE_THRESHOLD = 0.98
_MIN_PURE_PIXELS = 9
_MIN_DOMINANT_PIXELS = 16
# Power applied to the cell-scene fractions when pure pixels are wanted.
_CELL_SHARPENING = 40.0


def _structure_scales(
    structure: str,
    pure: bool,
    shape: tuple[int, int],
    n: int,
    max_fraction: float,
    u_size: float,
    u_edge: float,
) -> tuple[float, float]:
    """``(feature_size, edge_width)`` in pixels from two uniform numbers."""
    ny, nx = shape
    if structure == "blocks":
        largest = int(np.clip(math.floor(math.sqrt(ny * nx / (2 * n))), 4, 16))
        block = 4 + math.floor(u_size * (largest - 3))
        block = min(block, largest)
        if pure:
            n_odd = (max(1, block - 3) + 1) // 2
            filter_size = 1 + 2 * min(math.floor(u_edge * n_odd), n_odd - 1)
        else:
            n_odd = block // 2 + 1
            filter_size = 3 + 2 * min(math.floor(u_edge * n_odd), n_odd - 1)
        return float(block), float(filter_size)
    if structure == "smooth":
        correlation = 3.0 + 7.0 * u_size
        width = 0.5 + 1.5 * u_edge if pure else 3.0 + 7.0 * u_edge
        return correlation, width
    if structure == "particles":
        largest = max(3.5, min(10.0, min(shape) / 6))
        radius = 3.5 + u_size * (largest - 3.5)
        width = 0.3 + 0.6 * u_edge if pure else 1.0 + 3.0 * u_edge
        return radius, width
    if structure == "layers":
        if pure:
            largest = min(14.0, min(shape) / n)
            thickness = min(largest, 4.0 + u_size * max(largest - 4.0, 0.0))
            width = min(0.3 + 0.7 * u_edge, 0.15 * thickness)
            return thickness, width
        # _layered_abundances: thin layers about as diffuse as they are thick.
        thickness = max(ny / (2 * n), 2.0)
        purity = min(max_fraction, 0.95)
        width = thickness / (2 * math.sqrt(2) * special.erfinv(purity))
        return thickness, width
    size = float(min(shape))
    return size, max(size / 64, 0.5)


def _blocks(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    block: int,
    filter_size: int,
    pure: bool,
) -> np.ndarray:
    abundances = _chequerboard_abundances(rng, shape, n, block, filter_size)
    for _ in range(20):
        if not _missing_endmembers(abundances, pure):
            break
        abundances = _chequerboard_abundances(rng, shape, n, block, filter_size)
    return abundances


def _smooth_fields(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    correlation: float,
    width: float,
) -> np.ndarray:
    fields = np.stack(
        [_smooth_random_field(rng, shape, correlation) for _ in range(n)], axis=-1
    )
    # A difference of two unit fields changes by about sqrt(2)/correlation
    # per pixel; the softmax goes from 10 % to 90 % over a log-ratio of 4.4.
    sharpness = 4.4 * correlation / (math.sqrt(2) * width)
    logits = sharpness * fields
    logits -= logits.max(axis=-1, keepdims=True)
    return _normalise_rows(np.exp(logits))


def _particles(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    radius: float,
    width: float,
) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    matrix = int(rng.integers(n))
    abundances = np.zeros((ny, nx, n))
    abundances[..., matrix] = 1.0
    others = [k for k in range(n) if k != matrix]
    per_phase = 0.45 * ny * nx / (math.pi * radius**2) / len(others)
    per_phase = int(np.clip(round(per_phase), 1, 6))
    phases = [k for k in others for _ in range(int(rng.integers(1, per_phase + 1)))]
    identity = np.eye(n)
    for position in rng.permutation(len(phases)):
        phase = phases[position]
        semi_axes = (
            radius * rng.uniform(0.8, 1.25),
            max(radius * rng.uniform(0.6, 1.0), 3.0),
        )
        centre = (rng.uniform(0, ny - 1), rng.uniform(0, nx - 1))
        distance = _ellipse_distance(
            rows, columns, centre, semi_axes, rng.uniform(0, np.pi)
        )
        weight = _soft_region(distance, width)[..., None]
        abundances = (1 - weight) * abundances + weight * identity[phase]
    return _normalise_rows(abundances)


def _interface_layers(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    thickness: float,
    width: float,
) -> np.ndarray:
    ny, nx = shape
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    angle = rng.uniform(0, np.pi)
    dy, dx = rows - (ny - 1) / 2, columns - (nx - 1) / 2
    across = np.cos(angle) * dx + np.sin(angle) * dy
    along = -np.sin(angle) * dx + np.cos(angle) * dy
    start, extent = across.min(), across.max() - across.min()
    n_layers = max(n, round(extent / thickness))
    thicknesses = rng.uniform(0.75, 1.25, n_layers)
    boundaries = start + np.cumsum(thicknesses * extent / thicknesses.sum())[:-1]
    labels: list[int] = []
    while len(labels) < n_layers:
        order = list(rng.permutation(n))
        if labels and order[0] == labels[-1]:
            order[0], order[-1] = order[-1], order[0]
        labels.extend(int(k) for k in order)
    labels = labels[:n_layers]
    # Rough interfaces: smooth displacement along each interface.
    positions = np.rint(along - along.min()).astype(int)
    roughness = ndimage.gaussian_filter1d(
        rng.standard_normal((max(n_layers - 1, 1), positions.max() + 1)),
        rng.uniform(3.0, 10.0),
        axis=1,
    )
    roughness /= np.maximum(roughness.std(axis=1, keepdims=True), 1e-12)
    amplitude = rng.uniform(0.0, 0.2) * thickness
    below = [
        0.5
        * (
            1
            + special.erf(
                (across - boundary - amplitude * roughness[i][positions])
                / (math.sqrt(2) * width)
            )
        )
        for i, boundary in enumerate(boundaries)
    ]
    abundances = np.zeros((ny, nx, n))
    for layer, label in enumerate(labels):
        upper = below[layer - 1] if layer > 0 else 1.0
        lower = below[layer] if layer < n_layers - 1 else 0.0
        abundances[..., label] += upper - lower
    return _normalise_rows(np.maximum(abundances, 0.0) + 1e-300)


def _missing_endmembers(abundances: np.ndarray, pure: bool) -> list[int]:
    """Endmembers without the region the scene promises."""
    n = abundances.shape[-1]
    if pure:
        pure_counts = (abundances > _PURE_THRESHOLD).sum(axis=(0, 1))
        dominant_counts = (abundances > 0.5).sum(axis=(0, 1))
        return [
            k
            for k in range(n)
            if pure_counts[k] < _MIN_PURE_PIXELS
            or dominant_counts[k] < _MIN_DOMINANT_PIXELS
        ]
    owners = abundances.argmax(axis=-1)
    counts = np.bincount(owners.ravel(), minlength=n)
    return [k for k in range(n) if counts[k] < _MIN_DOMINANT_PIXELS]


def _plant(rng: np.random.Generator, abundances: np.ndarray, phase: int) -> np.ndarray:
    """Blend a pure soft disk of ``phase`` where no other phase needs the room."""
    ny, nx, n = abundances.shape
    radius, width = 4.5, 0.4
    owners = abundances.argmax(axis=-1)
    counts = np.bincount(owners.ravel(), minlength=n)
    spare = counts - (_MIN_DOMINANT_PIXELS + math.pi * (radius + 2) ** 2)
    protected = (owners != phase) & (spare[owners] < 0)
    rows, columns = np.mgrid[0:ny, 0:nx].astype(float)
    margin = radius + 1
    interior = (
        (rows >= margin)
        & (rows <= ny - 1 - margin)
        & (columns >= margin)
        & (columns <= nx - 1 - margin)
    )
    if protected.any():
        distance = ndimage.distance_transform_edt(~protected)
        candidates = interior & (distance >= radius + 2)
        if not candidates.any():
            candidates = interior & ~protected
    else:
        candidates = interior
    if not candidates.any():
        candidates = interior if interior.any() else np.ones((ny, nx), bool)
    flat = np.flatnonzero(candidates)
    row, column = divmod(int(flat[int(rng.integers(flat.size))]), nx)
    distance = np.hypot(rows - row, columns - column) - radius
    weight = _soft_region(distance, width)[..., None]
    return (1 - weight) * abundances + weight * np.eye(n)[phase]


def _contract(abundances: np.ndarray, max_fraction: float) -> np.ndarray:
    uniform = 1.0 / abundances.shape[-1]
    largest = float(abundances.max())
    if largest <= max_fraction:
        return abundances
    factor = (max_fraction - uniform) / (largest - uniform)
    return uniform + factor * (abundances - uniform)


class _Layout(Protocol):
    """What :func:`_build_abundances` reads of a scene's description
    (:class:`~hs_aeunmix.datasets.SceneDescription`)."""

    split: str
    index: int
    shape: tuple[int, int]
    n_endmembers: int
    structure: str
    feature_size: float
    edge_width: float
    pure_pixels: bool
    max_fraction: float


def _build_abundances(rng: np.random.Generator, description: _Layout) -> np.ndarray:
    shape, n = description.shape, description.n_endmembers
    pure, structure = description.pure_pixels, description.structure
    size, width = description.feature_size, description.edge_width
    if structure == "blocks":
        abundances = _blocks(rng, shape, n, int(size), int(width), pure)
    elif structure == "smooth":
        abundances = _smooth_fields(rng, shape, n, size, width)
    elif structure == "particles":
        abundances = _particles(rng, shape, n, size, width)
    elif structure == "layers" and pure:
        abundances = _interface_layers(rng, shape, n, size, width)
    elif structure == "layers":
        abundances = _layered_abundances(rng, shape, n, description.max_fraction)
    else:
        abundances = _cell_scene(rng, shape, n)
        if pure:
            # Compartments become pure in their main endmember (medium:
            # water, cytoplasm: protein, nucleus: nucleic acid, droplets:
            # lipid) while the membranes stay soft.
            logits = _CELL_SHARPENING * np.log(np.maximum(abundances, 1e-300))
            logits -= logits.max(axis=-1, keepdims=True)
            abundances = _normalise_rows(np.exp(logits))
    for _ in range(5):
        missing = _missing_endmembers(abundances, pure)
        if not missing:
            break
        for phase in missing:
            abundances = _plant(rng, abundances, phase)
        abundances = _normalise_rows(abundances)
    if not pure:
        abundances = _contract(abundances, description.max_fraction)
    missing = _missing_endmembers(abundances, pure)
    if missing:  # pragma: no cover - planting makes this unreachable
        raise RuntimeError(
            f"Scene {description.index} ({description.split}): endmembers "
            f"{missing} lack the promised region."
        )
    if pure:
        counts = (abundances > _PURE_THRESHOLD).sum(axis=(0, 1))
        _logger.debug("Pure pixels per endmember: %s", counts.tolist())
    return abundances
