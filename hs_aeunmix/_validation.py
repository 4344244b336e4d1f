"""Checks on user input that turn bad data into errors a user can act on."""

from __future__ import annotations

import warnings

import numpy as np

from hs_aeunmix._constraints import InvalidParameterError, check_count


def check_not_complex(X) -> None:
    """Refuse complex data before any conversion silently drops the imaginary part."""
    # Only the dtype is read: array-likes must not be converted twice.
    dtype = getattr(X, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):
        raise ValueError(
            "Complex data not supported: the linear mixing model needs real, "
            "non-negative spectra. Unmix the modulus (abs), the power (abs**2) "
            "or the real part instead."
        )


def check_finite(X: np.ndarray) -> None:
    """Raise a ValueError that counts the NaN and inf values of ``X``."""
    finite = np.isfinite(X)
    if finite.all():
        return
    n_nan = int(np.isnan(X).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    bad_rows = int((~finite).any(axis=1).sum())
    raise ValueError(
        f"The data contain {n_nan} NaN and {n_inf} inf values in {bad_rows} of "
        f"{X.shape[0]} spectra. Exclude those pixels (in HyperSpy: "
        "navigation_mask=(~np.isfinite(s.data).all(axis=-1)).T) or those channels "
        "(signal_mask), or replace the values before unmixing."
    )


def warn_if_negative(X: np.ndarray, loss: str) -> None:
    """Negative values cannot be reproduced by non-negative mixing: say so."""
    n_negative = int((X < 0).sum())
    if n_negative == 0:
        return
    from hs_aeunmix._losses import LOSS_SPECS

    if loss in LOSS_SPECS and LOSS_SPECS[loss].rates:
        raise ValueError(
            f"loss={loss!r} needs counts, but the data contain {n_negative} "
            f"negative values (minimum {X.min():.4g}). Use loss='mse' for data "
            "that were background-subtracted or dark-corrected."
        )
    warnings.warn(
        f"The data contain {n_negative} negative values (minimum {X.min():.4g}). "
        "Endmembers and abundances are constrained to be non-negative, so the "
        "reconstruction cannot follow values below zero and fits them as close "
        "to zero as it can.",
        UserWarning,
        stacklevel=3,
    )


def check_n_components(n_components, n_channels: int) -> int:
    """Validate the number of endmembers against the number of channels."""
    if n_components is None:
        raise InvalidParameterError(
            "n_components (output_dimension in HyperSpy) must be given: it is the "
            "number of endmembers to extract."
        )
    n_components = check_count("n_components", n_components, "AEUnmix")
    if n_components > n_channels:
        raise InvalidParameterError(
            f"n_components={n_components} must be between 1 and the number of "
            f"spectral channels ({n_channels})."
        )
    return n_components


def minimum_pixels(n_components: int) -> int:
    """Fewest pixels that leave a training and a validation set worth the name."""
    return max(10, 2 * n_components)


def check_enough_pixels(n_pixels: int, n_components: int) -> None:
    needed = minimum_pixels(n_components)
    if n_pixels < needed:
        raise ValueError(
            f"Training {n_components} endmembers needs at least {needed} spectra "
            f"(pixels), got n_samples = {n_pixels}. Unmix a larger scan, or "
            "apply a model trained on another scan (transform)."
        )


def check_fixed_endmembers(
    fixed_endmembers, n_components: int, n_channels: int
) -> np.ndarray | None:
    """Known endmembers (an array or a signal's data) as (k, n_channels), or None."""
    if fixed_endmembers is None:
        return None
    data = getattr(fixed_endmembers, "data", fixed_endmembers)
    spectra = np.atleast_2d(np.asarray(data, dtype=np.float64))
    if spectra.ndim != 2 or spectra.shape[1] != n_channels:
        raise ValueError(
            f"fixed_endmembers has shape {np.shape(fixed_endmembers)}; "
            f"known spectra must be (k, n_channels) with n_channels = "
            f"{n_channels}, on the channels of the data."
        )
    if not 1 <= len(spectra) <= n_components:
        raise ValueError(
            f"fixed_endmembers holds {len(spectra)} spectra; between 1 and "
            f"n_components = {n_components} can be fixed."
        )
    if not np.isfinite(spectra).all() or (spectra < 0).any():
        raise ValueError(
            "fixed_endmembers must be finite and non-negative: endmembers are "
            "non-negative spectra."
        )
    if (spectra.sum(axis=1) <= 0).any():
        raise ValueError("fixed_endmembers holds an all-zero spectrum.")
    return spectra
