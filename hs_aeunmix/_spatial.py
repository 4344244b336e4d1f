"""Spatial-spectral unmixing: a pixel's abundances may use its neighbourhood.

With ``spatial=True`` the per-pixel model is trained as usual (endmembers and
encoder), then a :class:`NeighbourhoodAttention` layer replaces each pixel's
abundances by a weighted mean of the estimates in its 3 x 3 neighbourhood.
The weights fall off with the difference between a neighbour's estimate and
the pixel's own (a learned sharpness) and carry a learned bias per offset,
so neighbours across a boundary, whose abundances differ, barely count:
noise is averaged out inside regions while edges stay sharp. A weighted mean
of sum-to-one, non-negative vectors is sum-to-one and non-negative, so the
abundance constraint survives, and the endmembers are those of the
per-pixel model: results mean the same as without ``spatial``.

The layer is applied :data:`PASSES` times, its weights recomputed from the
last pass's maps each time: one 3 x 3 pass averages at most 9 estimates,
which at the lowest doses leaves maps far noisier than the regions they
show are (measured below); three passes reach a 7 x 7 neighbourhood, still
stopped at edges at every pass.

Reconstruction alone rewards each pixel's own noisy estimate, i.e. no
averaging. The layer's few parameters are therefore fitted, with the
endmembers fixed, to the maximum a posteriori objective under a
total-variation prior on the maps, ``p(A) ~ exp(-spatial_weight * TV(A))``:
with Gaussian noise of variance ``s2`` per channel (the per-pixel model's
mean squared error) and ``B`` channels, the per-pixel objective is
``MSE + 2 * spatial_weight * s2 / B * TV``. The weight is a prior strength
per unit of abundance change between neighbours, independent of the data's
units and channel count. With the endmembers and spectra fixed, each
pixel's MSE given its fractions needs only a few products of its spectrum
computed once
(:meth:`~hs_aeunmix._networks.UnmixingAutoencoder.squared_error_given`):
on 20 held-out scenes of each generator the fit's median time is 2.4 to
4.3 times shorter than when every step reconstructed the spectra, with
the same maps to 7e-6 (``benchmarks/spatial_fit.py``).

Borders and masked pixels are neighbours that do not exist, and scans of any
shape and size work, line scans included (1 x n images).

**Why three passes** (until 2026-12-06 one). Measured with
``benchmarks/spatial_passes.py``, which trains the default once per scene
and refits the layer alone for 1, 3 and 5 passes (abundance RMSE median /
90th percentile; scenes better / worse than one pass by more than 0.01;
the largest rise of one endmember's normalised map error, where a small
phase averaged away shows first). Development STEM-EELS scenes (28; 10 to
5000 counts per spectrum): one pass 0.290 / 0.439, three 0.264 / 0.430
(17 / 0, largest rise 0.028), five 0.275 / 0.429 (18 / 1, and one
endmember's error up by 2.9: a small phase blurred away). On the other
two generators, whose maps are not limited by each pixel's noise, the
passes barely matter (16 development scenes each): the scene family 0.107
/ 0.160 -> 0.107 / 0.158 (1 / 0), the Raman compounds 0.056 / 0.280 ->
0.058 / 0.282 (0 / 0). Three passes were chosen on STEM-EELS (the other
generators cannot choose: they do not respond) and checked on the held-out
halves of all three (``benchmarks/ablation.py``, "default, 2026-12-06,
three passes of the spatial layer" against the previous default; the
endmembers are the same bit for bit): STEM-EELS scenes 0-59 0.272 / 0.427
-> 0.259 / 0.413 (28 / 0), the family's 0-79 0.116 / 0.325 -> 0.116 /
0.324 (4 / 0), the Raman compounds' 0-79 0.106 / 0.314 -> 0.109 / 0.314
(4 / 0, with 16 scenes worse by 0.001 to 0.007: a small loss where the
maps were not noise-limited). STEM-EELS held-out scenes 60-79, run only
after the choice: 0.272 / 0.366 -> 0.259 / 0.355 (10 / 0); the Raman
compounds' 80-99: 0.110 / 0.283 -> 0.110 / 0.282 (0 / 2: scene 96 0.230
-> 0.255, 82 0.025 -> 0.039), the family's 80-99 0.091 / 0.163 -> 0.089 /
0.160 (0 / 0). Choosing the number of passes per scene by a blind-spot
loss (each pixel predicted without its own data; the same script) was
refused: it restores the Raman compounds' one-pass maps (0.058 -> 0.056)
but on STEM-EELS is worse than three passes on 2 of 28 scenes and better
on none, and choosing from the truth itself would gain at most 0.003.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

NEIGHBOURHOOD = 3
_HALO = NEIGHBOURHOOD // 2
#: Times the layer is applied (see the module docstring). Models fitted
#: before this constant existed were fitted for one pass and keep it.
PASSES = 3
_PASSES_BEFORE_2026_12_06 = 1
# Initial sharpness of the attention, per squared abundance difference: a
# difference of 0.05 (noise) keeps ~80 % of a neighbour's weight, one of 0.3
# (an edge) removes it.
_INITIAL_SHARPNESS = 100.0
# Smooths |x| near zero so that the total variation has a gradient there.
_TV_SMOOTHING = 1e-6
# The layer has 10 parameters: full-batch Adam converges in a few hundred
# steps of a fraction of a second each on a 64 x 64 image.
_FIT_STEPS = 200
_FIT_LEARNING_RATE = 0.05
# Spectrum values a fitting step sees: the 64 x 64 x 200 scenes the layer
# was measured on. A scan of at most this many values is fitted whole; a
# larger one on _FIT_WINDOWS random windows of about this many values (at
# least _MIN_WINDOW_PIXELS pixels), copied before training may overwrite the
# scan: cost and memory do not grow with the scan (the layer has 10
# parameters).
_FIT_WINDOW_VALUES = 4096 * 200
_MIN_WINDOW_PIXELS = 256
_FIT_WINDOWS = 4


class NeighbourhoodAttention(nn.Module):
    """Edge-aware weighted mean of abundance estimates over a 3 x 3 neighbourhood.

    ``w(p, q) = softmax_q(-sharpness * |a_p - a_q|² + bias[q - p])`` over the
    valid neighbours ``q`` of ``p`` (the pixel itself included), and one
    pass outputs ``sum_q w(p, q) a_q``; the layer applies ``passes`` of them
    (a buffer, saved with the model), each weighing the last pass's maps.
    """

    def __init__(self, passes: int | None = None) -> None:
        super().__init__()
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(_INITIAL_SHARPNESS)))
        self.offset_bias = nn.Parameter(torch.zeros(NEIGHBOURHOOD**2))
        self.register_buffer(
            "passes",
            torch.tensor(PASSES if passes is None else passes, dtype=torch.int64),
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A state saved before the passes were kept was fitted for one pass.
        state_dict.setdefault(
            prefix + "passes",
            torch.tensor(_PASSES_BEFORE_2026_12_06, dtype=torch.int64),
        )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, abundances: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``abundances`` (n, H, W) and ``valid`` (H, W) -> (n, H, W).

        Values at invalid pixels are ignored as neighbours; their own output
        is meaningless.
        """
        height, width = valid.shape
        # Which neighbours exist does not change from pass to pass.
        absent = (
            functional.unfold(
                valid[None, None].to(abundances.dtype), NEIGHBOURHOOD, padding=_HALO
            ).view(NEIGHBOURHOOD**2, height, width)
            < 0.5
        )
        invalid = ~valid.unsqueeze(0)
        for _ in range(int(self.passes)):
            abundances = self._average(abundances, absent, invalid)
        return abundances

    def _average(
        self, abundances: torch.Tensor, absent: torch.Tensor, invalid: torch.Tensor
    ) -> torch.Tensor:
        """One pass: each pixel's weighted mean over its existing neighbours."""
        n, height, width = abundances.shape
        neighbours = functional.unfold(
            abundances.unsqueeze(0), NEIGHBOURHOOD, padding=_HALO
        ).view(n, NEIGHBOURHOOD**2, height, width)
        difference = ((neighbours - abundances.unsqueeze(1)) ** 2).sum(dim=0)
        score = -self.log_sharpness.exp() * difference + self.offset_bias[:, None, None]
        score = score.masked_fill(absent, -torch.inf)
        # Invalid pixels may have no valid neighbour at all: give them finite
        # weights so that no NaN reaches the gradients.
        score = score.masked_fill(invalid, 0.0)
        weights = torch.softmax(score, dim=0)
        return (weights.unsqueeze(0) * neighbours).sum(dim=1)


def total_variation(abundances: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of abundance maps (n, H, W), per valid pixel.

    Sums ``|a_p - a_q|`` over endmembers and over the right and lower
    neighbours ``q`` of every valid pixel ``p`` (``q`` valid too), divided by
    the number of valid pixels.
    """
    total = abundances.new_zeros(())
    for axis in (1, 2):
        if abundances.shape[axis] < 2:
            continue
        step = torch.diff(abundances, dim=axis)
        both = torch.logical_and(
            valid.narrow(axis - 1, 0, valid.shape[axis - 1] - 1),
            valid.narrow(axis - 1, 1, valid.shape[axis - 1] - 1),
        )
        total = total + (torch.sqrt(step**2 + _TV_SMOOTHING).sum(dim=0) * both).sum()
    return total / valid.sum().clamp(min=1)


@dataclass(frozen=True)
class PixelImage:
    """Spectra on their scan grid: the input of spatial training and inference.

    Attributes
    ----------
    spectra : torch.Tensor
        (H, W, n_channels), zeros where ``valid`` is False.
    valid : torch.Tensor
        (H, W) bool: pixels with a spectrum (not masked).
    """

    spectra: torch.Tensor
    valid: torch.Tensor

    @classmethod
    def from_rows(
        cls,
        rows: np.ndarray,
        image_shape: tuple[int, int],
        navigation_mask: np.ndarray | None,
        device: torch.device,
    ) -> PixelImage:
        """Place spectra (one per unmasked pixel, C order) on their grid."""
        height, width = image_shape
        valid = np.ones(height * width, dtype=bool)
        if navigation_mask is not None:
            valid = ~navigation_mask
        spectra = torch.zeros((height * width, rows.shape[1]), dtype=torch.float32)
        spectra[torch.from_numpy(valid)] = torch.from_numpy(rows)
        return cls(
            spectra.view(height, width, -1).to(device),
            torch.from_numpy(valid.reshape(height, width)).to(device),
        )


def check_geometry(
    n_rows: int, image_shape, navigation_mask
) -> tuple[tuple[int, int], np.ndarray | None]:
    """Validate the scan grid of ``n_rows`` spectra; returns (shape, flat mask)."""
    if image_shape is None:
        raise ValueError(
            "spatial=True needs the scan grid: pass image_shape=(ny, nx) (rows of "
            "X in C order) to fit and transform, or use s.decomposition, which "
            "passes it."
        )
    shape = tuple(int(size) for size in np.atleast_1d(image_shape))
    if len(shape) == 1:
        shape = (1, shape[0])
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            "image_shape must be (ny, nx), or (n,) for a line scan, got "
            f"{image_shape!r}."
        )
    mask = None
    if navigation_mask is not None:
        mask = np.asarray(navigation_mask, dtype=bool).ravel()
        if mask.size != shape[0] * shape[1]:
            raise ValueError(
                f"navigation_mask has {mask.size} values for an image of {shape}."
            )
    expected = shape[0] * shape[1] - (0 if mask is None else int(mask.sum()))
    if n_rows != expected:
        raise ValueError(
            f"X has {n_rows} spectra, but an image of shape {shape}"
            + ("" if mask is None else f" with {int(mask.sum())} masked pixels")
            + f" has {expected}."
        )
    return shape, mask


def fit_neighbourhood(
    attention: NeighbourhoodAttention,
    windows: list[tuple[PixelImage, Callable[[torch.Tensor], torch.Tensor]]],
    *,
    n_channels: int,
    noise_variance: float,
    spatial_weight: float,
    steps: int = _FIT_STEPS,
) -> None:
    """Fit the layer's parameters to the MAP objective of the module docstring.

    ``windows``: the whole scan, or windows of it (:func:`fit_windows`), each
    as ``(abundances, error)``: the per-pixel estimates as an image (n
    components as "channels") and ``error(fractions)``, the fixed model's
    mean squared error over the ``n_channels`` channels of each valid pixel
    (C order) given its fractions
    (:meth:`~hs_aeunmix._networks.UnmixingAutoencoder.squared_error_given`);
    the steps take them in turn. Full-batch Adam.
    """
    prior = 2.0 * spatial_weight * noise_variance / n_channels
    optimizer = torch.optim.Adam(attention.parameters(), lr=_FIT_LEARNING_RATE)
    attention.train()
    for step in range(steps):
        abundances, error = windows[step % len(windows)]
        maps, valid = abundances.spectra.permute(2, 0, 1), abundances.valid
        optimizer.zero_grad(set_to_none=True)
        refined = attention(maps, valid)
        loss = error(refined[:, valid].T).mean() + prior * total_variation(
            refined, valid
        )
        loss.backward()
        optimizer.step()
    attention.eval()


def fit_windows(
    X: np.ndarray, geometry, seed: int
) -> list[tuple[np.ndarray, tuple[int, int], np.ndarray | None]]:
    """The parts of the scan the layer is fitted on (:data:`_FIT_WINDOW_VALUES`).

    Returns ``(spectra, shape, flat mask)`` per window, copies that training
    may not overwrite: the whole scan when it is small (at most
    :data:`_FIT_WINDOW_VALUES` values, or :data:`_MIN_WINDOW_PIXELS`
    pixels), else the rows of :data:`_FIT_WINDOWS` random windows (drawn
    from ``seed``, in float32).
    """
    (height, width), mask = geometry
    pixels = max(_FIT_WINDOW_VALUES // X.shape[1], _MIN_WINDOW_PIXELS)
    if height * width <= pixels:
        return [(np.array(X), (height, width), mask)]
    valid = np.ones(height * width, dtype=bool) if mask is None else ~mask
    row_of = np.full(height * width, -1)
    row_of[valid] = np.arange(int(valid.sum()))
    row_of = row_of.reshape(height, width)
    window_height = min(height, math.isqrt(pixels))
    window_width = min(width, pixels // window_height)
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, height - window_height + 1, _FIT_WINDOWS)
    lefts = rng.integers(0, width - window_width + 1, _FIT_WINDOWS)
    windows = []
    for top, left in zip(tops, lefts, strict=True):
        rows = row_of[top : top + window_height, left : left + window_width]
        if (rows >= 0).any():
            windows.append(
                (
                    np.array(X[rows[rows >= 0]], dtype=np.float32),
                    rows.shape,
                    (rows < 0).ravel(),
                )
            )
    return windows
