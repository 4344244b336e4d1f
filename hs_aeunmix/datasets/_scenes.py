"""Abundance scenes: where each endmember sits on the scan.

Every function returns fractions of shape ``(ny, nx, n_endmembers)`` that are
non-negative and sum to one per pixel, or (:func:`thickness_map`) a relative
intensity map.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, special

from hs_aeunmix.datasets._common import _normalise_rows, _smooth_random_field


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
