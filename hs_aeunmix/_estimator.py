"""The scikit-learn estimator: :class:`AEUnmix`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
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

from hs_aeunmix import _intensity, _persistence
from hs_aeunmix._axes import SignalCalibration
from hs_aeunmix._constraints import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INTEGER,
    StrOptions,
    check_positive_integers,
)
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
from hs_aeunmix._state import FittedState
from hs_aeunmix._training import (
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
# Spectra encoded at once: bounds the memory of inference on a large scan.
INFERENCE_BATCH_SIZE = 8192


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

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's convention)
        "n_components": [POSITIVE_INTEGER, None],
        "encoder": [StrOptions(set(ENCODERS))],
        "abundance": [StrOptions(set(ABUNDANCE_CONSTRAINTS))],
        "loss": [StrOptions(set(LOSS_CHOICES))],
        "sad_weight": [POSITIVE],
        "volume_weight": [NON_NEGATIVE],
        "endmember_l21_weight": [NON_NEGATIVE],
        "init": [StrOptions(set(INITIALISATIONS)), np.ndarray],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "negative_slope": [NON_NEGATIVE],
        "batch_norm": ["boolean"],
        "kernel_sizes": ["array-like"],
        "n_filters": [POSITIVE_INTEGER],
        "dropout": [FRACTION],
        "conv_dropout": [FRACTION],
        "input_noise": [NON_NEGATIVE],
        "gaussian_dropout": [FRACTION],
        "spatial": ["boolean"],
        "spatial_weight": [NON_NEGATIVE],
        "max_epochs": [POSITIVE_INTEGER],
        "batch_size": [POSITIVE_INTEGER],
        "learning_rate": [POSITIVE],
        "endmember_learning_rate": [POSITIVE],
        "validation_fraction": [FRACTION],
        "patience": [POSITIVE_INTEGER],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "show_progressbar": ["boolean", None],
    }

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
    def fit(
        self,
        X,
        y=None,
        *,
        image_shape=None,
        navigation_mask=None,
        signal_calibration: SignalCalibration | None = None,
    ) -> AEUnmix:
        """Train the autoencoder on spectra ``X`` (n_pixels, n_channels).

        Fitting is transactional: the fitted attributes are set together at
        the end, so an error leaves the estimator as it was. Interrupting
        training (Ctrl-C) ends it early and keeps the best weights so far,
        with a warning (``history_.interrupted`` is then true).

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
        signal_calibration : SignalCalibration, optional
            The spectral axis ``X`` was sampled on, kept as
            ``signal_calibration_`` so that later scans can be mapped onto
            the model's channels (``s.decomposition`` passes it). With
            ``warm_start`` the fitted calibration is kept when None.

        Returns
        -------
        self
        """
        resume = bool(self.warm_start) and hasattr(self, "module_")
        self._validate_params()
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
        self._check_dependent_options(n_components, n_channels)
        warn_if_negative(X, self.loss)
        check_enough_pixels(n_pixels, n_components)
        geometry = (
            check_geometry(n_pixels, image_shape, navigation_mask)
            if self.spatial
            else None
        )
        device = resolve_device(self.device)

        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        rng = np.random.default_rng(seed)
        previous = self._fitted_state() if resume else None
        data_scale = previous.data_scale if previous else _data_scale(X)
        scaled = (X / data_scale).astype(np.float32)

        order = rng.permutation(n_pixels)
        n_validation = _n_validation(n_pixels, self.validation_fraction)
        validation_rows, train_rows = order[:n_validation], order[n_validation:]
        train_data = scaled[train_rows]

        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if previous:
                module = self._module_from_state(previous)
                start = _Start(previous.init, previous.loss, previous.intensity_spread)
            else:
                module, start = self._new_module(
                    train_data, n_components, seed, data_scale
                )
            module.to(device)
            generator = torch.Generator().manual_seed(seed)
            loss_function = get_loss(start.loss, sad_weight=self.sad_weight)
            penalty = endmember_penalty(
                volume_weight=self.volume_weight,
                l21_weight=self.endmember_l21_weight,
            )
            train_batches = shuffled_minibatches(
                torch.from_numpy(train_data).to(device),
                self.batch_size,
                generator,
            )
            validation = None
            if n_validation:
                validation = _fixed_batches(
                    torch.from_numpy(scaled[validation_rows]).to(device),
                    INFERENCE_BATCH_SIZE,
                )
            history = train(
                module,
                pixel_objective(loss_function, penalty),
                train_batches,
                validation,
                max_epochs=self.max_epochs,
                learning_rate=self.learning_rate,
                endmember_learning_rate=self.endmember_learning_rate,
                patience=self.patience,
                starting_weights_compete=bool(previous),
                show_progressbar=self.show_progressbar,
            )
            if geometry is not None:
                _fit_neighbourhood(
                    module, scaled, geometry, device, self.spatial_weight
                )
        encode = _scaled_encoder(module, device)
        state = FittedState(
            module_state=_cpu_state(module),
            n_channels=n_channels,
            n_components=n_components,
            data_scale=data_scale,
            init=start.init,
            loss=start.loss,
            intensity_spread=start.intensity_spread,
            intensity_reference=self._measure_intensity(
                scaled[_intensity.sample_rows(n_pixels)], encode, module
            ),
            history=history,
            signal_calibration=(
                signal_calibration
                if signal_calibration is not None or not previous
                else previous.signal_calibration
            ),
            trained_on=str(device),
        )
        self._restore(state, device=device)
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
            " from the fitted weights" if previous else "",
        )
        return self

    # -------------------------------------------------------- fitted state
    def _fitted_state(self) -> FittedState:
        """The fitted attributes as one value (see :mod:`hs_aeunmix._state`)."""
        check_is_fitted(self, "module_")
        return FittedState(
            module_state=_cpu_state(self.module_),
            n_channels=self.n_features_in_,
            n_components=self.components_.shape[0],
            data_scale=self.data_scale_,
            init=self.init_,
            loss=self.loss_,
            intensity_spread=self.intensity_spread_,
            intensity_reference=self.intensity_reference_,
            history=self.history_,
            signal_calibration=self.signal_calibration_,
            trained_on=self.trained_on_,
        )

    def _restore(self, state: FittedState, *, device="auto") -> AEUnmix:
        """Set every fitted attribute from ``state``; the network runs on ``device``.

        The network is built from the current hyperparameters and receives
        the state's weights, so the two always agree.
        """
        module = self._module_from_state(state)
        self.device_ = resolve_device(device)
        self.module_ = module.to(self.device_).eval()
        self.n_features_in_ = state.n_channels
        self.data_scale_ = float(state.data_scale)
        self.components_ = self._endmembers_in_data_units()
        self.init_ = state.init
        self.loss_ = state.loss
        self.intensity_spread_ = float(state.intensity_spread)
        self.intensity_reference_ = float(state.intensity_reference)
        self.history_ = state.history
        self.n_iter_ = state.history.n_epochs
        self.signal_calibration_ = state.signal_calibration
        self.trained_on_ = state.trained_on
        return self

    def _module_from_state(self, state: FittedState) -> UnmixingAutoencoder:
        """A network built from the hyperparameters, holding ``state``'s weights.

        The network is laid out on torch's meta device (no memory, no use of
        the global random generator) and receives copies of the weights.
        """
        with torch.device("meta"):
            module = self._build_module(state.n_channels, state.n_components)
        weights = {name: tensor.clone() for name, tensor in state.module_state.items()}
        try:
            module.load_state_dict(weights, assign=True)
        except RuntimeError as error:
            detail = str(error).splitlines()[1:2]
            raise ValueError(
                "The fitted weights do not fit the network the current options "
                "describe (changed n_components, encoder, abundance, "
                "hidden_layer_sizes, kernel_sizes, n_filters, batch_norm or "
                "spatial). Restore those options, or set warm_start=False to "
                f"train a new network. {' '.join(detail).strip()}"
            ) from error
        return module

    def _new_module(
        self, train_data: np.ndarray, n_components: int, seed: int, data_scale: float
    ) -> tuple[UnmixingAutoencoder, _Start]:
        """A freshly initialised network for scaled ``train_data``, and its start."""
        initialisation = self._initialisation(
            train_data, n_components, seed, data_scale
        )
        spread = intensity_spread(train_data, initialisation.endmembers)
        loss = self.loss
        if loss == "auto":
            loss = "sad" if spread > INTENSITY_SPREAD_THRESHOLD else "mse"
        start = _Start(initialisation.method, loss, spread)
        _logger.info(
            "Start: %s endmembers; intensity spread %.3f; loss %s",
            start.init,
            start.intensity_spread,
            start.loss,
        )
        input_mean = train_data.mean(axis=0)
        input_std = train_data.std(axis=0)
        # Channels with no variation would divide by zero; give them unit scale.
        input_std[input_std <= 1e-6 * max(float(input_std.max()), 1e-30)] = 1.0
        module = self._build_module(
            train_data.shape[1],
            n_components,
            endmembers=initialisation.endmembers.astype(np.float32),
            input_mean=input_mean,
            input_scale=input_std,
        )
        return module, start

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
        own small biases cancel and a scan at the training dose gives 1 (see
        :func:`hs_aeunmix._intensity.measure_intensity`). Up to 2048 evenly
        spaced spectra are used. Unmix a scan of another intensity with
        ``transform(X / g)``: sum-to-one abundances stay fractions and the
        scan's endmembers are ``g * components_``.

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
        measured = self._measure_intensity(
            sample, _scaled_encoder(self.module_, self.device_), self.module_
        )
        return measured / self.intensity_reference_

    def _measure_intensity(self, scaled_sample, encode, module) -> float:
        """:func:`~hs_aeunmix._intensity.measure_intensity` with this network."""
        endmembers = module.decoder.endmembers.detach().cpu().numpy()
        return _intensity.measure_intensity(
            scaled_sample,
            encode,
            endmembers.sum(axis=1).astype(np.float64),
            float(module.input_mean.sum()),
            sum_to_one=self.abundance == "sum_to_one",
        )

    def save(self, path) -> Path:
        """Write the fitted model to one file (safetensors, no pickle).

        See :func:`hs_aeunmix.load_model`. Returns the path written.
        """
        check_is_fitted(self, "module_")
        return _persistence.write_model_file(
            self.get_params(deep=False), self._fitted_state(), path
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
        for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
            if not np.isfinite(X[start : start + INFERENCE_BATCH_SIZE]).all():
                check_finite(X)
        return X

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """Abundances of validated spectra in data units."""
        return _scaled_encoder(self.module_, self.device_)(X / self.data_scale_)

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

    def _check_dependent_options(self, n_components: int, n_channels: int) -> None:
        """Checks that involve several options, sequence elements or the data."""
        check_positive_integers(
            "hidden_layer_sizes", self.hidden_layer_sizes, "AEUnmix", allow_empty=True
        )
        check_positive_integers(
            "kernel_sizes",
            self.kernel_sizes,
            "AEUnmix",
            allow_empty=self.encoder != "conv",
        )
        if isinstance(self.init, np.ndarray):
            expected = (n_components, n_channels)
            if self.init.shape != expected:
                raise ValueError(
                    f"init has shape {self.init.shape}; initial endmembers must "
                    f"have shape (n_components, n_channels) = {expected}."
                )
            if not np.isfinite(self.init).all():
                raise ValueError("init contains NaN or inf values.")

    def _initialisation(
        self, train_data: np.ndarray, n_components: int, seed: int, data_scale: float
    ) -> Initialisation:
        """Initial endmembers (n_components, n_channels) in scaled units."""
        if not isinstance(self.init, np.ndarray):
            return initial_endmembers(train_data, n_components, self.init, seed)
        return Initialisation(np.clip(self.init / data_scale, 0, None), "given")


@dataclass(frozen=True)
class _Start:
    """How training started: initial endmembers' method, loss, intensity spread."""

    init: str
    loss: str
    intensity_spread: float


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s weights and buffers."""
    return {
        name: tensor.detach().cpu().clone()
        for name, tensor in module.state_dict().items()
    }


def _scaled_encoder(module: UnmixingAutoencoder, device: torch.device):
    """``encode(scaled spectra) -> abundances`` in evaluation mode, batch by batch."""

    def encode(scaled: np.ndarray) -> np.ndarray:
        abundances = np.empty((scaled.shape[0], module.decoder.weight.shape[1]))
        module.eval()
        with torch.no_grad():
            for start in range(0, scaled.shape[0], INFERENCE_BATCH_SIZE):
                stop = start + INFERENCE_BATCH_SIZE
                batch = torch.from_numpy(
                    np.asarray(scaled[start:stop], dtype=np.float32)
                ).to(device)
                abundances[start:stop] = module.encode(batch).cpu().numpy()
        return abundances

    return encode


def _fit_neighbourhood(
    module: UnmixingAutoencoder,
    scaled: np.ndarray,
    geometry,
    device: torch.device,
    spatial_weight: float,
) -> None:
    """Fit the spatial layer on the trained per-pixel network's estimates."""
    shape, mask = geometry
    abundances = _scaled_encoder(module, device)(scaled)
    endmembers = module.decoder.endmembers.detach()
    reconstruction = abundances @ endmembers.cpu().numpy().astype(np.float64)
    noise_variance = float(np.mean((reconstruction - scaled) ** 2))
    fit_neighbourhood(
        module.spatial,
        PixelImage.from_rows(abundances.astype(np.float32), shape, mask, device),
        torch.from_numpy(scaled).to(device),
        endmembers,
        noise_variance=noise_variance,
        spatial_weight=spatial_weight,
    )


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


def load_model(source, *, device="auto") -> AEUnmix:
    """Load a fitted model, ready for ``transform`` or ``decomposition(model=...)``.

    Parameters
    ----------
    source : str, pathlib.Path, AEUnmix or HyperSpy signal
        A model file (``model.save(...)``), a ``.hspy`` or ``.zspy`` results
        file or a signal whose decomposition was ``algorithm="ae"`` (the
        model travels in its learning results; only the model's bytes are
        read from the file), or an already loaded model (returned as is).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the model runs; ``"auto"`` is CUDA when present. The training
        device is recorded in the file but not required.

    Returns
    -------
    AEUnmix
        Fitted: ``transform``, ``components_``, ``history_`` and
        ``signal_calibration_`` are those of the saved model, and abundances
        inferred on the CPU are bitwise identical to the saved model's.

    Raises
    ------
    FileNotFoundError
        No file at ``source``.
    ModelFileError
        (a ValueError) The file is not a model, is truncated, corrupted,
        modified or inconsistent, or comes from a newer model format; the
        message names it.

    Examples
    --------
    >>> model = hs_aeunmix.load_model("series.aeunmix")  # doctest: +SKIP
    >>> s.decomposition(algorithm="ae", model=model)  # doctest: +SKIP
    """
    if isinstance(source, AEUnmix):
        return source
    data, name = _persistence.read_source(source)
    params, state = _persistence.read_model(data, name)
    unknown = sorted(set(params) - set(AEUnmix._get_param_names()))
    if unknown:
        raise _persistence.ModelFileError(
            f"{name} has hyperparameters this version does not know: {unknown}. "
            "Upgrade hs_aeunmix to load it."
        )
    # Files from older versions lack newer options: those keep their
    # defaults, which reproduce the older behaviour.
    model = AEUnmix(**{**params, "device": device})
    try:
        model._validate_params()
        model._check_dependent_options(state.n_components, state.n_channels)
        return model._restore(state, device=device)
    except (ValueError, TypeError, RuntimeError) as error:
        raise _persistence.ModelFileError(
            f"{name} has a valid checksum but an inconsistent model description "
            f"({type(error).__name__}: {error})."
        ) from error
