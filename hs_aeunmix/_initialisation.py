"""Where training starts: initial endmembers.

The reconstruction loss of a linear mixing autoencoder is flat across many
non-negative factorisations, so the starting endmembers decide much of the
answer. The starts are found on the training spectra, denoised by projection
on their leading principal components (single pixels are too noisy to start
from): vertex component analysis (VCA), the successive projection algorithm
(SPA), HyperSpy's SVD + FastICA, the means of k-means clusters ("kmeans"),
random pixels, or featureless ("flat") spectra that impose nothing of the
data. ``init="auto"`` trains
from several starts (:data:`AUTO_STARTS`) and lets
:mod:`hs_aeunmix._selection` choose.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hs_aeunmix._baseline import without_background
from hs_aeunmix._subspace import (
    Moments,
    PrincipalAxes,
    moments,
    principal_axes,
    uses_moments,
)
from hs_aeunmix._vca import vertex_component_analysis

_logger = logging.getLogger(__name__)

# The starts of init="auto" (see hs_aeunmix._selection for the choice).
AUTO_STARTS = ("ica", "spa", "vca")


@dataclass(frozen=True)
class Initialisation:
    """Initial endmembers and how they were found.

    Attributes
    ----------
    endmembers : numpy.ndarray
        (n_components, n_channels), non-negative, in the units of the data
        they were computed from.
    method : str
        A key of :data:`STARTS`, or :data:`GIVEN` for endmembers given
        by the user.
    """

    endmembers: np.ndarray
    method: str


# Rows of denoised spectra rebuilt at once to look for negative values.
_CHECK_ROWS = 512


class Denoised:
    """Spectra projected on their mean plus leading principal axes.

    Kept as coordinates (a few numbers per spectrum), never as a full
    (n_spectra, n_channels) array: rows are rebuilt on demand.
    """

    def __init__(self, principal: PrincipalAxes):
        self.principal = principal

    def __len__(self) -> int:
        return len(self.principal.scores)

    def rows(self, indices) -> np.ndarray:
        """The denoised spectra ``indices`` (float64)."""
        return (
            self.principal.mean + self.principal.scores[indices] @ self.principal.axes
        )

    def points(self) -> np.ndarray:
        """Coordinates of the spectra in an orthonormal basis of their span.

        Distances and inner products between these rows are those between
        the denoised spectra, so SPA and VCA pick the same spectra from them.
        """
        mean, axes = self.principal.mean, self.principal.axes
        along = mean @ axes.T
        off = float(np.linalg.norm(mean - along @ axes))
        points = self.principal.scores + along
        if off <= 1e-12 * max(float(np.linalg.norm(mean)), 1e-300):
            return points
        return np.hstack([points, np.full((len(points), 1), off)])

    def totals(self) -> np.ndarray:
        """Each denoised spectrum's sum over channels."""
        return (
            self.principal.mean.sum()
            + self.principal.scores @ self.principal.axes.sum(axis=1)
        )

    def has_negative_values(self) -> bool:
        """Whether any denoised spectrum has a negative value."""
        # Small blocks stay in the processor's cache: 7 times faster than
        # blocks of 4096 rows on a 65,536 x 1024 sample.
        return any(
            bool((self.rows(slice(start, start + _CHECK_ROWS)) < 0).any())
            for start in range(0, len(self), _CHECK_ROWS)
        )


def denoised(
    spectra: np.ndarray,
    n_components: int,
    *,
    remove: np.ndarray | None = None,
    from_moments: Moments | None = None,
) -> Denoised:
    """Projection of the spectra on their mean plus ``n_components`` principal axes.

    ``remove`` and ``from_moments`` as in
    :func:`hs_aeunmix._subspace.principal_axes`; ``spectra`` is not changed.
    """
    return Denoised(
        principal_axes(spectra, n_components, remove=remove, from_moments=from_moments)
    )


def vca_on_denoised(denoised: Denoised, n_components: int, seed: int) -> np.ndarray:
    """VCA vertices of :func:`denoised` spectra (single pixels are too noisy)."""
    _, indices = vertex_component_analysis(
        denoised.points(), n_components, random_state=np.random.default_rng(seed)
    )
    return denoised.rows(indices)


def independent_components(
    spectra: np.ndarray,
    n_components: int,
    seed: int,
    *,
    remove: np.ndarray | None = None,
    from_moments: Moments | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra and loadings of SVD + FastICA, as HyperSpy's ``blind_source_separation``.

    The spectra's leading singular vectors (no centring) are unmixed by
    FastICA applied to their first derivative along the channels (sharp
    features are the most independent part of spectra), as HyperSpy does by
    default. Returns ``(spectra (n, n_channels), loadings (n_pixels, n))``
    with ``loadings @ spectra`` the rank-n approximation of the data.
    ``remove`` and ``from_moments`` as in
    :func:`hs_aeunmix._subspace.principal_axes`.
    """
    from sklearn.decomposition import FastICA

    principal = principal_axes(
        spectra, n_components, centre=False, remove=remove, from_moments=from_moments
    )
    factors = principal.axes.T  # (n_channels, n)
    loadings = principal.scores
    derivative = np.diff(factors, axis=0)
    with warnings.catch_warnings():
        # Convergence warnings: an unconverged solution is judged by the
        # admissibility test like any other.
        warnings.simplefilter("ignore")
        ica = FastICA(
            n_components,
            whiten="unit-variance",
            max_iter=1000,
            random_state=seed,
        ).fit(derivative)
    unmixing = ica.components_.T  # (n, n): derivative @ unmixing = sources
    separated = factors @ unmixing
    return separated.T, loadings @ np.linalg.inv(unmixing).T


def ica_endmembers(
    spectra: np.ndarray,
    n_components: int,
    seed: int,
    *,
    background: np.ndarray | None = None,
    from_moments: Moments | None = None,
) -> np.ndarray | None:
    """Endmembers from SVD + FastICA, or None if not admissible.

    Each independent component is flipped to a positive spectrum; the
    solution is admissible when a positive weight per component makes the
    loadings sum to about one per pixel (their negative mass is logged, not
    judged: training repairs a slightly negative start and the choice
    between starts discards one that does not fit, see
    :mod:`hs_aeunmix._selection`). The spectra are divided by those weights,
    so that their scale is that of endmembers with fractional abundances.

    ``background``: orthonormal columns of the smooth background
    (:mod:`hs_aeunmix._baseline`), removed from the spectra first. An
    endmember is then only known up to a polynomial: its negative values
    say nothing, its sign is that of its largest value, and the spectra are
    returned as they are (not clipped).
    """
    background_free = background is not None
    components, loadings = independent_components(
        spectra, n_components, seed, remove=background, from_moments=from_moments
    )
    if background_free:
        peaks = components[np.arange(n_components), np.abs(components).argmax(axis=1)]
        signs = np.where(peaks < 0, -1.0, 1.0)
    else:
        signs = np.where(components.sum(axis=1) < 0, -1.0, 1.0)
    components, loadings = components * signs[:, None], loadings * signs[None, :]
    negative_spectra = np.clip(-components, 0, None).sum() / np.abs(components).sum()
    negative_loadings = np.clip(-loadings, 0, None).sum() / np.abs(loadings).sum()
    weights = np.linalg.lstsq(loadings, np.ones(loadings.shape[0]), rcond=None)[0]
    _logger.info(
        "ICA start: negative mass %.3f (loadings), %.3f (spectra)",
        negative_loadings,
        negative_spectra,
    )
    if np.any(weights <= 0):
        return None
    components = components / weights[:, None]
    return components if background_free else np.clip(components, 0, None)


def successive_projections(
    points: np.ndarray, n_components: int, weights: np.ndarray
) -> np.ndarray:
    """Rows chosen by the successive projection algorithm (SPA), in order.

    Each step takes the row of ``points`` divided by its weight (so that
    intensity does not count) with the largest norm after projecting out
    the rows already chosen: the vertices of the data's cone when pure
    pixels exist (Gillis & Vavasis, IEEE TPAMI 36, 698 (2014)).
    Deterministic, and robust to noise when applied to denoised spectra.
    """
    residual = points / np.maximum(weights, 1e-12)[:, None]
    chosen = []
    for _ in range(n_components):
        index = int(np.argmax(np.einsum("ij,ij->i", residual, residual)))
        chosen.append(index)
        direction = residual[index] / max(np.linalg.norm(residual[index]), 1e-30)
        residual -= np.outer(residual @ direction, direction)
    return np.array(chosen)


def _intensities(denoised: Denoised, points: np.ndarray) -> np.ndarray:
    """What each denoised spectrum is divided by so that intensity does not count.

    Its sum, or its norm when some spectra have negative values (a sum then
    says nothing about intensity).
    """
    if denoised.has_negative_values():
        return np.linalg.norm(points, axis=1)
    return denoised.totals()


def spa_on_denoised(denoised: Denoised, n_components: int) -> np.ndarray:
    """SPA vertices of :func:`denoised` spectra, normalised (:func:`_intensities`)."""
    points = denoised.points()
    weights = _intensities(denoised, points)
    return denoised.rows(successive_projections(points, n_components, weights))


def cluster_means(denoised: Denoised, n_components: int, seed: int) -> np.ndarray:
    """Mean spectra of ``n_components`` k-means clusters of the denoised spectra.

    Clustered on their shapes (each spectrum normalised, :func:`_intensities`);
    each endmember is the mean of a cluster's spectra, so that the noise of
    hundreds of pixels averages out where a vertex start takes one pixel.
    """
    from sklearn.cluster import KMeans

    points = denoised.points()
    shapes = points / np.maximum(_intensities(denoised, points), 1e-30)[:, None]
    labels = KMeans(n_components, n_init=4, random_state=seed).fit_predict(shapes)
    scores = denoised.principal.scores
    return (
        denoised.principal.mean
        + np.stack([scores[labels == k].mean(axis=0) for k in range(n_components)])
        @ denoised.principal.axes
    )


class _StartFinder:
    """The starts of one training set, sharing its principal axes and denoising.

    Each start method is a method of this class named in :data:`STARTS`.
    """

    def __init__(
        self,
        spectra: np.ndarray,
        n_components: int,
        seed: int,
        baseline_basis: np.ndarray | None,
        from_moments: Moments | None = None,
    ):
        self.spectra = spectra
        self.n_components = n_components
        self.seed = seed
        self.baseline_basis = baseline_basis
        self._moments = from_moments
        self._denoised: Denoised | None = None

    def shared_moments(self) -> Moments | None:
        if not uses_moments(self.spectra):
            return None  # small: principal_axes takes an exact SVD
        if self._moments is None:
            self._moments = moments(self.spectra, self.baseline_basis)
        return self._moments

    def shared_denoising(self) -> Denoised:
        if self._denoised is None:
            self._denoised = denoised(
                self.spectra,
                self.n_components,
                remove=self.baseline_basis,
                from_moments=self.shared_moments(),
            )
        return self._denoised

    def within_signal(self, endmembers: np.ndarray, directions: int) -> np.ndarray:
        """``endmembers`` projected on the spectra's mean plus their
        ``directions`` leading principal axes (the mean alone for none).

        The axes are the shared denoising's (``n_components`` of them, more
        than the ``directions`` kept): no other pass over the spectra.
        """
        principal = self.shared_denoising().principal
        mean, axes = principal.mean, principal.axes[:directions]
        return mean + ((endmembers - mean) @ axes.T) @ axes

    def random(self) -> np.ndarray:
        rows = np.random.default_rng(self.seed).choice(
            self.spectra.shape[0], self.n_components, replace=False
        )
        endmembers = self.spectra[rows].astype(np.float64)
        if self.baseline_basis is not None:
            endmembers -= (endmembers @ self.baseline_basis) @ self.baseline_basis.T
        return endmembers

    def flat(self) -> np.ndarray:
        # Featureless spectra at the data's mean level with a 6 % random
        # ripple (softplus(0.5413 + 0.1 z) ~ 1 + 0.063 z): no pixel, axis or
        # simplex of the data is imposed, so training alone decides the
        # shapes. Nothing smooth is removed with a background model: the
        # ripple has no smooth part to speak of.
        rng = np.random.default_rng(self.seed)
        ripple = 0.5413 + 0.1 * rng.standard_normal(
            (self.n_components, self.spectra.shape[1])
        )
        level = float(np.abs(self.spectra).mean(dtype=np.float64))
        return level * np.logaddexp(0.0, ripple)

    def ica(self) -> np.ndarray:
        endmembers = None
        if self.n_components > 1:
            endmembers = ica_endmembers(
                self.spectra,
                self.n_components,
                self.seed,
                background=self.baseline_basis,
                from_moments=self.shared_moments(),
            )
        if endmembers is None:
            raise ValueError(
                "init='ica': the independent components are not admissible "
                "as endmembers (no positive weights make their abundances "
                "sum to one). Use init='auto', 'vca' or 'spa'."
            )
        return endmembers

    def spa(self) -> np.ndarray:
        return spa_on_denoised(self.shared_denoising(), self.n_components)

    def vca(self) -> np.ndarray:
        return vca_on_denoised(self.shared_denoising(), self.n_components, self.seed)

    def kmeans(self) -> np.ndarray:
        return cluster_means(self.shared_denoising(), self.n_components, self.seed)


#: Every named start and the method of :class:`_StartFinder` that finds it.
#: The options (:data:`INITIALISATIONS`) and the model file's schema are
#: derived from this table: a new start is one entry here.
STARTS: dict[str, Callable[[_StartFinder], np.ndarray]] = {
    "vca": _StartFinder.vca,
    "spa": _StartFinder.spa,
    "ica": _StartFinder.ica,
    "random": _StartFinder.random,
    "flat": _StartFinder.flat,
    "kmeans": _StartFinder.kmeans,
}
INITIALISATIONS = ("auto", *STARTS)
# A fitted model's start when endmembers were given instead (init=array).
GIVEN = "given"


def candidate_starts(
    spectra: np.ndarray,
    n_components: int,
    method: str,
    seed: int,
    *,
    baseline_basis: np.ndarray | None = None,
    from_moments: Moments | None = None,
    directions: int | None = None,
) -> list[Initialisation]:
    """The starts to train from: one for a named method, several for ``"auto"``.

    ``"auto"`` gives the starts of :data:`AUTO_STARTS` (an inadmissible ICA
    solution is skipped). With a background model
    (``baseline_basis``), the starts are found on the spectra without their
    smooth part, and each endmember is then the smallest non-negative
    spectrum of its kind (see :mod:`hs_aeunmix._baseline`). The starts
    found on denoised spectra share one denoising, and every principal axis
    comes from one pass over the spectra (see :mod:`hs_aeunmix._subspace`),
    or from ``from_moments``, their :func:`~hs_aeunmix._subspace.moments`
    with ``baseline_basis`` removed, when already computed.

    ``directions``: how many directions of variation rise above the noise
    (:func:`~hs_aeunmix._subspace.directions_above_noise`). With fewer than
    the ``n_components - 1`` the endmembers need, every start is projected
    on the spectra's mean plus that many principal axes: the others are
    noise, and a start found along them (a vertex pixel, an independent
    component) is noise that training keeps (the mean spectrum alone when
    no direction rises above the noise). Measured on the three generators
    (README, "Starts within the directions above the noise").
    """
    names = AUTO_STARTS if method == "auto" else (method,)
    within = directions is not None and directions < n_components - 1
    if within:
        _logger.info(
            "Starts kept within the %d directions above the noise (%d needed)",
            directions,
            n_components - 1,
        )
    finder = _StartFinder(spectra, n_components, seed, baseline_basis, from_moments)
    starts: list[Initialisation] = []
    for name in names:
        try:
            endmembers = STARTS[name](finder)
        except ValueError as error:
            # A start the data do not allow (an inadmissible ICA solution,
            # too few channels for FastICA): "auto" goes on without it.
            if method != "auto":
                raise
            _logger.info("Start %s skipped: %s", name, error)
            continue
        if within:
            endmembers = finder.within_signal(endmembers, directions)
        endmembers = (
            np.clip(endmembers, 0, None)
            if baseline_basis is None
            else without_background(endmembers, baseline_basis)
        )
        starts.append(Initialisation(endmembers, name))
    return starts


def with_fixed(start: Initialisation, fixed: np.ndarray | None) -> Initialisation:
    """``start`` with the known endmembers ``fixed`` (k, n_channels) as its first rows.

    The k start endmembers closest to the known spectra (Hungarian
    assignment on the spectral angle) make way for them; the others keep
    their order after them.
    """
    if fixed is None:
        return start
    from scipy.optimize import linear_sum_assignment

    endmembers = start.endmembers
    unit = endmembers / np.maximum(
        np.linalg.norm(endmembers, axis=1, keepdims=True), 1e-30
    )
    known = fixed / np.maximum(np.linalg.norm(fixed, axis=1, keepdims=True), 1e-30)
    _, replaced = linear_sum_assignment(-(known @ unit.T))
    free = [index for index in range(len(endmembers)) if index not in set(replaced)]
    return Initialisation(np.vstack([fixed, endmembers[free]]), start.method)
