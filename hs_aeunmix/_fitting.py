"""How ``AEUnmix.fit`` turns spectra into a fitted state.

1. **Prepare** (:func:`prepare`): at most :data:`MAX_TRAINING_PIXELS`
   spectra (a uniform random sample of a larger scan: beyond a few tens of
   thousands, more pixels add time, not accuracy), screened for pixels
   without signal and spikes (:mod:`hs_aeunmix._screening`), divided by one
   global scale and split into training and held-out pixels. Only the sample
   is copied, never the whole scan.
2. **Start** (:mod:`hs_aeunmix._initialisation`): one or several sets of
   initial endmembers, known spectra (``fixed_endmembers``) in place.
3. **Train** (:mod:`hs_aeunmix._training`): one network per start, on a
   budget of steps (an epoch is
   :data:`~hs_aeunmix._training.STEPS_PER_EPOCH` steps, whatever the size of
   the scan), early stopping on the held-out pixels.
4. **Choose** (:mod:`hs_aeunmix._selection`): among the trained networks,
   and report how stable each endmember is across them.
5. **Spatial layer** (``spatial=True``): fitted on the whole scan.

What to do comes as one :class:`~hs_aeunmix._plan.FitPlan` (values, not
the estimator); the result is a :class:`~hs_aeunmix._state.FittedState`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.extmath import randomized_svd

from hs_aeunmix import _intensity
from hs_aeunmix._baseline import (
    holds_background,
    polynomial_basis,
    without_background,
)
from hs_aeunmix._device import map_in_threads
from hs_aeunmix._initialisation import (
    GIVEN,
    Initialisation,
    candidate_starts,
    with_fixed,
)
from hs_aeunmix._losses import (
    LOSS_SPECS,
    endmember_penalty,
    get_loss,
)
from hs_aeunmix._networks import UnmixingAutoencoder
from hs_aeunmix._plan import (
    FitPlan,
    TrainingPlan,
    build_network,
    network_from_state,
)
from hs_aeunmix._risk import RISK_PIXELS, HeldOutRisk
from hs_aeunmix._screening import Screening, screen
from hs_aeunmix._selection import CANDIDATE_EPOCHS, Candidate, choose, stability
from hs_aeunmix._spatial import PixelImage, fit_neighbourhood
from hs_aeunmix._state import FittedState
from hs_aeunmix._subspace import (
    block_moments,
    centred_eigenvalues,
    directions_above_noise,
    leading_axes,
    moments,
    uses_moments,
)
from hs_aeunmix._training import (
    STEPS_PER_EPOCH,
    TrainingHistory,
    compiles_steps,
    fixed_batches,
    minibatch_stream,
    pixel_objective,
    precomputed_encoder_inputs,
    train,
)
from hs_aeunmix._vca import (
    fully_constrained_least_squares,
    nonnegative_least_squares,
)

_logger = logging.getLogger(__name__)

# Training sample: at most this many spectra (a uniform random sample).
MAX_TRAINING_PIXELS = 65536
# Held-out pixels: at most this many (the validation loss is then precise to
# a fraction of a percent, and evaluating it stays cheap).
MAX_VALIDATION_PIXELS = 4096
# Spectra encoded at once: bounds the memory of inference on a large scan.
INFERENCE_BATCH_SIZE = 8192
# Spectra prepared and summed at once (float64 temporaries of 16 MiB at
# 1024 channels): bounds the memory of preparing a large sample.
BLOCK_ROWS = 2048
# Pixels used for the principal components the dense encoder reads.
_PROJECTION_SAMPLE = 20000


@dataclass(frozen=True)
class Prepared:
    """Training data in the network's units."""

    train: np.ndarray
    validation: np.ndarray
    data_scale: float
    screening: Screening


def data_scale(blocks: Iterable[np.ndarray]) -> float:
    """One positive number that brings the data (given as blocks of rows) to order one.

    The largest value of the mean spectrum, else the largest absolute value.
    """
    total, count, largest = 0.0, 0, 0.0
    for block in blocks:
        total = total + block.sum(axis=0, dtype=np.float64)
        count += len(block)
        largest = max(largest, float(np.abs(block).max()))
    scale = float(np.max(np.abs(total / count)))
    if scale == 0.0:
        scale = largest
    if scale == 0.0:
        raise ValueError("The data are all zero: there is nothing to unmix.")
    return scale


def n_validation(n_pixels: int, fraction: float) -> int:
    """Held-out pixels for ``fraction`` of ``n_pixels`` (two stay for training)."""
    if fraction == 0:
        return 0
    wanted = min(max(1, round(fraction * n_pixels)), MAX_VALIDATION_PIXELS)
    # Keep at least two training pixels so batch normalisation can run.
    return int(min(wanted, n_pixels - 2))


def prepare(
    X: np.ndarray,
    rng: np.random.Generator,
    validation_fraction: float,
    *,
    scale: float | None = None,
    in_place: bool = False,
) -> Prepared:
    """Sample, screen, scale and split the spectra ``X`` (see the module docstring).

    ``in_place``: ``X`` (float32) may be overwritten, its rows reordered and
    scaled, and the training and held-out spectra are then views of it
    rather than copies; the result is the same.
    """
    if X.shape[0] > MAX_TRAINING_PIXELS:
        rows = np.sort(rng.choice(X.shape[0], MAX_TRAINING_PIXELS, replace=False))
        X = X[rows]
        in_place = True  # a copy already
    screening = screen(X)
    usable = np.flatnonzero(~screening.dead)
    if len(usable) < 3:
        raise ValueError(
            f"Only {len(usable)} of {len(X)} spectra hold any signal (total "
            "intensity above 0.1 % of the median pixel's): there is nothing to "
            "unmix."
        )
    if scale is None:
        scale = data_scale(values for _, values in _repaired(X, usable, screening))
    order = rng.permutation(len(usable))
    held_out = n_validation(len(usable), validation_fraction)
    if not (in_place and X.dtype == np.float32):
        return Prepared(
            train=_scaled_rows(X, usable[order[held_out:]], scale, screening),
            validation=_scaled_rows(X, usable[order[:held_out]], scale, screening),
            data_scale=scale,
            screening=screening,
        )
    # Training rows, then held-out rows, then the pixels left out.
    layout = np.concatenate(
        [
            usable[order[held_out:]],
            usable[order[:held_out]],
            np.flatnonzero(screening.dead),
        ]
    )
    _reorder_rows(X, layout)
    for start in range(0, len(usable), BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, len(usable))
        screening.repair(X[start:stop], layout[start:stop])
        X[start:stop] /= scale
    n_train = len(usable) - held_out
    return Prepared(
        train=X[:n_train],
        validation=X[n_train : len(usable)],
        data_scale=scale,
        screening=screening,
    )


def _reorder_rows(array: np.ndarray, layout: np.ndarray) -> None:
    """``array[:] = array[layout]`` in place (``layout`` a permutation of the rows).

    Follows the permutation's cycles, one row in hand at a time: no copy.
    """
    placed = np.zeros(len(layout), dtype=bool)
    for first in np.flatnonzero(layout != np.arange(len(layout))):
        if placed[first]:
            continue
        held = array[first].copy()
        position = first
        while layout[position] != first:
            array[position] = array[layout[position]]
            placed[position] = True
            position = layout[position]
        array[position] = held
        placed[position] = True


def _repaired(spectra: np.ndarray, rows: np.ndarray, screening: Screening):
    """``(rows, spectra[rows] with spikes repaired)``, a block of rows at a time."""
    for start in range(0, len(rows), BLOCK_ROWS):
        chosen = rows[start : start + BLOCK_ROWS]
        yield chosen, screening.repair(spectra[chosen], chosen)


def _scaled_rows(
    spectra: np.ndarray, rows: np.ndarray, scale: float, screening: Screening
) -> np.ndarray:
    """``spectra[rows]``, repaired and divided by ``scale``, as float32.

    Built block by block, the blocks on the CPU's cores at once: no float64
    copy, no copy of the spectra left out.
    """
    result = np.empty((len(rows), spectra.shape[1]), dtype=np.float32)

    def fill(start: int) -> None:
        chosen = rows[start : start + BLOCK_ROWS]
        values = screening.repair(spectra[chosen], chosen)
        np.divide(values, scale, out=result[start : start + len(chosen)])

    map_in_threads(fill, range(0, len(rows), BLOCK_ROWS))
    return result


def network_inputs(
    train_data: np.ndarray,
    *,
    pixel_scale: bool,
    input_components: int | None,
    baseline_basis: np.ndarray | None = None,
) -> dict:
    """Keyword arguments of the network's input stage, from the training data.

    The encoder reads spectra without their smooth background (with a
    background model), normalised to the mean total (with a per-pixel
    intensity; the mean norm with a background, whose removal leaves totals
    near zero), centred, optionally projected on their leading principal
    components, and standardised.
    """
    inputs: dict = {}
    if baseline_basis is not None:
        inputs["baseline_basis"] = torch.from_numpy(baseline_basis.astype(np.float32))

    def without_smooth_part(rows: np.ndarray) -> np.ndarray:
        spectra = rows.astype(np.float64)
        if baseline_basis is not None:
            spectra -= (spectra @ baseline_basis) @ baseline_basis.T
        return spectra

    # The spectra are only ever handled a block of rows at a time, in float64.
    blocks = [
        slice(start, start + BLOCK_ROWS)
        for start in range(0, len(train_data), BLOCK_ROWS)
    ]
    # Per-pixel normalisation factors first (one number per pixel).
    factors = None
    if pixel_scale:
        statistic = np.concatenate(
            [
                spectra.sum(axis=1)
                if baseline_basis is None
                else np.linalg.norm(spectra, axis=1)
                for spectra in (without_smooth_part(train_data[b]) for b in blocks)
            ]
        )
        total = float(statistic.mean())
        factors = total / np.maximum(statistic, 1e-6 * total)
        inputs["pixel_total"] = total

    def normalised(rows: slice | np.ndarray) -> np.ndarray:
        spectra = without_smooth_part(train_data[rows])
        if factors is not None:
            spectra *= factors[rows, None]
        return spectra

    mean = sum(normalised(block).sum(axis=0) for block in blocks) / len(train_data)
    projection = None
    if input_components is not None:
        k = min(input_components, len(train_data) - 1, train_data.shape[1])
        # Principal axes of a sample of the inputs, from their moments
        # accumulated a block at a time (no copy of the sample).
        sample = np.arange(
            0, len(train_data), max(1, len(train_data) // _PROJECTION_SAMPLE)
        )

        def centred_sample():
            for start in range(0, len(sample), BLOCK_ROWS):
                spectra = normalised(sample[start : start + BLOCK_ROWS])
                spectra -= mean
                yield spectra

        _, _, axes = leading_axes(block_moments(centred_sample()), k, centre=False)
        projection = axes.T
        inputs["input_projection"] = torch.from_numpy(projection.astype(np.float32))
    # The encoder's inputs (projected or not), standardised: their spread.
    first = np.zeros(train_data.shape[1] if projection is None else projection.shape[1])
    second = np.zeros_like(first)
    for block in blocks:
        centred = normalised(block)
        centred -= mean
        if projection is not None:
            centred = centred @ projection
        first += centred.sum(axis=0)
        second += np.square(centred, out=centred).sum(axis=0)
    n = len(train_data)
    spread = np.sqrt(np.maximum(second / n - (first / n) ** 2, 0.0))
    # Inputs with no variation would divide by zero; give them unit scale.
    spread[spread <= 1e-6 * max(float(spread.max()), 1e-30)] = 1.0
    inputs["input_mean"] = torch.from_numpy(mean.astype(np.float32))
    inputs["input_scale"] = torch.from_numpy(spread.astype(np.float32))
    return inputs


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s weights and buffers."""
    return {
        name: tensor.detach().cpu().clone()
        for name, tensor in module.state_dict().items()
    }


def scaled_loadings(module: UnmixingAutoencoder, device: torch.device):
    """``loadings(scaled spectra)``: abundances times intensity, batch by batch."""

    def loadings(scaled: np.ndarray) -> np.ndarray:
        result = np.empty((scaled.shape[0], module.decoder.weight.shape[1]))
        module.eval()
        with torch.no_grad():
            for start in range(0, scaled.shape[0], INFERENCE_BATCH_SIZE):
                stop = start + INFERENCE_BATCH_SIZE
                batch = torch.from_numpy(
                    np.asarray(scaled[start:stop], dtype=np.float32)
                ).to(device)
                abundances = module.encode(batch)
                result[start:stop] = (
                    (module.intensity(batch, abundances) * abundances).cpu().numpy()
                )
        return result

    return loadings


def train_network(
    module: UnmixingAutoencoder,
    plan: TrainingPlan,
    prepared: Prepared,
    loss: str,
    device: torch.device,
    generator: torch.Generator,
    *,
    resume: bool,
    loss_floor: float = 1.0,
    max_epochs: int | None = None,
    description: str = "Training autoencoder",
    encoder_inputs: torch.Tensor | None = None,
    risks: Callable[[UnmixingAutoencoder], np.ndarray] | None = None,
) -> TrainingHistory:
    """Train one network on the prepared data (in place); returns its history.

    ``max_epochs`` defaults to the plan's; ``description`` labels the
    progress bar; ``encoder_inputs``: what the encoder reads of the training
    spectra, on ``device`` (:func:`training_encoder_inputs`), computed here
    when not given; ``risks`` (:func:`held_out_risk`) may overrule the
    held-out loss's choice of epoch where pixels are held out and no
    penalty is put on the endmembers (:func:`~hs_aeunmix._training.train`).
    """
    module.to(device)
    train_data = torch.from_numpy(prepared.train).to(device)
    if encoder_inputs is None:
        encoder_inputs = precomputed_encoder_inputs(module, train_data, plan.batch_size)
    penalty = endmember_penalty(
        volume_weight=plan.volume_weight,
        l21_weight=plan.l21_weight,
        min_volume_weight=plan.min_volume_weight,
        loss_floor=loss_floor,
    )
    objective = pixel_objective(
        get_loss(loss, sad_weight=plan.sad_weight),
        penalty,
        of_residual=LOSS_SPECS[loss].of_residual,
    )
    max_epochs = plan.max_epochs if max_epochs is None else max_epochs
    validation = None
    if len(prepared.validation):
        validation = fixed_batches(
            torch.from_numpy(prepared.validation).to(device), INFERENCE_BATCH_SIZE
        )
    return train(
        module,
        objective,
        minibatch_stream(
            train_data, plan.batch_size, generator, encoder_inputs=encoder_inputs
        ),
        validation,
        max_epochs=max_epochs,
        learning_rate=plan.learning_rate,
        endmember_learning_rate=plan.endmember_learning_rate,
        patience=plan.patience,
        starting_weights_compete=resume,
        # A penalty is a prior the user chose on the endmembers, which the
        # risk (their fit alone) would overrule.
        risks=risks if validation is not None and penalty is None else None,
        compile_steps=compiles_steps(module, device, max_epochs * STEPS_PER_EPOCH),
        show_progressbar=plan.show_progressbar,
        description=description,
    )


def training_encoder_inputs(
    module: UnmixingAutoencoder,
    prepared: Prepared,
    plan: TrainingPlan,
    device: torch.device,
) -> torch.Tensor | None:
    """What ``module``'s encoder reads of the training spectra, on ``device``.

    The same for every network built with the same input stage (the starts
    of one fit share it), so it is computed once for all of them; ``None``
    where the encoder reads whole spectra
    (:func:`~hs_aeunmix._training.precomputed_encoder_inputs`).
    """
    module.to(device)
    return precomputed_encoder_inputs(
        module, torch.from_numpy(prepared.train).to(device), plan.batch_size
    )


def loss_floor(prepared: Prepared, n_components: int, loss: str, seed: int) -> float:
    """The loss of the best rank-``n_components`` approximation of the held-out data.

    About the noise level: no model of ``n_components`` endmembers fits the
    held-out spectra better (without per-pixel intensity, up to the rank of
    the mean). It makes ``min_volume_weight`` independent of the data's
    units and noise. Measured on the training pixels when none is held out.
    """
    spectra = prepared.validation if len(prepared.validation) else prepared.train
    spectra = spectra.astype(np.float64)
    k = min(n_components, min(spectra.shape) - 1)
    if k < 1:
        return 1.0
    left, singular, right = randomized_svd(spectra, k, random_state=seed)
    approximation = (left * singular) @ right
    value = float(
        get_loss(loss, sad_weight=0.0)(
            torch.from_numpy(
                np.clip(approximation, 1e-12, None)
                if LOSS_SPECS[loss].rates
                else approximation
            ),
            torch.from_numpy(spectra),
        )
    )
    return value if np.isfinite(value) and value > 0 else 1.0


def held_out_risk(
    prepared: Prepared, basis: np.ndarray | None
) -> Callable[[UnmixingAutoencoder], np.ndarray]:
    """``risks(module)``: held-out risks of a network's endmembers.

    On at most :data:`~hs_aeunmix._risk.RISK_PIXELS` evenly spaced
    held-out spectra (training spectra if none are held out; see
    :class:`~hs_aeunmix._risk.HeldOutRisk`); ``basis`` is the
    background model's, if any.
    """
    spectra = prepared.validation if len(prepared.validation) else prepared.train
    risk = HeldOutRisk(
        spectra[:: max(1, len(spectra) // RISK_PIXELS)],
        counts_scale=prepared.data_scale if prepared.screening.counts else None,
        background=basis,
    )
    return lambda module: risk(module.decoder.endmembers.detach().cpu().numpy())


# pixel_scale="auto": fractions of fixed-intensity endmembers are kept when
# they leave at most this much more residual than free intensities (the
# residual target of the package is within 10 % of NMF's).
CONSTANT_INTENSITY_TOLERANCE = 0.01
_INTENSITY_TEST_SAMPLE = 2000


def intensity_varies(spectra: np.ndarray, endmembers: np.ndarray) -> bool:
    """Whether the pixels' intensity varies beyond what fractions can follow.

    Fits each spectrum (up to 2000 evenly spaced ones) on ``endmembers``
    with free non-negative abundances (a free intensity), and with
    fractions (non-negative, summing to one: fully constrained least
    squares) of the endmembers rescaled so that the free abundances sum to
    one as nearly as they can (a start's endmembers need not be at the scale
    of pure pixels); the intensity varies when the fractions leave more than
    :data:`CONSTANT_INTENSITY_TOLERANCE` more residual than the noise alone
    would (free intensities fit one more value per pixel). Measured on the
    development scenes: 0.2-0.6 % for every scene of constant intensity
    whose start was right, 2 % and more for every scene whose intensity
    varied (by 19 % or more), and tens of percent where the start was far
    off (free intensities then keep the model honest).
    """
    sample = spectra[:: max(1, len(spectra) // _INTENSITY_TEST_SAMPLE)]
    sample = sample.astype(np.float64)
    endmembers = endmembers.astype(np.float64)
    abundances = nonnegative_least_squares(sample, endmembers)
    free = np.mean((sample - abundances @ endmembers) ** 2)
    weights = np.linalg.lstsq(abundances, np.ones(len(sample)), rcond=None)[0]
    if np.any(weights <= 0):
        return True
    pure = endmembers / weights[:, None]
    fractions = fully_constrained_least_squares(sample, pure)
    constrained = np.mean((sample - fractions @ pure) ** 2)
    # Free intensities fit one more value per pixel: on noise alone they
    # leave 1 / (n_channels - n_components) less residual.
    degrees = sample.shape[1] - endmembers.shape[0]
    expected = 1 + 1 / max(degrees, 1)
    return bool(constrained > (expected + CONSTANT_INTENSITY_TOLERANCE) * free)


def resolve_loss(loss: str) -> str:
    """The loss ``"auto"`` stands for: the squared error (see AEUnmix)."""
    return "mse" if loss == "auto" else loss


def fit_state(
    X: np.ndarray,
    plan: FitPlan,
    *,
    device: torch.device,
    seed: int,
    previous: FittedState | None,
    fixed: np.ndarray | None,
    windows: list | None,
    signal_calibration,
    baseline_terms: int = 0,
    test_baseline: bool = False,
    overwrite_input: bool = False,
) -> tuple[FittedState, int]:
    """Train on ``X`` (validated) as ``plan`` says; the state and training size.

    ``previous``: a fitted state to train on from (``warm_start``);
    ``fixed`` holds known endmembers in the data's units (first rows of the
    model's); ``windows`` the scan parts the spatial layer is fitted on
    (:func:`~hs_aeunmix._spatial.fit_windows`; None: no layer);
    ``baseline_terms`` a background model's terms, kept only when the data
    hold a background if ``test_baseline`` (see :mod:`hs_aeunmix._baseline`);
    ``overwrite_input``: ``X`` may be overwritten (see :func:`prepare`).
    """
    rng = np.random.default_rng(seed)
    n_components = plan.n_components
    prepared = prepare(
        X,
        rng,
        plan.validation_fraction,
        scale=previous.data_scale if previous else None,
        in_place=overwrite_input,
    )
    generator = torch.Generator().manual_seed(seed)
    basis = None
    if previous:
        baseline_terms = previous.baseline_terms
    elif baseline_terms and test_baseline:
        if not holds_background(prepared.train, n_components, baseline_terms, seed):
            baseline_terms = 0
        _logger.info("Background model: %d terms", baseline_terms)
    if baseline_terms:
        basis = polynomial_basis(X.shape[1], baseline_terms)
    risks = held_out_risk(prepared, basis)
    if previous:
        module = network_from_state(plan.network, previous)
        history = train_network(
            module,
            plan.training,
            prepared,
            previous.loss,
            device,
            generator,
            resume=True,
            description="Training on from the fitted weights",
            risks=risks,
        )
        chosen = Candidate(module, history, previous.init, risks(module))
        loss, report = previous.loss, previous.report
    else:
        loss = plan.loss
        scaled_fixed = None if fixed is None else fixed / prepared.data_scale
        # One pass over the sample for the starts' principal axes and for
        # the directions the noise does not explain (the report's).
        sums = moments(prepared.train, basis) if uses_moments(prepared.train) else None
        directions = directions_above_noise(
            centred_eigenvalues(prepared.train, remove=basis, from_moments=sums),
            *prepared.train.shape,
        )
        if isinstance(plan.init, np.ndarray):
            starts = [
                Initialisation(np.clip(plan.init / prepared.data_scale, 0, None), GIVEN)
            ]
        else:
            starts = candidate_starts(
                prepared.train,
                n_components,
                plan.init,
                seed,
                baseline_basis=basis,
                from_moments=sums,
                directions=directions,
            )
        pixel_scale = plan.network.pixel_scale
        if pixel_scale == "auto":
            pixel_scale = bool(
                basis is not None
                or (
                    plan.training.l21_weight == 0
                    and intensity_varies(
                        prepared.train, with_fixed(starts[0], scaled_fixed).endmembers
                    )
                )
            )
            _logger.info("Per-pixel intensity: %s", pixel_scale)
        inputs = network_inputs(
            prepared.train,
            pixel_scale=pixel_scale,
            input_components=(
                plan.network.input_components
                if plan.network.options.encoder == "dense"
                else None
            ),
            baseline_basis=basis,
        )
        # Only the minimum-volume term is scaled by it (an SVD of the
        # held-out spectra: half a second on a large scan).
        floor = (
            loss_floor(prepared, n_components, loss, seed)
            if plan.training.min_volume_weight > 0
            else 1.0
        )
        candidate_epochs = min(CANDIDATE_EPOCHS, plan.training.max_epochs)
        candidates = []
        # Every start's network has the input stage of ``inputs``.
        encoder_inputs = None
        for number, start in enumerate(starts, 1):
            initial = with_fixed(start, scaled_fixed)
            same = next(
                (
                    candidate
                    for candidate, earlier in zip(candidates, starts, strict=False)
                    if np.allclose(earlier.endmembers, start.endmembers)
                ),
                None,
            )
            if same is not None:
                # Another method found the same start: its network is this one.
                candidates.append(
                    Candidate(same.module, same.history, initial.method, same.losses)
                )
                continue
            module = build_network(
                plan.network,
                prepared.train.shape[1],
                n_components,
                endmembers=initial.endmembers.astype(np.float32),
                scale_rule=LOSS_SPECS[loss].scale_rule,
                n_fixed=0 if fixed is None else len(fixed),
                **inputs,
            )
            if encoder_inputs is None:
                encoder_inputs = training_encoder_inputs(
                    module, prepared, plan.training, device
                )
            # No epoch veto here (_risk.epoch_to_keep): the starts are
            # compared by the risk of the epoch each one's loss keeps.
            history = train_network(
                module,
                plan.training,
                prepared,
                loss,
                device,
                generator,
                resume=False,
                loss_floor=floor,
                max_epochs=candidate_epochs,
                description=f"Start {number}/{len(starts)}: {initial.method.upper()}",
                encoder_inputs=encoder_inputs,
            )
            losses = risks(module)
            candidates.append(Candidate(module, history, initial.method, losses))
            _logger.info(
                "Start %s: %d epochs, held-out loss %.6g, risk %.6g",
                initial.method,
                history.n_epochs,
                history.best_loss,
                losses.mean(),
            )
            if history.interrupted:
                break
        index = choose(candidates)
        chosen = candidates[index]
        remaining = plan.training.max_epochs - chosen.history.n_epochs
        # After a Ctrl-C nothing more is trained (a second one then stops
        # the whole call).
        interrupted = any(candidate.history.interrupted for candidate in candidates)
        if remaining > 0 and not (chosen.history.stopped_early or interrupted):
            chosen.history = chosen.history.followed_by(
                train_network(
                    chosen.module,
                    plan.training,
                    prepared,
                    loss,
                    device,
                    generator,
                    resume=True,
                    loss_floor=floor,
                    max_epochs=remaining,
                    description=f"Training the kept start ({chosen.start.upper()})",
                    encoder_inputs=encoder_inputs,
                    risks=risks,
                )
            )
        report = stability(
            candidates,
            index,
            prepared.train,
            prepared.validation,
            directions=directions,
        ).as_dict()
    module = chosen.module
    if basis is not None:
        _remove_background(module, basis)
    if windows:
        fit_spatial_layer(
            module, windows, prepared.data_scale, device, plan.spatial_weight
        )
    loadings = scaled_loadings(module, device)
    sample = prepared.train[_intensity.sample_rows(len(prepared.train))]
    intensities = loadings(sample).sum(axis=1)
    spread = (
        float(intensities.std() / intensities.mean()) if intensities.mean() > 0 else 0.0
    )
    # Measured as a later scan will be (AEUnmix.intensity_ratio) and on the
    # held-out pixels too, so that the training scan itself measures 1.
    reference = _intensity.measure(
        module,
        np.concatenate(
            [
                sample,
                prepared.validation[_intensity.sample_rows(len(prepared.validation))],
            ]
            if len(prepared.validation)
            else [sample]
        ),
        device,
    )
    state = FittedState(
        module_state=cpu_state(module),
        n_channels=X.shape[1],
        n_components=n_components,
        data_scale=prepared.data_scale,
        init=chosen.start,
        loss=loss,
        intensity_spread=spread,
        intensity_reference=reference,
        history=chosen.history,
        signal_calibration=signal_calibration,
        trained_on=str(device),
        screening=prepared.screening.summary(),
        report=report,
        baseline_terms=baseline_terms,
    )
    return state, len(prepared.train)


def _remove_background(module: UnmixingAutoencoder, basis: np.ndarray) -> None:
    """Keep in the free endmembers no background they do not need.

    Changes nothing the model reproduces: the per-pixel background takes
    back any polynomial removed from an endmember.
    """
    decoder = module.decoder
    with torch.no_grad():
        endmembers = decoder.endmembers.detach().cpu().numpy().astype(np.float64)
        cleaned = torch.from_numpy(
            without_background(endmembers, basis).astype(np.float32)
        ).to(decoder.weight.device)
        free = (
            torch.ones(len(endmembers), dtype=torch.bool)
            if decoder.fixed_mask is None
            else ~decoder.fixed_mask.cpu()
        )
        decoder.weight[:, free] = cleaned[free].T
    decoder.clamp_()


def fit_spatial_layer(
    module: UnmixingAutoencoder,
    windows: list,
    data_scale: float,
    device: torch.device,
    spatial_weight: float,
) -> None:
    """Fit the spatial layer on the trained per-pixel network's estimates.

    ``windows``: :func:`~hs_aeunmix._spatial.fit_windows` of the scan.
    """
    module.eval()
    images, errors, sizes = [], [], []
    for spectra, shape, mask in windows:
        scaled = np.asarray(spectra / data_scale, dtype=np.float32)
        target = torch.from_numpy(scaled).to(device)
        with torch.no_grad():
            fractions = torch.cat(
                [
                    module.encode(target[start : start + INFERENCE_BATCH_SIZE])
                    for start in range(0, len(target), INFERENCE_BATCH_SIZE)
                ]
            )
            reconstruction = module.reconstruct(fractions, target)
        errors.append(float(((reconstruction - target) ** 2).mean()))
        sizes.append(target.numel())
        image = PixelImage.from_rows(fractions.cpu().numpy(), shape, mask, device)
        images.append((image, module.squared_error_given(target)))
    fit_neighbourhood(
        module.spatial,
        images,
        n_channels=module.decoder.endmembers.shape[1],
        # One window (the whole scan) keeps its own error bit for bit: a
        # weighted mean of one value may differ from it in the last bit.
        noise_variance=errors[0]
        if len(errors) == 1
        else float(np.average(errors, weights=sizes)),
        spatial_weight=spatial_weight,
    )
