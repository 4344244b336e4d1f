"""HyperSpy glue: ``s.decomposition(algorithm="ae", ...)``.

HyperSpy 2.5 has no registry of decomposition algorithms, so
:func:`enable` wraps ``MVA.decomposition``: calls with ``algorithm="ae"`` or
an :class:`~hs_aeunmix.AEUnmix` instance are routed here, every other call
goes to HyperSpy untouched.

HyperSpy hands custom estimators the unfolded, masked data, takes
``components_.T`` as factors and the estimator's ``transform`` output as
loadings, and keeps masks, folding and ``get_decomposition_*`` working. What
it does not do for custom objects, this module does: route the autoencoder's
keyword arguments (HyperSpy drops them), accept integer data (HyperSpy refuses
it), refuse options that would corrupt the physical meaning of the results,
and leave ``learning_results`` in a state that ``s.save`` can write.
"""

from __future__ import annotations

import functools
import inspect
import logging

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy.learn._mva import MVA

from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._validation import check_not_complex

_logger = logging.getLogger(__name__)

ALGORITHM_NAME = "ae"
_ORIGINAL_DECOMPOSITION = MVA.decomposition
_DECOMPOSITION_SIGNATURE = inspect.signature(_ORIGINAL_DECOMPOSITION)
_ORIGINAL_LAZY_DECOMPOSITION = LazySignal.decomposition
_LAZY_DECOMPOSITION_SIGNATURE = inspect.signature(_ORIGINAL_LAZY_DECOMPOSITION)


def autoencoder_options() -> list[str]:
    """Keyword arguments of ``decomposition`` that configure the autoencoder."""
    return [name for name in AEUnmix._get_param_names() if name != "n_components"]


def _is_autoencoder(algorithm) -> bool:
    return isinstance(algorithm, AEUnmix) or (
        isinstance(algorithm, str) and algorithm.lower() == ALGORITHM_NAME
    )


@functools.wraps(_ORIGINAL_DECOMPOSITION)
def _decomposition(self, *args, **kwargs):
    bound = _DECOMPOSITION_SIGNATURE.bind(self, *args, **kwargs)
    if not _is_autoencoder(bound.arguments.get("algorithm")):
        return _ORIGINAL_DECOMPOSITION(self, *args, **kwargs)
    bound.apply_defaults()
    return decompose_with_autoencoder(self, bound.arguments)


@functools.wraps(_ORIGINAL_LAZY_DECOMPOSITION)
def _lazy_decomposition(self, *args, **kwargs):
    bound = _LAZY_DECOMPOSITION_SIGNATURE.bind(self, *args, **kwargs)
    if _is_autoencoder(bound.arguments.get("algorithm")):
        raise NotImplementedError(
            "algorithm='ae' trains on data in memory; this signal is lazy. Load "
            "it with s.compute() (or crop it first) and run the decomposition "
            "again."
        )
    return _ORIGINAL_LAZY_DECOMPOSITION(self, *args, **kwargs)


def enable() -> None:
    """Make ``algorithm="ae"`` available on every HyperSpy signal (idempotent)."""
    MVA.decomposition = _decomposition
    LazySignal.decomposition = _lazy_decomposition


def decompose_with_autoencoder(signal, arguments: dict):
    """Run the autoencoder decomposition with the bound ``decomposition`` arguments.

    Returns the fitted estimator when ``return_info`` is true, else None.
    """
    arguments = dict(arguments)
    del arguments["self"]
    extra_options = arguments.pop("kwargs", {})
    _check_signal(signal)
    if arguments["normalize_poissonian_noise"]:
        raise ValueError(
            "normalize_poissonian_noise=True rescales the abundances after the "
            "fit, which breaks their sum-to-one and non-negativity meaning. For "
            "count data (EELS, EDS) use the Poisson likelihood instead: "
            "s.decomposition(algorithm='ae', loss='poisson', ...)."
        )
    estimator = _make_estimator(
        arguments["algorithm"], arguments["output_dimension"], extra_options
    )
    if (
        estimator.encoder == "conv"
        and not signal.axes_manager.signal_axes[0].is_uniform
    ):
        raise ValueError(
            "encoder='conv' convolves along the spectrum and needs equally "
            "spaced channels, but this signal axis is non-uniform. Interpolate "
            "onto a uniform axis first (s.interpolate_on_axis) or use "
            "encoder='dense', which does not assume a channel spacing."
        )
    return_info = arguments["return_info"]
    arguments.update(
        algorithm=estimator,
        output_dimension=estimator.n_components,
        return_info=True,
    )
    # HyperSpy unfolds the signal it decomposes and refuses integer data, so
    # it works on a twin that shares (float) or converts (integer) the data
    # array; the user's signal only receives the results.
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    twin = signal._deepcopy_with_new_data(data)
    _ORIGINAL_DECOMPOSITION(twin, **arguments)
    results = twin.learning_results
    # The estimator object cannot be written to .hspy; its name can.
    results.decomposition_algorithm = ALGORITHM_NAME
    signal.learning_results.__dict__.update(results.__dict__)
    return estimator if return_info else None


def _check_signal(signal) -> None:
    axes = signal.axes_manager
    if axes.signal_dimension != 1:
        raise ValueError(
            "algorithm='ae' unmixes 1-D spectra, but this signal has signal "
            f"dimension {axes.signal_dimension}. Use a Signal1D (for example "
            "s.transpose(signal_axes=1))."
        )
    if axes.navigation_size < 2:
        raise ValueError(
            "algorithm='ae' learns endmembers from many spectra, but this signal "
            "holds a single spectrum (navigation dimension "
            f"{axes.navigation_dimension}). Unmix a spectrum image or line scan, "
            "or apply a trained model to this spectrum."
        )
    check_not_complex(signal.data)


def _make_estimator(algorithm, output_dimension, extra_options: dict) -> AEUnmix:
    if isinstance(algorithm, AEUnmix):
        if extra_options:
            raise TypeError(
                f"Options {sorted(extra_options)} are ignored when algorithm is an "
                "AEUnmix instance; set them on the instance, e.g. "
                "AEUnmix(n_components=3, max_epochs=100)."
            )
        if algorithm.n_components is None:
            raise ValueError(
                "The AEUnmix instance has n_components=None; set the number of "
                "endmembers, e.g. AEUnmix(n_components=3)."
            )
        if output_dimension is not None and output_dimension != algorithm.n_components:
            raise ValueError(
                f"output_dimension={output_dimension} disagrees with the "
                f"estimator's n_components={algorithm.n_components}."
            )
        return algorithm
    unknown = sorted(set(extra_options) - set(autoencoder_options()))
    if unknown:
        raise TypeError(
            f"Unknown option(s) {unknown} for algorithm='ae'. Valid options: "
            f"{', '.join(autoencoder_options())}."
        )
    if output_dimension is None:
        raise ValueError(
            "algorithm='ae' needs output_dimension, the number of endmembers to "
            "extract, e.g. s.decomposition(algorithm='ae', output_dimension=3). "
            "The scree plot of an SVD decomposition helps to choose it."
        )
    return AEUnmix(n_components=output_dimension, **extra_options)
