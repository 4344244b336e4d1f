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
reapply a trained model to a new scan (``model=``, with the scan's axis
mapped onto the model's channels), and leave ``learning_results`` in a state
that ``s.save`` can write, model included.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy.learn._mva import MVA
from hyperspy.signal import BaseSignal

from hs_aeunmix._axes import (
    ChannelMapping,
    SignalCalibration,
    channel_mapping,
    describe_difference,
)
from hs_aeunmix._estimator import INFERENCE_BATCH_SIZE, AEUnmix, ratio_sample_rows
from hs_aeunmix._persistence import (
    LEARNING_RESULTS_ATTRIBUTE,
    load_model,
    model_to_bytes,
)
from hs_aeunmix._validation import check_not_complex

_logger = logging.getLogger(__name__)

ALGORITHM_NAME = "ae"
# Options of ``decomposition`` that are not AEUnmix hyperparameters.
GLUE_OPTIONS = ("preset", "model", "fine_tune")
# Fine-tuning is a warm start: a few epochs unless max_epochs says otherwise.
FINE_TUNE_EPOCHS = 30
# Intensity ratios closer to one than this are within what the ratio search
# resolves between two scans at the same dose; the model is applied unscaled.
INTENSITY_RATIO_TOLERANCE = 0.01
# Scans whose intensity differs more than this from the training scan's are
# reported with a warning (beam current, dwell time or gain changed).
INTENSITY_RATIO_WARNING = 0.05
_RATIO_SAMPLE_PER_CHUNK = 256

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
    if not _is_autoencoder(bound.arguments.get("algorithm")):
        return _ORIGINAL_LAZY_DECOMPOSITION(self, *args, **kwargs)
    options = bound.arguments.get("kwargs", {})
    if options.get("model") is None or options.get("fine_tune"):
        raise NotImplementedError(
            "Training algorithm='ae' needs the data in memory; this signal is "
            "lazy. Load it with s.compute() (or crop it first) and run the "
            "decomposition again. Applying a trained model (model=..., without "
            "fine_tune) works on lazy signals chunk by chunk."
        )
    bound.apply_defaults()
    return decompose_with_autoencoder(self, bound.arguments)


def enable() -> None:
    """Make ``algorithm="ae"`` available on every HyperSpy signal (idempotent)."""
    MVA.decomposition = _decomposition
    LazySignal.decomposition = _lazy_decomposition


# ------------------------------------------------------------------ runs
@dataclass(frozen=True)
class _ScanGrid:
    """Where HyperSpy's rows sit on the scan, for ``spatial=True`` models.

    HyperSpy passes the unmasked pixels (C order of the data array) to
    ``fit_transform``, but every pixel to ``transform`` when reprojecting.
    """

    shape: tuple[int, ...]
    navigation_mask: np.ndarray | None

    def geometry(self, n_rows: int) -> dict:
        mask = self.navigation_mask
        if mask is not None and n_rows == mask.size:
            mask = None
        return {"image_shape": self.shape, "navigation_mask": mask}


def _scan_grid(signal, navigation_mask) -> _ScanGrid:
    shape = tuple(signal.axes_manager._navigation_shape_in_array)
    if len(shape) > 2:
        raise ValueError(
            "spatial=True uses the neighbours of each pixel on a line scan or a "
            f"2-D map, but this signal has {len(shape)} navigation dimensions. "
            "Unmix each map separately, or use spatial=False."
        )
    return _ScanGrid(shape, _flat_navigation_mask(navigation_mask))


def _flat_navigation_mask(navigation_mask) -> np.ndarray | None:
    """HyperSpy's convention: a signal mask is in array order, an array is not."""
    if navigation_mask is None:
        return None
    if isinstance(navigation_mask, BaseSignal):
        return np.asarray(navigation_mask.data, dtype=bool).ravel()
    return np.asarray(navigation_mask, dtype=bool).T.ravel()


class _TrainingRun:
    """What HyperSpy's decomposition sees when a model is trained on the signal."""

    def __init__(
        self,
        estimator: AEUnmix,
        calibration: SignalCalibration,
        grid: _ScanGrid | None,
    ) -> None:
        self.estimator = estimator
        self.calibration = calibration
        self.grid = grid

    def _geometry(self, n_rows: int) -> dict:
        return {} if self.grid is None else self.grid.geometry(n_rows)

    def fit_transform(self, X) -> np.ndarray:
        self.estimator.fit(X, **self._geometry(len(X)))
        self.estimator.signal_calibration_ = self.calibration
        return self.transform(X)

    def transform(self, X) -> np.ndarray:
        return self.estimator.transform(X, **self._geometry(len(X)))

    @property
    def components_(self) -> np.ndarray:
        return self.estimator.components_

    def __repr__(self) -> str:
        return repr(self.estimator)


class _ScanRun:
    """What HyperSpy's decomposition sees when a trained model meets a new scan.

    HyperSpy hands over the scan's spectra on the scan's own axis; they are
    mapped onto the model's channels batch by batch (so a large scan is never
    copied whole), divided by the scan's intensity ratio to the training scan,
    and unmixed; with ``fine_tune_options`` the model is first trained further
    on the mapped scan. The endmembers go back onto the scan's axis.
    """

    def __init__(
        self,
        model: AEUnmix,
        mapping: ChannelMapping,
        fine_tune_options: dict | None,
        grid: _ScanGrid | None,
    ) -> None:
        self.model = model
        self.mapping = mapping
        self.fine_tune_options = fine_tune_options
        self.grid = grid
        self.estimator = model
        self._adapted = False
        self._samples: list[np.ndarray] = []

    def fit_transform(self, X) -> np.ndarray:
        # Map only the rows the ratio looks at, not the whole scan.
        self._adapt(self.mapping.to_model(X[ratio_sample_rows(len(X))]))
        if self.fine_tune_options is not None:
            self.estimator.set_params(warm_start=True, **self.fine_tune_options)
            geometry = {} if self.grid is None else self.grid.geometry(len(X))
            self.estimator.fit(self.mapping.to_model(X), **geometry)
        return self.transform(X)

    def partial_fit(self, X) -> _ScanRun:
        """Lazy signals: collect evenly spaced spectra of each chunk, train nothing."""
        step = max(1, len(X) // _RATIO_SAMPLE_PER_CHUNK)
        self._samples.append(self.mapping.to_model(X[::step]))
        return self

    def _adapt(self, sample: np.ndarray) -> None:
        """Choose the model for this scan from a sample of its (mapped) spectra."""
        ratio = self.model.intensity_ratio(sample)
        _report_intensity_ratio(ratio)
        if abs(ratio - 1.0) < INTENSITY_RATIO_TOLERANCE:
            ratio = 1.0
        if ratio == 1.0 and self.fine_tune_options is None:
            self.estimator = self.model
        else:
            # Never train or rescale the caller's model itself.
            self.estimator = _rescaled_copy(self.model, ratio)
        self._adapted = True

    def transform(self, X) -> np.ndarray:
        if not self._adapted:
            self._adapt(np.concatenate(self._samples))
        if self.grid is not None:
            # Neighbours are needed: the whole scan at once.
            return self.estimator.transform(
                self.mapping.to_model(X), **self.grid.geometry(len(X))
            )
        abundances = np.empty((len(X), self.estimator.components_.shape[0]))
        for start in range(0, len(X), INFERENCE_BATCH_SIZE):
            stop = start + INFERENCE_BATCH_SIZE
            abundances[start:stop] = self.estimator.transform(
                self.mapping.to_model(X[start:stop])
            )
        return abundances

    @property
    def components_(self) -> np.ndarray:
        return self.mapping.to_signal_axis(self.estimator.components_)

    def __repr__(self) -> str:
        return repr(self.estimator)


def _rescaled_copy(model: AEUnmix, ratio: float) -> AEUnmix:
    """A copy of ``model`` whose internal scale includes the intensity ``ratio``.

    The network then sees the scan as it saw the training scan, and the
    endmembers come out in the scan's own units.
    """
    rescaled = copy.deepcopy(model)
    rescaled.data_scale_ = model.data_scale_ * ratio
    rescaled.components_ = rescaled._endmembers_in_data_units()
    return rescaled


def _report_intensity_ratio(ratio: float) -> None:
    message = (
        f"This scan is {ratio:.4g} times as intense as the scan the model was "
        "trained on (beam current, dwell time or gain); it is unmixed divided by "
        "that factor and its endmembers are the model's times that factor."
    )
    if abs(ratio - 1.0) > INTENSITY_RATIO_WARNING:
        warnings.warn(message, UserWarning, stacklevel=2)
    else:
        _logger.info(message)


# ------------------------------------------------------------ decomposition
def decompose_with_autoencoder(signal, arguments: dict):
    """Run the autoencoder decomposition with the bound ``decomposition`` arguments.

    Returns the fitted (or applied) estimator when ``return_info`` is true,
    else None.
    """
    arguments = dict(arguments)
    del arguments["self"]
    options = dict(arguments.pop("kwargs", {}))
    model_source = options.pop("model", None)
    fine_tune = options.pop("fine_tune", False)
    _check_signal(signal, reapplying=model_source is not None)
    if arguments["normalize_poissonian_noise"]:
        raise ValueError(
            "normalize_poissonian_noise=True rescales the abundances after the "
            "fit, which breaks their sum-to-one and non-negativity meaning. For "
            "count data (EELS, EDS) use the Poisson likelihood instead: "
            "s.decomposition(algorithm='ae', loss='poisson', ...)."
        )
    if model_source is None:
        if fine_tune:
            raise TypeError(
                "fine_tune=True continues training a saved model: pass it with "
                "model=..., e.g. s.decomposition(algorithm='ae', "
                "model='series.aeunmix', fine_tune=True)."
            )
        run = _training_run(signal, arguments, options)
    else:
        run = _scan_run(signal, arguments, options, model_source, fine_tune)
    return_info = arguments["return_info"]
    arguments.update(
        algorithm=run,
        output_dimension=run.estimator.n_components,
        return_info=True,
    )
    # HyperSpy unfolds the signal it decomposes and refuses integer data, so
    # it works on a twin that shares (float) or converts (integer) the data
    # array; the user's signal only receives the results.
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    twin = signal._deepcopy_with_new_data(data)
    if isinstance(signal, LazySignal):
        _ORIGINAL_LAZY_DECOMPOSITION(twin, **arguments)
    else:
        _ORIGINAL_DECOMPOSITION(twin, **arguments)
    results = twin.learning_results
    # The estimator object cannot be written to .hspy; its name and its
    # model file's bytes can.
    results.decomposition_algorithm = ALGORITHM_NAME
    setattr(
        results,
        LEARNING_RESULTS_ATTRIBUTE,
        np.frombuffer(model_to_bytes(run.estimator), dtype=np.uint8),
    )
    signal.learning_results.__dict__.update(results.__dict__)
    return run.estimator if return_info else None


def _training_run(signal, arguments: dict, options: dict) -> _TrainingRun:
    estimator = _make_estimator(
        arguments["algorithm"], arguments["output_dimension"], options
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
    calibration = SignalCalibration.from_signal(
        signal, _flat_signal_mask(arguments["signal_mask"])
    )
    grid = (
        _scan_grid(signal, arguments["navigation_mask"]) if estimator.spatial else None
    )
    return _TrainingRun(estimator, calibration, grid)


def _scan_run(
    signal, arguments: dict, options: dict, model_source, fine_tune: bool
) -> _ScanRun:
    if not isinstance(arguments["algorithm"], str):
        raise TypeError(
            "model= is given to algorithm='ae'; an AEUnmix instance as algorithm "
            "is a model to train. Use s.decomposition(algorithm='ae', model=...)."
        )
    if not isinstance(fine_tune, bool):
        raise TypeError(f"fine_tune must be True or False, got {fine_tune!r}.")
    model = load_model(model_source)
    if not hasattr(model, "module_"):
        raise ValueError(
            "model= needs a trained model; this AEUnmix is not fitted. Train it "
            "first, or pass a model file."
        )
    n_components = model.components_.shape[0]
    output_dimension = arguments["output_dimension"]
    if output_dimension is not None and output_dimension != n_components:
        raise ValueError(
            f"output_dimension={output_dimension} disagrees with the model, which "
            f"unmixes {n_components} endmembers; leave output_dimension out."
        )
    if arguments["signal_mask"] is not None:
        raise ValueError(
            "signal_mask cannot be combined with model=: a trained model unmixes "
            "the channels it was trained on (its own signal mask is applied "
            "automatically)."
        )
    if "preset" in options:
        raise TypeError(
            "preset= configures a new model; with model= the saved model's own "
            "options are used. Leave preset out."
        )
    if fine_tune:
        unknown = sorted(set(options) - set(autoencoder_options()))
        if unknown:
            raise TypeError(
                f"Unknown option(s) {unknown} for fine-tuning. Valid options: "
                f"{', '.join(autoencoder_options())}."
            )
        options.setdefault("max_epochs", FINE_TUNE_EPOCHS)
    elif options:
        raise TypeError(
            f"Options {sorted(options)} configure training, but model= without "
            "fine_tune=True only applies the trained model. Add fine_tune=True "
            "to continue training it with these options."
        )
    mapping = _mapping(model, signal)
    grid = None
    if model.spatial:
        if isinstance(signal, LazySignal):
            raise NotImplementedError(
                "This model is spatial (spatial=True): each pixel needs its "
                "neighbours, which HyperSpy's chunk-by-chunk processing of lazy "
                "signals does not give. Load the scan with s.compute() first."
            )
        grid = _scan_grid(signal, arguments["navigation_mask"])
    return _ScanRun(model, mapping, options if fine_tune else None, grid)


def _mapping(model: AEUnmix, signal) -> ChannelMapping:
    """How this signal's channels reach the model's; warns when interpolating."""
    new = SignalCalibration.from_signal(signal)
    trained = model.signal_calibration_
    if trained is None:
        if new.size != model.n_features_in_:
            raise ValueError(
                f"The model was trained on arrays of {model.n_features_in_} "
                f"channels and records no axis calibration; this signal has "
                f"{new.describe()}. Crop it to the model's channels or train a "
                "model on a HyperSpy signal."
            )
        trained = SignalCalibration(
            values=new.values,
            uniform=new.uniform,
            units=new.units,
            name=new.name,
            binned=new.binned,
            signal_type=new.signal_type,
            trained_channels=np.ones(new.size, dtype=bool),
        )
    mapping = channel_mapping(trained, new)
    if not mapping.is_identity:
        warnings.warn(
            describe_difference(trained, new)
            + (
                f"; counts per channel rescaled by x{mapping.intensity_factor:.6g} "
                "for the change of channel width"
                if mapping.intensity_factor != 1.0
                else ""
            )
            + ".",
            UserWarning,
            stacklevel=4,
        )
    return mapping


def _flat_signal_mask(signal_mask) -> np.ndarray | None:
    if signal_mask is None:
        return None
    if hasattr(signal_mask, "data"):
        signal_mask = signal_mask.data
    return np.asarray(signal_mask, dtype=bool).ravel()


def _check_signal(signal, *, reapplying: bool) -> None:
    axes = signal.axes_manager
    if axes.signal_dimension != 1:
        raise ValueError(
            "algorithm='ae' unmixes 1-D spectra, but this signal has signal "
            f"dimension {axes.signal_dimension}. Use a Signal1D (for example "
            "s.transpose(signal_axes=1))."
        )
    if axes.navigation_size < 2:
        if reapplying:
            raise ValueError(
                "HyperSpy decomposes signals of at least two spectra, but this "
                "signal holds a single spectrum. Unmix it with the model directly: "
                "hs_aeunmix.load_model(model).transform(s.data.reshape(1, -1))."
            )
        raise ValueError(
            "algorithm='ae' learns endmembers from many spectra, but this signal "
            "holds a single spectrum (navigation dimension "
            f"{axes.navigation_dimension}). Unmix a spectrum image or line scan, "
            "or apply a trained model to this spectrum (model.transform)."
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
    extra_options = dict(extra_options)
    preset = extra_options.pop("preset", None)
    unknown = sorted(set(extra_options) - set(autoencoder_options()))
    if unknown:
        raise TypeError(
            f"Unknown option(s) {unknown} for algorithm='ae'. Valid options: "
            f"{', '.join([*autoencoder_options(), *GLUE_OPTIONS])}."
        )
    if output_dimension is None:
        raise ValueError(
            "algorithm='ae' needs output_dimension, the number of endmembers to "
            "extract, e.g. s.decomposition(algorithm='ae', output_dimension=3). "
            "The scree plot of an SVD decomposition helps to choose it, or "
            "hs_aeunmix.scan_components."
        )
    if preset is not None:
        return AEUnmix.from_preset(preset, output_dimension, **extra_options)
    return AEUnmix(n_components=output_dimension, **extra_options)
