"""Tests of drift-aware decoding: shifting spectra, estimating per-pixel offsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hs_aeunmix._shift import estimate_shifts, noise_variance, shifted


def _peaks(n_channels: int = 200) -> torch.Tensor:
    channels = torch.arange(n_channels, dtype=torch.float64)
    return (
        torch.exp(-0.5 * ((channels - 80) / 3) ** 2)
        + 0.5 * torch.exp(-0.5 * ((channels - 120) / 5) ** 2)
        + 0.2
    )


@pytest.mark.parametrize("reach", [1, 3])
def test_shifted_is_linear_interpolation_with_end_values_held(reach):
    generator = np.random.default_rng(0)
    spectra = generator.random((6, 40))
    offsets = generator.uniform(-reach, reach, (6, 1))
    offsets[0] = 0.0
    offsets[1] = float(reach)
    expected = np.stack(
        [
            np.interp(np.arange(40) - offsets[i, 0], np.arange(40), spectra[i])
            for i in range(6)
        ]
    )
    result = shifted(torch.from_numpy(spectra), torch.from_numpy(offsets), reach)
    np.testing.assert_allclose(result.numpy(), expected, atol=1e-12)


def test_shifted_passes_gradients_to_spectra_and_offsets():
    spectra = _peaks()[None].repeat(2, 1).requires_grad_(True)
    offsets = torch.tensor([[0.3], [-1.2]], dtype=torch.float64, requires_grad=True)
    shifted(spectra, offsets, 2).sum().backward()
    assert torch.isfinite(spectra.grad).all()
    assert torch.isfinite(offsets.grad).all()


def test_noise_variance_of_white_noise():
    generator = torch.Generator().manual_seed(0)
    noise = 0.5 * torch.randn(50, 4000, generator=generator, dtype=torch.float64)
    variances = noise_variance(noise).numpy()
    np.testing.assert_allclose(variances, 0.25, rtol=0.1)
    assert variances.mean() == pytest.approx(0.25, rel=0.02)


def test_offsets_are_recovered_at_high_counts():
    generator = torch.Generator().manual_seed(0)
    truth = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64)[:, None]
    mixture = _peaks()[None].repeat(11, 1)
    counts = torch.poisson(1e4 * shifted(mixture, truth, 3), generator=generator)
    estimate = estimate_shifts(counts / 1e4, mixture, 3.0, free_intensity=True)
    np.testing.assert_allclose(estimate.numpy(), truth.numpy(), atol=0.1)


def test_the_prior_shrinks_offsets_the_noise_hides_and_bounds_them():
    generator = torch.Generator().manual_seed(0)
    mixture = _peaks()[None].repeat(400, 1)
    truth = torch.full((400, 1), 1.0, dtype=torch.float64)
    clean = shifted(mixture, truth, 3)
    errors = []
    for counts in (1e4, 30.0):
        noisy = torch.poisson(counts * clean, generator=generator) / counts
        errors.append(
            estimate_shifts(noisy, mixture, 3.0, free_intensity=False).mean().item()
        )
    # The mean estimate is close to the truth at high counts and shrinks
    # towards zero (not away from it) at low counts.
    assert abs(errors[0] - 1.0) < 0.05
    assert 0.0 < errors[1] < errors[0]
    far = shifted(mixture[:1], torch.tensor([[2.9]], dtype=torch.float64), 3)
    assert estimate_shifts(far, mixture[:1], 1.0, free_intensity=False).item() == 1.0
