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

from dataclasses import dataclass

import numpy as np

from hs_aeunmix import _intensity
from hs_aeunmix._axes import ChannelMapping, SignalCalibration
from hs_aeunmix._estimator import INFERENCE_BATCH_SIZE, AEUnmix

# Lazy scans: spectra looked at per chunk to measure the scan's intensity.
_INTENSITY_SAMPLE_PER_CHUNK = 256


class _Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream of chunks.

    Reservoir sampling (Vitter's algorithm R), seeded: memory is bounded by
    the capacity whatever the number and size of the chunks, and every row
    seen has the same chance to be kept.
    """

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.rows: np.ndarray | None = None
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def add(self, rows: np.ndarray) -> None:
        """Offer every row of ``rows`` to the sample."""
        for row in rows:
            if self.rows is None:
                self.rows = np.empty((self.capacity, rows.shape[1]), rows.dtype)
            if self.seen < self.capacity:
                self.rows[self.seen] = row
            else:
                slot = self._rng.integers(self.seen + 1)
                if slot < self.capacity:
                    self.rows[slot] = row
            self.seen += 1

    def sample(self) -> np.ndarray:
        """The rows kept."""
        if self.rows is None:
            raise ValueError("No spectra were seen: the scan is empty.")
        return self.rows[: min(self.seen, self.capacity)]


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
    """Train ``estimator`` on the signal HyperSpy unfolds."""

    def __init__(
        self,
        estimator: AEUnmix,
        calibration: SignalCalibration,
        grid: ScanGrid | None,
    ) -> None:
        self.estimator = estimator
        self.calibration = calibration
        self.grid = grid

    def _geometry(self, n_rows: int) -> dict:
        return {} if self.grid is None else self.grid.geometry(n_rows)

    def fit_transform(self, X) -> np.ndarray:
        """Train on the rows of ``X`` and return their loadings."""
        self.estimator.fit(
            X, signal_calibration=self.calibration, **self._geometry(len(X))
        )
        return self.transform(X)

    def transform(self, X) -> np.ndarray:
        """Loadings of the rows of ``X``: abundances, then background coefficients."""
        return loadings(self.estimator, X, self._geometry(len(X)))

    @property
    def components_(self) -> np.ndarray:
        """The factors: endmembers, then the background's basis functions."""
        return factors(self.estimator)

    def __repr__(self) -> str:
        return repr(self.estimator)

    def __str__(self) -> str:
        # HyperSpy's print_info shows str() of the fitted estimator: after
        # training, say how well the data determine each endmember.
        report = getattr(self.estimator, "stability_", None)
        if report is None:
            return repr(self.estimator)
        return f"{self.estimator!r}\n{report}"


class ScanRun:
    """Apply a trained model to a new scan (optionally fine-tuning a copy).

    HyperSpy hands over the scan's spectra on the scan's own axis; they are
    mapped onto the model's channels batch by batch (so a large scan is never
    copied whole), divided by the scan's intensity ratio to the training scan,
    and unmixed; with ``fine_tune_options`` a copy of the model is first
    trained further on the mapped scan. The endmembers go back onto the
    scan's axis.
    """

    def __init__(
        self,
        model: AEUnmix,
        mapping: ChannelMapping,
        fine_tune_options: dict | None,
        grid: ScanGrid | None,
    ) -> None:
        self.model = model
        self.mapping = mapping
        self.fine_tune_options = fine_tune_options
        self.grid = grid
        self.estimator = model
        self._adapted = False
        self._reservoir = _Reservoir(_intensity.RATIO_SAMPLE_SIZE)

    def fit_transform(self, X) -> np.ndarray:
        """Adapt the model to this scan (and fine-tune it); return abundances."""
        # Map only the rows the intensity measurement looks at.
        self._adapt(self.mapping.to_model(X[_intensity.sample_rows(len(X))]))
        if self.fine_tune_options is not None:
            self.estimator.set_params(warm_start=True, **self.fine_tune_options)
            geometry = {} if self.grid is None else self.grid.geometry(len(X))
            self.estimator.fit(self.mapping.to_model(X), **geometry)
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
        # Never train or rescale the caller's model itself.
        self.estimator = _intensity.model_for_scan(
            self.model, sample, copy=self.fine_tune_options is not None
        )
        self._adapted = True

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
