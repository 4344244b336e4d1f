"""The methods microscopists use instead, and how every method is scored.

Shared by the benchmark scripts. Each method takes ``(signal, n, seed)`` and
returns ``(endmembers (n, n_channels), loadings (n_pixels, n))`` such that
the data are about ``loadings @ endmembers``; :func:`score` applies the
project's scoring protocol (:func:`hs_aeunmix.metrics.unmixing_scores`) and
measures how well the result reproduces the data.

* ``NMF``: HyperSpy's ``decomposition(algorithm="NMF")`` (scikit-learn,
  1000 iterations) on the data clipped at zero.
* ``SVD+ICA``: HyperSpy's SVD then ``blind_source_separation`` (FastICA),
  each source flipped to a positive sum.
* ``VCA+FCLS``: vertex component analysis, then fully constrained least
  squares.
* ``MCR-ALS``: pyMCR from VCA endmembers, non-negative spectra, non-negative
  concentrations normalised to sum to one.
* ``plain AE``: the simplest autoencoder of our own kind (:func:`plain_autoencoder`):
  if it beats the default, a part of the pipeline costs accuracy.
* ``daeu``: ``preset="daeu"`` (Palsson et al. 2018) trained to convergence.
* ``floor``: least squares on the *true* endmembers, the per-pixel limit.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional

from hs_aeunmix import metrics
from hs_aeunmix._vca import (
    fully_constrained_least_squares,
    nonnegative_least_squares,
    vertex_component_analysis,
)


def spectra_of(signal) -> np.ndarray:
    """The signal's spectra as rows (float64)."""
    return np.asarray(signal.data, dtype=float).reshape(-1, signal.data.shape[-1])


def autoencoder(**options) -> Callable:
    """The autoencoder through HyperSpy, with ``options`` for ``decomposition``.

    Returns the endmembers, their loadings and the whole reconstruction
    (with the background's terms, if any, which follow the endmembers in the
    factors); the trained model is kept in ``run.model``.
    """

    def run(signal, n, seed):
        model = signal.decomposition(
            algorithm="ae",
            output_dimension=n,
            print_info=False,
            return_info=True,
            random_state=seed,
            show_progressbar=False,
            **options,
        )
        run.model = model
        results = signal.learning_results
        n_endmembers = model.components_.shape[0]
        return (
            model.components_,
            results.loadings[:, :n_endmembers],
            results.loadings @ results.factors.T,
        )

    return run


def nmf(signal, n: int, seed: int):
    """HyperSpy NMF on the data clipped at zero.

    scikit-learn refuses negative values, which Gaussian noise and
    background subtraction produce: clipping is what a user would do. The
    result is scored against the data themselves.
    """
    signal = signal.deepcopy()
    np.clip(signal.data, 0, None, out=signal.data)
    signal.decomposition(
        algorithm="NMF",
        output_dimension=n,
        print_info=False,
        random_state=seed,
        max_iter=1000,
    )
    return signal.learning_results.factors.T, signal.learning_results.loadings


def svd_ica(signal, n: int, seed: int):
    """HyperSpy SVD + FastICA, each source flipped to a positive sum."""
    signal.decomposition(algorithm="SVD", output_dimension=n, print_info=False)
    signal.blind_source_separation(n, print_info=False, random_state=seed)
    factors = signal.learning_results.bss_factors.T
    loadings = signal.learning_results.bss_loadings
    signs = np.where(factors.sum(axis=1) < 0, -1.0, 1.0)
    return factors * signs[:, None], loadings * signs[None, :]


def vca_fcls(signal, n: int, seed: int):
    """Vertex component analysis and fully constrained least squares."""
    spectra = spectra_of(signal)
    endmembers, _ = vertex_component_analysis(spectra, n, random_state=seed)
    return endmembers, fully_constrained_least_squares(spectra, endmembers)


def mcr_als(signal, n: int, seed: int):
    """pyMCR from VCA endmembers (``pip install ".[benchmark]"``)."""
    from pymcr.constraints import ConstraintNonneg, ConstraintNorm
    from pymcr.mcr import McrAR

    spectra = spectra_of(signal)
    initial, _ = vertex_component_analysis(spectra, n, random_state=seed)
    mcr = McrAR(
        max_iter=200,
        c_constraints=[ConstraintNonneg(), ConstraintNorm()],
        st_constraints=[ConstraintNonneg()],
        tol_increase=1.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcr.fit(spectra, ST=initial)
    return mcr.ST_opt_, mcr.C_opt_


def floor(signal, truth):
    """Least squares on the true endmembers: what unmixing each pixel allows.

    The better of FCLS (fractions) and NNLS (intensity left in the
    abundances, normalised by the scoring).
    """
    spectra = spectra_of(signal)
    candidates = [
        solver(spectra, truth.endmembers)
        for solver in (fully_constrained_least_squares, nonnegative_least_squares)
    ]
    rmse = [
        metrics.unmixing_scores(truth.endmembers, loadings, truth)["abundance_rmse"]
        for loadings in candidates
    ]
    return truth.endmembers, candidates[int(np.argmin(rmse))]


# The plain autoencoder: full-batch Adam steps and their step size.
PLAIN_STEPS = 1200
PLAIN_LEARNING_RATE = 3e-3


def plain_autoencoder(signal, n: int, seed: int):
    """The simplest constrained autoencoder, written as a newcomer would.

    A dense encoder (every channel, two ReLU layers of 128 and 64 units,
    torch's default initialisation) with softmax abundances and a bias-free
    decoder whose weights are the endmembers through a softplus (non-negative
    by construction), started from random weights; trained with full-batch
    Adam (step 3e-3, :data:`PLAIN_STEPS` steps, no early stopping, no held-out
    pixels) on the mean squared error of the spectra divided by their mean
    value. No screening, no start, no per-pixel intensity, no selection.
    """
    generator = torch.Generator().manual_seed(seed)
    spectra = spectra_of(signal)
    scale = float(np.abs(spectra).mean()) or 1.0
    data = torch.from_numpy((spectra / scale).astype(np.float32))
    n_channels = data.shape[1]
    widths = (n_channels, 128, 64)
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for n_in, n_out in itertools.pairwise(widths):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(widths[-1], n))
    encoder = torch.nn.Sequential(*layers)
    # softplus(raw) starts near one (the data's mean value) with random shapes.
    raw = torch.nn.Parameter(
        0.5413 + 0.1 * torch.randn(n, n_channels, generator=generator)
    )
    optimiser = torch.optim.Adam([*encoder.parameters(), raw], lr=PLAIN_LEARNING_RATE)
    for _ in range(PLAIN_STEPS):
        optimiser.zero_grad()
        abundances = torch.softmax(encoder(data), dim=1)
        loss = functional.mse_loss(abundances @ functional.softplus(raw), data)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        abundances = torch.softmax(encoder(data), dim=1).double().numpy()
        endmembers = functional.softplus(raw).double().numpy() * scale
    return endmembers, abundances


PEERS: dict[str, Callable] = {
    "NMF": nmf,
    "SVD+ICA": svd_ica,
    "VCA+FCLS": vca_fcls,
    "MCR-ALS": mcr_als,
    "plain AE": plain_autoencoder,
    # Trained to convergence: early stopping (20 epochs without improvement)
    # ends it long before 400 epochs of 50 steps.
    "daeu": autoencoder(preset="daeu", max_epochs=400, patience=20),
}


def relative_residual(signal, endmembers, loadings, reconstruction=None) -> float:
    """``||X - loadings @ endmembers|| / ||X||`` over every pixel and channel.

    What ``s.get_decomposition_model()`` leaves unexplained, relative to the
    data; NaN channels or pixels (masks) are left out. ``reconstruction``
    (n_pixels, n_channels), when given, replaces ``loadings @ endmembers``
    (a model with more than endmembers, e.g. a background).
    """
    spectra = spectra_of(signal)
    if reconstruction is None:
        model = np.asarray(loadings, dtype=float).reshape(
            len(spectra), -1
        ) @ np.asarray(endmembers, dtype=float)
    else:
        model = np.asarray(reconstruction, dtype=float).reshape(spectra.shape)
    valid = np.isfinite(model)
    return float(
        np.linalg.norm((spectra - model)[valid]) / np.linalg.norm(spectra[valid])
    )


def score(signal, truth, endmembers, loadings, reconstruction=None) -> dict:
    """Spectral angle, abundance RMSE and relative residual of one result."""
    endmembers = np.asarray(endmembers, dtype=float)
    loadings = np.asarray(loadings, dtype=float).reshape(-1, endmembers.shape[0])
    scores = metrics.unmixing_scores(endmembers, loadings, truth)
    return {
        "angle": scores["mean_sad_rad"],
        "rmse": scores["abundance_rmse"],
        "residual": relative_residual(signal, endmembers, loadings, reconstruction),
        "order": scores["order"],
    }


def timed(method: Callable, *args):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = method(*args)
    return result, time.perf_counter() - start
