"""Network modules of the unmixing autoencoder.

The autoencoder is ``decoder(abundance_activation(encoder(x)))``. Only the
encoder and the abundance constraint vary between configurations; the
decoder is always the linear mixing model, a bias-free linear layer whose
non-negative weight matrix (channels x endmembers) *is* the set of endmember
spectra.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional

from hs_aeunmix._spatial import NeighbourhoodAttention

ENCODERS = ("dense", "conv")
ABUNDANCE_CONSTRAINTS = ("sum_to_one", "nonnegative", "thresholded_sum_to_one")
ACTIVATIONS = ("leaky_relu", "relu")


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
    ('same' padding, He initialisation, batch norm, activation, dropout) are
    merged channel-wise by a learned 1 x 1 convolution back to one value per
    spectral channel, then reduced by a :class:`DenseEncoder`.
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
            layers += [_activation(options), nn.Dropout(options.conv_dropout)]
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.merge = nn.Conv1d(
            options.n_filters * len(options.kernel_sizes), 1, kernel_size=1
        )
        self.reduction = DenseEncoder(n_channels, n_components, options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectra = x.unsqueeze(1)
        features = torch.cat([branch(spectra) for branch in self.branches], dim=1)
        return self.reduction(self.merge(features).squeeze(1))


class LinearMixingDecoder(nn.Module):
    """Bias-free linear layer whose non-negative weights are the endmembers.

    Non-negativity is kept by projection (:meth:`clamp_`) after each
    optimiser step rather than by a reparametrisation, so the stored weights
    are the endmembers themselves and a VCA initialisation is used exactly.
    """

    def __init__(self, endmembers: torch.Tensor) -> None:
        super().__init__()
        # Stored as (channels, endmembers), the layout of nn.Linear.weight.
        self.weight = nn.Parameter(endmembers.T.clone().clamp_(min=0))

    @property
    def endmembers(self) -> torch.Tensor:
        """The endmember matrix, (n_components, n_channels)."""
        return self.weight.T

    def forward(self, abundances: torch.Tensor) -> torch.Tensor:
        return abundances @ self.weight.T

    @torch.no_grad()
    def clamp_(self) -> None:
        self.weight.clamp_(min=0)


class UnmixingAutoencoder(nn.Module):
    """Encoder, abundance constraint and linear-mixing decoder.

    The encoder sees spectra standardised per channel (``input_mean``,
    ``input_scale`` buffers) so that no channel dominates by intensity alone;
    the decoder reproduces the spectra divided by one global ``data_scale``,
    which the estimator undoes, so endmembers keep the data's units. Input
    noise and Gaussian dropout act in training mode only.
    """

    def __init__(
        self,
        encoder: nn.Module,
        activation: nn.Module,
        decoder: LinearMixingDecoder,
        input_mean: torch.Tensor,
        input_scale: torch.Tensor,
        *,
        input_noise: float = 0.0,
        gaussian_dropout: float = 0.0,
        spatial: NeighbourhoodAttention | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.activation = activation
        self.spatial = spatial
        self.abundance_noise = GaussianDropout(gaussian_dropout)
        self.decoder = decoder
        self.input_noise = input_noise
        self.register_buffer("input_mean", input_mean)
        self.register_buffer("input_scale", input_scale)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Abundances of scaled spectra ``x``."""
        standardised = (x - self.input_mean) / self.input_scale
        if self.training and self.input_noise:
            standardised = standardised + self.input_noise * torch.randn_like(
                standardised
            )
        return self.activation(self.encoder(standardised))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        abundances = self.encode(x)
        return self.decoder(self.abundance_noise(abundances)), abundances


def build_autoencoder(
    options: NetworkOptions,
    *,
    endmembers: torch.Tensor,
    input_mean: torch.Tensor,
    input_scale: torch.Tensor,
) -> UnmixingAutoencoder:
    """Assemble an :class:`UnmixingAutoencoder` from validated options.

    ``endmembers`` is (n_components, n_channels) in the scaled units the
    network is trained on.
    """
    n_components, n_channels = endmembers.shape
    if options.encoder == "dense":
        encoder: nn.Module = DenseEncoder(n_channels, n_components, options)
    elif options.encoder == "conv":
        encoder = MultiBranchConvEncoder(n_channels, n_components, options)
    else:
        raise ValueError(f"encoder must be one of {ENCODERS}")
    return UnmixingAutoencoder(
        encoder,
        abundance_activation(options.abundance, n_components),
        LinearMixingDecoder(endmembers),
        input_mean,
        input_scale,
        input_noise=options.input_noise,
        gaussian_dropout=options.gaussian_dropout,
        spatial=NeighbourhoodAttention() if options.spatial else None,
    )
