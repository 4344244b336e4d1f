"""What HyperSpy's decomposition sees: estimator adapters on its public protocol.

HyperSpy accepts any object with ``fit_transform``, ``transform`` and
``components_`` as ``algorithm=``: it hands over the unfolded, masked data
(rows are pixels), takes ``components_.T`` as factors and the output of
``fit_transform`` as loadings, and for lazy signals calls ``partial_fit`` on
each chunk and then ``transform`` per chunk. :class:`TrainingRun` trains an
:class:`~hs_aeunmix.AEUnmix` that way; :class:`ScanRun` applies (and
optionally fine-tunes) a trained one to a new scan, mapping the scan's axis
onto the model's channels and its intensity onto the training scan's.

With a background model (``baseline``) the factors are the endmembers
followed by the background's basis functions, and the loadings the
abundances followed by each pixel's background coefficients, so that
``s.get_decomposition_model()`` reproduces the data, background included.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from hs_aeunmix import _intensity
from hs_aeunmix._axes import ChannelMapping, SignalCalibration
from hs_aeunmix._describe import short_description
from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._fitting import INFERENCE_BATCH_SIZE, MAX_TRAINING_PIXELS
from hs_aeunmix._uncertainty import trust_note

# Lazy scans: spectra looked at per chunk to measure the scan's intensity.
_INTENSITY_SAMPLE_PER_CHUNK = 256


# A scan the model reproduces this many times worse than its training scan
# (misfit in units of each scan's noise) gets a warning. New scans of the
# training sample come out up to about twice worse (the encoder has seen the
# training pixels), so three times is a gross mismatch: another sample, a
# wrong model, an unrelated file.
RESIDUAL_WARNING_FACTOR = 3.0


class ModelMismatchWarning(UserWarning):
    """A reapplied model reproduces a scan much worse than its training scan."""


def warn_if_explained_worse(model: AEUnmix, sample: np.ndarray) -> None:
    """Warn when ``model`` reproduces the spectra ``sample`` much worse than its own.

    A series unmixed with the wrong model (another sample, materials the
    model has no endmember for) still gives plausible maps; the misfit in
    units of each scan's own noise says so, whatever the scan's dose.
    """
    reference = model.training_residual_
    if reference is None or model.spatial is True:
        return
    residual = model.residual_to_noise(sample)
    ratio = residual / max(reference, np.finfo(float).tiny)
    if ratio > RESIDUAL_WARNING_FACTOR:
        warnings.warn(
            f"The model reproduces this scan much worse than the scan it was "
            f"trained on: its misfit is {residual:.3g} times the scan's noise, "
            f"against {reference:.3g} on the training scan (x{ratio:.1f}). The "
            "scan may hold materials the model has no endmember for, or come "
            "from another sample; look at the residual (s - "
            "s.get_decomposition_model()) or train a model on this scan.",
            ModelMismatchWarning,
            stacklevel=2,
        )


# Values above this are kept in float64 (float32's largest is 3.4e38; NaN
# and inf are refused later, by the fit's validation).
_FLOAT32_LIMIT = 1e38


class _Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream of chunks.

    Every row gets a random key and the rows of the ``capacity`` smallest
    keys are kept (priority sampling, the vectorised form of reservoir
    sampling), seeded. Rows are kept in one preallocated array and replaced
    in place: memory is bounded by the capacity plus one chunk, whatever the
    number and size of the chunks, and every row seen has the same chance
    to be kept.

    ``dtype``: the precision rows are kept in (that of the first chunk if
    None). Training keeps float32, the network's precision: HyperSpy hands
    a lazy float32 scan's chunks over as float64, and a float64 sample of
    65,536 spectra of 1024 channels is 512 MiB where 256 MiB hold the same
    values; a float32 sample is also scaled in place rather than copied
    (:func:`hs_aeunmix._fitting.prepare`). Rows beyond float32's range switch
    the sample to float64.
    """

    def __init__(self, capacity: int, seed: int = 0, dtype=None) -> None:
        self.capacity = capacity
        self.rows: np.ndarray | None = None
        self.keys = np.empty(capacity)
        self.filled = 0
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._dtype = dtype

    def _store(self, rows: np.ndarray) -> None:
        """Allocate the sample's array, or widen it for rows it cannot hold."""
        if self.rows is None:
            dtype = rows.dtype if self._dtype is None else np.dtype(self._dtype)
            self.rows = np.empty((self.capacity, rows.shape[1]), dtype)
        if (
            self.rows.dtype == np.float32
            and rows.dtype.itemsize > 4
            and len(rows)
            and max(float(rows.max()), -float(rows.min())) > _FLOAT32_LIMIT
        ):
            self.rows = self.rows.astype(np.float64)

    def add(self, rows: np.ndarray) -> None:
        """Offer every row of ``rows`` to the sample."""
        keys = self._rng.random(len(rows))
        self.seen += len(rows)
        self._store(rows)
        taken = min(self.capacity - self.filled, len(rows))
        if taken:
            self.rows[self.filled : self.filled + taken] = rows[:taken]
            self.keys[self.filled : self.filled + taken] = keys[:taken]
            self.filled += taken
            rows, keys = rows[taken:], keys[taken:]
        if not len(rows):
            return
        # Only rows that displace a kept one are looked at: ever fewer as the
        # stream goes on.
        candidates = keys < self.keys.max()
        rows, keys = rows[candidates], keys[candidates]
        if not len(rows):
            return
        merged = np.concatenate([self.keys, keys])
        chosen = np.zeros(merged.size, dtype=bool)
        chosen[np.argpartition(merged, self.capacity - 1)[: self.capacity]] = True
        freed = np.flatnonzero(~chosen[: self.capacity])
        incoming = np.flatnonzero(chosen[self.capacity :])
        self.rows[freed] = rows[incoming]
        self.keys[freed] = keys[incoming]

    def sample(self) -> np.ndarray:
        """The rows kept."""
        if not self.filled:
            raise ValueError("No spectra were seen: the scan is empty.")
        return self.rows[: self.filled]


@dataclass(frozen=True)
class ScanGrid:
    """Where HyperSpy's rows sit on the scan, for ``spatial=True`` models.

    HyperSpy passes the unmasked pixels (C order of the data array) to
    ``fit_transform``, but every pixel to ``transform`` when reprojecting.
    """

    shape: tuple[int, ...]
    navigation_mask: np.ndarray | None

    def geometry(self, n_rows: int) -> dict:
        """``image_shape`` and ``navigation_mask`` for ``n_rows`` rows."""
        mask = self.navigation_mask
        if mask is not None and n_rows == mask.size:
            mask = None
        return {"image_shape": self.shape, "navigation_mask": mask}


def factors(estimator: AEUnmix) -> np.ndarray:
    """Endmembers, then the background's basis functions (none without one)."""
    return np.vstack([estimator.components_, estimator.baseline_components_])


def loadings(estimator: AEUnmix, X: np.ndarray, geometry: dict) -> np.ndarray:
    """Abundances, then background coefficients, of the rows of ``X``."""
    abundances = estimator.transform(X, **geometry)
    if not len(estimator.baseline_components_):
        return abundances
    return np.hstack([abundances, estimator.background(X, **geometry)])


class TrainingRun:
    """Train ``estimator`` on the signal HyperSpy unfolds.

    In memory, HyperSpy calls ``fit_transform`` with every spectrum. For a
    lazy (dask-backed) signal it calls ``partial_fit`` once per chunk, reads
    ``components_``, then ``transform`` per chunk: the chunks' spectra feed a
    uniform random sample of at most
    :data:`~hs_aeunmix._fitting.MAX_TRAINING_PIXELS` spectra (as many as
    training uses in memory), the model is trained on that sample, and every
    pixel is then encoded chunk by chunk. The scan is never in memory.
    """

    def __init__(
        self,
        estimator: AEUnmix,
        calibration: SignalCalibration,
        grid: ScanGrid | None,
        elements: tuple[str, ...] | None = None,
    ) -> None:
        self.estimator = estimator
        self.calibration = calibration
        self.grid = grid
        # The specimen's elements (EELS), for naming the endmembers' edges.
        self.elements = elements
        self._stream: _Reservoir | None = None

    def _geometry(self, n_rows: int) -> dict:
        return {} if self.grid is None else self.grid.geometry(n_rows)

    def fit_transform(self, X) -> np.ndarray:
        """Train on the rows of ``X`` and return their loadings."""
        self.estimator.fit(
            X, signal_calibration=self.calibration, **self._geometry(len(X))
        )
        return self.transform(X)

    def partial_fit(self, X) -> TrainingRun:
        """Lazy signals: add a chunk's spectra to the training sample."""
        if self._stream is None:
            seed = check_random_state(self.estimator.random_state).randint(2**31)
            self._stream = _Reservoir(MAX_TRAINING_PIXELS, seed, dtype=np.float32)
        self._stream.add(np.asarray(X))
        return self

    def _fit_streamed_sample(self) -> None:
        """Train on the sample the chunks gave, once, before any result is read."""
        if self._stream is None:
            return
        sample, self._stream = self._stream.sample(), None
        # The sample is this run's own: training may reuse its memory.
        self.estimator._fit(
            sample, signal_calibration=self.calibration, overwrite_input=True
        )

    def transform(self, X) -> np.ndarray:
        """Loadings of the rows of ``X``: abundances, then background coefficients."""
        self._fit_streamed_sample()
        return loadings(self.estimator, X, self._geometry(len(X)))

    @property
    def components_(self) -> np.ndarray:
        """The factors: endmembers, then the background's basis functions."""
        self._fit_streamed_sample()
        return factors(self.estimator)

    def __repr__(self) -> str:
        return repr(self.estimator)

    def __str__(self) -> str:
        # HyperSpy's print_info shows str() of the fitted estimator: after
        # training, say how well the data determine each endmember and what
        # each one looks like.
        report = getattr(self.estimator, "stability_", None)
        if report is None:
            return repr(self.estimator)
        described = short_description(
            self.estimator.describe_endmembers(elements=self.elements)
        )
        return (
            f"{self.estimator!r}\n{report}\nEndmembers: {described}\n"
            f"{trust_note(report.spread, report.unidentified)}"
        )


class ScanRun:
    """Apply a trained model to a new scan (optionally fine-tuning a copy).

    HyperSpy hands over the scan's spectra on the scan's own axis; they are
    mapped onto the model's channels batch by batch (so a large scan is never
    copied whole), divided by the scan's intensity ratio to the training scan,
    and unmixed; with ``fine_tune_options`` a copy of the model is first
    trained further on the mapped scan, with ``refit_spatial`` (and a
    ``grid``) a copy's spatial layer is fitted to the scan (endmembers and
    encoder unchanged). The endmembers go back onto the scan's axis.
    """

    def __init__(
        self,
        model: AEUnmix,
        mapping: ChannelMapping,
        fine_tune_options: dict | None,
        grid: ScanGrid | None,
        *,
        refit_spatial: bool = False,
    ) -> None:
        self.model = model
        self.mapping = mapping
        self.fine_tune_options = fine_tune_options
        self.grid = grid
        self.refit_spatial = refit_spatial
        self.estimator = model
        self._adapted = False
        self._reservoir = _Reservoir(_intensity.RATIO_SAMPLE_SIZE)

    def fit_transform(self, X) -> np.ndarray:
        """Adapt the model to this scan (and fine-tune it); return abundances."""
        # Map only the rows the intensity measurement looks at.
        self._adapt(self.mapping.to_model(X[_intensity.sample_rows(len(X))]))
        geometry = {} if self.grid is None else self.grid.geometry(len(X))
        if self.fine_tune_options is not None:
            self.estimator.set_params(warm_start=True, **self.fine_tune_options)
            self.estimator.fit(self.mapping.to_model(X), **geometry)
        elif self.refit_spatial and geometry:
            self.estimator._refit_spatial_layer(self.mapping.to_model(X), **geometry)
        return self.transform(X)

    def partial_fit(self, X) -> ScanRun:
        """Lazy signals: sample spectra of each chunk for the intensity; train nothing.

        At most :data:`~hs_aeunmix._intensity.RATIO_SAMPLE_SIZE` spectra are
        kept in all (a uniform sample of the scan), so memory does not grow
        with the number of chunks.
        """
        step = max(1, len(X) // _INTENSITY_SAMPLE_PER_CHUNK)
        self._reservoir.add(self.mapping.to_model(X[::step]))
        return self

    def _adapt(self, sample: np.ndarray) -> None:
        """Choose the model for this scan from a sample of its (mapped) spectra."""
        if not np.any(sample > 0):
            raise ValueError(
                f"This scan holds no positive signal (the {len(sample)} spectra "
                "sampled from it are all zero or negative): there is nothing for "
                "the model to unmix. Check that the file holds the acquisition "
                "(not a dark reference or an empty frame)."
            )
        # Never train or rescale the caller's model itself.
        self.estimator = self.model._for_scan(
            sample, copy=self.fine_tune_options is not None or self.refit_spatial
        )
        self._adapted = True
        if self.fine_tune_options is None:
            warn_if_explained_worse(self.estimator, sample)

    def transform(self, X) -> np.ndarray:
        """Abundances of the rows of ``X`` (on the scan's axis)."""
        if not self._adapted:
            self._adapt(self._reservoir.sample())
        if self.grid is not None:
            # Neighbours are needed: the whole scan at once.
            return loadings(
                self.estimator, self.mapping.to_model(X), self.grid.geometry(len(X))
            )
        result = np.empty((len(X), factors(self.estimator).shape[0]))
        for start in range(0, len(X), INFERENCE_BATCH_SIZE):
            stop = start + INFERENCE_BATCH_SIZE
            result[start:stop] = loadings(
                self.estimator, self.mapping.to_model(X[start:stop]), {}
            )
        return result

    @property
    def components_(self) -> np.ndarray:
        """The model's factors on the scan's axis (NaN outside its range)."""
        return self.mapping.to_signal_axis(factors(self.estimator))

    def __repr__(self) -> str:
        return repr(self.estimator)
