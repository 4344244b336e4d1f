"""Spectral axes across acquisitions: record a calibration, map new spectra onto it.

A trained model knows the energy (or Raman shift) of each of its channels.
A later scan of the same sample may drift in offset, use another dispersion
or a cropped range. :class:`SignalCalibration` records the training signal's
axis; :func:`channel_mapping` decides how spectra of a new signal reach the
model's channels: unchanged (identical calibration), linearly interpolated
(the new range covers the trained one), or not at all (an error that says
what to do).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace

import numpy as np
import traits.api as t

_logger = logging.getLogger(__name__)

# Two calibrations are the same when every channel position agrees to this
# fraction of a channel: far below any physical drift, far above rounding.
_SAME_POSITION_TOLERANCE = 1e-6
# How far, in its own channels, a new axis may fall short of the trained
# range at each end (see channel_mapping).
_EDGE_CHANNELS = 1


def _text(value) -> str | None:
    return None if value is t.Undefined or value in (None, "") else str(value)


@dataclass(frozen=True)
class SignalCalibration:
    """Spectral axis of the signal a model was trained on.

    Attributes
    ----------
    values : numpy.ndarray
        Position of every channel of the signal (before any signal mask).
    uniform : bool
        Whether the axis is equally spaced (offset + scale x index).
    units, name : str or None
        Axis units and name, None when the signal leaves them undefined.
    binned : bool
        Whether values are counts per channel (HyperSpy's ``is_binned``):
        those scale with the channel width when resampled.
    signal_type : str
        HyperSpy signal type (``"EELS"``, ``""`` for a plain Signal1D, ...).
    trained_channels : numpy.ndarray of bool
        Channels the model uses (False where a ``signal_mask`` excluded them).
    """

    values: np.ndarray
    uniform: bool
    units: str | None
    name: str | None
    binned: bool
    signal_type: str
    trained_channels: np.ndarray

    @classmethod
    def from_signal(cls, signal, signal_mask=None) -> SignalCalibration:
        """Calibration of ``signal``'s (single) signal axis.

        ``signal_mask`` (True = excluded, HyperSpy's convention) marks the
        channels the model did not see.
        """
        axis = signal.axes_manager.signal_axes[0]
        values = np.asarray(axis.axis, dtype=float).copy()
        excluded = (
            np.zeros(values.size, dtype=bool)
            if signal_mask is None
            else np.asarray(signal_mask, dtype=bool).ravel()
        )
        return cls(
            values=values,
            uniform=bool(axis.is_uniform),
            units=_text(axis.units),
            name=_text(axis.name),
            binned=bool(axis.is_binned),
            signal_type=str(signal.metadata.Signal.get_item("signal_type", "") or ""),
            trained_channels=~excluded,
        )

    @property
    def size(self) -> int:
        return self.values.size

    @property
    def scale(self) -> float:
        """Mean channel width (the scale of a uniform axis)."""
        if self.size < 2:
            return 1.0
        return float((self.values[-1] - self.values[0]) / (self.size - 1))

    def describe(self) -> str:
        """One line for messages: ``200 channels, 700 to 899 eV (1 eV/channel)``."""
        units = f" {self.units}" if self.units else ""
        spacing = f"{self.scale:.6g}{units}/channel" if self.uniform else "non-uniform"
        return (
            f"{self.size} channels, {self.values[0]:.6g} to {self.values[-1]:.6g}"
            f"{units} ({spacing})"
        )

    def to_dict(self) -> dict:
        """JSON-ready description (axis values listed only when non-uniform)."""
        header = {
            "size": self.size,
            "units": self.units,
            "name": self.name,
            "binned": self.binned,
            "signal_type": self.signal_type,
            "uniform": self.uniform,
            "trained_channels": (
                None
                if self.trained_channels.all()
                else np.flatnonzero(self.trained_channels).tolist()
            ),
        }
        if self.uniform:
            header["offset"] = float(self.values[0]) if self.size else 0.0
            header["scale"] = self.scale
        else:
            header["values"] = self.values.tolist()
        return header

    @classmethod
    def from_dict(cls, header: dict) -> SignalCalibration:
        """Inverse of :meth:`to_dict`."""
        size = int(header["size"])
        if header["uniform"]:
            values = header["offset"] + header["scale"] * np.arange(size, dtype=float)
        else:
            values = np.asarray(header["values"], dtype=float)
        trained = np.zeros(size, dtype=bool)
        if header["trained_channels"] is None:
            trained[:] = True
        else:
            trained[np.asarray(header["trained_channels"], dtype=int)] = True
        if values.shape != (size,):
            raise ValueError(f"axis has {values.size} values for size {size}")
        return cls(
            values=values,
            uniform=bool(header["uniform"]),
            units=header["units"],
            name=header["name"],
            binned=bool(header["binned"]),
            signal_type=str(header["signal_type"]),
            trained_channels=trained,
        )


def _interpolation_matrix(source: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Matrix ``W`` such that ``spectra @ W`` interpolates linearly at ``targets``.

    ``source`` is increasing and covers every target; each column of ``W``
    has at most two non-zero weights, so a batch of spectra is resampled by
    one matrix product and never copied whole.
    """
    right = np.clip(np.searchsorted(source, targets, side="right"), 1, source.size - 1)
    left = right - 1
    width = source[right] - source[left]
    fraction = np.clip((targets - source[left]) / width, 0.0, 1.0)
    weights = np.zeros((source.size, targets.size))
    columns = np.arange(targets.size)
    weights[left, columns] = 1.0 - fraction
    weights[right, columns] += fraction
    return weights


@dataclass(frozen=True)
class ChannelMapping:
    """How spectra on a new signal axis reach a model's channels, and back.

    ``to_model`` turns spectra on the new axis (rows, all channels of the new
    signal) into spectra on the model's trained channels; ``to_signal_axis``
    puts endmembers (model channels) on the new axis, NaN where the model has
    no channel (outside the trained range, or masked during training).
    """

    trained: SignalCalibration
    new_values: np.ndarray
    # None when the new axis is the trained one: channels are only selected.
    weights: np.ndarray | None
    back_weights: np.ndarray | None
    covered: np.ndarray | None
    intensity_factor: float
    # Model channels beyond the new axis's ends (by at most one of its
    # channels), which take its end channel's value.
    n_extrapolated: int = 0

    @property
    def is_identity(self) -> bool:
        return self.weights is None

    def to_model(self, spectra: np.ndarray) -> np.ndarray:
        if self.weights is None:
            if self.trained.trained_channels.all():
                return spectra
            return spectra[:, self.trained.trained_channels]
        return (spectra @ self.weights) * self.intensity_factor

    def to_signal_axis(self, endmembers: np.ndarray) -> np.ndarray:
        """Endmembers (n, n_model_channels) on the new axis (n, n_new_channels)."""
        trained = self.trained.trained_channels
        full = np.full((endmembers.shape[0], self.trained.size), np.nan)
        full[:, trained] = endmembers
        if self.weights is None:
            return full
        # Masked training channels have no value: interpolate over the
        # channels the model has, then blank the new channels they cover.
        result = np.full((endmembers.shape[0], self.new_values.size), np.nan)
        result[:, self.covered] = (
            endmembers @ self.back_weights
        ) / self.intensity_factor
        return result


def _unit_factor(units: str | None, target: str | None) -> float | None:
    """What a value in ``units`` is multiplied by to be in ``target``, or None.

    HyperSpy's own unit conversion (pint, through ``convert_to_units`` of a
    data axis) decides; undefined, unknown or incompatible units give None.
    """
    if units is None or target is None:
        return None
    from hyperspy.axes import UniformDataAxis

    axis = UniformDataAxis(size=2, scale=1.0, offset=0.0, units=units)
    try:
        with warnings.catch_warnings():
            # HyperSpy warns and does nothing for units pint cannot parse.
            warnings.simplefilter("ignore")
            axis.convert_to_units(target)
    except Exception:  # pint's DimensionalityError, UndefinedUnitError, ...
        return None
    if axis.units == units:
        return None
    return float(axis.scale)


def _reaches(axis: np.ndarray, values: np.ndarray, tolerance: float) -> bool:
    """Whether ``values`` lie within the increasing ``axis`` extended by
    :data:`_EDGE_CHANNELS` of its end channels' widths (and ``tolerance``)."""
    low = axis[0] - _EDGE_CHANNELS * (axis[1] - axis[0]) - tolerance
    high = axis[-1] + _EDGE_CHANNELS * (axis[-1] - axis[-2]) + tolerance
    return bool(values.min() >= low and values.max() <= high)


def channel_mapping(
    trained: SignalCalibration, new: SignalCalibration
) -> ChannelMapping:
    """Plan how spectra on ``new``'s axis are fed to a model trained on ``trained``.

    The new axis must cover the trained range, up to one of its own
    channels at either end: a scan of the same window that drifted by a
    fraction of a channel leaves the model's first or last channel just
    outside it, and refusing the whole scan for that would make a model
    unusable on the next scan of a drifting series. Such a channel takes
    the value of the new axis's end channel (an error of at most the
    spectrum's change over one channel, on the edge channels only), and
    :attr:`ChannelMapping.n_extrapolated` counts them for the warning.

    Raises
    ------
    ValueError
        When the units differ, or the new axis misses more than one of its
        channels of the trained range at an end; the message gives both
        calibrations and what to do.
    """
    advice = (
        "Crop or recalibrate the new signal so that its axis covers the "
        "trained range in the same units (s.crop_signal, "
        "s.axes_manager.signal_axes[0].offset/scale, convert_units), or train "
        "a new model on it."
    )
    if trained.units != new.units:
        factor = _unit_factor(new.units, trained.units)
        if factor is not None:
            # The same units spelled otherwise ("cm⁻¹" and "1/cm"), or
            # convertible ones (keV and eV): the new axis in the model's units.
            new = replace(new, values=new.values * factor, units=trained.units)
    if trained.units != new.units:
        raise ValueError(
            f"The model was trained on a signal axis in {trained.units!r} "
            f"({trained.describe()}), but this signal's axis is in "
            f"{new.units!r} ({new.describe()}). {advice}"
        )
    tolerance = _SAME_POSITION_TOLERANCE * abs(trained.scale)
    if new.size == trained.size and np.allclose(
        new.values, trained.values, rtol=0.0, atol=tolerance
    ):
        return ChannelMapping(trained, new.values, None, None, None, 1.0)

    new_values, trained_values = new.values, trained.values
    kept = trained_values[trained.trained_channels]
    descending = new_values.size > 1 and new_values[-1] < new_values[0]
    order = np.argsort(new_values) if descending else np.arange(new_values.size)
    sorted_values = new_values[order]
    if new_values.size < 2 or not _reaches(sorted_values, kept, tolerance):
        raise ValueError(
            f"This signal's axis ({new.describe()}) does not cover the range the "
            f"model was trained on ({trained.describe()}). {advice}"
        )
    forward = np.zeros((new_values.size, kept.size))
    forward[order] = _interpolation_matrix(sorted_values, kept)
    # Back to the new axis: only new channels inside the trained range.
    covered = (new_values >= kept.min() - tolerance) & (
        new_values <= kept.max() + tolerance
    )
    back = _interpolation_matrix(kept, new_values[covered])
    # Counts per channel grow with the channel width: a binned signal with
    # half the dispersion holds half the counts per channel.
    factor = trained.scale / new.scale if trained.binned and new.binned else 1.0
    _logger.debug("Interpolating %s onto %s", new.describe(), trained.describe())
    beyond = (kept < sorted_values[0] - tolerance) | (
        kept > sorted_values[-1] + tolerance
    )
    return ChannelMapping(
        trained,
        new_values,
        forward,
        back,
        covered,
        float(factor),
        n_extrapolated=int(beyond.sum()),
    )


def describe_difference(trained: SignalCalibration, new: SignalCalibration) -> str:
    """Offset shift and scale ratio, for the interpolation warning."""
    shift = new.values[0] - trained.values[0]
    units = f" {trained.units}" if trained.units else ""
    return (
        f"this signal ({new.describe()}) is interpolated onto the model's axis "
        f"({trained.describe()}): offset shifted by {shift:+.6g}{units}, scale "
        f"x{new.scale / trained.scale:.6g}"
    )
