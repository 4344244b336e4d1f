"""Network modules of the unmixing autoencoder.

The autoencoder is ``decoder(abundance_activation(encoder(x)))``. Only the
encoder and the abundance constraint vary between configurations; the
decoder is always the linear mixing model, a bias-free linear layer whose
non-negative weight matrix (channels x endmembers) *is* the set of endmember
spectra.

With a per-pixel intensity (``pixel_scale``) each spectrum is modelled as
``x = s * (a @ E)``: ``a`` on the simplex (the fractions), ``E`` the
endmembers and ``s >= 0`` the pixel's intensity (specimen thickness,
illumination, focus), which is not learned but solved in closed form for
each spectrum: the least-squares scale for squared-error and angle losses,
the maximum-likelihood scale ``sum(x) / sum(a @ E)`` for the Poisson loss.
The encoder then sees spectra normalised to the mean total intensity, so it
estimates composition only, and the endmembers are kept at a fixed total
(the mean total of the training spectra) because their overall scale is
carried by ``s``: ``a`` is the fraction of a pixel's signal that comes from
each endmember.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional

from hs_aeunmix._losses import pixel_squared_error
from hs_aeunmix._shift import estimate_shifts, shifted
from hs_aeunmix._spatial import NeighbourhoodAttention

ENCODERS = ("dense", "conv")
ABUNDANCE_CONSTRAINTS = ("sum_to_one", "nonnegative", "thresholded_sum_to_one")
ACTIVATIONS = ("leaky_relu", "relu")
# How the per-pixel intensity is solved, by loss.
SCALE_RULES = ("least_squares", "poisson")


@dataclass(frozen=True)
class NetworkOptions:
    """Architecture options of :func:`build_autoencoder` (validated by the caller).

    Attributes
    ----------
    encoder : {"dense", "conv"}
        Fully connected layers only, or the multi-branch 1-D convolutions
        first.
    abundance : {"sum_to_one", "nonnegative", "thresholded_sum_to_one"}
        Abundance constraint, see :func:`abundance_activation`.
    hidden_layer_sizes : tuple of int
        Widths of the fully connected layers (may be empty: one linear map).
    activation : {"leaky_relu", "relu"}
        Non-linearity of the hidden layers.
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs.
    batch_norm : bool
        Batch normalisation after each hidden layer and convolution.
    dropout : float
        Dropout after each fully connected hidden layer.
    kernel_sizes : tuple of int
        Parallel convolution kernels (``encoder="conv"``).
    n_filters : int
        Filters per convolution branch.
    conv_dropout : float
        Dropout after each convolution.
    input_noise : float
        Standard deviation of Gaussian noise added to the standardised input
        during training (denoising autoencoder), 0 for none.
    gaussian_dropout : float
        Rate ``p`` of multiplicative Gaussian noise ``N(1, p / (1 - p))`` on
        the abundances during training, 0 for none.
    spatial : bool
        Refine each pixel's abundances with its neighbourhood
        (:class:`~hs_aeunmix._spatial.NeighbourhoodAttention`).
    """

    encoder: str = "dense"
    abundance: str = "sum_to_one"
    hidden_layer_sizes: tuple[int, ...] = (128, 64)
    activation: str = "leaky_relu"
    negative_slope: float = 0.01
    batch_norm: bool = True
    dropout: float = 0.0
    kernel_sizes: tuple[int, ...] = (5, 10, 15, 20)
    n_filters: int = 32
    conv_dropout: float = 0.2
    input_noise: float = 0.0
    gaussian_dropout: float = 0.0
    spatial: bool = False


class SoftlyRectifiedTanh(nn.Module):
    """Non-negative, bounded activation ``log(1 + exp(gamma * tanh(x))) / gamma``.

    From Georgiev et al. (PNAS 2024): close to ``max(0, tanh(x))`` for large
    ``gamma`` but smooth, so abundances near zero still receive gradients.
    """

    def __init__(self, gamma: float = 10.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.softplus(self.gamma * torch.tanh(x)) / self.gamma


class SumToOne(nn.Module):
    """Softmax over endmembers: abundances are non-negative fractions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


class ThresholdedSumToOne(nn.Module):
    """The abundance layers of DAEU (Palsson et al., IEEE Access 2018).

    Leaky ReLU (slope 0.1), batch normalisation, "dynamical soft
    thresholding" ``relu(x - alpha)`` with a learned non-negative threshold
    per endmember (initially 0), then division by the sum (abundance
    sum-to-one constraint). Unlike a softmax, abundances can be exactly zero;
    a pixel whose values all fall below the thresholds gets all-zero
    abundances.
    """

    def __init__(self, n_components: int) -> None:
        super().__init__()
        self.normalisation = nn.BatchNorm1d(n_components)
        self.threshold = nn.Parameter(torch.zeros(n_components))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalisation(functional.leaky_relu(x, 0.1))
        x = torch.relu(x - self.threshold.clamp(min=0))
        return x / (x.sum(dim=-1, keepdim=True) + 1e-7)


def abundance_activation(constraint: str, n_components: int) -> nn.Module:
    """Return the layer that enforces an abundance constraint."""
    if constraint == "sum_to_one":
        return SumToOne()
    if constraint == "nonnegative":
        return SoftlyRectifiedTanh()
    if constraint == "thresholded_sum_to_one":
        return ThresholdedSumToOne(n_components)
    raise ValueError(f"abundance must be one of {ABUNDANCE_CONSTRAINTS}")


class GaussianDropout(nn.Module):
    """Multiplicative noise ``N(1, rate / (1 - rate))`` in training, identity else."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        spread = (self.rate / (1.0 - self.rate)) ** 0.5
        return x * (1.0 + spread * torch.randn_like(x))


def _activation(options: NetworkOptions) -> nn.Module:
    if options.activation == "relu":
        return nn.ReLU()
    return nn.LeakyReLU(options.negative_slope)


def _he_slope(options: NetworkOptions) -> float:
    return options.negative_slope if options.activation == "leaky_relu" else 0.0


def _dense_block(n_in: int, n_out: int, options: NetworkOptions) -> nn.Sequential:
    linear = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(
        linear.weight, a=_he_slope(options), nonlinearity="leaky_relu"
    )
    nn.init.zeros_(linear.bias)
    layers: list[nn.Module] = [linear]
    if options.batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers += [_activation(options), nn.Dropout(options.dropout)]
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    """Fully connected encoder: spectrum -> hidden layers -> ``n_components``.

    Hidden layers have He initialisation; the final layer, Xavier uniform.
    """

    def __init__(
        self, n_channels: int, n_components: int, options: NetworkOptions
    ) -> None:
        super().__init__()
        sizes = [n_channels, *options.hidden_layer_sizes]
        self.hidden = nn.Sequential(
            *(_dense_block(n_in, n_out, options) for n_in, n_out in pairwise(sizes))
        )
        self.latent = nn.Linear(sizes[-1], n_components)
        nn.init.xavier_uniform_(self.latent.weight)
        nn.init.zeros_(self.latent.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent(self.hidden(x))


class MultiBranchConvEncoder(nn.Module):
    """Multi-scale 1-D convolutional encoder of Georgiev et al. (PNAS 2024).

    Parallel convolutions of several kernel sizes along the spectrum
    ('same' padding, He initialisation, batch norm, activation, dropout of
    whole filter maps) are merged channel-wise by a learned 1 x 1
    convolution back to one value per spectral channel, then reduced by a
    :class:`DenseEncoder`.

    ``branches`` holds each branch as the layers it is made of (so that a
    branch can be run on its own and the weights keep their names in model
    files), but :meth:`forward` computes all of them at once, with the same
    result: every kernel, zero-padded to the longest one, is a column of one
    matrix that multiplies the spectra's sliding windows; batch normalisation
    is folded into that matrix (its batch statistics follow from the
    windows' mean and covariance, a few numbers per channel, instead of
    passes over the (batch, channels, filters) feature maps); dropout of
    whole maps scales each spectrum's columns (a ReLU commutes with a
    non-negative factor); and the merge is one matrix-vector product. The
    encoder's forward and backward pass of the paper's network (200
    channels, batches of 128) then take 20 ms on 2 CPU cores instead of 34 ms
    (``benchmarks/conv_encoder.py``): the feature maps, 3.3 million values
    per batch, are written once and read back twice.
    """

    def __init__(
        self, n_channels: int, n_components: int, options: NetworkOptions
    ) -> None:
        super().__init__()
        branches = []
        for kernel_size in options.kernel_sizes:
            conv = nn.Conv1d(1, options.n_filters, kernel_size)
            nn.init.kaiming_normal_(
                conv.weight, a=_he_slope(options), nonlinearity="leaky_relu"
            )
            nn.init.zeros_(conv.bias)
            # Explicit 'same' padding: torch's padding="same" warns (and copies
            # the input) for even kernel sizes, which the paper uses.
            left = (kernel_size - 1) // 2
            layers: list[nn.Module] = [
                nn.ConstantPad1d((left, kernel_size - 1 - left), 0.0),
                conv,
            ]
            if options.batch_norm:
                layers.append(nn.BatchNorm1d(options.n_filters))
            layers += [_activation(options), nn.Dropout1d(options.conv_dropout)]
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.merge = nn.Conv1d(
            options.n_filters * len(options.kernel_sizes), 1, kernel_size=1
        )
        self.reduction = DenseEncoder(n_channels, n_components, options)
        # The activation's slope below zero (0 for ReLU), as He's initialisation.
        self._negative_slope = _he_slope(options)
        self._dropout = options.conv_dropout

    def _kernels(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Every branch's kernels as rows of one (filters, width) matrix, and biases.

        A kernel shorter than the longest is zero-padded so that its centre
        stays where its own 'same' padding puts it.
        """
        convs = [branch[1] for branch in self.branches]
        width = max(conv.kernel_size[0] for conv in convs)
        first = (width - 1) // 2
        rows = []
        for conv in convs:
            size = conv.kernel_size[0]
            before = first - (size - 1) // 2
            rows.append(
                functional.pad(conv.weight[:, 0], (before, width - size - before))
            )
        return torch.cat(rows), torch.cat([conv.bias for conv in convs]), width

    def _folded_batch_norm(
        self, kernels: torch.Tensor, bias: torch.Tensor, windows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``kernels`` and ``bias`` with each branch's batch normalisation folded in."""
        norms = [branch[2] for branch in self.branches]
        if self.training:
            window_mean = windows.mean(dim=0)
            centred = windows - window_mean
            covariance = centred.T @ centred / len(windows)
            mean = kernels @ window_mean + bias
            variance = ((kernels @ covariance) * kernels).sum(dim=1)
            self._update_running_statistics(norms, mean, variance, len(windows))
        else:
            mean = torch.cat([norm.running_mean for norm in norms])
            variance = torch.cat([norm.running_var for norm in norms])
        gain = torch.cat([norm.weight for norm in norms]) * torch.rsqrt(
            variance + norms[0].eps
        )
        shift = torch.cat([norm.bias for norm in norms])
        return kernels * gain[:, None], (bias - mean) * gain + shift

    @staticmethod
    @torch.no_grad()
    def _update_running_statistics(
        norms: list[nn.BatchNorm1d],
        mean: torch.Tensor,
        variance: torch.Tensor,
        n_values: int,
    ) -> None:
        # As nn.BatchNorm1d does: the running variance is the unbiased one.
        unbiased = variance * (n_values / max(n_values - 1, 1))
        sizes = [norm.num_features for norm in norms]
        for norm, batch_mean, batch_variance in zip(
            norms, mean.split(sizes), unbiased.split(sizes), strict=True
        ):
            norm.num_batches_tracked += 1
            momentum = (
                1.0 / float(norm.num_batches_tracked)
                if norm.momentum is None
                else norm.momentum
            )
            norm.running_mean.lerp_(batch_mean, momentum)
            norm.running_var.lerp_(batch_variance, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels, bias, width = self._kernels()
        first = (width - 1) // 2
        n_spectra, n_channels = x.shape
        windows = functional.pad(x, (first, width - 1 - first)).unfold(1, width, 1)
        windows = windows.reshape(n_spectra * n_channels, width)
        if isinstance(self.branches[0][2], nn.BatchNorm1d):
            kernels, bias = self._folded_batch_norm(kernels, bias, windows)
        if self.training and self._dropout > 0:
            # One factor per spectrum and filter map (0 or 1 / (1 - p)), on the
            # kernels and the bias alike. The bias is one more kernel row, over
            # a column of ones: as the input of a batched product it would
            # first be copied into every spectrum's feature maps, which took a
            # quarter of a compiled step of the paper's network.
            keep = functional.dropout(
                x.new_ones(n_spectra, 1, len(bias)), self._dropout, training=True
            )
            with_ones = torch.cat([windows, windows.new_ones(len(windows), 1)], dim=1)
            features = torch.bmm(
                with_ones.reshape(n_spectra, n_channels, width + 1),
                torch.cat([kernels.T, bias[None]]) * keep,
            )
        else:
            features = torch.addmm(bias, windows, kernels.T)
        features = functional.leaky_relu_(features, self._negative_slope)
        merged = (
            features.reshape(n_spectra * n_channels, -1) @ self.merge.weight[0, :, 0]
        )
        return self.reduction(merged.reshape(n_spectra, n_channels) + self.merge.bias)


class LinearMixingDecoder(nn.Module):
    """Bias-free linear layer whose non-negative weights are the endmembers.

    Non-negativity is kept by projection (:meth:`clamp_`) after each
    optimiser step rather than by a reparametrisation, so the stored weights
    are the endmembers themselves and an initialisation is used exactly.

    Parameters
    ----------
    endmembers : torch.Tensor
        Initial endmembers, (n_components, n_channels).
    fixed : torch.Tensor of bool, optional
        (n_components,): endmembers that are known and never change (their
        initial values are kept by :meth:`clamp_`).
    total : float, optional
        With a per-pixel intensity: the total (sum over channels) every free
        endmember is kept at, which fixes the scale that ``s`` and ``E``
        would otherwise trade freely.
    """

    def __init__(
        self,
        endmembers: torch.Tensor,
        *,
        fixed: torch.Tensor | None = None,
        total: float | None = None,
    ) -> None:
        super().__init__()
        # Stored as (channels, endmembers), the layout of nn.Linear.weight.
        self.weight = nn.Parameter(endmembers.T.clone().clamp_(min=0))
        self.total = total
        if fixed is not None and bool(fixed.any()):
            self.register_buffer("fixed_mask", fixed.clone())
            self.register_buffer("fixed_values", self.weight.detach().clone())
        else:
            self.fixed_mask = None
        self.clamp_()

    @property
    def endmembers(self) -> torch.Tensor:
        """The endmember matrix, (n_components, n_channels)."""
        return self.weight.T

    def forward(self, abundances: torch.Tensor) -> torch.Tensor:
        return abundances @ self.weight.T

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project onto the constraints: non-negative, fixed, at their total."""
        self.weight.clamp_(min=0)
        free = slice(None) if self.fixed_mask is None else ~self.fixed_mask
        if self.total is not None:
            sums = self.weight[:, free].sum(dim=0, keepdim=True).clamp_min(1e-12)
            self.weight[:, free] *= self.total / sums
        if self.fixed_mask is not None:
            self.weight[:, self.fixed_mask] = self.fixed_values[:, self.fixed_mask]


def pixel_intensity(
    spectra: torch.Tensor, unit: torch.Tensor, rule: str
) -> torch.Tensor:
    """Each pixel's intensity ``s >= 0`` given its unit-intensity mixture.

    ``unit = a @ E`` (n_pixels, n_channels). ``"least_squares"`` minimises
    ``|x - s unit|²``; ``"poisson"`` maximises the Poisson likelihood of
    ``x`` at rate ``s unit`` (``s = sum(x) / sum(unit)``). Returns
    (n_pixels, 1).
    """
    if rule == "poisson":
        return spectra.sum(dim=1, keepdim=True).clamp_min(0) / unit.sum(
            dim=1, keepdim=True
        ).clamp_min(1e-12)
    projection = (spectra * unit).sum(dim=1, keepdim=True)
    norm = (unit * unit).sum(dim=1, keepdim=True).clamp_min(1e-12)
    return (projection / norm).clamp_min(0)


def has_float64(device: torch.device) -> bool:
    """Whether ``device`` computes in float64 (Apple's GPUs, MPS, do not)."""
    return device.type != "mps"


class UnmixingAutoencoder(nn.Module):
    """Encoder, abundance constraint and linear-mixing decoder.

    The encoder sees spectra standardised per channel (``input_mean``,
    ``input_scale`` buffers) so that no channel dominates by intensity alone,
    optionally projected on principal components (``input_projection``,
    channels x components: far fewer weights for long spectra, and the noise
    outside the leading components never reaches the encoder). With a
    per-pixel intensity (``pixel_total`` given) the spectra are first
    normalised to that total and the decoder's output is scaled by the
    closed-form intensity of :func:`pixel_intensity`. The decoder
    reproduces the spectra divided by one global ``data_scale``, which the
    estimator undoes, so endmembers keep the data's units. Input noise and
    Gaussian dropout act in training mode only.
    """

    def __init__(
        self,
        encoder: nn.Module,
        activation: nn.Module,
        decoder: LinearMixingDecoder,
        input_mean: torch.Tensor,
        input_scale: torch.Tensor,
        *,
        input_projection: torch.Tensor | None = None,
        pixel_total: float | None = None,
        scale_rule: str = "least_squares",
        baseline_basis: torch.Tensor | None = None,
        input_noise: float = 0.0,
        gaussian_dropout: float = 0.0,
        spatial: NeighbourhoodAttention | None = None,
        max_shift: float | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.activation = activation
        self.spatial = spatial
        self.abundance_noise = GaussianDropout(gaussian_dropout)
        self.decoder = decoder
        self.input_noise = input_noise
        self.scale_rule = scale_rule
        self.register_buffer("input_mean", input_mean)
        self.register_buffer("input_scale", input_scale)
        if input_projection is not None:
            self.register_buffer("input_projection", input_projection)
        else:
            self.input_projection = None
        if pixel_total is not None:
            self.register_buffer(
                "pixel_total", torch.tensor(float(pixel_total), dtype=torch.float32)
            )
        else:
            self.pixel_total = None
        if baseline_basis is not None:
            self.register_buffer("baseline_basis", baseline_basis)
        else:
            self.baseline_basis = None
        if max_shift is not None:
            self.register_buffer(
                "max_shift", torch.tensor(float(max_shift), dtype=torch.float32)
            )
        else:
            self.max_shift = None

    @property
    def has_pixel_scale(self) -> bool:
        """Whether each pixel has its own intensity."""
        return self.pixel_total is not None

    def pixel_statistic(self, x: torch.Tensor) -> torch.Tensor:
        """What spectra are normalised by: total, or norm without the background."""
        if self.baseline_basis is None:
            return x.sum(dim=1, keepdim=True)
        return torch.linalg.vector_norm(x, dim=1, keepdim=True)

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder sees of scaled spectra ``x``."""
        if self.baseline_basis is not None:
            x = x - (x @ self.baseline_basis) @ self.baseline_basis.T
        if self.pixel_total is not None:
            totals = self.pixel_statistic(x)
            x = x * (self.pixel_total / totals.clamp_min(1e-6 * self.pixel_total))
        centred = x - self.input_mean
        if self.input_projection is not None:
            centred = centred @ self.input_projection
        return centred / self.input_scale

    def encode(
        self, x: torch.Tensor, encoder_input: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Abundances (fractions with a per-pixel intensity) of scaled spectra ``x``.

        ``encoder_input``: :meth:`encoder_input` of ``x``, when already computed.
        """
        standardised = self.encoder_input(x) if encoder_input is None else encoder_input
        if self.training and self.input_noise:
            standardised = standardised + self.input_noise * torch.randn_like(
                standardised
            )
        return self.activation(self.encoder(standardised))

    def _without_background(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` projected off the background's basis, in their dtype."""
        basis = self.baseline_basis.to(values.dtype)
        return values - (values @ basis) @ basis.T

    def shifts(self, x: torch.Tensor, abundances: torch.Tensor) -> torch.Tensor:
        """Each pixel's offset along the axis (n_pixels, 1), in channels.

        Zeros for models without drift-aware decoding (see
        :mod:`hs_aeunmix._shift`).
        """
        unit = self.decoder(abundances)
        if self.max_shift is None:
            return unit.new_zeros((unit.shape[0], 1))
        if self.baseline_basis is not None:
            x, unit = self._without_background(x), self._without_background(unit)
        return estimate_shifts(
            x,
            unit,
            float(self.max_shift),
            free_intensity=self.pixel_total is not None,
        )

    def _unit_mixture(self, x: torch.Tensor, abundances: torch.Tensor) -> torch.Tensor:
        """``a @ E`` at unit intensity, shifted to ``x`` with drift-aware decoding."""
        unit = self.decoder(abundances)
        if self.max_shift is None:
            return unit
        return shifted(
            unit, self.shifts(x, abundances), math.ceil(float(self.max_shift))
        )

    def intensity(self, x: torch.Tensor, abundances: torch.Tensor) -> torch.Tensor:
        """The pixels' intensities (n_pixels, 1); ones without a per-pixel scale.

        With a background, the intensity fits the spectrum minus its
        smooth part (the background takes that part).
        """
        if self.pixel_total is None:
            return abundances.new_ones((abundances.shape[0], 1))
        return self._intensity_of(x, self._unit_mixture(x, abundances))

    def _intensity_of(self, x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        if self.baseline_basis is not None:
            x, unit = self._without_background(x), self._without_background(unit)
        return pixel_intensity(x, unit, self.scale_rule)

    def background(self, x: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """Coefficients (n_pixels, n_terms) of the background of ``x - mixture``."""
        return (x - mixture) @ self.baseline_basis

    def reconstruct(self, abundances: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Spectra the abundances give, at the intensity and background of ``x``."""
        unit = self._unit_mixture(x, abundances)
        if self.pixel_total is None:
            mixture = unit
        else:
            mixture = self._intensity_of(x, unit) * unit
        if self.baseline_basis is None:
            return mixture
        return mixture + self.background(x, mixture) @ self.baseline_basis.T

    def squared_error_given(
        self, x: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``error(abundances)``: :func:`pixel_squared_error` of
        :meth:`reconstruct` ``(abundances, x)`` for spectra ``x`` held fixed.

        For fitting what feeds the decoder, endmembers and spectra fixed
        (the spatial layer; no gradient reaches the endmembers). Without
        drift-aware decoding the mixture is linear in the endmembers: with
        ``P`` the projection off the background (the identity without one),
        ``u = a E`` and ``s`` the pixel's intensity (one without
        ``pixel_total``), the error is ``(|Px|² - 2 s a·c + s² a G aᵀ) / B``
        over ``B`` channels, where ``c = Px (PE)ᵀ`` and ``G = (PE)(PE)ᵀ``
        are computed once, so that each call handles (pixels x components)
        values instead of (pixels x channels). In float64 (the result too):
        where the model fits well the error is a small difference of the
        first terms. With drift-aware decoding (each pixel's endmembers
        shifted its own way), and on devices without float64, it
        reconstructs the spectra.
        """
        if self.max_shift is not None or not has_float64(x.device):
            return lambda abundances: pixel_squared_error(
                self.reconstruct(abundances, x), x
            )
        spectra = x.double()
        endmembers = self.decoder.endmembers.detach().double()
        if self.baseline_basis is not None:
            spectra = self._without_background(spectra)
            endmembers = self._without_background(endmembers)
        along_endmembers = spectra @ endmembers.T
        gram = endmembers @ endmembers.T
        norms = (spectra * spectra).sum(dim=1)
        totals = spectra.sum(dim=1).clamp_min(0)
        endmember_totals = endmembers.sum(dim=1)
        n_channels = x.shape[1]

        def error(abundances: torch.Tensor) -> torch.Tensor:
            fractions = abundances.double()
            along = (fractions * along_endmembers).sum(dim=1)
            unit_norm = ((fractions @ gram) * fractions).sum(dim=1)
            if self.pixel_total is None:
                scale = torch.ones_like(along)
            elif self.scale_rule == "poisson":
                # As pixel_intensity's rule.
                scale = totals / (fractions @ endmember_totals).clamp_min(1e-12)
            else:
                scale = (along / unit_norm.clamp_min(1e-12)).clamp_min(0)
            return (norms - 2 * scale * along + scale**2 * unit_norm) / n_channels

        return error

    def forward(
        self, x: torch.Tensor, encoder_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        abundances = self.encode(x, encoder_input)
        return self.reconstruct(self.abundance_noise(abundances), x), abundances

    def residual_pair(
        self, x: torch.Tensor, encoder_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prediction, target)`` whose difference is ``x`` minus its reconstruction.

        For losses of the residual alone (the squared error). Without a
        background, the reconstruction and ``x``. With one, the mixture and
        ``x`` both without their background part: the background is the
        least-squares fit of what the mixture leaves, so the residual is
        ``P x - s P u`` (``P`` the projection off the background, ``u`` the
        unit mixture, ``s`` the intensity fitted to ``P x``), the same as
        :meth:`forward`'s to rounding, without forming the background and
        the reconstruction (on 1,559 channels, the decoder and loss about
        40 % cheaper, a whole training step about 10 %; issue 25).
        """
        abundances = self.abundance_noise(self.encode(x, encoder_input))
        if self.baseline_basis is None:
            return self.reconstruct(abundances, x), x
        target = self._without_background(x)
        unit = self._without_background(self._unit_mixture(x, abundances))
        if self.pixel_total is None:
            return unit, target
        return pixel_intensity(target, unit, self.scale_rule) * unit, target


def build_autoencoder(
    options: NetworkOptions,
    *,
    endmembers: torch.Tensor,
    input_mean: torch.Tensor,
    input_scale: torch.Tensor,
    input_projection: torch.Tensor | None = None,
    pixel_total: float | None = None,
    scale_rule: str = "least_squares",
    fixed_endmembers: torch.Tensor | None = None,
    baseline_basis: torch.Tensor | None = None,
    max_shift: float | None = None,
) -> UnmixingAutoencoder:
    """Assemble an :class:`UnmixingAutoencoder` from validated options.

    ``endmembers`` is (n_components, n_channels) in the scaled units the
    network is trained on; ``input_projection`` (n_channels, k) makes the
    dense encoder read k principal-component scores instead of every
    channel; ``pixel_total`` turns on the per-pixel intensity;
    ``fixed_endmembers`` (n_components,) bool marks endmembers that never
    change; ``baseline_basis`` (n_channels, n_terms), orthonormal, adds a
    smooth background per pixel (:mod:`hs_aeunmix._baseline`).
    """
    n_components, n_channels = endmembers.shape
    n_inputs = n_channels if input_projection is None else input_projection.shape[1]
    if options.encoder == "dense":
        encoder: nn.Module = DenseEncoder(n_inputs, n_components, options)
    elif options.encoder == "conv":
        encoder = MultiBranchConvEncoder(n_channels, n_components, options)
    else:
        raise ValueError(f"encoder must be one of {ENCODERS}")
    return UnmixingAutoencoder(
        encoder,
        abundance_activation(options.abundance, n_components),
        LinearMixingDecoder(endmembers, fixed=fixed_endmembers, total=pixel_total),
        input_mean,
        input_scale,
        input_projection=input_projection,
        pixel_total=pixel_total,
        scale_rule=scale_rule,
        baseline_basis=baseline_basis,
        input_noise=options.input_noise,
        gaussian_dropout=options.gaussian_dropout,
        spatial=NeighbourhoodAttention() if options.spatial else None,
        max_shift=max_shift,
    )
