"""Where training starts: initial endmembers, and whether intensity varies.

The reconstruction loss of a linear mixing autoencoder is flat across many
non-negative factorisations, so the starting endmembers decide much of the
answer. ``init="auto"`` (the default) takes the independent components of
HyperSpy's SVD + FastICA when they are physically admissible (independence
finds molecules that never appear pure, as in Raman images of cells) and fit
the data about as well as the alternative, and otherwise the vertices that
VCA finds among PCA-denoised pixels (pure-pixel geometry, as in EELS
chequerboards, without the noise of single pixels).

:func:`intensity_spread` measures how much the total intensity of pixels
varies beyond what the endmembers explain (specimen thickness, illumination):
``loss="auto"`` then trains on the spectral angle, which ignores intensity.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils.extmath import randomized_svd

from hs_aeunmix._vca import nonnegative_least_squares, vertex_component_analysis

_logger = logging.getLogger(__name__)

INITIALISATIONS = ("auto", "ica", "vca", "random")
# An ICA solution is admissible as endmembers when its loadings and spectra
# are (nearly) non-negative: at most this fraction of their absolute mass is
# negative. Set on the benchmark cases (admissible ones had 0.01-0.02 and
# 0.004, inadmissible ones 0.17-0.38 and 0.026): provisional.
_ICA_NEGATIVE_LOADINGS = 0.05
_ICA_NEGATIVE_SPECTRA = 0.02
# Pixels used to measure the intensity spread and the misfit of a start.
_SPREAD_SAMPLE = 2000
# ICA is preferred unless its endmembers explain the data clearly worse than
# VCA's: where pure pixels exist, a worse fit means ICA mixed endmembers up.
_ICA_MISFIT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Initialisation:
    """Initial endmembers and how they were found.

    Attributes
    ----------
    endmembers : numpy.ndarray
        (n_components, n_channels), non-negative, in the units of the data
        they were computed from.
    method : str
        ``"ica"``, ``"vca"``, ``"random"`` or ``"given"``.
    """

    endmembers: np.ndarray
    method: str


def _denoised(spectra: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Projection of the spectra on their mean plus leading principal components."""
    mean = spectra.mean(axis=0)
    left, singular, right = randomized_svd(
        spectra - mean, n_components, random_state=seed
    )
    return mean + (left * singular) @ right


def vca_on_denoised(spectra: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """VCA vertices, as denoised spectra (single pixels are too noisy to start from)."""
    denoised = _denoised(spectra.astype(np.float64), n_components, seed)
    _, indices = vertex_component_analysis(
        denoised, n_components, random_state=np.random.default_rng(seed)
    )
    return denoised[indices]


def ica_endmembers(
    spectra: np.ndarray, n_components: int, seed: int
) -> np.ndarray | None:
    """Endmembers from HyperSpy's SVD + FastICA, or None if not admissible.

    Each independent component is flipped to a positive spectrum; the
    solution is admissible when the negative mass of the loadings and of the
    spectra is small and a positive weight per component makes the loadings
    sum to about one per pixel. The spectra are divided by those weights, so
    that their scale is that of endmembers with fractional abundances.
    """
    import hyperspy.api as hs

    signal = hs.signals.Signal1D(spectra.astype(np.float64))
    hyperspy_logger = logging.getLogger("hyperspy")
    level = hyperspy_logger.level
    show_progressbar = hs.preferences.General.show_progressbar
    hyperspy_logger.setLevel(logging.ERROR)
    # The derivative HyperSpy takes before ICA has a progress bar of its own.
    hs.preferences.General.show_progressbar = False
    try:
        with warnings.catch_warnings():
            # FastICA convergence warnings: an unconverged solution is judged
            # by the admissibility test below like any other.
            warnings.simplefilter("ignore")
            # HyperSpy's randomised SVD, seeded: seeded fits are reproducible.
            signal.decomposition(
                algorithm="SVD",
                output_dimension=n_components,
                svd_solver="randomized",
                random_state=seed,
                print_info=False,
            )
            signal.blind_source_separation(
                n_components, print_info=False, random_state=seed
            )
    finally:
        hyperspy_logger.setLevel(level)
        hs.preferences.General.show_progressbar = show_progressbar
    spectra_ = signal.learning_results.bss_factors.T
    loadings = signal.learning_results.bss_loadings
    signs = np.where(spectra_.sum(axis=1) < 0, -1.0, 1.0)
    spectra_, loadings = spectra_ * signs[:, None], loadings * signs[None, :]
    negative_spectra = np.clip(-spectra_, 0, None).sum() / np.abs(spectra_).sum()
    negative_loadings = np.clip(-loadings, 0, None).sum() / np.abs(loadings).sum()
    weights = np.linalg.lstsq(loadings, np.ones(loadings.shape[0]), rcond=None)[0]
    _logger.info(
        "ICA start: negative mass %.3f (loadings), %.3f (spectra)",
        negative_loadings,
        negative_spectra,
    )
    if (
        negative_loadings >= _ICA_NEGATIVE_LOADINGS
        or negative_spectra >= _ICA_NEGATIVE_SPECTRA
        or np.any(weights <= 0)
    ):
        return None
    return np.clip(spectra_ / weights[:, None], 0, None)


def _evenly_spaced(spectra: np.ndarray) -> np.ndarray:
    """Up to about 2000 evenly spaced pixels, as float64."""
    return spectra[:: max(1, spectra.shape[0] // _SPREAD_SAMPLE)].astype(np.float64)


def _misfit(spectra: np.ndarray, endmembers: np.ndarray) -> float:
    """RMS residual of non-negative least squares on up to 2000 evenly spaced pixels."""
    sample = _evenly_spaced(spectra)
    abundances = nonnegative_least_squares(sample, endmembers.astype(np.float64))
    return float(np.sqrt(np.mean((abundances @ endmembers - sample) ** 2)))


def initial_endmembers(
    spectra: np.ndarray, n_components: int, method: str, seed: int
) -> Initialisation:
    """Initial endmembers of ``spectra`` (n_pixels, n_channels) by ``method``.

    ``method`` is one of :data:`INITIALISATIONS`. ``"auto"`` takes the ICA
    endmembers when they are admissible and explain the data about as well
    as VCA's (least-squares residual at most 1 % higher); otherwise VCA's,
    which are on the data's own hull when pure pixels exist.
    """
    if method == "random":
        rows = np.random.default_rng(seed).choice(
            spectra.shape[0], n_components, replace=False
        )
        return Initialisation(np.clip(spectra[rows], 0, None), "random")
    ica = None
    if method in ("auto", "ica") and n_components > 1:
        ica = ica_endmembers(spectra, n_components, seed)
        if ica is None and method == "ica":
            raise ValueError(
                "init='ica': the independent components are not admissible as "
                "endmembers (negative spectra or abundances). Use init='auto' "
                "or 'vca'."
            )
        if method == "ica":
            return Initialisation(ica, "ica")
    vca = np.clip(vca_on_denoised(spectra, n_components, seed), 0, None)
    if ica is not None:
        ica_misfit, vca_misfit = _misfit(spectra, ica), _misfit(spectra, vca)
        _logger.info("Least-squares misfit: ICA %.4g, VCA %.4g", ica_misfit, vca_misfit)
        if ica_misfit <= (1 + _ICA_MISFIT_TOLERANCE) * vca_misfit:
            return Initialisation(ica, "ica")
    return Initialisation(vca, "vca")


def intensity_spread(spectra: np.ndarray, endmembers: np.ndarray) -> float:
    """Relative spread (sd / mean) of the total abundance of the pixels.

    Non-negative least squares on ``endmembers`` (of the scale of
    fractional abundances) gives each pixel's abundances; their sum is one
    wherever the mixing is a pure fraction model and varies with thickness
    or illumination otherwise. Up to 2000 evenly spaced pixels are used.
    """
    totals = nonnegative_least_squares(
        _evenly_spaced(spectra), endmembers.astype(np.float64)
    ).sum(axis=1)
    mean = totals.mean()
    return float(totals.std() / mean) if mean > 0 else 0.0
