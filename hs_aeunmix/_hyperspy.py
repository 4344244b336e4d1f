"""HyperSpy glue: ``decomposition(algorithm="ae")``, :func:`decompose`, :func:`apply`.

:func:`shift_map` gives a drift-aware model's offsets and
:func:`get_uncertainty` the fractions' uncertainty, as signals.

The route of one call: :func:`run` checks the arguments (:mod:`._options`),
builds an adapter (:mod:`._adapters`): a :class:`~._adapters.TrainingRun`
that trains a new model, or a :class:`~._adapters.ScanRun` that applies a
trained one to this scan. It then calls HyperSpy's own ``decomposition``
with the adapter as a custom estimator (HyperSpy's public protocol) on a
twin of the signal, and gives the user's signal the results plus the
model's bytes, so that ``s.save`` keeps the model. What HyperSpy does not do
for custom estimators, this module does: route the autoencoder's keyword
arguments (HyperSpy drops them), accept integer data (HyperSpy refuses it),
map a new scan's axis onto the model's channels and leave
``learning_results`` in a state that ``s.save`` can write.
"""

from __future__ import annotations

import warnings

import numpy as np
from hyperspy.signals import BaseSignal, Signal1D, Signal2D

from hs_aeunmix import _hyperspy_internals as internals
from hs_aeunmix import _options
from hs_aeunmix._adapters import ScanGrid, ScanRun, TrainingRun
from hs_aeunmix._axes import (
    ChannelMapping,
    SignalCalibration,
    channel_mapping,
    describe_difference,
)
from hs_aeunmix._edges import split_elements
from hs_aeunmix._estimator import AEUnmix, load_model
from hs_aeunmix._names import ALGORITHM_NAME, LEARNING_RESULTS_ATTRIBUTE
from hs_aeunmix._training import resolve_show_progressbar


def decompose(
    signal,
    n_components: int | None = None,
    *,
    navigation_mask=None,
    signal_mask=None,
    print_info: bool = False,
    **options,
) -> AEUnmix:
    """Unmix ``signal`` with the autoencoder; results in ``signal.learning_results``.

    The same as ``signal.decomposition(algorithm="ae",
    output_dimension=n_components, return_info=True, ...)``, without relying
    on the patched ``decomposition`` method (a route that survives changes of
    HyperSpy's internals).

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        Spectra on a 1-D or 2-D scan (EELSSpectrum, Raman maps, ...).
    n_components : int, optional
        Number of endmembers; required unless ``model=`` is given.
    navigation_mask, signal_mask : optional
        As in HyperSpy's ``decomposition``: pixels and channels to leave out.
    print_info : bool, default=False
        Print HyperSpy's decomposition summary.
    **options
        :class:`AEUnmix` options, or ``preset=``, or ``model=`` (a trained
        model, model file or results file to apply instead of training) with
        ``fine_tune=``.

    Returns
    -------
    AEUnmix
        The trained (or applied) model.

    Examples
    --------
    >>> model = hs_aeunmix.decompose(s, 3, random_state=0)  # doctest: +SKIP
    >>> hs_aeunmix.apply(model, later_scan)  # doctest: +SKIP
    """
    return run(
        signal,
        {
            "algorithm": ALGORITHM_NAME,
            "output_dimension": n_components,
            "navigation_mask": navigation_mask,
            "signal_mask": signal_mask,
            "print_info": print_info,
            "return_info": True,
            "kwargs": options,
        },
    )


def apply(model, signal, *, fine_tune: bool = False, **options) -> AEUnmix:
    """Unmix ``signal`` with a trained ``model`` (no training unless ``fine_tune``).

    The same as ``signal.decomposition(algorithm="ae", model=model, ...)``.

    Parameters
    ----------
    model : AEUnmix, path or HyperSpy signal
        A fitted model, a model file, or a results file or signal unmixed
        with ``"ae"``.
    signal : hyperspy.signals.Signal1D
        The scan to unmix; its axis is mapped onto the model's channels.
    fine_tune : bool, default=False
        Continue training a copy of the model on this scan first.
    **options
        Training options for ``fine_tune`` (``max_epochs`` defaults to 30),
        or ``navigation_mask`` / ``print_info``.

    Returns
    -------
    AEUnmix
        The model that unmixed the scan (a rescaled or fine-tuned copy when
        the scan's intensity differs or ``fine_tune`` is set).
    """
    return decompose(signal, model=model, fine_tune=fine_tune, **options)


def shift_map(signal, model=None):
    """Each pixel's offset along the spectral axis, as a HyperSpy signal.

    For models trained with drift-aware decoding (``max_shift``): the shift,
    in the units of the signal axis (eV, cm⁻¹), by which each pixel's mixture
    of endmembers is moved to reproduce its spectrum (positive: towards
    higher values). A map of energy drift or calibration shifts across the
    scan; zeros for a model without ``max_shift``.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        The scan (in memory), on the model's axis or one it maps onto.
    model : AEUnmix, path or HyperSpy signal, optional
        The trained model; by default the one of ``signal``'s own
        ``decomposition(algorithm="ae")``.

    Returns
    -------
    hyperspy.signals.BaseSignal
        Shaped like ``signal``'s navigation, with its navigation axes.

    Examples
    --------
    >>> s.decomposition(algorithm="ae", max_shift=3)  # doctest: +SKIP
    >>> hs_aeunmix.shift_map(s).plot()  # doctest: +SKIP
    """
    model, spectra, navigation_axes = _model_and_spectra(signal, model, "shift_map")
    shifts, units = shifts_in_axis_units(model, model.shifts(spectra))
    data = shifts.reshape([axis.size for axis in navigation_axes])
    result = scan_signal(data, [axis.get_axis_dictionary() for axis in navigation_axes])
    result.metadata.General.title = f"Spectral shift of {signal.metadata.General.title}"
    result.metadata.set_item("Signal.quantity", f"Shift ({units})")
    return result


def shifts_in_axis_units(model: AEUnmix, shifts: np.ndarray) -> tuple[np.ndarray, str]:
    """Shifts in channels (:meth:`AEUnmix.shifts`) in the model's axis units.

    Returns the shifts and the units' name ("channels" for a model that
    knows no axis).
    """
    calibration = model.signal_calibration_
    if calibration is None or len(calibration.values) < 2:
        return shifts, "channels"
    step = float(np.median(np.diff(calibration.values)))
    return shifts * step, calibration.units or "channels"


def scan_signal(data: np.ndarray, scan_axes: list[dict], *, per_component=False):
    """A signal over the scan: one map, or one per endmember (``per_component``).

    ``scan_axes`` are the scan's axis dictionaries in the order of the data
    array's dimensions; with ``per_component`` the first dimension of
    ``data`` is the endmember, navigated like ``get_decomposition_loadings``.
    """
    axes = [{**axis, "navigate": False} for axis in scan_axes]
    if per_component:
        component = {"name": "Decomposition component index", "size": data.shape[0]}
        axes = [{**component, "navigate": bool(scan_axes)}, *axes]
    kind = {1: Signal1D, 2: Signal2D}.get(len(scan_axes), BaseSignal)
    if kind is BaseSignal:
        axes = [{**axis, "navigate": True} for axis in axes]
    return kind(data, axes=axes)


def get_uncertainty(signal, model=None):
    """Standard deviation of each pixel's fractions, shaped like the loadings.

    One map per endmember, in the order of ``get_decomposition_loadings()``
    (the background's terms, which have no fraction, are left out): the
    uncertainty of the pixel's fraction of that endmember (the loadings
    divided by the pixel's intensity, :meth:`AEUnmix.fractions`), from a
    Laplace approximation given the endmembers and the data's noise, see
    :meth:`AEUnmix.uncertainty`. A fraction ``f`` is then known to about
    ``f ± 2σ``. Works for a trained or a reapplied model alike.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        The scan (in memory), on the model's axis or one it maps onto.
    model : AEUnmix, path or HyperSpy signal, optional
        The trained model; by default the one of ``signal``'s own
        ``decomposition(algorithm="ae")``.

    Returns
    -------
    hyperspy.signals.BaseSignal
        Navigation: the endmembers; signal: the scan's navigation axes
        (a Signal2D for 2-D maps, a Signal1D for line scans).

    Examples
    --------
    >>> s.decomposition(algorithm="ae", output_dimension=3)  # doctest: +SKIP
    >>> hs_aeunmix.get_uncertainty(s).plot()  # doctest: +SKIP
    """
    model, spectra, navigation_axes = _model_and_spectra(
        signal, model, "get_uncertainty"
    )
    geometry = {}
    if uses_neighbours(model, signal):
        geometry["image_shape"] = tuple(axis.size for axis in navigation_axes)
    sigma = model.uncertainty(spectra, **geometry)
    data = sigma.T.reshape(-1, *[axis.size for axis in navigation_axes])
    result = scan_signal(
        data,
        [axis.get_axis_dictionary() for axis in navigation_axes],
        per_component=True,
    )
    result.metadata.General.title = (
        f"Uncertainty of the fractions of {signal.metadata.General.title}"
    )
    result.metadata.set_item("Signal.quantity", "Standard deviation (fraction)")
    return result


def _model_and_spectra(signal, model, caller: str):
    """The model, ``signal``'s spectra on its channels, the navigation axes."""
    if internals.is_lazy(signal):
        raise NotImplementedError(
            f"{caller} needs the scan in memory; this signal is lazy. Load it "
            "with s.compute() (or crop it first)."
        )
    model = load_model(signal if model is None else model)
    mapping = _mapping(model, signal)
    n_channels = signal.axes_manager.signal_size
    spectra = np.asarray(signal.data, dtype=np.float64).reshape(-1, n_channels)
    # Navigation axes in the order of the data array's dimensions.
    return model, mapping.to_model(spectra), signal.axes_manager.navigation_axes[::-1]


def run(signal, arguments: dict):
    """Run the autoencoder decomposition with the bound ``decomposition`` arguments.

    Returns the fitted (or applied) estimator when ``return_info`` is true,
    else None.
    """
    arguments = dict(arguments)
    options = dict(arguments.pop("kwargs", None) or {})
    model_source = options.pop("model", None)
    _options.check_signal(signal, reapplying=model_source is not None)
    _options.check_decomposition_arguments(arguments)
    _options.warn_about_zero_energy_peak(signal, arguments.get("signal_mask"))
    # show_progressbar also governs HyperSpy's own bars (those of a lazy
    # scan, drawn whatever its preference), as in apply_series; applying a
    # model trains nothing, so there it is no training option.
    requested = options.get("show_progressbar")
    if model_source is not None and not options.get("fine_tune", False):
        options.pop("show_progressbar", None)
    if model_source is None:
        adapter = _training_run(signal, arguments, options)
        requested = adapter.estimator.show_progressbar
    else:
        adapter = _scan_run(signal, arguments, options, model_source)
    with internals.progressbars_shown(resolve_show_progressbar(requested)):
        estimator = decompose_with(signal, adapter, arguments)
    return estimator if arguments.get("return_info", False) else None


def decompose_with(signal, adapter: TrainingRun | ScanRun, arguments: dict) -> AEUnmix:
    """HyperSpy's decomposition of ``signal`` by ``adapter``; the estimator.

    Writes the learning results (with the model's file in them) into
    ``signal``; its data are never changed. ``arguments``: the
    ``decomposition`` arguments HyperSpy itself uses (masks, print_info).
    """
    # The user's data are used, never changed: HyperSpy unfolds the signal it
    # decomposes, so it works on a twin sharing (float) or converting
    # (integer) the data array.
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    twin = internals.twin(signal, data)
    internals.hyperspy_decomposition(
        twin,
        algorithm=adapter,
        # HyperSpy would crop the factors to this number; the background's
        # basis functions follow the endmembers (see _adapters).
        output_dimension=None,
        navigation_mask=arguments.get("navigation_mask"),
        signal_mask=arguments.get("signal_mask"),
        print_info=arguments.get("print_info", False),
        return_info=False,
    )
    results = internals.adopt_results(signal, twin)
    results.output_dimension = results.factors.shape[1]
    # The estimator object cannot be written to .hspy; its name and its
    # model file's bytes can.
    results.decomposition_algorithm = ALGORITHM_NAME
    estimator = adapter.estimator
    setattr(
        results,
        LEARNING_RESULTS_ATTRIBUTE,
        np.frombuffer(estimator._model_bytes(), dtype=np.uint8),
    )
    return estimator


def _training_run(signal, arguments: dict, options: dict) -> TrainingRun:
    estimator = _options.make_estimator(
        arguments["algorithm"], arguments["output_dimension"], options
    )
    lazy = internals.is_lazy(signal)
    if lazy and estimator.spatial is True:
        raise NotImplementedError(
            "spatial=True trains on each pixel's neighbours, which HyperSpy's "
            "chunk-by-chunk processing of lazy signals does not give. Load the "
            "scan with s.compute() first, or train with spatial=False (lazy "
            "signals are then trained on a random sample of their pixels)."
        )
    _options.check_conv_axis(estimator, signal)
    calibration = SignalCalibration.from_signal(
        signal, _flat_signal_mask(arguments.get("signal_mask"))
    )
    # spatial="auto": neighbours where the whole scan, a line or a map, is
    # in memory (HyperSpy's chunks of a lazy one hold no neighbours).
    grid = (
        scan_grid(signal, arguments.get("navigation_mask"))
        if estimator.spatial is True
        or (estimator.spatial == "auto" and not lazy and has_grid(signal))
        else None
    )
    return TrainingRun(estimator, calibration, grid, sample_elements(signal))


def sample_elements(signal) -> tuple[str, ...] | None:
    """The elements ``s.add_elements`` recorded for the specimen, or None.

    Those eXSpy's database does not know (metadata written by hand) are
    reported and left out, so that naming the endmembers never fails on them.
    """
    elements = signal.metadata.get_item("Sample.elements", None)
    if elements is None:
        return None
    try:
        known, unknown = split_elements(elements)
    except ImportError:
        return None  # without eXSpy, no edge is named at all
    if unknown:
        warnings.warn(
            f"metadata.Sample.elements holds {unknown}, which eXSpy's edge "
            "database does not know; they are left out of the endmembers' names.",
            UserWarning,
            stacklevel=3,
        )
    return known or None


def _scan_run(signal, arguments: dict, options: dict, model_source) -> ScanRun:
    fine_tune = options.pop("fine_tune", False)
    model = load_model(model_source)
    if not hasattr(model, "module_"):
        raise ValueError(
            "model= needs a trained model; this AEUnmix is not fitted. Train it "
            "first, or pass a model file."
        )
    fine_tuning = _options.fine_tune_options(
        arguments["algorithm"],
        arguments["output_dimension"],
        arguments.get("signal_mask"),
        options,
        model,
        fine_tune,
    )
    lazy = internals.is_lazy(signal)
    if lazy and fine_tuning is not None:
        raise NotImplementedError(
            "Fine-tuning trains the model and needs the data in memory; this "
            "signal is lazy. Load it with s.compute() (or crop it first), or "
            "apply the model without fine_tune, which works chunk by chunk."
        )
    mapping = _mapping(model, signal)
    if model.spatial is True and lazy:
        raise NotImplementedError(
            "This model is spatial (spatial=True): each pixel needs its "
            "neighbours, which HyperSpy's chunk-by-chunk processing of lazy "
            "signals does not give. Load the scan with s.compute() first."
        )
    grid = (
        scan_grid(signal, arguments.get("navigation_mask"))
        if uses_neighbours(model, signal)
        else None
    )
    return ScanRun(model, mapping, fine_tuning, grid)


def uses_neighbours(model, signal) -> bool:
    """Whether a fitted model's spatial layer refines this scan's fractions.

    Always with ``spatial=True``; with ``spatial="auto"`` where the layer was
    trained and the scan, in memory, is a line or a map.
    """
    if model.spatial is True:
        return True
    return (
        model.module_.spatial is not None
        and not internals.is_lazy(signal)
        and has_grid(signal)
    )


def has_grid(signal) -> bool:
    """Whether the scan's pixels have neighbours: a line scan or a map."""
    return 1 <= len(signal.axes_manager.navigation_shape) <= 2 and (
        signal.axes_manager.navigation_size > 1
    )


def scan_grid(signal, navigation_mask) -> ScanGrid:
    # Navigation axes are listed x first; the data array has them reversed.
    shape = tuple(signal.axes_manager.navigation_shape[::-1])
    if len(shape) > 2:
        raise ValueError(
            "spatial=True uses the neighbours of each pixel on a line scan or a "
            f"2-D map, but this signal has {len(shape)} navigation dimensions. "
            "Unmix each map separately, or use spatial=False."
        )
    return ScanGrid(shape, internals.flat_navigation_mask(navigation_mask))


def _flat_signal_mask(signal_mask) -> np.ndarray | None:
    if signal_mask is None:
        return None
    if hasattr(signal_mask, "data"):
        signal_mask = signal_mask.data
    return np.asarray(signal_mask, dtype=bool).ravel()


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
            + (
                f"; {mapping.n_extrapolated} of the model's channels lie beyond "
                "this signal's axis (by at most one of its channels) and take "
                "the value of its end channel"
                if mapping.n_extrapolated
                else ""
            )
            + ".",
            UserWarning,
            stacklevel=5,
        )
    return mapping
