"""Vertex Component Analysis and constrained least-squares abundance estimation.

These are the classical linear-unmixing building blocks: VCA finds endmember
spectra among the pixels of a spectrum image, and (fully) constrained least
squares turns endmembers into per-pixel abundances.  Pixels are rows
throughout, i.e. ``data`` has shape ``(n_pixels, n_channels)``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.optimize import nnls

from hs_aeunmix._constraints import InvalidParameterError, check_count
from hs_aeunmix._subspace import orientation

__all__ = [
    "fully_constrained_least_squares",
    "nonnegative_least_squares",
    "vertex_component_analysis",
]

# Weight of the sum-to-one row relative to the largest spectrum norm.  The
# sum-to-one violation of the augmented solution is about
# (endmember norm x residual norm) / weight**2, which this bounds by roughly
# 1 / _SUM_TO_ONE_WEIGHT**2 = 1e-10 even for badly fitting pixels, while the
# resulting ~1e5 scaling disparity between rows is still well within what
# float64 Householder QR (heavy row placed first) resolves accurately.
_SUM_TO_ONE_WEIGHT = 1e5


def _validate_spectra(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` as a 2-D floating array, rejecting bad input.

    Parameters
    ----------
    array : numpy.ndarray
        Candidate ``(n_rows, n_channels)`` array of spectra.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        The input as a floating-point array (not copied when already float).

    Raises
    ------
    ValueError
        If the array is not real, not 2-D, empty, or contains NaN or infinity.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold real numbers, got dtype {array.dtype}; complex "
            "spectra cannot be unmixed linearly (use their modulus instead)."
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_rows, n_channels), "
            f"got an array with {array.ndim} dimension(s) and shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _leading_eigenvectors(gram: np.ndarray, n_vectors: int) -> np.ndarray:
    """Return the eigenvectors of a symmetric matrix with the largest eigenvalues.

    Parameters
    ----------
    gram : numpy.ndarray
        Symmetric positive semi-definite ``(n, n)`` matrix.
    n_vectors : int
        Number of eigenvectors to return.

    Returns
    -------
    numpy.ndarray
        ``(n, n_vectors)`` orthonormal columns, ordered by decreasing eigenvalue.
    """
    size = gram.shape[0]
    _, vectors = scipy.linalg.eigh(gram, subset_by_index=[size - n_vectors, size - 1])
    return vectors[:, ::-1]


def vertex_component_analysis(
    data: np.ndarray,
    n_endmembers: int,
    *,
    random_state: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Extract endmembers with Vertex Component Analysis (VCA).

    Implements the algorithm of Nascimento & Bioucas-Dias (2005): the data are
    projected onto an ``n_endmembers``-dimensional subspace, then endmembers
    are picked one at a time as the pixel most extreme along a random
    direction orthogonal to the endmembers found so far.  VCA assumes that
    (nearly) pure pixels of every endmember are present in the data.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` array of spectra, one pixel per row.
    n_endmembers : int
        Number of endmembers to extract, between 1 and
        ``min(n_pixels, n_channels)``.
    random_state : int, numpy.random.Generator or None, optional
        Seed or generator for the random projection directions.

    Returns
    -------
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` spectra, copies of rows of ``data``.
    indices : numpy.ndarray
        ``(n_endmembers,)`` integer row indices of the selected pixels.

    Raises
    ------
    TypeError
        If ``n_endmembers`` is not an integer.
    ValueError
        If ``data`` is not a finite, real 2-D array or ``n_endmembers`` is out
        of range.

    References
    ----------
    J. M. P. Nascimento and J. M. Bioucas-Dias, "Vertex component analysis: a
    fast algorithm to unmix hyperspectral data", IEEE Transactions on
    Geoscience and Remote Sensing 43(4), 898-910 (2005).
    """
    data = _validate_spectra(data, "data")
    n_pixels, n_channels = data.shape
    max_endmembers = min(n_pixels, n_channels)
    n_endmembers = check_count("n_endmembers", n_endmembers, "vca")
    if n_endmembers > max_endmembers:
        raise InvalidParameterError(
            f"n_endmembers must be an integer between 1 and min(n_pixels, "
            f"n_channels) = {max_endmembers}, got {n_endmembers!r}."
        )
    rng = np.random.default_rng(random_state)
    # Projections are computed in float64 so that float32 input gets the same
    # eigenvectors and SNR estimate; ``data`` itself is only read.
    spectra = data.astype(np.float64, copy=False)

    if n_endmembers == 1:
        # Every pixel is then a scaled copy of one spectrum, so all pixels
        # share a single projective image and the vertex search below has no
        # orthogonal complement to draw from.  The pixel with the strongest
        # component along the dominant direction is the least noisy copy.
        dominant = _leading_eigenvectors(spectra.T @ spectra / n_pixels, 1)
        indices = np.array([np.argmax(np.abs(spectra @ dominant[:, 0]))])
        return data[indices].copy(), indices

    mean_spectrum = spectra.mean(axis=0)
    # Centred spectra, a block of pixels at a time: a large scan is never
    # copied whole.
    covariance = np.zeros((n_channels, n_channels))
    for block in _blocks(spectra):
        centred = block - mean_spectrum
        covariance += centred.T @ centred
    basis = _leading_eigenvectors(covariance / n_pixels, n_endmembers)
    projected = _oriented(
        np.vstack([(block - mean_spectrum) @ basis for block in _blocks(spectra)])
    )

    # SNR estimate of the paper: signal power is what the
    # n_endmembers-dimensional subspace captures (plus the mean).
    data_power = sum(float(np.sum(block**2)) for block in _blocks(spectra)) / n_pixels
    signal_power = np.sum(projected**2) / n_pixels + np.sum(mean_spectrum**2)
    noise_power = data_power - signal_power
    signal_excess = signal_power - n_endmembers / n_channels * data_power
    if noise_power <= 0:
        # Rounding can make noise-free data look like negative noise power.
        snr_db = np.inf
    elif signal_excess <= 0:
        snr_db = -np.inf
    else:
        snr_db = 10 * np.log10(signal_excess / noise_power)
    snr_threshold_db = 15 + 10 * np.log10(n_endmembers)

    if snr_db < snr_threshold_db:
        # Noisy data: PCA to n-1 dimensions is the better denoiser; a constant
        # last coordinate lifts the (n-1)-simplex so that the orthogonal
        # projections below still separate its n vertices.
        reduced = projected[:, : n_endmembers - 1]
        lift = np.sqrt(np.max(np.sum(reduced**2, axis=1)))
        coordinates = np.hstack([reduced, np.full((n_pixels, 1), lift)])
    else:
        # Clean data: projective projection.  Dividing by the component along
        # the mean direction maps every pixel onto one hyperplane, which
        # removes per-pixel scale (e.g. thickness or illumination) variations.
        gram = spectra.T @ spectra / n_pixels
        projected = _oriented(spectra @ _leading_eigenvectors(gram, n_endmembers))
        scale = projected @ projected.mean(axis=0)
        # Pixels with (numerically) no component along the mean direction,
        # e.g. all-zero spectra, have no projective image; leaving them at
        # the origin keeps them from ever being the extreme pixel.
        valid = scale > np.finfo(np.float64).eps * np.max(np.abs(scale))
        coordinates = np.zeros_like(projected)
        coordinates[valid] = projected[valid] / scale[valid, None]

    indices = np.zeros(n_endmembers, dtype=np.intp)
    vertices = np.zeros((n_endmembers, n_endmembers))
    # Seeding with the last unit vector makes the first direction orthogonal
    # to the constant lift coordinate, as in the reference implementation.
    vertices[-1, 0] = 1.0
    for step in range(n_endmembers):
        direction = rng.standard_normal(n_endmembers)
        direction -= vertices @ (np.linalg.pinv(vertices) @ direction)
        direction /= np.linalg.norm(direction)
        indices[step] = np.argmax(np.abs(coordinates @ direction))
        vertices[:, step] = coordinates[indices[step]]
    return data[indices].copy(), indices


def _oriented(projected: np.ndarray) -> np.ndarray:
    """``projected`` with each column's sign set by the data (see
    :func:`hs_aeunmix._subspace.orientation`), so that the random directions
    below pick the same pixels however the spectra are represented."""
    return projected * orientation(projected)


def _blocks(spectra: np.ndarray, rows: int = 8192):
    for start in range(0, len(spectra), rows):
        yield spectra[start : start + rows]


def _constrained_least_squares(
    data: np.ndarray, endmembers: np.ndarray, *, sum_to_one: bool
) -> np.ndarray:
    """Solve per-pixel non-negative least squares, optionally sum-to-one.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` spectra.
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` endmember spectra.
    sum_to_one : bool
        Whether to enforce abundances summing to one, through the augmented
        system of Heinz & Chang (2001): a heavily weighted row of ones is
        appended to the endmember matrix and the weight to each spectrum.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, n_endmembers)`` abundances.
    """
    data = _validate_spectra(data, "data")
    endmembers = _validate_spectra(endmembers, "endmembers")
    if data.shape[1] != endmembers.shape[1]:
        raise ValueError(
            f"data and endmembers must have the same number of channels, got "
            f"{data.shape[1]} and {endmembers.shape[1]}."
        )
    result_dtype = np.result_type(data.dtype, endmembers.dtype)
    design = endmembers.T.astype(np.float64)
    targets = data.astype(np.float64)
    if sum_to_one:
        largest_norm = max(
            np.max(np.linalg.norm(design, axis=0)),
            np.max(np.linalg.norm(targets, axis=1)),
        )
        # Zero data and zero endmembers still need a positive weight.
        weight = _SUM_TO_ONE_WEIGHT * (largest_norm if largest_norm > 0 else 1.0)
        # The heavy row goes first: Householder QR is stable for such
        # stiffly weighted problems when the large rows are processed first.
        design = np.vstack([np.full((1, design.shape[1]), weight), design])
        targets = np.hstack([np.full((targets.shape[0], 1), weight), targets])
    # Thin QR reduces every pixel's problem from n_channels rows to
    # n_endmembers rows with the same minimiser, since the residual part
    # orthogonal to range(Q) does not depend on the abundances.  This makes
    # each nnls call cost O(n_endmembers**2) instead of O(n_channels).
    orthonormal, triangular = np.linalg.qr(design)
    reduced_targets = targets @ orthonormal
    abundances = np.empty((data.shape[0], endmembers.shape[0]), dtype=np.float64)
    for pixel, target in enumerate(reduced_targets):
        abundances[pixel] = nnls(triangular, target)[0]
    return abundances.astype(result_dtype, copy=False)


def nonnegative_least_squares(data: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
    """Estimate non-negative abundances by least squares, pixel by pixel.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` spectra, one pixel per row.
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` endmember spectra.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, n_endmembers)`` abundances ``a >= 0`` minimising
        ``||a @ endmembers - spectrum||`` for every pixel.

    Raises
    ------
    ValueError
        If an input is not a finite 2-D array or the channel counts differ.
    """
    return _constrained_least_squares(data, endmembers, sum_to_one=False)


def fully_constrained_least_squares(
    data: np.ndarray, endmembers: np.ndarray
) -> np.ndarray:
    """Estimate fully constrained (FCLS) abundances, pixel by pixel.

    Abundances are non-negative and sum to one.  The sum-to-one constraint is
    imposed with the augmented system of Heinz & Chang (2001), weighted so that
    it holds to about ``1e-10``.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n_pixels, n_channels)`` spectra, one pixel per row.
    endmembers : numpy.ndarray
        ``(n_endmembers, n_channels)`` endmember spectra.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, n_endmembers)`` abundances.

    Raises
    ------
    ValueError
        If an input is not a finite 2-D array or the channel counts differ.

    References
    ----------
    D. C. Heinz and C.-I Chang, "Fully constrained least squares linear
    spectral mixture analysis method for material quantification in
    hyperspectral imagery", IEEE Transactions on Geoscience and Remote
    Sensing 39(3), 529-545 (2001).
    """
    return _constrained_least_squares(data, endmembers, sum_to_one=True)
