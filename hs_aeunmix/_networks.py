"""Network modules of the unmixing autoencoder.

The autoencoder is ``decoder(abundance_activation(encoder(x)))``. Only the
encoder varies between configurations; the decoder is always the linear
mixing model, a bias-free linear layer whose non-negative weight matrix
(channels x endmembers) *is* the set of endmember spectra.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional

ENCODERS = ("dense", "conv")
ABUNDANCE_CONSTRAINTS = ("sum_to_one", "nonnegative")


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


def abundance_activation(constraint: str) -> nn.Module:
    """Return the activation that enforces an abundance constraint."""
    if constraint == "sum_to_one":
        return SumToOne()
    if constraint == "nonnegative":
        return SoftlyRectifiedTanh()
    raise ValueError(f"abundance must be one of {ABUNDANCE_CONSTRAINTS}")


def _dense_block(
    n_in: int, n_out: int, dropout: float, negative_slope: float = 0.0
) -> nn.Sequential:
    linear = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(linear.weight, a=negative_slope, nonlinearity="leaky_relu")
    nn.init.zeros_(linear.bias)
    return nn.Sequential(
        linear,
        nn.BatchNorm1d(n_out),
        nn.LeakyReLU(negative_slope),
        nn.Dropout(dropout),
    )


class DenseEncoder(nn.Module):
    """Fully connected encoder: spectrum -> hidden layers -> ``n_components``."""

    def __init__(
        self,
        n_channels: int,
        n_components: int,
        hidden_layer_sizes: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        sizes = [n_channels, *hidden_layer_sizes]
        self.hidden = nn.Sequential(
            *(
                _dense_block(n_in, n_out, dropout, negative_slope=0.01)
                for n_in, n_out in pairwise(sizes)
            )
        )
        self.latent = nn.Linear(sizes[-1], n_components)
        nn.init.xavier_uniform_(self.latent.weight)
        nn.init.zeros_(self.latent.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent(self.hidden(x))


class MultiBranchConvEncoder(nn.Module):
    """Multi-scale 1-D convolutional encoder of Georgiev et al. (PNAS 2024).

    Parallel convolutions of several kernel sizes along the spectrum
    ('same' padding, ReLU, He initialisation, batch norm, dropout) are merged
    channel-wise by a learned 1 x 1 convolution back to one value per spectral
    channel, then reduced by a :class:`DenseEncoder`.
    """

    def __init__(
        self,
        n_channels: int,
        n_components: int,
        hidden_layer_sizes: Sequence[int],
        dropout: float,
        kernel_sizes: Sequence[int],
        n_filters: int,
        conv_dropout: float,
    ) -> None:
        super().__init__()
        branches = []
        for kernel_size in kernel_sizes:
            conv = nn.Conv1d(1, n_filters, kernel_size)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            # Explicit 'same' padding: torch's padding="same" warns (and copies
            # the input) for even kernel sizes, which the paper uses.
            left = (kernel_size - 1) // 2
            branches.append(
                nn.Sequential(
                    nn.ConstantPad1d((left, kernel_size - 1 - left), 0.0),
                    conv,
                    nn.BatchNorm1d(n_filters),
                    nn.ReLU(),
                    nn.Dropout(conv_dropout),
                )
            )
        self.branches = nn.ModuleList(branches)
        self.merge = nn.Conv1d(n_filters * len(kernel_sizes), 1, kernel_size=1)
        self.reduction = DenseEncoder(
            n_channels, n_components, hidden_layer_sizes, dropout
        )

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
    which the estimator undoes, so endmembers keep the data's units.
    """

    def __init__(
        self,
        encoder: nn.Module,
        activation: nn.Module,
        decoder: LinearMixingDecoder,
        input_mean: torch.Tensor,
        input_scale: torch.Tensor,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.activation = activation
        self.decoder = decoder
        self.register_buffer("input_mean", input_mean)
        self.register_buffer("input_scale", input_scale)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Abundances of scaled spectra ``x``."""
        return self.activation(self.encoder((x - self.input_mean) / self.input_scale))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        abundances = self.encode(x)
        return self.decoder(abundances), abundances


def build_autoencoder(
    *,
    encoder: str,
    abundance: str,
    endmembers: torch.Tensor,
    input_mean: torch.Tensor,
    input_scale: torch.Tensor,
    hidden_layer_sizes: Sequence[int],
    dropout: float,
    kernel_sizes: Sequence[int],
    n_filters: int,
    conv_dropout: float,
) -> UnmixingAutoencoder:
    """Assemble an :class:`UnmixingAutoencoder` from validated options.

    ``endmembers`` is (n_components, n_channels) in the scaled units the
    network is trained on.
    """
    n_components, n_channels = endmembers.shape
    if encoder == "dense":
        encoder_module: nn.Module = DenseEncoder(
            n_channels, n_components, hidden_layer_sizes, dropout
        )
    elif encoder == "conv":
        encoder_module = MultiBranchConvEncoder(
            n_channels,
            n_components,
            hidden_layer_sizes,
            dropout,
            kernel_sizes,
            n_filters,
            conv_dropout,
        )
    else:
        raise ValueError(f"encoder must be one of {ENCODERS}")
    return UnmixingAutoencoder(
        encoder_module,
        abundance_activation(abundance),
        LinearMixingDecoder(endmembers),
        input_mean,
        input_scale,
    )
