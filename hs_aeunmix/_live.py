"""Unmixing while the microscope scans: maps that fill in as pixels arrive.

A trained model unmixes about 10^5 spectra a second on two cores, far
faster than a camera acquires them, so a scan can be unmixed pixel row by
pixel row while it is being acquired. :class:`LiveUnmixer` holds HyperSpy
signals of the maps (abundances, and the intensity and spectral shift where
the model has them), NaN where no spectrum has arrived yet, and fires
``events.data_changed`` after every :meth:`LiveUnmixer.push`, so that a
plotted map (``live.loadings.plot()``, ``%matplotlib widget`` in Jupyter)
redraws as the scan runs.

Each push also measures how well the model reproduces the pixels pushed
(their misfit in units of their noise, relative to the training scan's, as
:func:`hs_aeunmix._adapters.warn_if_explained_worse` does for a whole scan),
so that a scan wandering onto a material the model does not know is seen
while it happens (:attr:`LiveUnmixer.mismatch`).

With ``adapt=True`` a background thread refines the model on the spectra
pushed so far (a bounded random sample of them) and, once a refinement is
done, swaps it in and unmixes again every pixel already pushed. ``push``
never waits for it: it takes a lock only to swap a reference and to write
its own pixels.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import warnings
from collections.abc import Iterable

import numpy as np

from hs_aeunmix._adapters import (
    RESIDUAL_WARNING_FACTOR,
    ModelMismatchWarning,
    _Reservoir,
)
from hs_aeunmix._constraints import check_count
from hs_aeunmix._estimator import AEUnmix, load_model
from hs_aeunmix._hyperspy import scan_signal, shifts_in_axis_units
from hs_aeunmix._inference import _in_noise_units

_logger = logging.getLogger(__name__)

# Refinement with adapt=True: a warm start of a few epochs on a random sample
# of the pixels pushed so far, at most this many (memory stays bounded).
ADAPT_SAMPLE = 16384
ADAPT_EPOCHS = 5
# Spectra of a push that its mismatch is measured on (evenly spaced).
MISMATCH_SAMPLE = 32


class LiveUnmixer:
    """Unmix a scan as its pixels arrive; the maps are HyperSpy signals.

    Parameters
    ----------
    model : AEUnmix, path or HyperSpy signal
        The trained model (see :func:`hs_aeunmix.load_model`). Models
        trained with ``spatial=True`` need every pixel's neighbours and
        cannot unmix pixels one by one; those of ``spatial="auto"`` (the
        default) give each pixel its per-pixel fractions, as a lazy scan
        gets them.
    navigation_shape : tuple of int
        The scan's size in HyperSpy's order (``s.axes_manager.navigation_shape``:
        x first), one or two dimensions.
    navigation_axes : list of dict or DataAxis, optional
        The scan's calibrated axes in the same order (for instance
        ``s.axes_manager.navigation_axes`` of an earlier scan); uncalibrated
        axes by default.
    adapt : bool, default False
        Refine the model in a background thread on the spectra pushed so far,
        every ``adapt_every`` new pixels, and unmix the pixels pushed before
        again with the refined model. The maps then follow the refined model
        rather than the one given.
    adapt_every : int, default 4096
        New pixels between two refinements (with ``adapt``).
    random_state : int, default 0
        Seed of the refinement's sampling and training.

    Attributes
    ----------
    loadings : hyperspy.signals.Signal2D or Signal1D
        The abundance maps, one per endmember (navigated like
        ``get_decomposition_loadings()``), NaN where nothing was pushed;
        equal to ``model.transform`` of the pushed spectra.
    intensity : hyperspy signal or None
        Each pixel's intensity relative to the training mean (models with a
        per-pixel scale), else None.
    shifts : hyperspy signal or None
        Each pixel's spectral offset in the axis' units (models trained with
        ``max_shift``), else None.
    mismatch : hyperspy signal
        For each pushed pixel, the misfit of the push it arrived in, in units
        of its noise, over the training scan's; above
        :data:`~hs_aeunmix._adapters.RESIDUAL_WARNING_FACTOR` (3) the model
        does not describe what is being scanned (a
        :class:`~hs_aeunmix.ModelMismatchWarning` is issued the first time).
    model : AEUnmix
        The model in use (the refined one with ``adapt``).
    n_pushed : int
        Pixels pushed so far (a pixel pushed twice counts twice).
    n_adaptations : int
        Refinements swapped in so far.

    Examples
    --------
    >>> live = LiveUnmixer("first_scan.aeunmix", (256, 256))  # doctest: +SKIP
    >>> live.loadings.plot()  # doctest: +SKIP
    >>> for row in range(256):  # doctest: +SKIP
    ...     live.push(camera.read_row(), row)
    """

    def __init__(
        self,
        model,
        navigation_shape: Iterable[int],
        *,
        navigation_axes=None,
        adapt: bool = False,
        adapt_every: int = 4096,
        random_state: int = 0,
    ) -> None:
        model = load_model(model)
        if model.spatial is True:
            raise ValueError(
                "This model is spatial (spatial=True): each pixel is unmixed "
                "with its neighbours, which a scan in progress does not have "
                "yet. Unmix live with a model trained without spatial=True."
            )
        navigation_shape = tuple(navigation_shape)
        if not 1 <= len(navigation_shape) <= 2 or not all(
            isinstance(size, int | np.integer) and size > 0 for size in navigation_shape
        ):
            raise ValueError(
                "navigation_shape must give one or two positive sizes in "
                "HyperSpy's order (x first), e.g. s.axes_manager.navigation_shape; "
                f"got {navigation_shape!r}."
            )
        check_count("adapt_every", adapt_every, "LiveUnmixer")
        self.scan_shape = tuple(int(size) for size in navigation_shape[::-1])
        scan_axes = _axis_dictionaries(navigation_axes, navigation_shape)
        self._model = model
        self._lock = threading.Lock()
        self._flat_index = np.arange(int(np.prod(self.scan_shape))).reshape(
            self.scan_shape
        )
        self.n_pushed = 0
        self.n_adaptations = 0
        self._warned = False
        n_components = model.components_.shape[0]
        self.loadings = scan_signal(
            np.full((n_components, *self.scan_shape), np.nan),
            scan_axes,
            per_component=True,
        )
        self.loadings.metadata.General.title = "Live abundances"
        self.intensity = None
        if model.module_.has_pixel_scale:
            self.intensity = self._map(scan_axes, "Live intensity", "Intensity")
        self.shifts = None
        if model.module_.max_shift is not None:
            _, units = shifts_in_axis_units(model, np.zeros(0))
            self.shifts = self._map(
                scan_axes, "Live spectral shift", f"Shift ({units})"
            )
        self.mismatch = self._map(
            scan_axes, "Live model mismatch", "Misfit / training misfit"
        )
        self.adapt = bool(adapt)
        self.adapt_every = int(adapt_every)
        self._adapter = (
            _Adaptation(self, adapt_every, random_state) if self.adapt else None
        )

    def _map(self, scan_axes, title: str, quantity: str):
        signal = scan_signal(np.full(self.scan_shape, np.nan), scan_axes)
        signal.metadata.General.title = title
        signal.metadata.set_item("Signal.quantity", quantity)
        return signal

    @property
    def model(self) -> AEUnmix:
        return self._model

    @property
    def pushed(self) -> np.ndarray:
        """Which pixels have been pushed (bool, the scan's array shape)."""
        return ~np.isnan(self.loadings.data[0])

    def push(self, spectra, index) -> float:
        """Unmix the spectra of some pixels and write them into the maps.

        Parameters
        ----------
        spectra : array-like
            The pixels' spectra on the model's channels: shaped like the
            indexed part of the scan plus the channel axis (a row of a 2-D
            scan: ``(nx, n_channels)``), or one spectrum per row in the
            indexed pixels' C order.
        index : int, slice, tuple or array
            Which pixels, as a NumPy index into an array of the scan's shape
            in array order (y first): ``row`` (a whole row of a 2-D scan, or
            one pixel of a line scan), ``(row, column)`` (one pixel),
            ``(slice(0, 8), slice(None))`` (a block), or ``(rows, columns)``
            integer arrays (pixels in any order). Pixels may arrive in any
            order, and pushing one again replaces it.

        Returns
        -------
        float
            The pushed pixels' misfit in units of their noise over the
            training scan's (see :attr:`mismatch`); NaN when the model has
            no training reference.
        """
        try:
            positions = np.asarray(self._flat_index[index]).reshape(-1)
        except (IndexError, TypeError, ValueError) as error:
            raise IndexError(
                f"index {index!r} is not a position in a scan of shape "
                f"{self.scan_shape} (array order, y first): {error}"
            ) from None
        spectra = np.asarray(spectra)
        n_channels = self._model.components_.shape[1]
        if spectra.size != positions.size * n_channels or (
            spectra.ndim > 1 and spectra.shape[-1] != n_channels
        ):
            raise ValueError(
                f"push got spectra of shape {spectra.shape} for {positions.size} "
                f"pixels; expected {positions.size} spectra of the model's "
                f"{n_channels} channels (shape ({positions.size}, {n_channels}) "
                "or the indexed part of the scan plus the channel axis)."
            )
        spectra = spectra.reshape(positions.size, n_channels)
        with self._lock:
            model = self._model
        maps = _unmix(model, spectra)
        with self._lock:
            if model is not self._model:
                # A refinement was swapped in meanwhile: it must unmix these.
                model = self._model
                maps = _unmix(model, spectra)
            self._write(positions, maps)
            self.n_pushed += positions.size
            if self._adapter is not None:
                self._adapter.store(positions, spectra)
        self._notify()
        ratio = maps["mismatch"]
        if ratio > RESIDUAL_WARNING_FACTOR and not self._warned:
            self._warned = True
            warnings.warn(
                f"The pixels just pushed are reproduced {ratio:.1f} times worse "
                "than the scan the model was trained on (misfit in units of "
                "noise): the scan may have reached a material the model has no "
                "endmember for. live.mismatch maps where.",
                ModelMismatchWarning,
                stacklevel=2,
            )
        if self._adapter is not None:
            self._adapter.offer(spectra)
        return ratio

    def _write(self, positions: np.ndarray, maps: dict) -> None:
        """Write unmixed pixels into the maps (the lock is held)."""
        self.loadings.data.reshape(len(maps["loadings"].T), -1)[:, positions] = maps[
            "loadings"
        ].T
        self.mismatch.data.reshape(-1)[positions] = maps["mismatch"]
        if self.intensity is not None:
            self.intensity.data.reshape(-1)[positions] = maps["intensity"]
        if self.shifts is not None:
            self.shifts.data.reshape(-1)[positions] = maps["shifts"]

    def _notify(self) -> None:
        for signal in (self.loadings, self.intensity, self.shifts, self.mismatch):
            if signal is not None:
                signal.events.data_changed.trigger(obj=signal)

    def _swap(self, refined: AEUnmix) -> None:
        """Put a refined model in use and unmix the pixels pushed so far again.

        The pixels are unmixed without holding the lock; those pushed
        meanwhile (with the previous model) are unmixed again once the
        refined model is in use, so that ``push`` waits at most for them.
        """
        adapter = self._adapter
        with self._lock:
            positions = np.flatnonzero(self.pushed.reshape(-1))
            spectra = adapter.spectra(positions)
            adapter.recent = []
        maps = _unmix(refined, spectra) if len(positions) else None
        with self._lock:
            self._model = refined
            self.n_adaptations += 1
            if maps is not None:
                self._write(positions, maps)
            if adapter.recent:
                recent = np.unique(np.concatenate(adapter.recent))
                self._write(recent, _unmix(refined, adapter.spectra(recent)))
            adapter.recent = None
        self._notify()
        _logger.info("Live: refined model %d in use", self.n_adaptations)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refinement is running or due (``adapt=True``).

        Returns whether the refinements caught up within ``timeout`` seconds
        (immediately True without ``adapt``).
        """
        return True if self._adapter is None else self._adapter.wait(timeout)

    def close(self) -> None:
        """Stop the refinement thread (``adapt=True``); the maps stay."""
        if self._adapter is not None:
            self._adapter.close()

    def __enter__(self) -> LiveUnmixer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        done = int(self.pushed.sum())
        total = int(np.prod(self.scan_shape))
        return (
            f"<LiveUnmixer, {self.loadings.data.shape[0]} endmembers, "
            f"{done}/{total} pixels unmixed"
            + (f", {self.n_adaptations} refinements" if self.adapt else "")
            + ">"
        )


def replay_scan(
    signal, model=None, *, dwell_time: float = 0.0, live: LiveUnmixer | None = None
) -> LiveUnmixer:
    """Feed a saved scan to a :class:`LiveUnmixer` row by row, as a microscope would.

    For demonstrations and tests of live unmixing: each row of ``signal``
    (in memory) is pushed after the time its pixels take to acquire,
    ``dwell_time`` seconds per pixel.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        The scan, on the model's channels; one or two navigation dimensions.
    model : AEUnmix, path or HyperSpy signal, optional
        The model to unmix with (needed unless ``live`` is given).
    dwell_time : float, default 0
        Seconds per pixel; 0 pushes the rows as fast as they are unmixed.
    live : LiveUnmixer, optional
        The unmixer to feed (for instance one already plotted); by default
        one is made for ``model`` with ``signal``'s navigation axes.

    Returns
    -------
    LiveUnmixer
    """
    if dwell_time < 0:
        raise ValueError(f"dwell_time must be 0 or more seconds, got {dwell_time}.")
    axes = signal.axes_manager
    if live is None:
        if model is None:
            raise TypeError("replay needs the model to unmix with, or a LiveUnmixer.")
        live = LiveUnmixer(
            model, axes.navigation_shape, navigation_axes=axes.navigation_axes
        )
    elif live.scan_shape != tuple(axes.navigation_shape[::-1]):
        raise ValueError(
            f"The scan has navigation shape {axes.navigation_shape} but the "
            f"LiveUnmixer was made for {live.scan_shape[::-1]}."
        )
    data = np.asarray(signal.data)
    rows = data.reshape(-1, 1, data.shape[-1]) if data.ndim == 2 else data
    for number, row in enumerate(rows):
        if dwell_time:
            time.sleep(dwell_time * len(row))
        live.push(row, number)
    return live


def _unmix(model: AEUnmix, spectra: np.ndarray) -> dict:
    """Everything the maps show for ``spectra``: one encoding, as transform does."""
    spectra = model._validated_for_inference(spectra)
    fractions, intensity = model._fractions_of_valid(spectra)
    loadings = fractions * intensity[:, None]
    reference = model.training_residual_
    mismatch = np.nan
    if reference is not None:
        # The push's misfit is one number: evenly spaced spectra measure it.
        rows = np.linspace(0, len(spectra) - 1, min(len(spectra), MISMATCH_SAMPLE))
        rows = rows.round().astype(int)
        sample = spectra[rows]
        misfit = model._misfit(sample, loadings[rows] @ model.components_)
        mismatch = _in_noise_units(misfit, sample) / max(
            reference, np.finfo(float).tiny
        )
    maps = {"loadings": loadings, "intensity": intensity, "mismatch": mismatch}
    if model.module_.max_shift is not None:
        # Pixels arrive without their neighbours: the fractions are the
        # per-pixel encodings.
        shifts = model._shifts_of_valid(spectra, fractions)
        maps["shifts"] = shifts_in_axis_units(model, shifts)[0]
    return maps


def _axis_dictionaries(navigation_axes, navigation_shape) -> list[dict]:
    """The scan's axis dictionaries in array order (y first)."""
    if navigation_axes is None:
        names = ("x", "y")
        return [
            {"name": names[dimension], "size": size}
            for dimension, size in enumerate(navigation_shape)
        ][::-1]
    axes = [
        axis if isinstance(axis, dict) else axis.get_axis_dictionary()
        for axis in navigation_axes
    ]
    sizes = tuple(axis.get("size") for axis in axes)
    if sizes != tuple(navigation_shape):
        raise ValueError(
            f"navigation_axes have sizes {sizes} but navigation_shape is "
            f"{tuple(navigation_shape)}; give the axes of a scan of that shape."
        )
    return [dict(axis) for axis in axes[::-1]]


class _Adaptation:
    """The background refinement of a :class:`LiveUnmixer` (``adapt=True``).

    Pushed spectra go into a bounded random sample (for training) and are
    kept per pixel (to unmix them again); the thread wakes when
    ``adapt_every`` new pixels have arrived, fine-tunes a copy of the model
    in use on the sample and hands it to the unmixer, which swaps it in.
    """

    def __init__(self, live: LiveUnmixer, every: int, seed: int) -> None:
        self._live = live
        self._every = every
        self._seed = seed
        self._sample = _Reservoir(ADAPT_SAMPLE, seed)
        n_channels = live.model.components_.shape[1]
        self._spectra = np.zeros(
            (int(np.prod(live.scan_shape)), n_channels), dtype=np.float32
        )
        self._new = 0
        # Positions pushed since a refined model's maps began (see _swap).
        self.recent: list[np.ndarray] | None = None
        self._busy = False
        self._closing = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name="hs_aeunmix live refinement", daemon=True
        )
        self._thread.start()

    def offer(self, spectra: np.ndarray) -> None:
        """Add pushed spectra to the training sample; wake the thread when due."""
        with self._condition:
            self._sample.add(spectra.astype(np.float32))
            self._new += len(spectra)
            if self._new >= self._every:
                self._condition.notify()

    def store(self, positions: np.ndarray, spectra: np.ndarray) -> None:
        # Under the unmixer's lock: pixels pushed while a refined model's
        # maps are being computed are unmixed again when it is swapped in.
        self._spectra[positions] = spectra
        if self.recent is not None:
            self.recent.append(positions)

    def spectra(self, positions: np.ndarray) -> np.ndarray:
        """The latest spectra pushed at ``positions`` (float32)."""
        return self._spectra[positions]

    def _due(self) -> bool:
        return self._new >= self._every

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._closing or self._due())
                if self._closing:
                    return
                self._busy = True
                self._new = 0
                sample = self._sample.rows[: self._sample.filled].copy()
            try:
                refined = self._refine(self._live.model, sample)
                self._live._swap(refined)
            except Exception:  # a failed refinement leaves the model in use
                _logger.exception("Live refinement failed; the model is unchanged")
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _refine(self, model: AEUnmix, sample: np.ndarray) -> AEUnmix:
        refined = copy.deepcopy(model)
        refined.set_params(
            warm_start=True,
            max_epochs=ADAPT_EPOCHS,
            random_state=self._seed + self._live.n_adaptations,
            show_progressbar=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return refined.fit(sample.astype(np.float64))

    def wait(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._busy or self._due():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join()
