"""Intensity (dose) of a scan relative to the scan a model was trained on.

A later scan of the same sample often differs from the training scan by one
factor (beam current, dwell time, detector gain). :func:`measure` measures a
scan's intensity in a way that is calibrated against the training scan (the
estimator stores the training scan's measurement as
``intensity_reference_``), and the estimator turns the ratio of the two
into the model that unmixes the new scan
(:meth:`~hs_aeunmix._inference.InferenceMixin._for_scan`), reporting it with
:func:`report_intensity_ratio`.

A model with a per-pixel intensity (``pixel_scale``) needs nothing more: its
encoder sees spectra normalised to a common total, and each pixel's
intensity absorbs the dose, so the endmembers stay the model's. Without it,
the ratio is found as the fixed point of :func:`measure_intensity` and the
scan is unmixed by a copy of the model whose internal scale includes the
ratio, so that the network sees the scan as it saw the training scan and
the endmembers come out in the scan's units.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np

from hs_aeunmix._networks import SumToOne as _SUM_TO_ONE

_logger = logging.getLogger(__name__)

# Spectra the measurement looks at: evenly spaced, at most this many.
RATIO_SAMPLE_SIZE = 2048
# Ratios closer to one than this are within what the measurement resolves
# between two scans at the same dose; the model is applied unscaled.
INTENSITY_RATIO_TOLERANCE = 0.01
# Scans whose intensity differs more than this from the training scan's are
# reported with a warning (beam current, dwell time or gain changed).
INTENSITY_RATIO_WARNING = 0.05
# The secant search for the fixed point of the measurement (natural-log
# units: 1e-5 is a 0.001 % intensity difference).
_ITERATIONS = 20
_TOLERANCE = 1e-5
_MAX_STEP = 0.5


def sample_rows(n_rows: int) -> np.ndarray:
    """Evenly spaced rows (at most :data:`RATIO_SAMPLE_SIZE`) of a scan."""
    return np.unique(np.linspace(0, n_rows - 1, RATIO_SAMPLE_SIZE).astype(int))


def measure_intensity(
    spectra: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray],
    endmember_totals: np.ndarray,
    trained_total: float,
    *,
    sum_to_one: bool,
) -> float:
    """Intensity of scaled ``spectra`` as the model sees it (uncalibrated).

    The measurement starts as the ratio of the mean total intensity to the
    training mean's total, ``trained_total``. With sum-to-one abundances
    that first guess is biased when the scan holds the endmembers in other
    proportions, so it is refined (secant steps) to the fixed point ``g =
    sum(totals of X) / sum(totals predicted by the model for X / g)``: the
    factor that makes the model's predicted total intensity match the
    scan's. ``encode`` maps scaled spectra to abundances and
    ``endmember_totals`` are the endmembers' sums over channels (scaled
    units). Spectra without positive total intensity measure 1.0.
    """
    totals = spectra.sum(axis=1)
    if not (totals.mean() > 0 and trained_total > 0):
        return 1.0
    ratio = float(totals.mean()) / trained_total
    if not sum_to_one:
        # Unconstrained abundances absorb any intensity: the first guess only
        # brings the spectra to the range the encoder was trained on.
        return ratio

    def mismatch(log_ratio: float) -> float:
        """log(fixed-point update) - log(ratio): zero at the answer."""
        predicted = encode(spectra / np.exp(log_ratio)) @ endmember_totals
        return float(np.log(totals.sum() / predicted.sum())) - log_ratio

    # Secant steps: the plain fixed-point iteration converges only linearly
    # (about x0.7 per step on EELS data).
    previous = np.log(ratio)
    previous_mismatch = mismatch(previous)
    current = previous + previous_mismatch
    for _ in range(_ITERATIONS):
        current_mismatch = mismatch(current)
        if abs(current_mismatch) < _TOLERANCE or current_mismatch == previous_mismatch:
            break
        step = current_mismatch * (current - previous)
        step /= previous_mismatch - current_mismatch
        previous, previous_mismatch = current, current_mismatch
        current += float(np.clip(step, -_MAX_STEP, _MAX_STEP))
    return float(np.exp(current))


def measure(module, scaled_sample: np.ndarray, device) -> float:
    """The intensity of scaled spectra as ``module`` sees it (uncalibrated).

    With a per-pixel intensity: the mean intensity of the spectra. Without:
    :func:`measure_intensity`.
    """
    import torch

    spectra = torch.from_numpy(np.asarray(scaled_sample, dtype=np.float32)).to(device)
    module.eval()

    def encode(values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            batch = torch.from_numpy(np.asarray(values, dtype=np.float32)).to(device)
            return module.encode(batch).cpu().numpy().astype(np.float64)

    if module.has_pixel_scale:
        with torch.no_grad():
            intensity = module.intensity(spectra, module.encode(spectra))
        mean = float(intensity.mean())
        return mean if mean > 0 else 1.0
    endmembers = module.decoder.endmembers.detach().cpu().numpy().astype(np.float64)
    return measure_intensity(
        np.asarray(scaled_sample, dtype=np.float64),
        encode,
        endmembers.sum(axis=1),
        float(module.input_mean.sum()),
        sum_to_one=isinstance(module.activation, _SUM_TO_ONE),
    )


def report_intensity_ratio(ratio: float) -> None:
    """Log the ratio; warn when it is beyond :data:`INTENSITY_RATIO_WARNING`."""
    message = (
        f"This scan is {ratio:.4g} times as intense as the scan the model was "
        "trained on (beam current, dwell time or gain); it is unmixed divided by "
        "that factor and its endmembers are the model's times that factor."
    )
    if abs(ratio - 1.0) > INTENSITY_RATIO_WARNING:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        _logger.info(message)
