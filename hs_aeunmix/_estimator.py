"""The scikit-learn estimator: :class:`AEUnmix`."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from hs_aeunmix import _intensity, _model_sources, _persistence
from hs_aeunmix._allocator import freed_memory_reused
from hs_aeunmix._axes import SignalCalibration
from hs_aeunmix._baseline import resolve_terms
from hs_aeunmix._constraints import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INTEGER,
    Integral,
    Number,
    StrOptions,
    check_positive_integers,
)
from hs_aeunmix._device import resolve_device
from hs_aeunmix._fitting import cpu_state, fit_state, resolve_loss
from hs_aeunmix._inference import InferenceMixin, _in_noise_units, _relative_norm
from hs_aeunmix._initialisation import INITIALISATIONS
from hs_aeunmix._losses import LOSS_SPECS, LOSSES
from hs_aeunmix._networks import ABUNDANCE_CONSTRAINTS, ACTIVATIONS, ENCODERS
from hs_aeunmix._plan import fit_plan, network_from_state, network_plan
from hs_aeunmix._selection import UNSTABLE_SPREAD, StabilityReport
from hs_aeunmix._spatial import check_geometry, fit_windows
from hs_aeunmix._state import FittedState
from hs_aeunmix._validation import (
    check_enough_pixels,
    check_finite,
    check_fixed_endmembers,
    check_n_components,
    check_not_complex,
    warn_if_negative,
)

_logger = logging.getLogger(__name__)

LOSS_CHOICES = ("auto", *LOSSES)
# Seeded training forks and seeds torch's process-wide random generator:
# trainings in threads of one process take turns, so each gives the result
# it gives alone.
_TRAINING_LOCK = threading.Lock()


class AEUnmix(
    InferenceMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Blind spectral unmixing with a physics-constrained autoencoder.

    Spectra ``X`` (n_pixels, n_channels) are modelled by the linear mixing
    model with a per-pixel intensity, ``x ≈ s * (a @ E)``: ``E``
    (n_components, n_channels) holds non-negative endmember spectra (the
    weights of a bias-free linear decoder), ``a`` the pixel's fractions (the
    encoder's output: non-negative, summing to one) and ``s >= 0`` its
    intensity (thickness, illumination), solved in closed form. Use it
    through HyperSpy, ``s.decomposition(algorithm="ae",
    output_dimension=n)`` after ``import hs_aeunmix``, or directly as a
    scikit-learn transformer.

    Units: the data are divided internally by one global scale and the result
    multiplied back, so ``transform(X) @ components_`` reproduces ``X`` in its
    own units: ``transform`` gives ``s * a`` (see :meth:`fractions` for ``a``
    and ``s`` apart). Without ``pixel_scale``, abundances with
    ``abundance="sum_to_one"`` are fractions and the endmembers carry the
    intensity; with ``"nonnegative"`` an abundance of one means "as much as
    the endmember spectrum".

    Training starts from several initial endmembers (``init="auto"``),
    leaves dead pixels out and repairs spikes, and reports how well the data
    determine each endmember (``stability_``): see the Notes.

    Parameters
    ----------
    n_components : int
        Number of endmembers.
    encoder : {"dense", "conv"}
        ``"dense"``: fully connected layers ``hidden_layer_sizes``.
        ``"conv"``: the multi-branch 1-D convolutional encoder of Georgiev et
        al. (PNAS 2024), parallel kernels ``kernel_sizes`` merged back to the
        spectrum length, followed by the dense layers. A long training of
        it (2,000 steps or more, on the CPU or CUDA) runs through
        ``torch.compile``: a few seconds of compiling, then steps about a
        third shorter; where torch cannot compile, a warning says so and
        training runs without it (``TORCHDYNAMO_DISABLE=1`` skips the
        attempt).
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
        ``"auto"``: the mean squared error. ``loss_`` says which was used.
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
        Needs ``pixel_scale=False`` (with it, every endmember is kept at a
        common total).
    min_volume_weight : float, default=0.0
        Weight of the minimum-volume term ``log det`` of the Gram matrix of
        the endmembers normalised to unit sum (Craig's criterion, as in
        minimum-volume NMF), relative to the loss of the best rank-n
        approximation of the data (about the noise level): among endmember
        sets that fit equally well, prefers the one tightest around the
        data, which helps where no pixel is pure. 0 disables it (the
        default: on the development scenes 0.01 helped some scenes without
        pure pixels and hurt others, see ``benchmarks/README.md``).
    pixel_scale : bool or "auto", default="auto"
        Give each pixel its own intensity ``s`` (thickness, illumination,
        focus): the encoder sees spectra normalised to a common total and
        estimates composition only, factors times loadings reproduce the
        data in their units, and a later scan's dose is absorbed by ``s``.
        False: abundances are fractions of endmembers that carry the
        intensity (the papers' model), which determines them better where
        the intensity is truly constant. ``"auto"``: False when the data
        allow it, i.e. when fractions on the start's endmembers explain the
        training spectra within 1 % of the residual that free intensities
        leave (see :mod:`hs_aeunmix._fitting`), else True.
    baseline : "auto", int or None, default="auto"
        A smooth additive background per pixel (Raman fluorescence): ``x ≈
        s * (a @ E) + B c`` with ``B`` a polynomial basis of ``baseline``
        terms and ``c`` solved per pixel (see :mod:`hs_aeunmix._baseline`).
        ``"auto"``: 4 terms for signals on a Raman-shift axis (cm⁻¹) whose
        data hold a background that varies between pixels, else none. The
        background's basis functions and coefficients are the last factors
        and loadings of ``s.decomposition`` (``baseline_components_`` and
        :meth:`background` here).
    fixed_endmembers : array-like of shape (k, n_channels), signal or None, default=None
        Known spectra (a substrate, a carbon film, a standard) in the data's
        units, kept as they are as the first ``k`` endmembers; the others
        are learned (as ``pyMCR``'s ``st_fix``).
    input_components : int or None, default=32
        The dense encoder reads the scores of the spectra on this many
        principal components of the (normalised) training spectra instead of
        every channel: far fewer weights for long spectra, and the noise
        outside the leading components never reaches it. None: every
        channel.
    init : {"auto", "ica", "spa", "vca", "kmeans", "random", "flat"} or array
        Initial endmembers (an array: shape (n_components, n_channels)).
        ``"ica"``: SVD + FastICA (its spectra clipped at zero). ``"spa"``,
        ``"vca"``: the successive projection algorithm, vertex component
        analysis, on PCA-denoised training pixels. ``"auto"``: one network
        from each of these three; of those whose held-out risk (fit plus the
        noise it absorbs) the noise cannot tell from the best one's, the one
        with the smallest endmember
        simplex is kept (see :mod:`hs_aeunmix._selection`); their agreement
        is ``stability_``. ``"kmeans"``: means of k-means clusters of those
        pixels (closer spectra, worse maps than ``"auto"`` at low dose: see
        :mod:`hs_aeunmix._selection`). ``"random"``: random pixels. ``"flat"``:
        featureless spectra at the data's mean level with a few per cent of
        random ripple, so that training alone shapes them (better than
        ``"auto"`` on STEM-EELS scenes whose phases share their edges, worse
        on the other generators: see the README's ablation). An array:
        given spectra in the data's units. ``init_`` says which was kept.
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
    spatial : bool or "auto", default="auto"
        Let each pixel's abundances use its neighbourhood: three passes of an
        edge-aware 3 x 3 weighted mean of the per-pixel estimates, trained
        under a total-variation prior (see :mod:`hs_aeunmix._spatial`).
        The endmembers mean the same as without it. ``True``: ``fit`` and
        ``transform`` need the scan grid (``image_shape``). ``"auto"``: the
        layer is trained when ``fit`` is given the grid (``s.decomposition``
        gives it for a scan in memory of one or two navigation axes) and
        used where the grid is known; elsewhere (lazy signals, live
        unmixing, ``transform`` without ``image_shape``) the per-pixel
        fractions. It lowered the abundance error on every generator's
        held-out scenes (README, "Spatial refinement by default").
    spatial_weight : float
        Strength of the total-variation prior of ``spatial=True``, in nats
        per unit change of abundance between neighbouring pixels:
        independent of the data's units and channel count.
    max_shift : float or None, default=None
        Drift-aware decoding: each pixel's mixture of endmembers is shifted
        along the spectral axis by an offset of at most this many channels
        (sub-channel, linear interpolation), solved per pixel by a few
        Gauss-Newton steps under a Gaussian prior of standard deviation
        ``max_shift / 2`` (see :mod:`hs_aeunmix._shift`): energy drift in
        EELS, calibration shifts in Raman. :meth:`shifts` and
        :func:`hs_aeunmix.shift_map` give the offsets. None (the default):
        no shift. Not the default because it did not measure better on the
        development scenes of the three generators (``benchmarks/drift.py``).
    max_epochs : int
        Most epochs. An epoch is 50 steps (mini-batches), whatever the size
        of the scan: training costs about the same on a large scan as on a
        small one (at most 65,536 spectra, a random sample of a larger scan,
        are used for training).
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
        Epochs without improvement of the held-out loss before training
        stops.
    device : {"auto", "cpu", "cuda", "mps"} or torch.device
        ``"auto"`` uses CUDA when present, else Apple's MPS, else the CPU.
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
        How training started: a name of ``init`` other than ``"auto"``, or
        ``"given"``.
    loss_ : str
        The loss trained on (``loss`` resolved when ``"auto"``).
    intensity_spread_ : float
        Relative spread (sd / mean) of the training pixels' intensities.
    pixel_scale_ : bool
        Whether the network has a per-pixel intensity (what
        ``pixel_scale="auto"`` chose).
    stability_ : StabilityReport or None
        Per endmember: the largest angle to the matching endmember of the
        other starts that fit as well (``spread``), the number of training
        pixels where it dominates (``support``) and its largest fraction;
        ``print(model.stability_)`` shows a table; ``directions``: how many
        directions of variation of the training spectra rise above their
        noise (``n_components`` endmembers need ``n_components - 1``).
        ``fit`` warns when an endmember is not identified or carried by few
        pixels, and when the spectra vary above their noise along too few
        directions.
    screening_ : dict
        What training left out or repaired: ``dead_pixels``,
        ``spike_values``, ``spike_pixels``.
    baseline_components_ : numpy.ndarray, shape (n_terms, n_channels)
        The background's basis functions (no rows without a background).
    trained_on_ : str
        The device training ran on.
    intensity_reference_ : float
        The intensity measurement of :meth:`intensity_ratio` on the training
        spectra, which later measurements are divided by.
    training_residual_ : float or None
        :meth:`residual_to_noise` on (up to 2048 of) the training spectra,
        which a later scan's is compared with when the model is reapplied;
        None for ``spatial=True`` models.
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
    How ``fit`` works (see :mod:`hs_aeunmix._fitting`): at most 65,536
    spectra are used (a random sample of a larger scan); pixels without
    signal are left out and spikes repaired (:mod:`hs_aeunmix._screening`);
    one network is trained from each start of ``init`` on a budget of steps
    with early stopping on held-out pixels; one is kept and the agreement
    of the others reported (:mod:`hs_aeunmix._selection`).

    Unlike PCA-style estimators there is no ``mean_``: the mixing model has
    no offset, and HyperSpy would add a ``mean_`` to the user's data.

    Examples
    --------
    >>> from hs_aeunmix import AEUnmix, datasets
    >>> signal, truth = datasets.eels_chequerboard(3, random_state=0)
    >>> spectra = signal.data.reshape(-1, signal.data.shape[-1])
    >>> model = AEUnmix(3, random_state=0, show_progressbar=False)
    >>> abundances = model.fit_transform(spectra)  # doctest: +SKIP
    >>> model.components_.shape  # doctest: +SKIP
    (3, 200)
    """

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's convention)
        "n_components": [POSITIVE_INTEGER, None],
        "encoder": [StrOptions(set(ENCODERS))],
        "abundance": [StrOptions(set(ABUNDANCE_CONSTRAINTS))],
        "loss": [StrOptions(set(LOSS_CHOICES))],
        "sad_weight": [POSITIVE],
        "volume_weight": [NON_NEGATIVE],
        "endmember_l21_weight": [NON_NEGATIVE],
        "min_volume_weight": [NON_NEGATIVE],
        "pixel_scale": ["boolean", StrOptions({"auto"})],
        "baseline": [
            StrOptions({"auto"}),
            Number(Integral, 1, 12, closed="both"),
            None,
        ],
        "fixed_endmembers": ["array-like", None],
        "input_components": [POSITIVE_INTEGER, None],
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
        "spatial": ["boolean", StrOptions({"auto"})],
        "spatial_weight": [NON_NEGATIVE],
        "max_shift": [POSITIVE, None],
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
        min_volume_weight: float = 0.0,
        pixel_scale: bool | str = "auto",
        baseline: str | int | None = "auto",
        fixed_endmembers=None,
        input_components: int | None = 32,
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
        spatial: bool | str = "auto",
        spatial_weight: float = 10.0,
        max_shift: float | None = None,
        max_epochs: int = 40,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        endmember_learning_rate: float = 1e-4,
        validation_fraction: float = 0.1,
        patience: int = 8,
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
        self.min_volume_weight = min_volume_weight
        self.pixel_scale = pixel_scale
        self.baseline = baseline
        self.fixed_endmembers = fixed_endmembers
        self.input_components = input_components
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
        self.max_shift = max_shift
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
        with a warning (``history_.interrupted`` is then true). Trainings in
        several threads of one process run one after the other (torch's
        random generator is shared by the process).

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_channels)
            Spectra, one per row. Integer counts are accepted (converted, not
            modified in place).
        y : None
            Ignored.
        image_shape : tuple of int, optional
            The scan grid ``(ny, nx)`` (or ``(n,)`` for a line scan) whose
            pixels, in C order, are the rows of ``X``: needed by
            ``spatial=True``, and trains the spatial layer with ``"auto"``.
        navigation_mask : array of bool, optional
            With the grid: pixels of the grid without a row in ``X``
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
        return self._fit(
            X,
            image_shape=image_shape,
            navigation_mask=navigation_mask,
            signal_calibration=signal_calibration,
        )

    @freed_memory_reused()
    def _fit(
        self,
        X,
        *,
        image_shape=None,
        navigation_mask=None,
        signal_calibration: SignalCalibration | None = None,
        overwrite_input: bool = False,
        spatial_windows: list | None = None,
    ) -> AEUnmix:
        """:meth:`fit`; ``overwrite_input``: ``X`` may be overwritten.

        A lazy scan's training sample belongs to the training run, which
        lets training reuse its memory instead of copying it.
        ``spatial_windows``: parts of scans on the model's channels, as
        :func:`~hs_aeunmix._spatial.fit_windows` gives them, when ``X`` is a
        sample without a grid (a series' scans): with ``spatial="auto"`` the
        spatial layer is trained on them.
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
        fixed = check_fixed_endmembers(self.fixed_endmembers, n_components, n_channels)
        warn_if_negative(X, self.loss)
        check_enough_pixels(n_pixels, n_components)
        previous = self._fitted_state() if resume else None
        spatial = self.spatial is True or (
            self.spatial == "auto"
            and (
                image_shape is not None
                or spatial_windows is not None
                # Training on keeps the layer, refitted where neighbours are known.
                or (previous is not None and self.module_.spatial is not None)
            )
        )
        geometry = (
            check_geometry(n_pixels, image_shape, navigation_mask)
            if spatial
            and spatial_windows is None
            and (self.spatial is True or image_shape is not None)
            else None
        )
        device = resolve_device(self.device)
        seed = self._seed()
        # Copied before training may overwrite X.
        windows = (
            fit_windows(X, geometry, seed) if geometry is not None else spatial_windows
        )
        calibration = (
            signal_calibration
            if signal_calibration is not None or not previous
            else previous.signal_calibration
        )
        baseline_terms = resolve_terms(
            self.baseline, None if calibration is None else calibration.units
        )
        plan = fit_plan(
            self.get_params(deep=False), n_components, spatial, resolve_loss(self.loss)
        )
        if baseline_terms and LOSS_SPECS[plan.loss].rates:
            raise ValueError(
                "The background of baseline= is fitted by least squares, which "
                "the Poisson loss contradicts; use loss='mse' or baseline=None."
            )
        # Taken before training, which may overwrite X (overwrite_input).
        misfit_sample = X[_intensity.sample_rows(X.shape[0])]
        devices = [device.index or 0] if device.type == "cuda" else []
        with _TRAINING_LOCK, torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            state, n_trained = fit_state(
                X,
                plan,
                device=device,
                seed=seed,
                previous=previous,
                fixed=fixed,
                windows=windows,
                signal_calibration=calibration,
                baseline_terms=baseline_terms,
                test_baseline=self.baseline == "auto",
                overwrite_input=overwrite_input,
            )
        training_residual = None
        if self.spatial is not True:
            # Judged on a model built from the state, so that a refusal leaves
            # this estimator as it was.
            trial = type(self)(**self.get_params(deep=False))
            trial._restore(state, device=device)
            sample = trial._validated_for_inference(misfit_sample)
            misfit = trial._misfit(sample)
            if _relative_norm(misfit, sample) >= 1.0:
                raise ValueError(
                    "The trained model reproduces the data worse than a model of "
                    "zeros (relative residual >= 1): the non-negative mixing "
                    "model does not describe these data. Check their sign and "
                    "offset (a subtracted background leaves mostly negative "
                    "values), or add a background model (baseline=...)."
                )
            training_residual = _in_noise_units(misfit, sample)
        self._restore(state, device=device)
        self.training_residual_ = training_residual
        self._report_fit(n_trained, resume=bool(previous))
        return self

    def _report_fit(self, n_trained: int, *, resume: bool) -> None:
        """Log the training and warn about what the user must know."""
        n_components = self.components_.shape[0]
        inactive = np.flatnonzero(~self.active_components_)
        if inactive.size:
            _logger.warning(
                "Endmembers %s were driven to zero: the data need %d of the %d "
                "endmembers asked for.",
                inactive.tolist(),
                n_components - inactive.size,
                n_components,
            )
        screening = self.screening_
        if screening.get("dead_pixels") or screening.get("spike_values"):
            _logger.warning(
                "Training left out %d pixels without signal and repaired %d spike "
                "values in %d pixels (cosmic rays, X-ray hits); their abundances "
                "are still computed.",
                screening.get("dead_pixels", 0),
                screening.get("spike_values", 0),
                screening.get("spike_pixels", 0),
            )
        report = self.stability_
        if report is not None and len(report.unstable):
            warnings.warn(
                f"Endmembers {report.unstable.tolist()} are not identified by the "
                "data: starts from other priors end with endmembers "
                f"up to {np.nanmax(report.spread):.2f} rad apart (more than "
                f"{UNSTABLE_SPREAD} rad). Treat them with care: fix known spectra "
                "(fixed_endmembers=), try another number of endmembers, or see "
                "model.stability_.",
                UserWarning,
                stacklevel=3,
            )
        if report is not None and report.below_noise:
            needed = len(report.spread) - 1
            warnings.warn(
                f"The spectra vary more than their noise explains along "
                f"{report.directions} direction(s), and {len(report.spread)} "
                f"endmembers need {needed}: the others are shaped by the noise "
                "unless a few pixels hold them (a small precipitate adds little "
                "variance: look for it in s - s.get_decomposition_model()). "
                "Raise the counts per spectrum (bin the scan: signal.rebin), ask "
                "for fewer endmembers, or fix known spectra (fixed_endmembers=). "
                "See model.stability_.",
                UserWarning,
                stacklevel=3,
            )
        if report is not None and len(report.thin):
            warnings.warn(
                f"Endmembers {report.thin.tolist()} dominate (fraction > 0.5) fewer "
                f"than {report.min_support} pixels: each may be a spike, a dead or hot "
                "pixel, a small inclusion, or a spectrum the data never show pure. "
                "See model.stability_.",
                UserWarning,
                stacklevel=3,
            )
        _logger.info(
            "Trained %d epochs (best %d) on %d pixels%s",
            self.n_iter_,
            self.history_.best_epoch + 1,
            n_trained,
            " from the fitted weights" if resume else "",
        )

    # -------------------------------------------------------- fitted state
    def _fitted_state(self) -> FittedState:
        """The fitted attributes as one value (see :mod:`hs_aeunmix._state`)."""
        check_is_fitted(self, "module_")
        return FittedState(
            module_state=cpu_state(self.module_),
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
            screening=dict(self.screening_),
            report=None if self.stability_ is None else self.stability_.as_dict(),
            baseline_terms=self.baseline_components_.shape[0],
            training_residual=self.training_residual_,
        )

    def _restore(self, state: FittedState, *, device="auto") -> AEUnmix:
        """Set every fitted attribute from ``state``; the network runs on ``device``.

        The network is built from the current hyperparameters and receives
        the state's weights, so the two always agree.
        """
        spatial = (
            any(name.startswith("spatial.") for name in state.module_state)
            if self.spatial == "auto"
            else bool(self.spatial)
        )
        plan = network_plan(self.get_params(deep=False), spatial)
        module = network_from_state(plan, state)
        self.device_ = resolve_device(device)
        self.module_ = module.to(self.device_).eval()
        self.n_features_in_ = state.n_channels
        self.data_scale_ = float(state.data_scale)
        self.components_ = self._endmembers_in_data_units()
        self.init_ = state.init
        self.loss_ = state.loss
        self.pixel_scale_ = bool(module.has_pixel_scale)
        self.intensity_spread_ = float(state.intensity_spread)
        self.intensity_reference_ = float(state.intensity_reference)
        self.history_ = state.history
        self.n_iter_ = state.history.n_epochs
        self.signal_calibration_ = state.signal_calibration
        self.trained_on_ = state.trained_on
        self.screening_ = dict(state.screening)
        self.stability_ = (
            None if state.report is None else StabilityReport.from_dict(state.report)
        )
        self.training_residual_ = state.training_residual
        basis = self.module_.baseline_basis
        self.baseline_components_ = (
            np.zeros((0, state.n_channels))
            if basis is None
            else basis.detach().cpu().numpy().T.astype(np.float64)
        )
        return self

    def fit_transform(
        self, X, y=None, *, image_shape=None, navigation_mask=None
    ) -> np.ndarray:
        """``fit`` then ``transform`` on the same spectra (and scan grid)."""
        geometry = {"image_shape": image_shape, "navigation_mask": navigation_mask}
        return self.fit(X, **geometry).transform(X, **geometry)

    def save(self, path) -> Path:
        """Write the fitted model to one file (safetensors, no pickle).

        See :func:`hs_aeunmix.load_model`. Returns the path written.
        """
        return _persistence.write_model_file(self._model_bytes(), path)

    def _model_bytes(self) -> bytes:
        """The bytes of this model's file: one serialisation for every place
        a model is stored (a file, HyperSpy's learning results, a series)."""
        check_is_fitted(self, "module_")
        return _persistence.model_bytes(
            self.get_params(deep=False), self._fitted_state()
        )

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
        if self.endmember_l21_weight and self.pixel_scale is True:
            raise ValueError(
                "endmember_l21_weight drives unneeded endmembers to zero, but with "
                "pixel_scale=True every endmember is kept at a common total (each "
                "pixel's intensity carries the scale). Set pixel_scale=False (or "
                "'auto', which is False with this penalty) to prune endmembers, or "
                "use scan_components to choose their number."
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


def load_model(source, *, device="auto") -> AEUnmix:
    """Load a fitted model, ready for ``transform`` or ``decomposition(model=...)``.

    Parameters
    ----------
    source : str, pathlib.Path, bytes, AEUnmix or HyperSpy signal
        A model file (``model.save(...)``) or its bytes, a ``.hspy`` or
        ``.zspy`` results file or a signal whose decomposition was
        ``algorithm="ae"`` (the model travels in its learning results; only
        the model's bytes are read from the file), or an already loaded
        model (returned as is).
    device : {"auto", "cpu", "cuda", "mps"}, default="auto"
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
    data, name = _model_sources.read_source(source)
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
