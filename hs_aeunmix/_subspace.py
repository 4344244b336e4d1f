"""Principal axes of many spectra, without copying them.

The training sample of a large scan is hundreds of MiB, and an SVD of it
needs float64 copies of it several times over. When there are more spectra
than channels, the axes are the leading eigenvectors of the channels'
second moments, accumulated over blocks of spectra in float64: exact, with
memory of ``n_channels**2`` whatever the number of spectra, and one pass
over the data gives the moments for both the centred and the uncentred
axes. A sample with fewer spectra than channels is small and gets an exact
thin SVD.

Each axis is oriented so that the spectrum farthest along it lies on its
positive side (scikit-learn's ``svd_flip`` for tall matrices), a convention
that does not depend on how the spectra are represented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

# Spectra converted to float64 at once.
_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class Moments:
    """Sums over spectra: their number, their sum and their outer products."""

    count: int
    total: np.ndarray
    second: np.ndarray


@dataclass(frozen=True)
class PrincipalAxes:
    """The leading axes of spectra, and the spectra's coordinates along them.

    Attributes
    ----------
    mean : numpy.ndarray
        (n_channels,): subtracted before projecting (zeros when not centred).
    singular : numpy.ndarray
        (k,): singular values, decreasing.
    axes : numpy.ndarray
        (k, n_channels): orthonormal rows.
    scores : numpy.ndarray
        (n_spectra, k): ``(spectra - mean) @ axes.T``.
    """

    mean: np.ndarray
    singular: np.ndarray
    axes: np.ndarray
    scores: np.ndarray


def _float_blocks(spectra: np.ndarray, remove: np.ndarray | None):
    for start in range(0, len(spectra), _BLOCK_ROWS):
        block = spectra[start : start + _BLOCK_ROWS].astype(np.float64)
        if remove is not None:
            block -= (block @ remove) @ remove.T
        yield block


def block_moments(blocks: Iterable[np.ndarray]) -> Moments:
    """Moments of spectra given as float64 blocks of rows."""
    count, total, second = 0, 0.0, 0.0
    for block in blocks:
        count += len(block)
        total = total + block.sum(axis=0)
        second = second + block.T @ block
    return Moments(count, total, second)


def moments(spectra: np.ndarray, remove: np.ndarray | None = None) -> Moments:
    """Moments of ``spectra`` (n_spectra, n_channels) in float64, block by block.

    ``remove``: orthonormal columns (n_channels, t) projected out of every
    spectrum first.
    """
    sums = block_moments(_float_blocks(spectra, None))
    if remove is None:
        return sums
    # Projected out of the moments rather than of each block: the same
    # result, with no per-block product.
    keep = np.eye(spectra.shape[1]) - remove @ remove.T
    return Moments(sums.count, keep @ sums.total, keep @ sums.second @ keep)


def leading_axes(
    sums: Moments, k: int, *, centre: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, singular values, axes (k, n_channels))`` from moments.

    The axes are the leading eigenvectors of the (centred) second moments;
    their signs are the eigensolver's.
    """
    n_channels = len(sums.total)
    mean = sums.total / sums.count if centre else np.zeros(n_channels)
    matrix = sums.second - sums.count * np.outer(mean, mean)
    eigenvalues, vectors = scipy.linalg.eigh(
        matrix, subset_by_index=[n_channels - k, n_channels - 1]
    )
    axes = np.ascontiguousarray(vectors[:, ::-1].T)
    return mean, np.sqrt(np.clip(eigenvalues[::-1], 0.0, None)), axes


def principal_axes(
    spectra: np.ndarray,
    k: int,
    *,
    centre: bool = True,
    remove: np.ndarray | None = None,
    from_moments: Moments | None = None,
) -> PrincipalAxes:
    """The ``k`` leading principal axes of ``spectra`` (not changed).

    Parameters
    ----------
    spectra : numpy.ndarray
        (n_spectra, n_channels), any float dtype.
    k : int
        Number of axes, at most ``min(spectra.shape)``.
    centre : bool
        Subtract the mean spectrum first (principal components) or not
        (singular vectors).
    remove : numpy.ndarray or None
        Orthonormal columns (n_channels, t) projected out of every spectrum
        first.
    from_moments : Moments or None
        :func:`moments` of the same spectra and ``remove``, when already
        computed.
    """
    n_channels = spectra.shape[1]
    if not uses_moments(spectra):
        values = np.vstack(list(_float_blocks(spectra, remove)))
        mean = values.mean(axis=0) if centre else np.zeros(n_channels)
        values -= mean
        left, singular, right = scipy.linalg.svd(values, full_matrices=False)
        axes, singular = right[:k], singular[:k]
        scores = left[:, :k] * singular
    else:
        sums = moments(spectra, remove) if from_moments is None else from_moments
        mean, singular, axes = leading_axes(sums, k, centre=centre)
        shift = mean @ axes.T
        scores = np.vstack(
            [block @ axes.T - shift for block in _float_blocks(spectra, remove)]
        )
    signs = orientation(scores)
    return PrincipalAxes(mean, singular, axes * signs[:, None], scores * signs)


def uses_moments(spectra: np.ndarray) -> bool:
    """Whether :func:`principal_axes` works from :func:`moments` (more spectra
    than channels) rather than from an exact SVD of the spectra."""
    return spectra.shape[0] >= spectra.shape[1]


def orientation(coordinates: np.ndarray) -> np.ndarray:
    """The sign (+1 or -1) that puts each column's farthest value on the positive side.

    An eigenvector's sign is the eigensolver's; fixed this way, it depends
    on the data only, not on how the spectra are represented (any
    orthonormal basis of their channels).
    """
    farthest = np.abs(coordinates).argmax(axis=0)
    values = coordinates[farthest, np.arange(coordinates.shape[1])]
    return np.where(values < 0, -1.0, 1.0)
