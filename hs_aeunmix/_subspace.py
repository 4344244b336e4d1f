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

How many directions rise above the noise (:func:`directions_above_noise`)
follows from the same moments: the spectra of ``k`` endmembers at one
intensity vary along ``k - 1`` directions, and at low dose some or all of
them sink into the noise. Pure noise of variance ``sigma**2`` in ``n``
spectra of ``p`` channels gives the eigenvalues of the Marchenko-Pastur
law, whose largest is ``sigma**2 (1 + sqrt(beta))**2``, ``beta = min(n, p) /
max(n, p)``; the noise level is read from the median eigenvalue, as in
Gavish & Donoho (IEEE Trans. Inf. Theory 60, 5040 (2014)): with many more
channels than endmembers most eigenvalues are noise. A direction counts
when its eigenvalue exceeds that edge :data:`NOISE_EDGE_FACTOR` times. For
white noise, an eigenvalue at twice the edge has an eigenvector within
0.3 rad of the true direction with five or more spectra per channel, and
within 0.42 rad whatever their numbers (the spiked-covariance formulas of
Baik, Ben Arous & Peche; Paul, Stat. Sinica 17, 1617 (2007)); noise whose
variance differs between channels (Poisson noise follows the spectrum)
spreads the noise eigenvalues above the white-noise edge, up to about 1.7
times it on the STEM-EELS scenes measured (2026-12-05), which the factor
leaves out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.optimize

# Spectra converted to float64 at once.
_BLOCK_ROWS = 2048
# A direction of variation rises above the noise when its eigenvalue exceeds
# the largest that noise alone gives this many times (module docstring).
NOISE_EDGE_FACTOR = 2.0


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


def _scatter(sums: Moments, mean: np.ndarray) -> np.ndarray:
    """The spectra's sum of outer products about ``mean``, from their moments."""
    return sums.second - sums.count * np.outer(mean, mean)


def leading_axes(
    sums: Moments, k: int, *, centre: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, singular values, axes (k, n_channels))`` from moments.

    The axes are the leading eigenvectors of the (centred) second moments;
    their signs are the eigensolver's.
    """
    n_channels = len(sums.total)
    mean = sums.total / sums.count if centre else np.zeros(n_channels)
    eigenvalues, vectors = scipy.linalg.eigh(
        _scatter(sums, mean), subset_by_index=[n_channels - k, n_channels - 1]
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


def centred_eigenvalues(
    spectra: np.ndarray,
    *,
    remove: np.ndarray | None = None,
    from_moments: Moments | None = None,
) -> np.ndarray:
    """Eigenvalues of the spectra's centred second moments, decreasing.

    The ``min(n_spectra - 1, n_channels - t)`` that can be non-zero (``t``
    columns in ``remove``, projected out first as in :func:`principal_axes`);
    ``from_moments`` as there.
    """
    n_spectra, n_channels = spectra.shape
    kept = n_channels - (0 if remove is None else remove.shape[1])
    if not uses_moments(spectra):
        values = np.vstack(list(_float_blocks(spectra, remove)))
        values -= values.mean(axis=0)
        eigenvalues = scipy.linalg.svdvals(values) ** 2
    else:
        sums = moments(spectra, remove) if from_moments is None else from_moments
        eigenvalues = scipy.linalg.eigvalsh(_scatter(sums, sums.total / sums.count))
        eigenvalues = eigenvalues[::-1]
    return np.clip(eigenvalues[: max(1, min(n_spectra - 1, kept))], 0.0, None)


def marchenko_pastur_median(beta: float) -> float:
    """Median of the Marchenko-Pastur law of ratio ``beta`` (0 < beta <= 1).

    The law of the eigenvalues of white noise of unit variance.
    """
    low, high = (1 - np.sqrt(beta)) ** 2, (1 + np.sqrt(beta)) ** 2

    def density(x: float) -> float:
        return np.sqrt(max((high - x) * (x - low), 0.0)) / (2 * np.pi * beta * x)

    def below(t: float) -> float:
        return scipy.integrate.quad(density, low, t)[0] - 0.5

    # Above zero: at beta = 1 the density has an integrable pole at 0.
    return float(scipy.optimize.brentq(below, max(low, 1e-12), high, xtol=1e-10))


def directions_above_noise(
    eigenvalues: np.ndarray, n_spectra: int, n_channels: int
) -> int:
    """How many of ``eigenvalues`` (:func:`centred_eigenvalues`) noise does not explain.

    Each is compared with :data:`NOISE_EDGE_FACTOR` times the largest
    eigenvalue pure noise gives, the noise level read from their median
    (see the module docstring). Fewer than about ten eigenvalues say
    nothing about the noise: then every direction counts.
    """
    m = len(eigenvalues)
    if m < 10:
        return m
    beta = m / max(n_spectra, n_channels)
    median = float(np.median(eigenvalues))
    if median <= 0:
        return int((eigenvalues > 0).sum())
    edge = median / marchenko_pastur_median(beta) * (1 + np.sqrt(beta)) ** 2
    return int((eigenvalues > NOISE_EDGE_FACTOR * edge).sum())


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
