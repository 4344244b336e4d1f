"""Tests of the reconstruction losses against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hs_aeunmix._losses import (
    LOSS_SPECS,
    MIN_VOLUME_DELTA,
    VOLUME_EPSILON,
    endmember_penalty,
    get_loss,
    l21_penalty,
    pixel_squared_error,
    simplex_log_volume,
    volume_penalty,
)


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(8, 16, generator=generator, dtype=torch.float64) + 0.1
    reconstruction = torch.rand(8, 16, generator=generator, dtype=torch.float64) + 0.1
    return reconstruction, target


def test_pixel_squared_error_has_the_values_and_gradients_of_its_definition():
    # The fused mse_loss stands in for (r - t).square() for speed alone.
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(64, 300, generator=generator)
    grads = []
    for loss in (
        pixel_squared_error,
        lambda r, t: (r - t).square().mean(dim=-1),
    ):
        reconstruction = torch.rand(64, 300, generator=torch.Generator().manual_seed(2))
        reconstruction.requires_grad_(True)
        values = loss(reconstruction, target)
        (values * torch.linspace(0.5, 2.0, 64)).sum().backward()
        grads.append((values.detach(), reconstruction.grad))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_mse(pair):
    reconstruction, target = pair
    expected = np.mean((reconstruction.numpy() - target.numpy()) ** 2)
    assert float(
        get_loss("mse", sad_weight=0)(reconstruction, target)
    ) == pytest.approx(expected)


def _angles(a, b):
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return np.arccos(cosine)


def test_spectral_angle(pair):
    reconstruction, target = pair
    expected = _angles(reconstruction.numpy(), target.numpy()).mean()
    assert float(
        get_loss("sad", sad_weight=0)(reconstruction, target)
    ) == pytest.approx(expected, rel=1e-6)


def test_spectral_angle_ignores_intensity_and_has_gradient_at_zero(pair):
    _, target = pair
    scaled = (3 * target).clone().requires_grad_(True)
    loss = get_loss("sad", sad_weight=0)(scaled, target)
    assert loss.item() < 1e-3
    loss.backward()
    assert torch.isfinite(scaled.grad).all()


def test_mse_plus_spectral_angle(pair):
    reconstruction, target = pair
    expected = (
        np.mean((reconstruction.numpy() - target.numpy()) ** 2)
        + 0.5 * _angles(reconstruction.numpy(), target.numpy()).mean()
    )
    loss = get_loss("mse_sad", sad_weight=0.5)(reconstruction, target)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_poisson_deviance(pair):
    rate, counts = pair
    r, c = rate.numpy(), counts.numpy()
    expected = np.mean(r - c + c * np.log(c / r))
    loss = get_loss("poisson", sad_weight=0)(rate, counts)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_poisson_deviance_is_zero_at_perfect_fit_and_handles_zero_counts(pair):
    _, counts = pair
    counts = counts.clone()
    counts[0, :4] = 0
    loss = get_loss("poisson", sad_weight=0)
    # Rates are floored at 1e-8 so the log stays finite where counts are zero.
    assert float(loss(counts, counts)) == pytest.approx(0, abs=1e-9)


def test_poisson_minimum_is_at_the_counts(pair):
    _, counts = pair
    loss = get_loss("poisson", sad_weight=0)
    assert float(loss(counts, counts)) < float(loss(counts * 1.05, counts))
    assert float(loss(counts, counts)) < float(loss(counts * 0.95, counts))


@pytest.mark.parametrize("name", sorted(LOSS_SPECS))
def test_losses_marked_of_the_residual_depend_on_nothing_else(name, pair):
    # A loss computed on the spectrum and mixture without their background
    # part (the residual pair) must give what it gives on the reconstruction.
    loss = get_loss(name, sad_weight=0.5)
    reconstruction, target = pair
    shift = torch.linspace(-0.05, 2.0, target.shape[1], dtype=target.dtype)
    unchanged = torch.isclose(
        loss(reconstruction + shift, target + shift), loss(reconstruction, target)
    )
    assert bool(unchanged) == LOSS_SPECS[name].of_residual


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("huber", sad_weight=0)


# --------------------------------------------------------------- penalties
@pytest.fixture
def endmembers():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(3, 40, generator=generator, dtype=torch.float64)


def test_volume_penalty_matches_numpy(endmembers):
    e = endmembers.numpy()
    gram = e @ e.T / e.shape[1]
    eps = VOLUME_EPSILON
    expected = (np.linalg.det(gram + eps * np.eye(3)) + eps) ** -0.5
    assert float(volume_penalty(endmembers)) == pytest.approx(expected, rel=1e-10)


def test_volume_penalty_grows_as_endmembers_align(endmembers):
    apart = float(volume_penalty(endmembers))
    aligned = endmembers.clone()
    aligned[1] = 0.9 * aligned[0] + 0.1 * aligned[1]
    assert float(volume_penalty(aligned)) > 5 * apart
    collinear = endmembers.clone()
    collinear[1] = 2 * collinear[0]
    # Capped near eps^(-1/2) instead of infinite.
    assert float(volume_penalty(collinear)) < VOLUME_EPSILON**-0.5 * 1.01


def test_volume_penalty_ignores_channel_count(endmembers):
    repeated = endmembers.repeat_interleave(3, dim=1)
    assert float(volume_penalty(repeated)) == pytest.approx(
        float(volume_penalty(endmembers)), rel=1e-10
    )


def test_l21_penalty_matches_numpy(endmembers):
    e = endmembers.numpy()
    expected = np.sum(np.sqrt(np.mean(e**2, axis=1)))
    assert float(l21_penalty(endmembers)) == pytest.approx(expected, rel=1e-6)


def test_l21_penalty_has_a_gradient_at_zero():
    zero = torch.zeros(2, 5, dtype=torch.float64, requires_grad=True)
    l21_penalty(zero).backward()
    assert torch.isfinite(zero.grad).all()


def test_endmember_penalty_combines_weights(endmembers):
    assert endmember_penalty(volume_weight=0, l21_weight=0) is None
    penalty = endmember_penalty(volume_weight=0.5, l21_weight=2.0)
    expected = 0.5 * volume_penalty(endmembers) + 2.0 * l21_penalty(endmembers)
    assert float(penalty(endmembers)) == pytest.approx(float(expected), rel=1e-10)


def test_simplex_log_volume_matches_numpy_and_ignores_scale(endmembers):
    e = endmembers.numpy()
    normalised = e / e.sum(axis=1, keepdims=True)
    gram = normalised @ normalised.T * e.shape[1]
    expected = np.linalg.slogdet(gram + MIN_VOLUME_DELTA * np.eye(3))[1]
    assert float(simplex_log_volume(endmembers)) == pytest.approx(expected, rel=1e-10)
    # An endmember's scale trades with its abundances: it must not count.
    rescaled = endmembers * torch.tensor([[2.0], [0.5], [7.0]], dtype=torch.float64)
    assert float(simplex_log_volume(rescaled)) == pytest.approx(expected, rel=1e-10)
    tighter = endmembers.clone()
    tighter[1] = 0.5 * (tighter[0] + tighter[1])
    assert float(simplex_log_volume(tighter)) < expected


def test_every_penalty_weight_reaches_the_sum(endmembers):
    assert endmember_penalty(volume_weight=0, l21_weight=0, min_volume_weight=0) is None
    penalty = endmember_penalty(
        volume_weight=0.5, l21_weight=2.0, min_volume_weight=0.25, loss_floor=3.0
    )
    expected = (
        0.5 * volume_penalty(endmembers)
        + 2.0 * l21_penalty(endmembers)
        + 0.25 * 3.0 * simplex_log_volume(endmembers)
    )
    assert float(penalty(endmembers)) == pytest.approx(float(expected), rel=1e-10)
    alone = endmember_penalty(volume_weight=0, l21_weight=0, min_volume_weight=0.25)
    assert float(alone(endmembers)) == pytest.approx(
        0.25 * float(simplex_log_volume(endmembers)), rel=1e-10
    )


def test_spectral_angle_is_per_spectrum_scale_free_and_finite_everywhere():
    # Small values: the angle must not depend on the spectra's magnitude.
    target = 1e-3 * torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64
    )
    reconstruction = 1e-3 * torch.tensor(
        [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64
    )
    loss = get_loss("sad", sad_weight=0)
    # Angles pi/4 and 0, averaged over the two spectra (not over channels).
    assert float(loss(reconstruction, target)) == pytest.approx(np.pi / 8, abs=1e-3)
    for start in (torch.zeros(2, 3, dtype=torch.float64), -target):
        # An all-zero spectrum and an opposite one: finite loss and gradient.
        spectra = start.clone().requires_grad_(True)
        value = loss(spectra, target)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(spectra.grad).all()


def test_every_loss_of_the_table_is_an_option_and_in_the_model_schema():
    from hs_aeunmix import AEUnmix, _persistence
    from hs_aeunmix._losses import LOSS_SPECS, LOSSES

    assert tuple(LOSS_SPECS) == LOSSES
    allowed = AEUnmix._parameter_constraints["loss"][0]
    assert allowed.options == {"auto", *LOSSES}
    assert "poisson" in LOSSES
    fitted = _persistence.HEADER_SCHEMA["properties"]["fitted"]["properties"]
    assert fitted["loss"]["enum"] == list(LOSSES)


@pytest.mark.parametrize("name", ["mse", "sad", "mse_sad", "poisson"])
def test_only_a_likelihood_of_counts_asks_for_positive_rates(name):
    from hs_aeunmix._losses import LOSS_SPECS

    rates = name == "poisson"
    assert LOSS_SPECS[name].rates is rates
    assert LOSS_SPECS[name].scale_rule == ("poisson" if rates else "least_squares")
