"""Tests of the network modules."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _helpers import background_autoencoder

from hs_aeunmix import _networks
from hs_aeunmix._losses import pixel_squared_error
from hs_aeunmix._networks import (
    DenseEncoder,
    GaussianDropout,
    LinearMixingDecoder,
    MultiBranchConvEncoder,
    NetworkOptions,
    SoftlyRectifiedTanh,
    SumToOne,
    ThresholdedSumToOne,
    abundance_activation,
    build_autoencoder,
    has_float64,
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
        abundance_activation("free", 3)


def test_thresholded_sum_to_one_can_be_exactly_zero():
    layer = ThresholdedSumToOne(3).train()
    with torch.no_grad():
        layer.threshold.fill_(0.5)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    abundances = layer(x)
    assert (abundances >= 0).all()
    assert (abundances == 0).any()
    # Rows with a value clearly above its threshold sum to one (the 1e-7 in
    # the denominator only matters for rows that are all but zero).
    clear = abundances.sum(-1) > 1e-3
    assert clear.sum() >= 16
    totals = abundances[clear].sum(-1)
    torch.testing.assert_close(totals, torch.ones_like(totals), atol=1e-5, rtol=0)


def test_thresholds_never_go_negative():
    layer = ThresholdedSumToOne(2).eval()
    with torch.no_grad():
        layer.threshold.fill_(-5.0)
    x = torch.tensor([[-0.5, 0.2]])
    # A negative threshold acts as zero: relu(x - 0) after the normalisation.
    normalised = layer.normalisation(torch.nn.functional.leaky_relu(x, 0.1))
    expected = torch.relu(normalised)
    torch.testing.assert_close(layer(x), expected / (expected.sum() + 1e-7))


def test_gaussian_dropout_only_in_training():
    torch.manual_seed(0)
    layer = GaussianDropout(0.2)
    x = torch.ones(20000)
    noisy = layer.train()(x)
    assert float(noisy.mean()) == pytest.approx(1.0, abs=0.02)
    assert float(noisy.std()) == pytest.approx((0.2 / 0.8) ** 0.5, rel=0.03)
    torch.testing.assert_close(layer.eval()(x), x)


@pytest.mark.parametrize(
    ("options", "layer_types"),
    [
        (
            NetworkOptions(hidden_layer_sizes=(8,)),
            ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"],
        ),
        (
            NetworkOptions(
                hidden_layer_sizes=(8,), activation="relu", batch_norm=False
            ),
            ["Linear", "ReLU", "Dropout"],
        ),
    ],
)
def test_dense_blocks_follow_the_options(options, layer_types):
    encoder = DenseEncoder(10, 3, options)
    assert [type(layer).__name__ for layer in encoder.hidden[0]] == layer_types


def test_dense_encoder_without_hidden_layers_is_one_linear_map():
    encoder = DenseEncoder(10, 3, NetworkOptions(hidden_layer_sizes=()))
    assert len(encoder.hidden) == 0
    assert encoder(torch.rand(4, 10)).shape == (4, 3)


def test_input_noise_only_in_training():
    options = NetworkOptions(hidden_layer_sizes=(), input_noise=0.5)
    model = build_autoencoder(
        options,
        endmembers=torch.rand(2, 6),
        input_mean=torch.zeros(6),
        input_scale=torch.ones(6),
    )
    x = torch.rand(3, 6)
    model.eval()
    torch.testing.assert_close(model.encode(x), model.encode(x))
    model.train()
    assert not torch.equal(model.encode(x), model.encode(x))


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
        37,
        3,
        NetworkOptions(
            hidden_layer_sizes=(16,), kernel_sizes=(5, 10, 15, 20), n_filters=4
        ),
    )
    merged = encoder.merge(
        torch.cat([branch(torch.rand(6, 1, 37)) for branch in encoder.branches], dim=1)
    )
    assert merged.shape == (6, 1, 37)
    assert encoder(torch.rand(6, 37)).shape == (6, 3)


def _branch_by_branch(encoder: MultiBranchConvEncoder, x: torch.Tensor):
    """The conv encoder's merged feature maps, each branch's layers run in turn."""
    maps = torch.cat([branch(x.unsqueeze(1)) for branch in encoder.branches], dim=1)
    return encoder.merge(maps).squeeze(1)


def _conv_encoder(**options) -> MultiBranchConvEncoder:
    torch.manual_seed(0)
    return MultiBranchConvEncoder(
        37,
        3,
        NetworkOptions(
            hidden_layer_sizes=(16,),
            kernel_sizes=(5, 10, 15, 20),
            n_filters=4,
            **options,
        ),
    )


def _assert_same_gradients(
    fused: torch.nn.Module, reference: torch.nn.Module, zero_scale: float = 1e-3
) -> None:
    for (name, value), (_, reference_value) in zip(
        fused.named_parameters(), reference.named_parameters(), strict=True
    ):
        # A bias before batch norm has a gradient of zero up to rounding.
        scale = float(reference_value.grad.abs().max()) + zero_scale
        torch.testing.assert_close(
            value.grad, reference_value.grad, rtol=1e-4, atol=1e-4 * scale, msg=name
        )


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_fused_conv_encoder_equals_its_branches_run_one_by_one(activation, batch_norm):
    fused = _conv_encoder(
        activation=activation, negative_slope=0.3, batch_norm=batch_norm, conv_dropout=0
    )
    reference = copy.deepcopy(fused)
    x = torch.rand(6, 37) * 3
    for mode in ("train", "eval"):
        getattr(fused, mode)()
        getattr(reference, mode)()
        # The reduction of the reference takes the merged maps as they are.
        expected = reference.reduction(_branch_by_branch(reference, x))
        got = fused(x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        (got**2).sum().backward()
        (expected**2).sum().backward()
    # Gradients of every weight, and the running statistics of batch norm.
    _assert_same_gradients(fused, reference)
    for (name, value), (_, reference_value) in zip(
        fused.named_buffers(), reference.named_buffers(), strict=True
    ):
        torch.testing.assert_close(value, reference_value, msg=name)


def test_fused_conv_encoder_drops_whole_maps_with_the_usual_scaling():
    encoder = _conv_encoder(conv_dropout=0.5, batch_norm=False)
    x = torch.rand(1, 37).expand(4000, 37)
    encoder.train()
    merged = []
    encoder.reduction.forward = merged.append  # keep the merged maps
    torch.manual_seed(1)
    encoder(x)
    merged = merged[0]
    encoder.eval()
    expected = _branch_by_branch(encoder, x[:1])
    # Each spectrum drops its own maps: the same input gives different outputs,
    # whose mean is the output without dropout (factor 1 / (1 - p) on the rest).
    assert merged.std(dim=0).min() > 0
    bias = encoder.merge.bias
    torch.testing.assert_close(
        (merged - bias).mean(dim=0), (expected - bias)[0], rtol=0.1, atol=0.02
    )


@pytest.mark.parametrize("batch_norm", [True, False])
def test_fused_conv_encoder_drops_the_maps_each_branch_would_drop(batch_norm):
    fused = _conv_encoder(conv_dropout=0.5, batch_norm=batch_norm, negative_slope=0.3)
    reference = copy.deepcopy(fused)
    x = torch.rand(6, 37) * 3
    fused.train()
    reference.train()
    torch.manual_seed(3)
    got = fused(x)
    # The factors the fused encoder drew: one per spectrum and filter map.
    torch.manual_seed(3)
    keep = torch.nn.functional.dropout(torch.ones(6, 1, 16), 0.5, training=True)
    for branch in reference.branches:
        branch[-1] = torch.nn.Identity()  # the dropout, applied below instead
    maps = torch.cat([branch(x.unsqueeze(1)) for branch in reference.branches], dim=1)
    expected = reference.reduction(
        reference.merge(maps * keep.transpose(1, 2)).squeeze(1)
    )
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    (got**2).sum().backward()
    (expected**2).sum().backward()
    # With dropped maps those zero gradients round to about 1.4e-6, not 1e-7.
    _assert_same_gradients(fused, reference, zero_scale=0.1)


@pytest.mark.parametrize("encoder", ["dense", "conv"])
def test_autoencoder_shapes(encoder):
    model = build_autoencoder(
        NetworkOptions(
            encoder=encoder,
            hidden_layer_sizes=(16, 8),
            kernel_sizes=(3, 4),
            n_filters=2,
            conv_dropout=0.0,
        ),
        endmembers=torch.rand(3, 30),
        input_mean=torch.zeros(30),
        input_scale=torch.ones(30),
    ).eval()
    reconstruction, abundances = model(torch.rand(5, 30))
    assert reconstruction.shape == (5, 30)
    assert abundances.shape == (5, 3)
    torch.testing.assert_close(reconstruction, abundances @ model.decoder.weight.T)


def test_unknown_encoder():
    with pytest.raises(ValueError, match="encoder must be one of"):
        build_autoencoder(
            NetworkOptions(encoder="lstm"),
            endmembers=torch.rand(2, 5),
            input_mean=torch.zeros(5),
            input_scale=torch.ones(5),
        )


@pytest.mark.parametrize(
    ("pixel_total", "max_shift"), [(None, None), (20.0, None), (20.0, 2.0)]
)
def test_the_residual_pair_leaves_the_reconstructions_residual(pixel_total, max_shift):
    # With a background the pair is the mixture and the spectrum without
    # their background part; their difference is still the residual of
    # the reconstruction (the background is the least-squares fit of what
    # the mixture leaves), and so are the loss's gradients.
    model = background_autoencoder(
        60, 3, 3, pixel_total=pixel_total, max_shift=max_shift
    ).eval()
    spectra = torch.rand(8, 60) + torch.linspace(0, 2, 60) ** 2
    reconstruction, _ = model(spectra)
    prediction, target = model.residual_pair(spectra)
    torch.testing.assert_close(
        target - prediction, spectra - reconstruction, rtol=0, atol=1e-5
    )
    gradients = []
    for loss in (
        torch.nn.functional.mse_loss(model(spectra)[0], spectra),
        torch.nn.functional.mse_loss(*model.residual_pair(spectra)),
    ):
        model.zero_grad()
        loss.backward()
        gradients.append(model.decoder.weight.grad.clone())
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-4, atol=1e-6)
    # It never forms the background part of the reconstruction.
    assert not torch.allclose(target, spectra)


def test_the_residual_pair_without_a_background_is_the_reconstruction_and_spectrum():
    model = build_autoencoder(
        NetworkOptions(hidden_layer_sizes=(16,)),
        endmembers=torch.rand(3, 30),
        input_mean=torch.zeros(30),
        input_scale=torch.ones(30),
        pixel_total=5.0,
    ).eval()
    spectra = torch.rand(6, 30)
    prediction, target = model.residual_pair(spectra)
    assert torch.equal(prediction, model(spectra)[0])
    assert target is spectra


def _mixing_model(n_terms: int, pixel_total, scale_rule: str, max_shift=None):
    if n_terms:
        model = background_autoencoder(
            40, 3, n_terms, pixel_total=pixel_total, max_shift=max_shift
        )
    else:
        torch.manual_seed(0)
        model = build_autoencoder(
            NetworkOptions(hidden_layer_sizes=(16,)),
            endmembers=torch.rand(3, 40),
            input_mean=torch.zeros(40),
            input_scale=torch.ones(40),
            pixel_total=pixel_total,
            max_shift=max_shift,
        )
    model.scale_rule = scale_rule
    return model.eval()


@pytest.mark.parametrize(
    ("n_terms", "pixel_total", "scale_rule", "max_shift"),
    [
        (0, None, "least_squares", None),
        (0, 20.0, "least_squares", None),
        (0, 20.0, "poisson", None),
        (3, None, "least_squares", None),
        (3, 20.0, "least_squares", None),
        (3, 20.0, "least_squares", 2.0),
    ],
)
def test_the_error_given_the_spectra_is_the_reconstructions(
    n_terms, pixel_total, scale_rule, max_shift
):
    # (The Poisson rule never meets a background: the estimator refuses it.)
    model = _mixing_model(n_terms, pixel_total, scale_rule, max_shift)
    generator = torch.Generator().manual_seed(1)
    spectra = 5 * torch.rand(8, 40, generator=generator) + torch.linspace(0, 2, 40)
    fractions = torch.softmax(torch.randn(8, 3, generator=generator), dim=1)
    values, gradients = [], []
    for error in (
        model.squared_error_given(spectra),
        lambda abundances: pixel_squared_error(
            model.reconstruct(abundances, spectra), spectra
        ),
    ):
        abundances = fractions.clone().requires_grad_()
        value = error(abundances)
        value.sum().backward()
        values.append(value.double())
        gradients.append(abundances.grad.double())
    torch.testing.assert_close(values[0], values[1], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-3, atol=1e-5)


def test_without_drift_the_error_is_computed_without_reconstructing(monkeypatch):
    model = _mixing_model(3, 20.0, "least_squares")
    spectra = torch.rand(8, 40) + 1.0
    error = model.squared_error_given(spectra)
    monkeypatch.setattr(model, "reconstruct", lambda *args: pytest.fail("rebuilt"))
    monkeypatch.setattr(model, "decoder", None)
    assert error(torch.full((8, 3), 1 / 3)).shape == (8,)


def test_the_error_of_an_exact_mixture_stays_near_zero():
    # |x|² - (x·u)² / |u|² cancels: in float32 it would leave about 1e-7 of
    # |x|² per channel, in float64 about 1e-16.
    model = _mixing_model(0, 20.0, "least_squares")
    fractions = torch.softmax(torch.randn(16, 3), dim=1)
    spectra = 1000.0 * model.decoder(fractions).detach()
    error = model.squared_error_given(spectra)(fractions)
    assert float(error.abs().max()) < 1e-10 * float((spectra**2).mean())


def test_apples_gpus_reconstruct_for_want_of_float64(monkeypatch):
    assert not has_float64(torch.device("mps"))
    assert has_float64(torch.device("cpu"))
    assert has_float64(torch.device("cuda"))
    model = _mixing_model(3, 20.0, "least_squares")
    monkeypatch.setattr(_networks, "has_float64", lambda device: False)
    reconstruct, calls = model.reconstruct, []
    monkeypatch.setattr(
        model, "reconstruct", lambda *args: calls.append(args) or reconstruct(*args)
    )
    error = model.squared_error_given(torch.rand(8, 40) + 1.0)(
        torch.full((8, 3), 1 / 3)
    )
    assert len(calls) == 1
    assert error.dtype == torch.float32
