"""The scikit-learn estimator: :class:`AEUnmix`."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from hs_aeunmix._initialisation import (
    INITIALISATIONS,
    Initialisation,
    initial_endmembers,
    intensity_spread,
)
from hs_aeunmix._losses import LOSSES, endmember_penalty, get_loss
from hs_aeunmix._networks import (
    ABUNDANCE_CONSTRAINTS,
    ACTIVATIONS,
    ENCODERS,
    NetworkOptions,
    UnmixingAutoencoder,
    build_autoencoder,
)
from hs_aeunmix._spatial import PixelImage, check_geometry, fit_neighbourhood
from hs_aeunmix._training import (
    TrainingHistory,
    pixel_objective,
    shuffled_minibatches,
    train,
)
from hs_aeunmix._validation import (
    check_enough_pixels,
    check_finite,
    check_n_components,
    check_not_complex,
    warn_if_negative,
)

_logger = logging.getLogger(__name__)

LOSS_CHOICES = ("auto", *LOSSES)
# loss="auto" trains on the spectral angle when the pixels' total abundance
# (NNLS on the initial endmembers) varies by more than this relative spread:
# thickness or illumination changes that sum-to-one fractions cannot follow.
# The benchmark's cases have 0.007-0.03 (uniform) and 0.11-0.59 (varying).
INTENSITY_SPREAD_THRESHOLD = 0.10
# An endmember whose RMS value is below this fraction of the largest one's
# has been driven to zero (l2,1 penalty) and is reported as inactive.
_ACTIVE_FRACTION = 0.05
INFERENCE_BATCH_SIZE = 8192
# intensity_ratio: spectra it looks at, and the secant search for its fixed
# point (natural-log units: 1e-5 is a 0.001 % intensity difference).
_RATIO_SAMPLE_SIZE = 2048
_RATIO_ITERATIONS = 20
_RATIO_TOLERANCE = 1e-5
_RATIO_MAX_STEP = 0.5


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; other values go to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu' "
            "or 'cuda'."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch finds no CUDA device; use "
            "device='auto' to fall back to the CPU."
        )
    return resolved


class AEUnmix(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Blind spectral unmixing with a physics-constrained autoencoder.

    Spectra ``X`` (n_pixels, n_channels) are modelled by the linear mixing
    model ``X ≈ A @ E``: ``E`` (n_components, n_channels) holds non-negative
    endmember spectra (the weights of a bias-free linear decoder) and ``A``
    (n_pixels, n_components) non-negative abundances (the encoder's output).
    Use it through HyperSpy, ``s.decomposition(algorithm="ae",
    output_dimension=n)`` after ``import hs_aeunmix``, or directly as a
    scikit-learn transformer.

    Units: the data are divided internally by one global scale and the result
    multiplied back, so ``transform(X) @ components_`` reproduces ``X`` in its
    own units. With ``abundance="sum_to_one"`` abundances are fractions and
    the endmembers carry the intensity; with ``"nonnegative"`` an abundance of
    one means "as much as the endmember spectrum".

    Parameters
    ----------
    n_components : int
        Number of endmembers.
    encoder : {"dense", "conv"}
        ``"dense"``: fully connected layers ``hidden_layer_sizes``.
        ``"conv"``: the multi-branch 1-D convolutional encoder of Georgiev et
        al. (PNAS 2024), parallel kernels ``kernel_sizes`` merged back to the
        spectrum length, followed by the dense layers.
    abundance : {"sum_to_one", "nonnegative", "thresholded_sum_to_one"}
        ``"sum_to_one"``: softmax, abundances are fractions summing to one.
        ``"nonnegative"``: the softly-rectified tanh
        ``log(1 + exp(10 tanh x)) / 10`` of the PNAS paper, no sum constraint
        (for data whose intensity varies, e.g. with thickness).
        ``"thresholded_sum_to_one"``: the DAEU layers (batch norm, learned
        soft threshold, division by the sum): fractions that can be exactly 0.
    loss : {"auto", "mse", "sad", "mse_sad", "poisson"}
        Mean squared error, spectral angle, ``mse + sad_weight * sad``, or
        the Poisson negative log-likelihood for count data (EELS, EDS).
        ``"auto"``: the spectral angle when the total intensity of the pixels
        varies beyond what the endmembers explain (thickness, illumination;
        see ``intensity_spread_``), else the mean squared error. ``loss_``
        says which was used.
    sad_weight : float
        Weight of the spectral angle in ``loss="mse_sad"``.
    volume_weight : float
        Weight of the inverse-volume penalty
        ``(det(E Eᵀ / B + εI) + ε)^(-1/2)`` of Jensen et al. on the endmember
        matrix ``E`` (in the network's scaled units, ``B`` channels, see
        :mod:`hs_aeunmix._losses`): pushes endmembers apart. 0 disables it.
    endmember_l21_weight : float
        Weight of the l2,1 group penalty (sum over endmembers of their RMS
        value): drives endmembers the data do not need to zero, so that
        ``n_components`` may be over-specified; see ``active_components_``.
        Both penalties move the endmembers: give them the network's step
        size (``endmember_learning_rate=1e-3``) so that they can.
    init : {"auto", "ica", "vca", "random"} or array, shape (n_components, n_channels)
        Initial endmembers. ``"ica"``: HyperSpy's SVD + FastICA, when its
        components are admissible as endmembers (nearly non-negative spectra
        and abundances). ``"vca"``: vertex component analysis on PCA-denoised
        training pixels. ``"auto"``: ICA when admissible, else VCA (see
        :mod:`hs_aeunmix._initialisation`). ``"random"``: randomly chosen
        pixel spectra. An array: given spectra in the data's units.
        ``init_`` says which was used.
    hidden_layer_sizes : sequence of int
        Widths of the encoder's fully connected layers (may be empty).
    activation : {"leaky_relu", "relu"}
        Non-linearity of the hidden layers and convolutions.
    negative_slope : float
        Slope of ``"leaky_relu"`` below zero.
    batch_norm : bool
        Batch normalisation after each hidden layer and convolution.
    kernel_sizes : sequence of int
        Kernel sizes of the parallel convolutions (``encoder="conv"``).
    n_filters : int
        Filters per convolution branch (``encoder="conv"``).
    dropout : float
        Dropout rate after each fully connected layer.
    conv_dropout : float
        Dropout rate after each convolution (``encoder="conv"``).
    input_noise : float
        Standard deviation of Gaussian noise added to the encoder's
        (standardised) input during training: a denoising autoencoder.
    gaussian_dropout : float
        Rate ``p`` of multiplicative Gaussian noise ``N(1, p / (1 - p))`` on
        the abundances during training (DAEU).
    spatial : bool
        Let each pixel's abundances use its 3 x 3 neighbourhood: an
        edge-aware weighted mean of the per-pixel estimates, trained under a
        total-variation prior on the maps (see :mod:`hs_aeunmix._spatial`).
        ``fit`` and ``transform`` then need the scan grid (``image_shape``).
        The endmembers mean the same as without it.
    spatial_weight : float
        Strength of the total-variation prior of ``spatial=True``, in nats
        per unit change of abundance between neighbouring pixels:
        independent of the data's units and channel count.
    max_epochs : int
        Most passes over the training pixels.
    batch_size : int
        Pixels per mini-batch.
    learning_rate : float
        Adam step size of the encoder.
    endmember_learning_rate : float
        Adam step size of the endmembers (the decoder): smaller than the
        encoder's, so that a good start is refined rather than forgotten.
    validation_fraction : float
        Fraction of pixels held out to decide when to stop; the weights of the
        best validation epoch are restored. 0 monitors the training loss.
    patience : int
        Epochs without improvement before training stops.
    device : {"auto", "cpu", "cuda"} or torch.device
        ``"auto"`` uses CUDA when present, else the CPU.
    random_state : int, numpy.random.RandomState or None
        Seeds the initialisation, pixel shuffling and dropout; a fixed value
        gives identical results on the CPU.
    warm_start : bool
        When true and the estimator is already fitted, ``fit`` continues
        training the fitted network (same architecture, same internal data
        scaling) on the new data instead of starting afresh: fine-tuning a
        model trained on an earlier scan. The weights before the first new
        epoch compete in early stopping, so the held-out loss never gets
        worse than the model's starting point.
    show_progressbar : bool or None
        ``None`` follows ``hs.preferences.General.show_progressbar``.

    Attributes
    ----------
    components_ : numpy.ndarray, shape (n_components, n_channels)
        Endmember spectra in the data's units.
    history_ : TrainingHistory
        Training and validation loss per epoch; ``history_.plot()`` draws them.
    n_iter_ : int
        Epochs run.
    init_ : str
        How training started: ``"ica"``, ``"vca"``, ``"random"`` or
        ``"given"``.
    loss_ : str
        The loss trained on (``loss`` resolved when ``"auto"``).
    intensity_spread_ : float
        Relative spread of the pixels' total abundance on the initial
        endmembers (what ``loss="auto"`` decides on).
    intensity_reference_ : float
        The intensity measurement of :meth:`intensity_ratio` on the training
        spectra, which later measurements are divided by.
    data_scale_ : float
        The global scale the network's data were divided by.
    device_ : torch.device
        Device the model was trained on.
    module_ : torch.nn.Module
        The trained autoencoder.
    n_features_in_ : int
        Number of spectral channels seen in ``fit``.
    signal_calibration_ : SignalCalibration or None
        Spectral axis of the HyperSpy signal the model was trained on (set by
        ``s.decomposition(algorithm="ae")``); None after fitting a plain
        array. Used to map later scans onto the model's channels.
    active_components_ : numpy.ndarray of bool, shape (n_components,)
        Endmembers the model uses: False for an endmember whose RMS value
        fell below 5 % of the largest endmember's (driven to zero by
        ``endmember_l21_weight``).

    See Also
    --------
    AEUnmix.from_preset : the methods of the papers this package comes from.

    Notes
    -----
    Unlike PCA-style estimators there is no ``mean_``: the mixing model has
    no offset, and HyperSpy would add a ``mean_`` to the user's data.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder: str = "dense",
        abundance: str = "sum_to_one",
        loss: str = "auto",
        sad_weight: float = 0.1,
        volume_weight: float = 0.0,
        endmember_l21_weight: float = 0.0,
        init: str | np.ndarray = "auto",
        hidden_layer_sizes: Sequence[int] = (128, 64),
        activation: str = "leaky_relu",
        negative_slope: float = 0.01,
        batch_norm: bool = True,
        kernel_sizes: Sequence[int] = (5, 10, 15, 20),
        n_filters: int = 32,
        dropout: float = 0.0,
        conv_dropout: float = 0.2,
        input_noise: float = 0.0,
        gaussian_dropout: float = 0.0,
        spatial: bool = False,
        spatial_weight: float = 10.0,
        max_epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        endmember_learning_rate: float = 1e-4,
        validation_fraction: float = 0.1,
        patience: int = 10,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        show_progressbar: bool | None = None,
    ) -> None:
        self.n_components = n_components
        self.encoder = encoder
        self.abundance = abundance
        self.loss = loss
        self.sad_weight = sad_weight
        self.volume_weight = volume_weight
        self.endmember_l21_weight = endmember_l21_weight
        self.init = init
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.negative_slope = negative_slope
        self.batch_norm = batch_norm
        self.kernel_sizes = kernel_sizes
        self.n_filters = n_filters
        self.dropout = dropout
        self.conv_dropout = conv_dropout
        self.input_noise = input_noise
        self.gaussian_dropout = gaussian_dropout
        self.spatial = spatial
        self.spatial_weight = spatial_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.endmember_learning_rate = endmember_learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.warm_start = warm_start
        self.show_progressbar = show_progressbar

    @classmethod
    def from_preset(cls, name: str, n_components: int, **overrides) -> AEUnmix:
        """The estimator configured as the method of one of the seed papers.

        Parameters
        ----------
        name : str
            One of :data:`hs_aeunmix.PRESETS`: ``"pnas2024"``, ``"volume"``,
            ``"daeu"``, ``"udas"`` (see :mod:`hs_aeunmix.presets`).
        n_components : int
            Number of endmembers (some presets size their layers with it).
        **overrides
            Any other hyperparameter, replacing the preset's value.

        Returns
        -------
        AEUnmix
            An ordinary estimator: ``get_params()`` shows every value used.
        """
        from hs_aeunmix.presets import preset_options

        return cls(n_components, **{**preset_options(name, n_components), **overrides})

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, image_shape=None, navigation_mask=None) -> AEUnmix:
        """Train the autoencoder on spectra ``X`` (n_pixels, n_channels).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra, one per row. Integer counts are accepted (converted, not
            modified in place).
        y : None
            Ignored.
        image_shape : tuple of int, optional
            With ``spatial=True``: the scan grid ``(ny, nx)`` (or ``(n,)`` for
            a line scan) whose pixels, in C order, are the rows of ``X``.
        navigation_mask : array of bool, optional
            With ``spatial=True``: pixels of the grid without a row in ``X``
            (True = masked), as HyperSpy's ``navigation_mask`` in array order.

        Returns
        -------
        self
        """
        resume = bool(self.warm_start) and hasattr(self, "module_")
        check_not_complex(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            reset=not resume,
        )
        check_finite(X)
        n_pixels, n_channels = X.shape
        n_components = check_n_components(self.n_components, n_channels)
        self._check_hyperparameters()
        warn_if_negative(X, self.loss)
        check_enough_pixels(n_pixels, n_components)
        geometry = (
            check_geometry(n_pixels, image_shape, navigation_mask)
            if self.spatial
            else None
        )
        self.device_ = resolve_device(self.device)

        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        rng = np.random.default_rng(seed)
        if not resume:
            self.data_scale_ = _data_scale(X)
            self.signal_calibration_ = None
        scaled = (X / self.data_scale_).astype(np.float32)

        order = rng.permutation(n_pixels)
        n_validation = _n_validation(n_pixels, self.validation_fraction)
        validation_rows, train_rows = order[:n_validation], order[n_validation:]
        train_data = scaled[train_rows]

        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if resume:
                self.module_ = self._rebuilt_module(n_components)
            else:
                self.module_ = self._new_module(train_data, n_components, seed)
            self.module_.to(self.device_)
            generator = torch.Generator().manual_seed(seed)
            loss_function = get_loss(self.loss_, sad_weight=self.sad_weight)
            penalty = endmember_penalty(
                volume_weight=self.volume_weight,
                l21_weight=self.endmember_l21_weight,
            )
            train_batches = shuffled_minibatches(
                torch.from_numpy(train_data).to(self.device_),
                self.batch_size,
                generator,
            )
            validation = None
            if n_validation:
                validation = _fixed_batches(
                    torch.from_numpy(scaled[validation_rows]).to(self.device_),
                    INFERENCE_BATCH_SIZE,
                )
            self.history_: TrainingHistory = train(
                self.module_,
                pixel_objective(loss_function, penalty),
                train_batches,
                validation,
                max_epochs=self.max_epochs,
                learning_rate=self.learning_rate,
                endmember_learning_rate=self.endmember_learning_rate,
                patience=self.patience,
                starting_weights_compete=resume,
                show_progressbar=self.show_progressbar,
            )
        self.n_iter_ = self.history_.n_epochs
        self.components_ = self._endmembers_in_data_units()
        self.intensity_reference_ = self._intensity(X)
        if geometry is not None:
            self._fit_neighbourhood(X, geometry)
        inactive = np.flatnonzero(~self.active_components_)
        if inactive.size:
            _logger.warning(
                "Endmembers %s were driven to zero: the data need %d of the %d "
                "endmembers asked for.",
                inactive.tolist(),
                n_components - inactive.size,
                n_components,
            )
        _logger.info(
            "Trained %d epochs (best %d) on %d pixels%s",
            self.n_iter_,
            self.history_.best_epoch + 1,
            len(train_rows),
            " from the fitted weights" if resume else "",
        )
        return self

    def _new_module(
        self, train_data: np.ndarray, n_components: int, seed: int
    ) -> UnmixingAutoencoder:
        """A freshly initialised network for ``train_data`` (scaled units).

        Sets ``init_``, ``intensity_spread_`` and ``loss_`` on the way.
        """
        start = self._initialisation(train_data, n_components, seed)
        self.init_ = start.method
        self.intensity_spread_ = intensity_spread(train_data, start.endmembers)
        self.loss_ = self.loss
        if self.loss == "auto":
            varies = self.intensity_spread_ > INTENSITY_SPREAD_THRESHOLD
            self.loss_ = "sad" if varies else "mse"
        _logger.info(
            "Start: %s endmembers; intensity spread %.3f; loss %s",
            self.init_,
            self.intensity_spread_,
            self.loss_,
        )
        input_mean = train_data.mean(axis=0)
        input_std = train_data.std(axis=0)
        # Channels with no variation would divide by zero; give them unit scale.
        input_std[input_std <= 1e-6 * max(float(input_std.max()), 1e-30)] = 1.0
        return self._build_module(
            train_data.shape[1],
            n_components,
            endmembers=start.endmembers.astype(np.float32),
            input_mean=input_mean,
            input_scale=input_std,
        )

    def _build_module(
        self,
        n_channels: int,
        n_components: int,
        *,
        endmembers: np.ndarray | None = None,
        input_mean: np.ndarray | None = None,
        input_scale: np.ndarray | None = None,
    ) -> UnmixingAutoencoder:
        """The network the hyperparameters describe.

        Without initial values (a network about to receive trained weights)
        the endmembers are zeros and the input standardisation is neutral.
        """
        if endmembers is None:
            endmembers = np.zeros((n_components, n_channels), dtype=np.float32)
        if input_mean is None:
            input_mean = np.zeros(n_channels, dtype=np.float32)
        if input_scale is None:
            input_scale = np.ones(n_channels, dtype=np.float32)
        return build_autoencoder(
            self._network_options(),
            endmembers=torch.from_numpy(np.asarray(endmembers, dtype=np.float32)),
            input_mean=torch.from_numpy(np.asarray(input_mean, dtype=np.float32)),
            input_scale=torch.from_numpy(np.asarray(input_scale, dtype=np.float32)),
        )

    def _network_options(self) -> NetworkOptions:
        return NetworkOptions(
            encoder=self.encoder,
            abundance=self.abundance,
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            activation=self.activation,
            negative_slope=float(self.negative_slope),
            batch_norm=bool(self.batch_norm),
            dropout=float(self.dropout),
            kernel_sizes=tuple(self.kernel_sizes),
            n_filters=self.n_filters,
            conv_dropout=float(self.conv_dropout),
            input_noise=float(self.input_noise),
            gaussian_dropout=float(self.gaussian_dropout),
            spatial=bool(self.spatial),
        )

    def _rebuilt_module(self, n_components: int) -> UnmixingAutoencoder:
        """The fitted weights in a network built from the current hyperparameters.

        Rebuilding (rather than reusing ``module_``) keeps the network and
        ``get_params()`` in agreement when options such as dropout changed.
        """
        state = {
            name: tensor.detach().cpu()
            for name, tensor in self.module_.state_dict().items()
        }
        module = self._build_module(self.n_features_in_, n_components)
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(
                "warm_start=True continues training the fitted network, but the "
                "current options describe a network of another shape (changed "
                "n_components, encoder, abundance, hidden_layer_sizes, "
                "kernel_sizes or n_filters). Restore those options, or set "
                "warm_start=False to train a new network."
            ) from error
        return module

    # ------------------------------------------------------------ transform
    def transform(self, X, *, image_shape=None, navigation_mask=None) -> np.ndarray:
        """Abundances of spectra ``X`` under the trained encoder.

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
        X = self._validated_for_inference(X)
        abundances = self._encode(X)
        if not self.spatial:
            return abundances
        shape, mask = check_geometry(X.shape[0], image_shape, navigation_mask)
        return self._refined(abundances, shape, mask)

    def fit_transform(
        self, X, y=None, *, image_shape=None, navigation_mask=None
    ) -> np.ndarray:
        """``fit`` then ``transform`` on the same spectra (and scan grid)."""
        geometry = {"image_shape": image_shape, "navigation_mask": navigation_mask}
        return self.fit(X, **geometry).transform(X, **geometry)

    def _fit_neighbourhood(self, X: np.ndarray, geometry) -> None:
        """Fit the spatial layer on the trained per-pixel model's estimates."""
        shape, mask = geometry
        abundances = self._encode(X)
        scaled = (X / self.data_scale_).astype(np.float32)
        endmembers = self.module_.decoder.endmembers.detach()
        reconstruction = abundances @ endmembers.cpu().numpy().astype(np.float64)
        noise_variance = float(np.mean((reconstruction - scaled) ** 2))
        fit_neighbourhood(
            self.module_.spatial,
            PixelImage.from_rows(
                abundances.astype(np.float32), shape, mask, self.device_
            ),
            torch.from_numpy(scaled).to(self.device_),
            endmembers,
            noise_variance=noise_variance,
            spatial_weight=self.spatial_weight,
        )

    def _refined(self, abundances: np.ndarray, shape, mask) -> np.ndarray:
        """Per-pixel abundances refined by the trained neighbourhood attention."""
        image = PixelImage.from_rows(
            abundances.astype(np.float32), shape, mask, self.device_
        )
        with torch.no_grad():
            maps = self.module_.spatial(image.spectra.permute(2, 0, 1), image.valid)
        return maps[:, image.valid].T.cpu().numpy().astype(np.float64)

    def inverse_transform(self, X) -> np.ndarray:
        """Spectra reconstructed from abundances ``X`` (n_pixels, n_components)."""
        check_is_fitted(self, "components_")
        return np.asarray(X, dtype=np.float64) @ self.components_

    def intensity_ratio(self, X) -> float:
        """Overall intensity of spectra ``X`` relative to the training data.

        A later scan of the same sample often differs from the training scan
        by one factor (beam current, dwell time, detector gain). The ratio
        ``g`` is measured the same way on ``X`` and, at the end of ``fit``, on
        the training spectra, and the two are divided, so that the model's
        own small biases cancel and a scan at the training dose gives 1. The
        measurement starts as the ratio of mean total intensities. With
        ``abundance="sum_to_one"`` that first guess is biased when the new
        scan holds the endmembers in other proportions, so it is refined
        (secant steps) to the fixed point ``g = sum(totals of X) /
        sum(totals predicted by the model for X / g)``: the factor that makes
        the model's predicted total intensity match the scan's. Up to 2048
        evenly spaced spectra are used. Unmix a scan of another intensity
        with ``transform(X / g)``: sum-to-one abundances stay fractions and
        the scan's endmembers are ``g * components_``.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra on the model's channels.

        Returns
        -------
        float
        """
        X = self._validated_for_inference(X)
        return self._intensity(X) / self.intensity_reference_

    def _intensity(self, X: np.ndarray) -> float:
        """The intensity measurement of :meth:`intensity_ratio`, uncalibrated."""
        rows = ratio_sample_rows(X.shape[0])
        totals = X[rows].sum(axis=1) / self.data_scale_
        trained_total = float(self.module_.input_mean.sum())
        if not (totals.mean() > 0 and trained_total > 0):
            return 1.0
        ratio = float(totals.mean()) / trained_total
        if self.abundance != "sum_to_one":
            # Unconstrained abundances absorb any intensity: the first guess
            # only brings the spectra to the range the encoder was trained on.
            return ratio
        sample = X[rows]
        endmember_totals = self.components_.sum(axis=1) / self.data_scale_

        def mismatch(log_ratio: float) -> float:
            """log(fixed-point update) - log(ratio): zero at the answer."""
            predicted = self._encode(sample / np.exp(log_ratio)) @ endmember_totals
            return float(np.log(totals.sum() / predicted.sum())) - log_ratio

        # Secant steps on the mismatch: the plain fixed-point iteration
        # converges only linearly (about x0.7 per step on EELS data).
        previous = np.log(ratio)
        previous_mismatch = mismatch(previous)
        current = previous + previous_mismatch
        for _ in range(_RATIO_ITERATIONS):
            current_mismatch = mismatch(current)
            if abs(current_mismatch) < _RATIO_TOLERANCE or (
                current_mismatch == previous_mismatch
            ):
                break
            step = current_mismatch * (current - previous)
            step /= previous_mismatch - current_mismatch
            previous, previous_mismatch = current, current_mismatch
            current += float(np.clip(step, -_RATIO_MAX_STEP, _RATIO_MAX_STEP))
        return float(np.exp(current))

    def save(self, path) -> Path:
        """Write the fitted model to one file (safetensors, no pickle).

        See :func:`hs_aeunmix.load_model`. Returns the path written.
        """
        from hs_aeunmix._persistence import save_model

        return save_model(self, path)

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
        for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
            if not np.isfinite(X[start : start + INFERENCE_BATCH_SIZE]).all():
                check_finite(X)
        return X

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """Abundances of validated spectra, batch by batch, in evaluation mode."""
        abundances = np.empty((X.shape[0], self.components_.shape[0]))
        self.module_.eval()
        with torch.no_grad():
            for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
                stop = start + INFERENCE_BATCH_SIZE
                batch = torch.from_numpy(
                    (X[start:stop] / self.data_scale_).astype(np.float32)
                ).to(self.device_)
                abundances[start:stop] = self.module_.encode(batch).cpu().numpy()
        return abundances

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]

    @property
    def active_components_(self) -> np.ndarray:
        check_is_fitted(self, "components_")
        level = np.sqrt((self.components_**2).mean(axis=1))
        return level >= _ACTIVE_FRACTION * level.max()

    # -------------------------------------------------------------- helpers
    def _endmembers_in_data_units(self) -> np.ndarray:
        weight = self.module_.decoder.weight.detach().cpu().numpy()
        return weight.T.astype(np.float64) * self.data_scale_

    def _check_hyperparameters(self) -> None:
        _check_choice("encoder", self.encoder, ENCODERS)
        _check_choice("abundance", self.abundance, ABUNDANCE_CONSTRAINTS)
        _check_choice("loss", self.loss, LOSS_CHOICES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        if not isinstance(self.init, np.ndarray):
            _check_choice("init", self.init, INITIALISATIONS)
        for name in ("max_epochs", "batch_size", "patience", "n_filters"):
            _check_positive_int(name, getattr(self, name))
        for name in ("hidden_layer_sizes", "kernel_sizes"):
            sizes = getattr(self, name)
            if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
                raise TypeError(f"{name} must be a sequence of integers, got {sizes!r}")
            for size in sizes:
                _check_positive_int(f"each of {name}", size)
        if self.encoder == "conv" and len(self.kernel_sizes) == 0:
            raise ValueError("encoder='conv' needs at least one kernel size.")
        for name in (
            "dropout",
            "conv_dropout",
            "validation_fraction",
            "gaussian_dropout",
        ):
            _check_fraction(name, getattr(self, name))
        for name in ("learning_rate", "endmember_learning_rate", "sad_weight"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in (
            "volume_weight",
            "endmember_l21_weight",
            "input_noise",
            "negative_slope",
            "spatial_weight",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not 0 <= value < np.inf
            ):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if not isinstance(self.batch_norm, bool | np.bool_):
            raise ValueError(
                f"batch_norm must be True or False, got {self.batch_norm!r}"
            )

    def _initialisation(
        self, train_data: np.ndarray, n_components: int, seed: int
    ) -> Initialisation:
        """Initial endmembers (n_components, n_channels) in scaled units."""
        if not isinstance(self.init, np.ndarray):
            return initial_endmembers(train_data, n_components, self.init, seed)
        expected = (n_components, train_data.shape[1])
        if self.init.shape != expected:
            raise ValueError(
                f"init has shape {self.init.shape}; initial endmembers must "
                f"have shape (n_components, n_channels) = {expected}."
            )
        if not np.isfinite(self.init).all():
            raise ValueError("init contains NaN or inf values.")
        return Initialisation(np.clip(self.init / self.data_scale_, 0, None), "given")


def ratio_sample_rows(n_rows: int) -> np.ndarray:
    """Evenly spaced rows (at most 2048) that the intensity ratio looks at."""
    return np.unique(np.linspace(0, n_rows - 1, _RATIO_SAMPLE_SIZE).astype(int))


def _data_scale(X: np.ndarray) -> float:
    """One positive number that brings the data to order one."""
    scale = float(np.max(np.abs(X.mean(axis=0))))
    if scale == 0.0:
        scale = float(np.max(np.abs(X)))
    if scale == 0.0:
        raise ValueError("The data are all zero: there is nothing to unmix.")
    return scale


def _n_validation(n_pixels: int, fraction: float) -> int:
    if fraction == 0:
        return 0
    # Keep at least two training pixels so batch normalisation can run.
    return int(min(max(1, round(fraction * n_pixels)), n_pixels - 2))


def _fixed_batches(data: torch.Tensor, batch_size: int):
    def epoch():
        for start in range(0, data.shape[0], batch_size):
            yield data[start : start + batch_size]

    return epoch


def _check_choice(name: str, value, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}.")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_fraction(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
