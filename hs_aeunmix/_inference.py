"""What a fitted model does with spectra: :class:`InferenceMixin`.

:class:`~hs_aeunmix.AEUnmix` is the hyperparameters, ``fit`` and the fitted
state (:mod:`hs_aeunmix._estimator`); this mixin is everything it does once
fitted, on the training spectra or on any later scan: abundances
(``transform``, ``fractions``), their uncertainty, drift and background,
misfit measures, the intensity ratio of another scan and the description of
the endmembers. It reads only fitted attributes (``module_``,
``components_``, ``data_scale_``, ...), so the estimator can restore a model
from a file and apply it without training.

Every path encodes spectra in batches padded to :data:`ROW_BLOCK` rows, so
that a pixel gets bitwise the same abundances alone, in a row pushed live
or in the whole scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from hs_aeunmix import _intensity
from hs_aeunmix._allocator import freed_memory_reused
from hs_aeunmix._fitting import fit_spatial_layer
from hs_aeunmix._screening import der_snr_noise
from hs_aeunmix._spatial import PixelImage, check_geometry, fit_windows
from hs_aeunmix._validation import check_finite, check_not_complex

# An endmember whose RMS value is below this fraction of the largest one's
# has been driven to zero (l2,1 penalty) and is reported as inactive.
_ACTIVE_FRACTION = 0.05


class InferenceMixin:
    """Abundances, uncertainty, misfit and description from a fitted model.

    Mixed into :class:`~hs_aeunmix.AEUnmix`; see the module docstring.
    """

    def transform(self, X, *, image_shape=None, navigation_mask=None) -> np.ndarray:
        """Abundances of spectra ``X`` under the trained encoder.

        With ``pixel_scale`` the abundances are each pixel's fractions times
        its intensity (see :meth:`fractions`), so that ``transform(X) @
        components_`` reproduces ``X`` in its own units.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the channels the model was trained on.
        image_shape, navigation_mask
            The scan grid of the rows of ``X``, needed when ``spatial=True``
            (see :meth:`fit`); ignored otherwise.

        Returns
        -------
        numpy.ndarray of shape (n_pixels, n_components)
        """
        fractions, intensity = self.fractions(
            X, image_shape=image_shape, navigation_mask=navigation_mask
        )
        return fractions * intensity[:, None]

    def fractions(
        self, X, *, image_shape=None, navigation_mask=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's fractions and intensity: ``X ≈ intensity * (fractions @ E)``.

        Fractions are non-negative and sum to one (with the default
        ``abundance="sum_to_one"``): the share of the pixel's signal that
        comes from each endmember, the endmembers being scaled to a common
        total (the mean total of the training spectra). The intensity is
        then the pixel's total relative to that mean (thickness,
        illumination; 1 for a pixel as intense as the average training
        pixel); it is 1 everywhere for models without ``pixel_scale``.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the channels the model was trained on.
        image_shape, navigation_mask
            The scan grid, needed when ``spatial=True``.

        Returns
        -------
        fractions : numpy.ndarray of shape (n_pixels, n_components)
        intensity : numpy.ndarray of shape (n_pixels,)
        """
        return self._fractions_of_valid(
            self._validated_for_inference(X),
            image_shape=image_shape,
            navigation_mask=navigation_mask,
        )

    def _batches(self, X: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        """Row slices of validated spectra and those rows in the network's units.

        Each batch is scaled on its own and padded to a multiple of
        :data:`ROW_BLOCK` rows: a scaled copy of a whole large scan would
        cost more (allocating it) than the encoding itself.
        """
        if self.module_.training:
            self.module_.eval()
        with freed_memory_reused():
            for rows in _inference_batches(len(X)):
                scaled = torch.from_numpy(
                    (X[rows] / self.data_scale_).astype(np.float32)
                )
                yield rows, _padded(scaled).to(self.device_)

    def _encodings(self, X: np.ndarray) -> np.ndarray:
        """The encoder's fractions of validated spectra (before any spatial prior)."""
        fractions = np.empty((len(X), self.components_.shape[0]))
        with torch.no_grad():
            for rows, batch in self._batches(X):
                fractions[rows] = (
                    self.module_.encode(batch)[: len(fractions[rows])].cpu().numpy()
                )
        return fractions

    def _per_pixel(self, quantity, X: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """``quantity(spectra, abundances)[:, 0]`` of each pixel (intensity, shift)."""
        values = np.empty(len(X))
        with torch.no_grad():
            for rows, batch in self._batches(X):
                abundances = _padded(
                    torch.from_numpy(fractions[rows].astype(np.float32))
                ).to(self.device_)
                values[rows] = (
                    quantity(batch, abundances)[: len(values[rows]), 0].cpu().numpy()
                )
        return values

    def _fractions_of_valid(
        self, X: np.ndarray, *, image_shape=None, navigation_mask=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fractions` of spectra already validated (live unmixing)."""
        fractions = self._encodings(X)
        if self._uses_grid(image_shape):
            shape, mask = check_geometry(X.shape[0], image_shape, navigation_mask)
            with torch.no_grad():
                fractions = self._refined(fractions, shape, mask)
        return fractions, self._per_pixel(self.module_.intensity, X, fractions)

    def uncertainty(
        self,
        X,
        *,
        image_shape=None,
        navigation_mask=None,
        return_covariance: bool = False,
    ) -> np.ndarray:
        """Standard deviation of each pixel's fractions (see :meth:`fractions`).

        A Laplace approximation around the fitted fractions, given the
        endmembers and the noise of the data (Poisson for counts, else each
        pixel's DER_SNR noise), widened where the model misfits a pixel
        beyond its noise, plus the errors the endmembers' own uncertainty
        causes (each endmember contaminated by the others, at the size of
        its spread between starts, ``stability_``; none for a model trained
        from a single start). The method, its assumptions and its measured
        calibration: :mod:`hs_aeunmix._uncertainty`. Costs about one
        :meth:`transform` plus a small matrix inverse per pixel.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels, in the data's units (counts
            stay counts: their noise is judged from them).
        image_shape, navigation_mask
            The scan grid, needed when ``spatial=True``.
        return_covariance : bool, default=False
            Return each pixel's whole covariance matrix instead: the
            fractions' errors are correlated (with ``abundance="sum_to_one"``
            they cancel in the sum), which a quantity derived from several
            fractions (a ratio, a sum of phases) needs.

        Returns
        -------
        numpy.ndarray of shape (n_pixels, n_components)
            NaN for pixels without signal; with ``return_covariance``, of
            shape (n_pixels, n_components, n_components).
        """
        from hs_aeunmix._uncertainty import standard_deviations

        _, covariance = self._fractions_and_covariance(
            X, image_shape=image_shape, navigation_mask=navigation_mask
        )
        return covariance if return_covariance else standard_deviations(covariance)

    def _fractions_and_covariance(
        self, X, *, endmember_error: bool = True, **geometry
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fractions` and their covariance per pixel (:meth:`uncertainty`).

        ``endmember_error=False`` leaves out the endmembers' error term: what
        the pixel's own data leave open.
        """
        from hs_aeunmix._uncertainty import fraction_covariance

        X = self._validated_for_inference(X)
        fractions, intensity = self.fractions(X, **geometry)
        has_background = len(self.baseline_components_) > 0
        return fractions, fraction_covariance(
            X,
            fractions,
            intensity,
            self.components_,
            background_basis=self.baseline_components_ if has_background else None,
            background=self._background_of(X, fractions, intensity),
            sum_to_one=self.abundance != "nonnegative",
            endmember_spread=None
            if self.stability_ is None or not endmember_error
            else self.stability_.spread,
        )

    def shifts(self, X) -> np.ndarray:
        """Each pixel's offset along the spectral axis, in channels (``max_shift``).

        The offset by which the pixel's mixture is shifted to reproduce it
        (positive: towards higher channels), solved for each spectrum as
        described in :mod:`hs_aeunmix._shift`; zeros for a model without
        drift-aware decoding. Multiply by the axis step for energy or Raman
        shift units (:func:`hs_aeunmix.shift_map` does, on a signal).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels.

        Returns
        -------
        numpy.ndarray of shape (n_pixels,)
        """
        X = self._validated_for_inference(X)
        if self.module_.max_shift is None:
            return np.zeros(X.shape[0])
        return self._per_pixel(self.module_.shifts, X, self._encodings(X))

    def _shifts_of_valid(self, X: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """:meth:`shifts` of validated spectra whose encodings are in hand."""
        if self.module_.max_shift is None:
            return np.zeros(X.shape[0])
        return self._per_pixel(self.module_.shifts, X, fractions)

    def background(self, X, *, image_shape=None, navigation_mask=None) -> np.ndarray:
        """Each pixel's background coefficients on ``baseline_components_``.

        ``transform(X) @ components_ + background(X) @ baseline_components_``
        reproduces ``X``. Shape (n_pixels, n_terms); (n_pixels, 0) for models
        without a background (``baseline``).
        """
        X = self._validated_for_inference(X)
        fractions, intensity = self.fractions(
            X, image_shape=image_shape, navigation_mask=navigation_mask
        )
        return self._background_of(X, fractions, intensity)

    def _background_of(
        self, X: np.ndarray, fractions: np.ndarray, intensity: np.ndarray
    ) -> np.ndarray:
        """:meth:`background` from validated spectra and their fractions."""
        if not len(self.baseline_components_):
            return np.zeros((len(X), 0))
        mixture = (fractions * intensity[:, None]) @ self.components_
        return (X - mixture) @ self.baseline_components_.T

    def _mixture(self, X, **geometry) -> np.ndarray:
        """``transform(X) @ components_``: the spectra without their background."""
        fractions, intensity = self.fractions(X, **geometry)
        return (fractions * intensity[:, None]) @ self.components_

    def _uses_grid(self, image_shape) -> bool:
        """Whether the neighbourhood layer refines these fractions.

        A ``spatial=True`` model always does (and needs the grid); a
        ``spatial="auto"`` model that has the layer does where the grid is
        given, and gives the per-pixel fractions elsewhere.
        """
        if self.spatial is True:
            return True
        return self.module_.spatial is not None and image_shape is not None

    def _refined(self, fractions: np.ndarray, shape, mask) -> np.ndarray:
        """Per-pixel fractions refined by the trained neighbourhood attention."""
        image = PixelImage.from_rows(
            fractions.astype(np.float32), shape, mask, self.device_
        )
        with torch.no_grad():
            maps = self.module_.spatial(image.spectra.permute(2, 0, 1), image.valid)
        return maps[:, image.valid].T.cpu().numpy().astype(np.float64)

    def inverse_transform(self, X) -> np.ndarray:
        """Spectra reconstructed from abundances ``X`` (n_pixels, n_components)."""
        check_is_fitted(self, "components_")
        return np.asarray(X, dtype=np.float64) @ self.components_

    def relative_residual(self, X) -> float:
        """How well the model reproduces spectra ``X``: ``‖X - X̂‖ / ‖X‖``.

        ``X̂`` is the reconstruction ``transform(X) @ components_`` plus the
        background, if any (per pixel: not for ``spatial=True`` models).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels.

        Returns
        -------
        float
            0 for a perfect fit; about 1 or more for a model that does not
            describe the spectra at all.
        """
        X = self._validated_for_inference(X)
        return _relative_norm(self._misfit(X), X)

    def residual_to_noise(self, X) -> float:
        """The misfit on spectra ``X`` in units of their noise.

        The RMS of ``X - X̂`` over the RMS noise of ``X`` estimated from each
        spectrum's second differences (DER_SNR): about 1 when the model
        explains everything but the noise, whatever the dose, and well above
        1 when the spectra hold something the model cannot reproduce.
        Reapplying a model warns when a scan's value is more than three times
        the training scan's (``training_residual_``).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels.

        Returns
        -------
        float
        """
        X = self._validated_for_inference(X)
        return _in_noise_units(self._misfit(X), X)

    def _misfit(self, X: np.ndarray, mixture: np.ndarray | None = None) -> np.ndarray:
        """``X`` minus its reconstruction (per pixel), background included.

        ``mixture``: ``transform(X) @ components_`` when already computed.
        """
        if self.spatial is True:
            raise ValueError(
                "This model is spatial (each pixel needs its neighbours): "
                "reconstruct the unmixed signal with s.get_decomposition_model() "
                "instead."
            )
        # One encoding: the background is what the mixture leaves, projected
        # on the background's basis (as background() computes it).
        reconstruction = self._mixture(X) if mixture is None else mixture
        basis = self.baseline_components_
        if len(basis):
            reconstruction = reconstruction + ((X - reconstruction) @ basis.T) @ basis
        return X - reconstruction

    def intensity_ratio(self, X) -> float:
        """Overall intensity of spectra ``X`` relative to the training data.

        A later scan of the same sample often differs from the training scan
        by one factor (beam current, dwell time, detector gain). The ratio
        is measured the same way on ``X`` and, at the end of ``fit``, on the
        training spectra, and the two are divided, so that a scan at the
        training dose gives 1 (see :func:`hs_aeunmix._intensity.measure`).
        Up to 2048 evenly spaced spectra are used. With ``pixel_scale`` the
        intensities absorb the ratio by themselves; models without it unmix
        ``X / ratio`` (``s.decomposition(model=...)`` does this).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels.

        Returns
        -------
        float
        """
        X = self._validated_for_inference(X)
        sample = X[_intensity.sample_rows(X.shape[0])] / self.data_scale_
        return (
            _intensity.measure(self.module_, sample, self.device_)
            / self.intensity_reference_
        )

    def _validated_for_inference(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        check_not_complex(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            reset=False,
        )
        # Batch by batch: a whole-array check would allocate a mask as large
        # as a big scan. The full count is only needed for the error message.
        for start in range(0, X.shape[0], INFERENCE_ROWS):
            if not np.isfinite(X[start : start + INFERENCE_ROWS]).all():
                check_finite(X)
        return X

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]

    @property
    def active_components_(self) -> np.ndarray:
        """Endmembers not driven to zero by ``endmember_l21_weight``."""
        check_is_fitted(self, "components_")
        level = np.sqrt((self.components_**2).mean(axis=1))
        return level >= _ACTIVE_FRACTION * level.max()

    def describe_endmembers(
        self, X=None, *, elements=None, image_shape=None, navigation_mask=None
    ) -> list:
        """What each endmember is, and which ones are duplicates or collapsed.

        EELS endmembers (axis in eV or keV) name their ionisation edges from
        eXSpy's edge database and their background's power-law exponent;
        Raman endmembers (cm⁻¹) list their bands; every endmember gives the
        pixels it dominates and its spread (``stability_``) and, with ``X``,
        its share of the reconstructed intensity. The method and its
        thresholds: :mod:`hs_aeunmix._describe`.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels), optional
            Spectra (the training spectra or a sample of them) for the
            intensity shares; without them the shares are None and collapse
            is judged from ``stability_``.
        elements : sequence of str, optional
            EELS: the elements the specimen holds (``s.add_elements`` keeps
            them in ``s.metadata.Sample.elements``); only their edges are
            named. Without it any element of eXSpy's database may be.
        image_shape, navigation_mask
            The scan grid of ``X``, for ``spatial=True`` models.

        Returns
        -------
        list of hs_aeunmix._describe.EndmemberDescription
            One per endmember; ``summary`` is a line for people and
            ``warnings`` flags duplicates and collapsed endmembers.
        """
        from hs_aeunmix._describe import describe_spectra

        check_is_fitted(self, "components_")
        spectra = np.asarray(self.components_, dtype=float)
        calibration = self.signal_calibration_
        axis = units = signal_type = None
        if calibration is not None:
            # Signal-masked channels were not trained: the components skip them.
            values = calibration.values
            if values.size != spectra.shape[1]:
                values = values[calibration.trained_channels]
            if values.size == spectra.shape[1]:
                axis, units = values, calibration.units
                signal_type = calibration.signal_type
        report = self.stability_
        shares = (
            None
            if X is None
            else self._intensity_shares(
                X, image_shape=image_shape, navigation_mask=navigation_mask
            )
        )
        return describe_spectra(
            spectra,
            axis,
            units=units,
            signal_type=signal_type,
            support=None if report is None else report.support,
            spread=None if report is None else report.spread,
            max_fraction=None if report is None else report.max_fraction,
            shares=shares,
            elements=elements,
        )

    def _intensity_shares(self, X, **geometry) -> np.ndarray:
        """Each endmember's share of the intensity reconstructed for ``X``.

        Pixel ``p`` holds ``intensity_p * fraction_pk * components_[k]``, whose
        total over the channels is ``intensity_p * fraction_pk`` times the
        endmember's total; summed over the pixels and divided by the sum over
        the endmembers.
        """
        fractions, intensity = self.fractions(X, **geometry)
        totals = np.clip(self.components_, 0.0, None).sum(axis=1)
        carried = (fractions * intensity[:, None]).sum(axis=0) * totals
        whole = float(carried.sum())
        return carried / whole if whole > 0 else np.zeros_like(carried)

    # ------------------------------------------------------- another scan
    def _rescaled(self, ratio: float):
        """A copy whose internal scale includes the intensity ``ratio``."""
        state = self._fitted_state()
        copy = clone(self)
        return copy._restore(
            replace(state, data_scale=state.data_scale * ratio), device=self.device_
        )

    def _for_scan(self, sample: np.ndarray, *, copy: bool):
        """The model that unmixes a scan, from a sample of its spectra.

        ``sample`` holds spectra on the model's channels. The scan's intensity
        ratio to the training scan is measured and reported; the result is
        this model itself when the ratio is one (within
        :data:`~hs_aeunmix._intensity.INTENSITY_RATIO_TOLERANCE`) or absorbed
        by per-pixel intensities, and ``copy`` is false, else a copy rescaled
        by the ratio: the caller's model is never changed.
        """
        ratio = self.intensity_ratio(sample)
        _intensity.report_intensity_ratio(ratio)
        if (
            abs(ratio - 1.0) < _intensity.INTENSITY_RATIO_TOLERANCE
            or self.module_.has_pixel_scale
        ):
            # Per-pixel intensities absorb the ratio themselves.
            ratio = 1.0
        if ratio == 1.0 and not copy:
            return self
        return self._rescaled(ratio)

    def _seed(self) -> int:
        """The seed of a training run's random draws, from ``random_state``."""
        return int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )

    def _refit_spatial_layer(self, X, *, image_shape, navigation_mask=None) -> None:
        """Fit the spatial layer to scan ``X`` (model channels), nothing else.

        A scan unmixed with endmembers trained elsewhere (a series' shared
        ones) has its own noise level and texture, which the layer's
        averaging of neighbours adapts to: it is fitted as it would be had
        the scan been trained alone. Endmembers and encoder stay; no random
        numbers are drawn.
        """
        check_is_fitted(self, "module_")
        if self.module_.spatial is None:
            raise ValueError("This model has no spatial layer to fit.")
        X = self._validated_for_inference(X)
        geometry = check_geometry(len(X), image_shape, navigation_mask)
        fit_spatial_layer(
            self.module_,
            fit_windows(X, geometry, self._seed()),
            self.data_scale_,
            self.device_,
            self.spatial_weight,
        )


# Rows are encoded in batches padded to a multiple of this many rows:
# matrix products give each row the same rounding whatever the batch it is
# in only when the batches' sizes share the BLAS kernels' row blocking, and
# a scan unmixed live, a few pixels at a time, must give exactly the maps of
# the whole scan unmixed at once.
ROW_BLOCK = 16
# Rows encoded at once (a multiple of ROW_BLOCK): few enough that a batch's
# temporaries stay in the processor's cache (transform of 65,536 x 1024
# spectra: 0.18 s in batches of 2048 rows, 0.37 s in batches of 8192).
INFERENCE_ROWS = 2048


def _inference_batches(n_rows: int) -> Iterator[slice]:
    """Slices of at most :data:`INFERENCE_ROWS` rows."""
    for start in range(0, n_rows, INFERENCE_ROWS):
        yield slice(start, min(start + INFERENCE_ROWS, n_rows))


def _padded(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` with its last row repeated up to a multiple of ROW_BLOCK rows."""
    missing = -len(rows) % ROW_BLOCK
    if not missing:
        return rows
    return torch.cat([rows, rows[-1:].expand(missing, -1)])


def _relative_norm(misfit: np.ndarray, spectra: np.ndarray) -> float:
    """``‖misfit‖ / ‖spectra‖`` (0 for all-zero spectra)."""
    norm = float(np.linalg.norm(spectra))
    return float(np.linalg.norm(misfit)) / norm if norm else 0.0


def _in_noise_units(misfit: np.ndarray, spectra: np.ndarray) -> float:
    """RMS of ``misfit`` over the RMS DER_SNR noise of ``spectra``."""
    rms_misfit = float(np.sqrt(np.mean(misfit**2)))
    # DER_SNR needs five channels.
    noise = (
        float(np.sqrt(np.mean(der_snr_noise(spectra) ** 2)))
        if spectra.shape[1] > 4
        else 0.0
    )
    # Noiseless spectra: the misfit relative to the signal instead.
    floor = 1e-9 * float(np.sqrt(np.mean(spectra**2)))
    return rms_misfit / max(noise, floor, np.finfo(float).tiny)
