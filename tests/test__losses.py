"""Tests of the reconstruction losses against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hs_aeunmix._losses import get_loss


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(8, 16, generator=generator, dtype=torch.float64) + 0.1
    reconstruction = torch.rand(8, 16, generator=generator, dtype=torch.float64) + 0.1
    return reconstruction, target


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


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("huber", sad_weight=0)
