"""Where training starts: initial endmembers.

The reconstruction loss of a linear mixing autoencoder is flat across many
non-negative factorisations, so the starting endmembers decide much of the
answer. The starts are found on the training spectra, denoised by projection
on their leading principal components (single pixels are too noisy to start
from): vertex component analysis (VCA), the successive projection algorithm
(SPA), HyperSpy's SVD + FastICA when its components are admissible as
endmembers, or random pixels. ``init="auto"`` trains from several starts
(:data:`AUTO_STARTS`) and lets :mod:`hs_aeunmix._selection` choose.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils.extmath import randomized_svd

from hs_aeunmix._baseline import without_background
from hs_aeunmix._vca import vertex_component_analysis

_logger = logging.getLogger(__name__)

INITIALISATIONS = ("auto", "vca", "spa", "ica", "random")
# The starts of init="auto" (see hs_aeunmix._selection for the choice).
AUTO_STARTS = ("ica", "spa", "vca")
# An ICA solution is admissible as endmembers when its loadings and spectra
# are (nearly) non-negative: at most this fraction of their absolute mass is
# negative. Set on the benchmark cases (admissible ones had 0.01-0.02 and
# 0.004, inadmissible ones 0.17-0.38 and 0.026): provisional.
_ICA_NEGATIVE_LOADINGS = 0.05
_ICA_NEGATIVE_SPECTRA = 0.02


@dataclass(frozen=True)
class Initialisation:
    """Initial endmembers and how they were found.

    Attributes
    ----------
    endmembers : numpy.ndarray
        (n_components, n_channels), non-negative, in the units of the data
        they were computed from.
    method : str
        ``"vca"``, ``"spa"``, ``"ica"``, ``"random"`` or ``"given"``.
    """

    endmembers: np.ndarray
    method: str


def denoised(spectra: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Projection of the spectra on their mean plus leading principal components.

    Returns a new float64 array (the input is not changed).
    """
    centred = spectra.astype(np.float64)  # always a copy: centred in place
    mean = centred.mean(axis=0)
    centred -= mean
    left, singular, right = randomized_svd(centred, n_components, random_state=seed)
    del centred
    result = (left * singular) @ right
    result += mean
    return result


def vca_on_denoised(denoised: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """VCA vertices of :func:`denoised` spectra (single pixels are too noisy)."""
    _, indices = vertex_component_analysis(
        denoised, n_components, random_state=np.random.default_rng(seed)
    )
    return denoised[indices]


def independent_components(
    spectra: np.ndarray, n_components: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra and loadings of SVD + FastICA, as HyperSpy's ``blind_source_separation``.

    The spectra's leading singular vectors (no centring) are unmixed by
    FastICA applied to their first derivative along the channels (sharp
    features are the most independent part of spectra), as HyperSpy does by
    default. Returns ``(spectra (n, n_channels), loadings (n_pixels, n))``
    with ``loadings @ spectra`` the rank-n approximation of the data.
    """
    from sklearn.decomposition import FastICA

    left, singular, right = randomized_svd(
        spectra.astype(np.float64), n_components, random_state=seed
    )
    factors = right.T  # (n_channels, n)
    loadings = left * singular
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
    background_free: bool = False,
) -> np.ndarray | None:
    """Endmembers from SVD + FastICA, or None if not admissible.

    Each independent component is flipped to a positive spectrum; the
    solution is admissible when the negative mass of the loadings and of the
    spectra is small and a positive weight per component makes the loadings
    sum to about one per pixel. The spectra are divided by those weights, so
    that their scale is that of endmembers with fractional abundances.

    ``background_free``: the spectra had their smooth background removed
    (:mod:`hs_aeunmix._baseline`), so an endmember is only known up to a
    polynomial: its negative values say nothing, its sign is that of its
    largest value, and the spectra are returned as they are (not clipped).
    """
    components, loadings = independent_components(spectra, n_components, seed)
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
    if (
        negative_loadings >= _ICA_NEGATIVE_LOADINGS
        or (negative_spectra >= _ICA_NEGATIVE_SPECTRA and not background_free)
        or np.any(weights <= 0)
    ):
        return None
    components = components / weights[:, None]
    return components if background_free else np.clip(components, 0, None)


def successive_projections(spectra: np.ndarray, n_components: int) -> np.ndarray:
    """Rows chosen by the successive projection algorithm (SPA), in order.

    Each step takes the spectrum (normalised to unit sum, or to unit norm
    when spectra have negative values, so that intensity does not count)
    with the largest norm after projecting out the spectra already chosen:
    the vertices of the data's cone when pure pixels exist (Gillis &
    Vavasis, IEEE TPAMI 36, 698 (2014)). Deterministic, and robust to noise
    when applied to denoised spectra.
    """
    if (spectra < 0).any():
        scale = np.linalg.norm(spectra, axis=1, keepdims=True)
    else:
        scale = spectra.sum(axis=1, keepdims=True)
    residual = spectra / np.maximum(scale, 1e-12)
    chosen = []
    for _ in range(n_components):
        index = int(np.argmax(np.einsum("ij,ij->i", residual, residual)))
        chosen.append(index)
        direction = residual[index] / max(np.linalg.norm(residual[index]), 1e-30)
        # In place, a block of rows at a time: no second copy of the spectra.
        for start in range(0, len(residual), 4096):
            block = residual[start : start + 4096]
            block -= np.outer(block @ direction, direction)
    return np.array(chosen)


def spa_on_denoised(denoised: np.ndarray, n_components: int) -> np.ndarray:
    """SPA vertices of :func:`denoised` spectra."""
    return denoised[successive_projections(denoised, n_components)]


def _single_start(
    spectra: np.ndarray,
    n_components: int,
    method: str,
    seed: int,
    background_free: bool = False,
    denoised_spectra=None,
) -> Initialisation:
    """One start; ``denoised_spectra()`` gives the (shared) denoised spectra."""
    if denoised_spectra is None:

        def denoised_spectra():
            return denoised(spectra, n_components, seed)

    if method == "random":
        rows = np.random.default_rng(seed).choice(
            spectra.shape[0], n_components, replace=False
        )
        return Initialisation(spectra[rows], "random")
    if method == "ica":
        ica = (
            ica_endmembers(spectra, n_components, seed, background_free=background_free)
            if n_components > 1
            else None
        )
        if ica is None:
            raise ValueError(
                "init='ica': the independent components are not admissible as "
                "endmembers (negative spectra or abundances). Use init='auto', "
                "'vca' or 'spa'."
            )
        return Initialisation(ica, "ica")
    if method == "spa":
        return Initialisation(spa_on_denoised(denoised_spectra(), n_components), "spa")
    return Initialisation(
        vca_on_denoised(denoised_spectra(), n_components, seed), "vca"
    )


def candidate_starts(
    spectra: np.ndarray,
    n_components: int,
    method: str,
    seed: int,
    *,
    baseline_basis: np.ndarray | None = None,
) -> list[Initialisation]:
    """The starts to train from: one for a named method, several for ``"auto"``.

    ``"auto"`` gives the starts of :data:`AUTO_STARTS` (an inadmissible ICA
    solution is skipped). With a background model
    (``baseline_basis``), the starts are found on the spectra without their
    smooth part, and each endmember is then the smallest non-negative
    spectrum of its kind (see :mod:`hs_aeunmix._baseline`).
    """
    if baseline_basis is not None:
        spectra = spectra - (spectra @ baseline_basis) @ baseline_basis.T
    names = AUTO_STARTS if method == "auto" else (method,)
    shared: list[np.ndarray] = []

    def denoised_spectra() -> np.ndarray:
        # SPA and VCA start from the same denoised spectra: computed once.
        if not shared:
            shared.append(denoised(spectra, n_components, seed))
        return shared[0]

    starts: list[Initialisation] = []
    for name in names:
        try:
            start = _single_start(
                spectra,
                n_components,
                name,
                seed,
                background_free=baseline_basis is not None,
                denoised_spectra=denoised_spectra,
            )
        except ValueError:
            if method != "auto":
                raise
            _logger.info("Start %s skipped: not admissible", name)
            continue
        endmembers = (
            np.clip(start.endmembers, 0, None)
            if baseline_basis is None
            else without_background(start.endmembers, baseline_basis)
        )
        starts.append(Initialisation(endmembers, start.method))
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
