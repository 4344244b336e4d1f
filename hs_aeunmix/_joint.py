"""A sample series as one problem: shared endmembers, each scan its own maps.

The scans of a series (the same specimen at several positions, times,
temperatures or doses) share their phases. Training one model on all of
them gives every scan the evidence of the others, a low-dose scan
especially, and endmember *k* is then the same phase in every scan: maps are
comparable across the series without matching endmembers afterwards, and a
phase absent from a scan gets a small map there instead of a re-purposed
endmember. As trained that map is not zero, since without pure pixels the
data fix the endmembers only so closely (on ``benchmarks/joint.py``'s
series, a mean fraction of 0.058 where the phase is absent, and 0.037 from
noiseless spectra; ``benchmarks/absent_phase.py``), and since at low counts
no pixel-by-pixel estimate reaches zero in the mean: each pixel's
non-negative fit on the *true* endmembers leaves 0.021-0.076 (three draws
of that series), its median pixel 0.000-0.003. So each scan is then asked
which phases its spectra need, against what the series' scans typically
hold (:mod:`hs_aeunmix._presence`); a phase it lacks gets a zero map
(``zero_absent=True``), and the decision is reported per scan.

What differs between acquisitions is handled per scan:

* **energy offset** (EELS drift, Raman calibration between scans): each
  scan's offset relative to the first (or to the model's endmembers when
  continuing a model) is measured on its mean spectrum, by aligning the
  mean spectra's first differences (edges and bands, not the smooth
  background) over a grid of sub-channel shifts; the scan's axis is then
  read as shifted by that much, so that its spectra reach the model's
  channels through the same interpolation as any recalibrated scan
  (:mod:`hs_aeunmix._axes`). The model is trained on the channels every
  corrected scan covers. How well the offset is known is measured too: its
  standard error is the spread of the offsets of :data:`OFFSET_SUBSETS`
  interleaved subsets of the scan's pixels over the square root of their
  number (the spread of two halves, a single difference, can be near zero
  by chance: on low-dose scans it gave 0.001 channels where the error was
  0.22). A scan whose offset is known worse than :data:`OFFSET_TOLERANCE`
  is unmixed but not trained on.
* **intensity** (beam current, dwell time, thickness): absorbed by each
  pixel's intensity (``pixel_scale``) and reported as the scan's ratio to
  the series' training mean.
* **the simplex's size**: the series' scans rarely hold pure pixels, so the
  joint simplex may open up beyond the data wherever that costs no fit; a
  corner that drifts off the face on which the scans without a phase lie
  is then made up for by that phase, which leaks into their maps. A new
  model is therefore trained with a small minimum-volume term,
  :data:`SERIES_MIN_VOLUME_WEIGHT` (``min_volume_weight``), unless the
  options set one or name a preset.
* **noise and texture of the maps**: with ``spatial="auto"`` (the default)
  the model's spatial layer (:mod:`hs_aeunmix._spatial`, averaging each
  pixel's estimate with its like neighbours) is fitted on a window of each
  in-memory map or line scan, then fitted again to each scan when it is
  unmixed, as it would be were the scan trained alone: a low-dose scan is
  smoothed more than a well-exposed one. The endmembers stay those of the
  series. Lazy scans are unmixed per pixel, chunk by chunk.

The training sample (at most :data:`~hs_aeunmix._fitting.MAX_TRAINING_PIXELS`
spectra, as for one scan) is drawn from every scan in proportion to its
size; lazy scans are read only where sampled, then unmixed chunk by chunk.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.utils import check_random_state

from hs_aeunmix import _hyperspy_internals as internals
from hs_aeunmix._adapters import ScanRun
from hs_aeunmix._axes import ChannelMapping, SignalCalibration, channel_mapping
from hs_aeunmix._estimator import AEUnmix, load_model
from hs_aeunmix._fitting import MAX_TRAINING_PIXELS
from hs_aeunmix._hyperspy import decompose_with, has_grid, scan_grid, uses_neighbours
from hs_aeunmix._options import check_output_dimension, check_signal, make_estimator
from hs_aeunmix._presence import (
    MAX_HOLDING,
    PhaseLevels,
    absent_phases,
    held_in_map,
    phase_levels,
    without_phases,
)
from hs_aeunmix._screening import is_count_data
from hs_aeunmix._spatial import check_geometry, fit_windows

_logger = logging.getLogger(__name__)

# Shifts tried when aligning mean spectra, in channels (refined to a
# parabola's vertex around the best), and the smoothing of the mean spectra
# (Gaussian, in channels) that keeps counting noise out of their differences.
_SHIFT_STEP = 0.05
_SMOOTHING = 1.0
# A scan whose offset's standard error exceeds this many channels is not
# trained on: misaligned spectra would blur the endmembers.
OFFSET_TOLERANCE = 0.25
# Interleaved subsets of a scan's pixels whose offsets give the standard
# error (7 degrees of freedom; a subset of a low-dose scan still holds
# every feature).
OFFSET_SUBSETS = 8
# The minimum-volume weight a series' new model is trained with (see the
# module docstring). Measured with ``benchmarks/joint_volume.py`` on three
# series sources (eels_series, and series mixed from the STEM-EELS and
# Raman-compound generators' endmembers and maps), seeds 0-2, weights 0,
# 0.003, 0.005, 0.01 and 0.03: against 0, 0.005 gave a better mean angle
# and abundance RMSE on all six EELS series and a lower absent-phase
# fraction on five (eels_series 0.087-0.101 to 0.058-0.075), and changed
# the Raman series, which had no leak, by under 0.001; 0.01 leaked less but
# worsened the angle on two of six, and 0.03 collapsed one STEM-EELS series
# (0.041 to 0.17 rad).
SERIES_MIN_VOLUME_WEIGHT = 0.005
# Scans that give the shared spatial layer a window each: its 10 parameters
# need a few, and each scan's own layer is then fitted on that scan.
_LAYER_SCANS = 16


@dataclass(frozen=True)
class SeriesScan:
    """One scan of a jointly unmixed series.

    Attributes
    ----------
    signal : hyperspy.signals.Signal1D
        The scan, with its ``learning_results`` (the series' endmembers, its
        own maps).
    offset : float
        Its spectral offset relative to the reference (the first scan, or the
        model's endmembers when a model is given), in the axis' units
        (positive: features appear at higher values).
    offset_uncertainty : float
        The offset's standard error, in the axis' units: the spread of the
        offsets of :data:`OFFSET_SUBSETS` interleaved subsets of its pixels
        over the square root of their number (NaN for a scan of one pixel).
        Above :data:`OFFSET_TOLERANCE` channels the scan is not trained on.
        It measures the counting noise, not a bias: on synthetic series the
        offsets of well-exposed scans were off by 0.01-0.14 eV (1 eV
        channels) where it gave 0.006-0.10.
    intensity_ratio : float
        Its overall intensity relative to the series' training mean.
    n_sampled : int
        Its spectra in the training sample (0 when only applied, or left out
        for an uncertain offset).
    levels : PhaseLevels or None
        How much of each endmember the scan's spectra need
        (:func:`hs_aeunmix._presence.phase_levels`); None where too few of
        its spectra hold signal.
    absent : numpy.ndarray of shape (n_components,), bool
        The endmembers the scan lacks (:func:`hs_aeunmix._presence.absent_phases`):
        their maps are zero when ``zero_absent=True``.
    """

    signal: object
    offset: float
    offset_uncertainty: float
    intensity_ratio: float
    n_sampled: int
    levels: PhaseLevels | None
    absent: np.ndarray


@dataclass(frozen=True)
class SeriesFit:
    """The result of :func:`decompose_series`: the model and each scan's report."""

    model: AEUnmix
    scans: tuple[SeriesScan, ...]

    @property
    def signals(self) -> list:
        """The scans, each with its learning results."""
        return [scan.signal for scan in self.scans]

    @property
    def offsets(self) -> np.ndarray:
        """Each scan's spectral offset, in the axis' units."""
        return np.array([scan.offset for scan in self.scans])

    @property
    def absent(self) -> np.ndarray:
        """(n_scans, n_components) booleans: the endmembers each scan lacks."""
        return np.array([scan.absent for scan in self.scans])

    def __str__(self) -> str:
        units = self.model.signal_calibration_.units or "channels"
        lines = [
            f"| scan | offset ({units}) | intensity ratio | trained on (spectra) "
            "| absent endmembers |",
            "| --- | --- | --- | --- | --- |",
        ]
        for scan in self.scans:
            absent = ", ".join(str(k) for k in np.flatnonzero(scan.absent)) or "none"
            lines.append(
                f"| {scan.signal.metadata.General.title} | {scan.offset:+.3g} "
                f"± {scan.offset_uncertainty:.2g} | {scan.intensity_ratio:.3g} | "
                f"{scan.n_sampled} | {absent} |"
            )
        return "\n".join(lines)


def _mapping_to_model(
    reference: SignalCalibration,
    calibration: SignalCalibration,
    offset: float,
    signal,
) -> ChannelMapping:
    """:func:`channel_mapping` of a scan, aligned by ``offset``, to a given model.

    Its refusal says why a series meets it: a model trained on one scan
    covers every channel of that scan, so a scan shifted by more than a
    channel leaves some of the model's channels without data.
    """
    try:
        return channel_mapping(reference, calibration)
    except ValueError as error:
        units = f" {reference.units}" if reference.units else ""
        raise ValueError(
            f"{signal.metadata.General.title or 'A scan'}: aligned to the model by "
            f"its measured offset of {offset:+.4g}{units}, it no longer covers the "
            f"model's channels ({error}) To unmix a series whose scans shift by "
            "more than a channel, unmix it as one problem (decompose_series("
            "signals, output_dimension) keeps the channels every scan covers), or "
            "train the model on a window a few channels narrower than the scans "
            "(s.crop_signal)."
        ) from error


def decompose_series(
    signals: Sequence,
    output_dimension: int | None = None,
    *,
    model=None,
    fine_tune: bool = False,
    max_offset: float = 5.0,
    zero_absent: bool = True,
    lazy: bool = False,
    **options,
) -> SeriesFit:
    """Unmix a series of scans with one model: shared endmembers, own maps.

    Parameters
    ----------
    signals : sequence of Signal1D or paths
        The scans (in memory or lazy), or their files (read with
        ``hs.load``). Every scan must cover the first scan's spectral range
        (up to its offset) in the same units.
    output_dimension : int
        Number of endmembers (not with ``model`` unless equal to its own).
    model : AEUnmix, path or HyperSpy signal, optional
        A trained model: applied to every scan (with each scan's offset
        measured against the model's endmembers), or trained on with
        ``fine_tune=True``.
    fine_tune : bool, default False
        Continue training ``model`` on the series (a warm start).
    max_offset : float, default 5.0
        Largest spectral offset between scans looked for, in channels.
    zero_absent : bool, default True
        Set to zero the map of an endmember a scan is found to lack, as
        decided on the scan's spectra against the series and on the scan's
        map (:mod:`hs_aeunmix._presence`; reported per scan either way). A
        model reapplied to the scan later does not repeat the decision.
    lazy : bool, default False
        Read files lazily (only the sampled spectra are loaded for training).
    **options
        Options of ``s.decomposition(algorithm="ae", ...)`` for training
        (``random_state``, ``max_epochs``, ``preset``, ``spatial``, ...).
        ``spatial=True`` needs every scan in memory as a line scan or a map;
        ``spatial=False`` gives per-pixel maps. A new model's
        ``min_volume_weight`` is :data:`SERIES_MIN_VOLUME_WEIGHT` unless given
        (or a ``preset`` is): see the module docstring.

    Returns
    -------
    SeriesFit
        The model (saved and reapplied like any other) and, per scan, the
        signal with its learning results, its offset, its intensity ratio.

    Examples
    --------
    >>> fit = hs_aeunmix.decompose_series(["a.hspy", "b.hspy"], 3)  # doctest: +SKIP
    >>> print(fit)  # offsets and intensity ratios  # doctest: +SKIP
    >>> fit.signals[1].plot_decomposition_loadings()  # doctest: +SKIP
    """
    signals = _load(signals, lazy)
    if not isinstance(max_offset, int | float) or not 0 <= max_offset < np.inf:
        raise ValueError(f"max_offset must be 0 or more channels, got {max_offset!r}.")
    if not isinstance(zero_absent, bool | np.bool_):
        raise TypeError(f"zero_absent must be True or False, got {zero_absent!r}.")
    rng = _sampling_generator(options.get("random_state", 0))
    calibrations = [SignalCalibration.from_signal(signal) for signal in signals]
    for calibration in calibrations[1:]:
        if calibration.units != calibrations[0].units:
            raise ValueError(
                "The scans' spectral axes are in different units "
                f"({calibrations[0].units!r} and {calibration.units!r}); convert "
                "them to one unit first (axis.convert_to_units)."
            )
    if model is not None:
        model = _given_model(model, output_dimension, fine_tune, options)
        reference = model.signal_calibration_
        # The endmembers' mean stands for the series' mean spectrum.
        trained = reference.trained_channels
        reference_mean = np.interp(
            reference.values, reference.values[trained], model.components_.mean(0)
        )
    else:
        if output_dimension is None:
            raise ValueError(
                "decompose_series needs output_dimension, the number of "
                "endmembers shared by the series."
            )
        reference = calibrations[0]
    train = model is None or fine_tune
    samples = _samples(signals, rng, train=train)
    means = [
        _mean_spectra(signal, calibration)
        for signal, calibration in zip(signals, calibrations, strict=True)
    ]
    if model is None:
        reference_mean = _on_axis(means[0][0], calibrations[0], reference)
    measured = [
        _measured_offset(
            reference_mean,
            [_on_axis(mean, calibration, reference) for mean in scan_means],
            max_offset,
        )
        for scan_means, calibration in zip(means, calibrations, strict=True)
    ]
    # Below the measurement's resolution an offset is none: the scan is then
    # read on its own axis, without interpolation.
    offsets = [
        whole * reference.scale if abs(whole) > _SHIFT_STEP / 5 else 0.0
        for whole, _ in measured
    ]
    errors = [error for _, error in measured]
    trained_on = [error <= OFFSET_TOLERANCE for error in errors]
    if not any(trained_on):
        trained_on = [True] * len(signals)
    for signal, error, kept in zip(signals, errors, trained_on, strict=True):
        if train and not kept:
            _logger.warning(
                "%s: its offset is uncertain (standard error %.2f channels); it "
                "is unmixed but not trained on",
                signal.metadata.General.title,
                error,
            )
    corrected = [
        replace(calibration, values=calibration.values - offset)
        for calibration, offset in zip(calibrations, offsets, strict=True)
    ]
    if model is None:
        reference = _common_channels(reference, corrected)
        mappings = [channel_mapping(reference, c) for c in corrected]
    else:
        mappings = [
            _mapping_to_model(reference, calibration, offset, signal)
            for calibration, offset, signal in zip(
                corrected, offsets, signals, strict=True
            )
        ]
    mapped = [
        mapping.to_model(sample)
        for mapping, sample in zip(mappings, samples, strict=True)
    ]
    if train:
        training = np.concatenate(
            [rows for rows, kept in zip(mapped, trained_on, strict=True) if kept]
        )
        if model is None:
            estimator = make_estimator("ae", output_dimension, _series_options(options))
        else:
            # The caller's model is never changed: a copy is trained on.
            estimator = copy.deepcopy(model)
            estimator.set_params(warm_start=True, **options)
        _check_grids(estimator.spatial, signals)
        windows = None
        if estimator.spatial is True or (
            estimator.spatial == "auto"
            and (model is None or model.module_.spatial is not None)
        ):
            windows = _layer_windows(signals, mappings, trained_on, rng)
        estimator._fit(
            training,
            signal_calibration=reference if model is None else None,
            spatial_windows=windows,
        )
        model = estimator
    else:
        _check_grids(model.spatial, signals)
    n_components = model.components_.shape[0]
    levels = [
        phase_levels(
            rows,
            model.components_,
            model.baseline_components_,
            counts=is_count_data(sample),
            rng=rng,
        )
        for rows, sample in zip(mapped, samples, strict=True)
    ]
    absent = absent_phases(levels, n_components)
    scans = []
    for signal, mapping, offset, error, rows, kept, level, lacks in zip(
        signals,
        mappings,
        offsets,
        errors,
        mapped,
        trained_on,
        levels,
        absent,
        strict=True,
    ):
        # The scan keeps the model in its own frame (axis shifted by its
        # offset): reapplying it, its uncertainty or its reconstruction then
        # see the scan's spectra where the model has them.
        scan_model = copy.deepcopy(model)
        calibration = model.signal_calibration_
        scan_model.signal_calibration_ = replace(
            calibration, values=calibration.values + offset
        )
        grid = scan_grid(signal, None) if uses_neighbours(scan_model, signal) else None
        with warnings.catch_warnings():
            # Reported once, in the series' table.
            warnings.filterwarnings("ignore", ".*times as intense", UserWarning)
            decompose_with(
                signal,
                ScanRun(
                    scan_model,
                    mapping,
                    None,
                    grid,
                    refit_spatial=train and grid is not None,
                ),
                {},
            )
        if lacks.any():
            # Every pixel of the map, beyond the tested sample, may hold it.
            loadings = np.asarray(signal.learning_results.loadings)
            held = held_in_map(loadings[:, :n_components], model.components_)
            lacks = lacks & (held <= MAX_HOLDING)
        if zero_absent and lacks.any():
            _zero_absent_maps(signal, lacks)
        ratio = model.intensity_ratio(rows) if len(rows) else np.nan
        scans.append(
            SeriesScan(
                signal,
                float(offset),
                float(error * reference.scale),
                float(ratio),
                len(rows) if kept and train else 0,
                level,
                lacks,
            )
        )
    _logger.info("Series of %d scans unmixed jointly", len(scans))
    return SeriesFit(model, tuple(scans))


def _zero_absent_maps(signal, absent: np.ndarray) -> None:
    """Set the ``absent`` endmembers' maps in ``signal``'s results to zero."""
    results = signal.learning_results
    loadings = np.asarray(results.loadings)
    columns = np.zeros(loadings.shape[1], dtype=bool)
    columns[: len(absent)] = absent
    results.loadings = without_phases(loadings, columns).astype(
        loadings.dtype, copy=False
    )
    _logger.info(
        "%s: endmember(s) %s absent, maps set to zero",
        signal.metadata.General.title,
        ", ".join(str(k) for k in np.flatnonzero(absent)),
    )


def _sampling_generator(random_state) -> np.random.Generator:
    """The generator that draws the training sample, from ``random_state``.

    An integer or None seeds it directly; a ``RandomState`` (scikit-learn's
    convention, which the estimator accepts too) gives it a seed.
    """
    if random_state is None or isinstance(random_state, Integral):
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_random_state(random_state).randint(2**31))


def _load(signals, lazy: bool) -> list:
    if isinstance(signals, str | Path) or not isinstance(signals, Sequence):
        raise TypeError(
            "decompose_series takes a list of signals or file paths, e.g. "
            "decompose_series([s1, s2], 3) or decompose_series(sorted(paths), 3)."
        )
    if len(signals) < 1:
        raise ValueError("decompose_series needs at least one scan.")
    import hyperspy.api as hs

    loaded = []
    for source in signals:
        signal = (
            hs.load(source, lazy=lazy) if isinstance(source, str | Path) else source
        )
        if isinstance(signal, list):
            raise ValueError(
                f"{source} holds {len(signal)} signals; give one scan per file."
            )
        check_signal(signal, reapplying=False)
        loaded.append(signal)
    return loaded


def _series_options(options: dict) -> dict:
    """``options`` with the series' minimum-volume weight, unless they set one.

    A preset is a paper's method: it is left as the paper has it.
    """
    if "min_volume_weight" in options or "preset" in options:
        return options
    return {"min_volume_weight": SERIES_MIN_VOLUME_WEIGHT, **options}


def _given_model(model, output_dimension, fine_tune: bool, options: dict) -> AEUnmix:
    model = load_model(model)
    check_output_dimension(output_dimension, model)
    if options and not fine_tune:
        raise TypeError(
            f"Options {sorted(options)} configure training; add fine_tune=True to "
            "continue training the model on the series, or leave them out."
        )
    if model.signal_calibration_ is None:
        raise ValueError(
            "The model records no spectral axis (it was trained on an array); "
            "a series is aligned on the model's axis. Train it on a signal."
        )
    return model


def _check_grids(spatial, signals: list) -> None:
    """``spatial=True`` needs every scan in memory, as a line scan or a map."""
    if spatial is not True:
        return
    for signal in signals:
        if internals.is_lazy(signal) or not has_grid(signal):
            raise ValueError(
                f"{signal.metadata.General.title}: spatial=True needs each "
                "pixel's neighbours, so every scan in memory (not lazy) and a "
                "line scan or a 2-D map. Load the scans with lazy=False, or use "
                'spatial="auto" (neighbours where a scan gives them).'
            )


def _layer_windows(
    signals: list, mappings: list, kept: list, rng: np.random.Generator
) -> list | None:
    """Where the shared spatial layer is fitted: a window of each trained map.

    At most :data:`_LAYER_SCANS` scans, evenly spaced through the series,
    each in memory with neighbours (a line scan or a map), give one window
    (:func:`~hs_aeunmix._spatial.fit_windows`) on the model's channels.
    None when no scan has neighbours.
    """
    eligible = [
        index
        for index, signal in enumerate(signals)
        if kept[index] and not internals.is_lazy(signal) and has_grid(signal)
    ]
    if not eligible:
        return None
    spaced = np.linspace(0, len(eligible) - 1, min(len(eligible), _LAYER_SCANS))
    windows = []
    for index in (eligible[position] for position in spaced.round().astype(int)):
        signal = signals[index]
        rows = signal.data.reshape(-1, signal.axes_manager.signal_size)
        geometry = check_geometry(len(rows), scan_grid(signal, None).shape, None)
        spectra, window_shape, mask = fit_windows(
            rows, geometry, int(rng.integers(2**31))
        )[0]
        windows.append((mappings[index].to_model(spectra), window_shape, mask))
    return windows


def _samples(signals: list, rng: np.random.Generator, *, train: bool) -> list:
    """Each scan's training spectra: the budget shared in proportion to size."""
    sizes = np.array([signal.axes_manager.navigation_size for signal in signals])
    budget = min(MAX_TRAINING_PIXELS, int(sizes.sum()))
    if not train:
        budget = min(budget, 2048 * len(signals))
    shares = np.floor(budget * sizes / sizes.sum()).astype(int)
    samples = []
    for signal, size, share in zip(signals, sizes, shares, strict=True):
        rows = np.sort(rng.choice(size, min(share, size), replace=False))
        spectra = signal.data.reshape(size, -1)[rows]
        if internals.is_lazy(signal):
            spectra = spectra.compute()
        samples.append(np.asarray(spectra, dtype=np.float64))
    return samples


def _mean_spectra(signal, calibration: SignalCalibration) -> tuple[np.ndarray, ...]:
    """The scan's mean spectrum, then those of its interleaved pixel subsets.

    :data:`OFFSET_SUBSETS` subsets (fewer for a smaller scan), pixel ``i``
    in subset ``i % n``; one pass over the data.
    """
    data = signal.data.reshape(-1, calibration.size)
    n_subsets = min(OFFSET_SUBSETS, len(data))
    parts = [data[start::n_subsets].mean(axis=0) for start in range(n_subsets)]
    if internals.is_lazy(signal):
        import dask

        parts = dask.compute(*parts)
    parts = [np.asarray(mean, dtype=np.float64) for mean in parts]
    # The whole scan's mean is its subsets' means weighted by their sizes.
    sizes = [len(range(start, len(data), n_subsets)) for start in range(n_subsets)]
    return np.average(parts, axis=0, weights=sizes), *parts


def _measured_offset(
    reference: np.ndarray, means: list[np.ndarray], max_offset: float
) -> tuple[float, float]:
    """The offset of the first of ``means`` (the scan's) and its standard error.

    ``means``: the scan's mean spectrum, then its subsets' (see
    :func:`_mean_spectra`), on ``reference``'s channels; in channels.
    """
    whole, *parts = (_offset(reference, mean, max_offset) for mean in means)
    if len(parts) < 2:
        return whole, float("nan")
    return whole, float(np.std(parts, ddof=1) / np.sqrt(len(parts)))


def _on_axis(
    spectrum: np.ndarray, calibration: SignalCalibration, target: SignalCalibration
) -> np.ndarray:
    """``spectrum`` (on ``calibration``'s axis) at ``target``'s channel positions."""
    order = np.argsort(calibration.values)
    return np.interp(target.values, calibration.values[order], spectrum[order])


def _offset(reference: np.ndarray, spectrum: np.ndarray, max_offset: float) -> float:
    """Channels by which ``spectrum``'s features sit above ``reference``'s.

    The first differences (edges and bands; a smooth background hardly
    counts) of both are normalised and compared at shifts of
    :data:`_SHIFT_STEP` channels within ``max_offset``, away from the ends;
    the best shift is refined to the vertex of a parabola through its
    neighbours.
    """
    if max_offset == 0:
        return 0.0
    channels = np.arange(reference.size, dtype=float)
    margin = int(np.ceil(max_offset)) + 1
    if reference.size <= 2 * margin + 4:
        return 0.0
    inner = slice(margin, reference.size - margin)

    def profile(values: np.ndarray) -> np.ndarray:
        difference = np.diff(gaussian_filter1d(values, _SMOOTHING))[inner]
        norm = np.linalg.norm(difference)
        return difference / norm if norm > 0 else difference

    target = profile(reference)
    shifts = np.arange(-max_offset, max_offset + _SHIFT_STEP / 2, _SHIFT_STEP)
    errors = np.array(
        [
            np.sum(
                (profile(np.interp(channels + shift, channels, spectrum)) - target) ** 2
            )
            for shift in shifts
        ]
    )
    best = int(np.argmin(errors))
    if 0 < best < len(shifts) - 1:
        left, middle, right = errors[best - 1 : best + 2]
        curvature = left - 2 * middle + right
        if curvature > 0:
            return float(shifts[best] + 0.5 * _SHIFT_STEP * (left - right) / curvature)
    return float(shifts[best])


def _common_channels(
    reference: SignalCalibration, corrected: list[SignalCalibration]
) -> SignalCalibration:
    """``reference`` trained only on the channels every corrected scan covers."""
    values = reference.values
    covered = np.ones(values.size, dtype=bool)
    for calibration in corrected:
        low, high = calibration.values.min(), calibration.values.max()
        covered &= (values >= low - 1e-9 * abs(reference.scale)) & (
            values <= high + 1e-9 * abs(reference.scale)
        )
    covered &= reference.trained_channels
    if covered.sum() < 5:
        raise ValueError(
            "The scans' spectral ranges, corrected for their offsets, share "
            f"only {int(covered.sum())} channels; a series must cover a common "
            "range."
        )
    return replace(reference, trained_channels=covered)
