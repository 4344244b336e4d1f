"""Tests of the network modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hs_aeunmix._networks import (
    LinearMixingDecoder,
    MultiBranchConvEncoder,
    SoftlyRectifiedTanh,
    SumToOne,
    abundance_activation,
    build_autoencoder,
)


def test_softly_rectified_tanh_matches_formula():
    x = torch.linspace(-3, 3, 13)
    expected = np.log1p(np.exp(10 * np.tanh(x.numpy()))) / 10
    np.testing.assert_allclose(SoftlyRectifiedTanh()(x).numpy(), expected, rtol=1e-6)
    assert (SoftlyRectifiedTanh()(x) >= 0).all()


def test_sum_to_one():
    abundances = SumToOne()(torch.randn(5, 4))
    torch.testing.assert_close(abundances.sum(-1), torch.ones(5))
    assert (abundances >= 0).all()


def test_unknown_abundance_constraint():
    with pytest.raises(ValueError, match="abundance must be one of"):
        abundance_activation("free")


def test_decoder_is_linear_mixing_without_bias():
    endmembers = torch.rand(3, 20)
    decoder = LinearMixingDecoder(endmembers)
    abundances = torch.rand(4, 3)
    torch.testing.assert_close(decoder(abundances), abundances @ endmembers)
    assert len(list(decoder.parameters())) == 1
    torch.testing.assert_close(decoder(torch.zeros(1, 3)), torch.zeros(1, 20))


def test_decoder_clamp_keeps_endmembers_non_negative():
    decoder = LinearMixingDecoder(torch.rand(2, 5))
    with torch.no_grad():
        decoder.weight[0, 0] = -1.0
    decoder.clamp_()
    assert decoder.weight.min() >= 0


def test_conv_encoder_keeps_spectrum_length_and_handles_even_kernels():
    encoder = MultiBranchConvEncoder(
        n_channels=37,
        n_components=3,
        hidden_layer_sizes=(16,),
        dropout=0.0,
        kernel_sizes=(5, 10, 15, 20),
        n_filters=4,
        conv_dropout=0.2,
    )
    merged = encoder.merge(
        torch.cat([branch(torch.rand(6, 1, 37)) for branch in encoder.branches], dim=1)
    )
    assert merged.shape == (6, 1, 37)
    assert encoder(torch.rand(6, 37)).shape == (6, 3)


@pytest.mark.parametrize("encoder", ["dense", "conv"])
def test_autoencoder_shapes(encoder):
    model = build_autoencoder(
        encoder=encoder,
        abundance="sum_to_one",
        endmembers=torch.rand(3, 30),
        input_mean=torch.zeros(30),
        input_scale=torch.ones(30),
        hidden_layer_sizes=(16, 8),
        dropout=0.0,
        kernel_sizes=(3, 4),
        n_filters=2,
        conv_dropout=0.0,
    ).eval()
    reconstruction, abundances = model(torch.rand(5, 30))
    assert reconstruction.shape == (5, 30)
    assert abundances.shape == (5, 3)
    torch.testing.assert_close(reconstruction, abundances @ model.decoder.weight.T)


def test_unknown_encoder():
    with pytest.raises(ValueError, match="encoder must be one of"):
        build_autoencoder(
            encoder="lstm",
            abundance="sum_to_one",
            endmembers=torch.rand(2, 5),
            input_mean=torch.zeros(5),
            input_scale=torch.ones(5),
            hidden_layer_sizes=(4,),
            dropout=0.0,
            kernel_sizes=(3,),
            n_filters=2,
            conv_dropout=0.0,
        )
