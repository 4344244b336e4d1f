"""Tests of the training loop and its mini-batches."""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import pytest
import torch
from _helpers import background_autoencoder, make_mixture
from torch import nn

from hs_aeunmix import AEUnmix, _training, metrics
from hs_aeunmix._networks import NetworkOptions, build_autoencoder
from hs_aeunmix._training import (
    COMPILE_MIN_STEPS,
    STEPS_PER_EPOCH,
    TrainingHistory,
    _adam,
    _train_one_epoch,
    compiles_steps,
    eager_gradients,
    minibatch_stream,
    precomputed_encoder_inputs,
    resolve_show_progressbar,
)
from hs_aeunmix.datasets import GroundTruth


def _rows(batches) -> list[int]:
    return torch.cat(list(batches)).squeeze(1).long().tolist()


def test_every_row_once_per_pass_over_a_small_scan():
    data = torch.arange(20, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(data, 5, torch.Generator().manual_seed(0), 4)
    first, second = _rows(epoch()), _rows(epoch())
    assert sorted(first) == list(range(20))
    assert sorted(second) == list(range(20))
    assert first != second


def test_an_epoch_has_the_same_steps_whatever_the_scan():
    for n_rows in (20, 10_000):
        data = torch.arange(n_rows, dtype=torch.float32).unsqueeze(1)
        epoch = minibatch_stream(data, 5, torch.Generator().manual_seed(0))
        assert len(list(epoch())) == STEPS_PER_EPOCH


@pytest.fixture
def host_reads(monkeypatch):
    """Counts the values read back from tensors to the host."""
    counts = {"reads": 0, "copies": 0}
    for name in ("__float__", "item", "tolist"):
        real = getattr(torch.Tensor, name)

        def counted(tensor, *args, real=real, **kwargs):
            counts["reads"] += 1
            return real(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    real_to = torch.Tensor.to

    def counted_to(tensor, *args, **kwargs):
        counts["copies"] += 1
        return real_to(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counted_to)
    return counts


class _Decoder(nn.Linear):
    def clamp_(self):
        with torch.no_grad():
            self.weight.clamp_(min=0)


def test_an_epoch_reads_its_losses_back_once(host_reads):
    # One read per step would make the host wait for a GPU at every step.
    torch.manual_seed(0)
    model = nn.Module()
    model.decoder = _Decoder(3, 4)
    data = torch.rand(40, 3)
    sizes = [8, 8, 8, 16]
    batches = [data[:8], data[8:16], data[16:24], data[24:]]
    losses = []

    def objective(model, batch):
        loss = (model.decoder(batch) ** 2).mean()
        losses.append(float(loss.detach()))
        return loss, len(batch)

    optimizer = _adam([{"params": list(model.parameters()), "lr": 1e-2}])
    host_reads["reads"] = 0
    mean = _train_one_epoch(
        model, eager_gradients(objective), lambda: iter(batches), optimizer
    )
    assert host_reads["reads"] == len(batches) + 1  # the objective's, then one
    expected = 0.0
    for loss, size in zip(losses, sizes, strict=True):
        expected += loss * size
    assert mean == expected / sum(sizes)


def test_batches_are_indexed_without_a_copy_per_batch(host_reads):
    # A copy of each batch's row numbers from the host waits for the GPU.
    data = torch.arange(40, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(data, 5, torch.Generator().manual_seed(0), 8)
    copies = host_reads["copies"]
    rows = _rows(epoch())
    assert sorted(rows) == list(range(40))
    assert host_reads["copies"] == copies  # one permutation: copied when drawn
    _rows(epoch())
    assert host_reads["copies"] == copies + 1  # the next permutation, once


def test_no_batch_of_one_row():
    # 23 rows in batches of 5: the 3 left over open the next permutation's
    # first batch rather than forming a small one.
    data = torch.arange(23, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(data, 5, torch.Generator().manual_seed(0))
    sizes = [len(batch) for _ in range(7) for batch in epoch()]
    assert set(sizes) == {5}


def test_epochs_of_a_large_scan_are_bounded_and_see_every_row():
    n_rows, batch_size = 100_000, 64
    data = torch.arange(n_rows, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(data, batch_size, torch.Generator().manual_seed(0))
    batches = list(epoch())
    assert len(batches) == STEPS_PER_EPOCH
    # Consecutive epochs continue the same permutation: no row twice until
    # every row was drawn.
    seen = _rows(batches)
    for _ in range(n_rows // (batch_size * STEPS_PER_EPOCH) - 1):
        seen += _rows(epoch())
    assert len(seen) == len(set(seen))


def test_batch_larger_than_the_data():
    data = torch.arange(7, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(data, 256, torch.Generator().manual_seed(0), 2)
    assert [sorted(_rows([batch])) for batch in epoch()] == [list(range(7))] * 2


def test_batches_with_encoder_inputs_pair_the_same_rows():
    data = torch.arange(23, dtype=torch.float32).unsqueeze(1)
    epoch = minibatch_stream(
        data, 5, torch.Generator().manual_seed(0), 6, encoder_inputs=-10 * data
    )
    batches = list(epoch())
    assert len(batches) == 6
    for spectra, encoder_inputs in batches:
        assert torch.equal(encoder_inputs, -10 * spectra)
    # The same rows, in the same order, as a stream without encoder inputs.
    plain = minibatch_stream(data, 5, torch.Generator().manual_seed(0), 6)
    assert _rows(plain()) == _rows(spectra for spectra, _ in batches)


def _projecting_model(n_channels: int, projection: bool) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    return build_autoencoder(
        NetworkOptions(hidden_layer_sizes=(8,)),
        endmembers=torch.rand(3, n_channels, generator=generator),
        input_mean=torch.rand(n_channels, generator=generator),
        input_scale=torch.rand(8 if projection else n_channels, generator=generator)
        + 0.5,
        input_projection=torch.randn(n_channels, 8, generator=generator)
        if projection
        else None,
        pixel_total=float(n_channels),
    )


@pytest.mark.parametrize("n_rows", [1100, 256, 100])
def test_precomputed_encoder_inputs_are_the_batches_own_numbers(n_rows):
    # Bitwise: the steps must train exactly as when each batch computes them.
    # 1024 channels onto 8 scores: a product whose rounding here depends on
    # its number of rows (a block of 1024 rows rounds otherwise).
    model = _projecting_model(1024, projection=True)
    data = torch.rand(n_rows, 1024, generator=torch.Generator().manual_seed(1)) * 50
    inputs = precomputed_encoder_inputs(model, data, 256)
    assert inputs.shape == (n_rows, 8)
    epoch = minibatch_stream(data, 256, torch.Generator().manual_seed(2), 8)
    with torch.no_grad():
        for batch, rows in zip(epoch(), _row_numbers(data, epoch), strict=True):
            assert torch.equal(inputs[rows], model.encoder_input(batch))


def _row_numbers(data: torch.Tensor, epoch) -> list[torch.Tensor]:
    """The rows of each batch of a fresh stream like ``epoch``'s."""
    numbered = torch.arange(len(data), dtype=torch.float64).unsqueeze(1)
    stream = minibatch_stream(numbered, 256, torch.Generator().manual_seed(2), 8)
    return [batch.squeeze(1).long() for batch in stream()]


def test_no_encoder_inputs_are_kept_for_an_encoder_reading_whole_spectra():
    # A copy of the whole training spectra would double their memory.
    model = _projecting_model(30, projection=False)
    assert precomputed_encoder_inputs(model, torch.rand(50, 30), 16) is None


def test_progressbar_follows_hyperspy_preference():
    from hyperspy.defaults_parser import preferences

    saved = preferences.General.show_progressbar
    try:
        preferences.General.show_progressbar = False
        assert resolve_show_progressbar(None) is False
        preferences.General.show_progressbar = True
        assert resolve_show_progressbar(None) is True
        assert resolve_show_progressbar(False) is False
    finally:
        preferences.General.show_progressbar = saved


def test_history_plot_and_dict():
    history = TrainingHistory([3.0, 2.0, 2.5], [3.5, 2.2, 2.4], best_epoch=1)
    assert history.monitored_loss() == [3.5, 2.2, 2.4]
    assert history.as_dict()["best_epoch"] == 1
    ax = history.plot()
    assert [line.get_label() for line in ax.get_lines()][:2] == [
        "training",
        "validation",
    ]


def test_history_repr_is_a_summary():
    history = TrainingHistory(
        [3.0, 2.0, 2.5], [3.5, 2.2, 2.4], best_epoch=1, stopped_early=True
    )
    history.seconds = 1.25
    assert repr(history) == (
        "TrainingHistory(3 epochs, best epoch 2, stopped early; final training "
        "loss 2.5, validation loss 2.4, best 2.2; 1.2 s)"
    )
    interrupted = TrainingHistory(initial_loss=4.0, interrupted=True)
    assert repr(interrupted) == "TrainingHistory(no complete epoch, 0.0 s)"
    # A thousand epochs still print as one line.
    assert "\n" not in repr(TrainingHistory([1.0] * 1000, best_epoch=999))


# --- torch.compile for long runs of the conv encoder -----------------------

CONV = {
    "encoder": "conv",
    "n_filters": 4,
    "kernel_sizes": (3, 5),
    "hidden_layer_sizes": (16,),
    "init": "vca",
    "max_epochs": 2,
    "random_state": 0,
    "show_progressbar": False,
}


def _conv_fit(**options):
    mixture = make_mixture(shape=(16, 16), n_channels=40, seed=3)
    with warnings.catch_warnings():
        # Two epochs on a tiny scan: the stability report complains.
        warnings.simplefilter("ignore", UserWarning)
        model = AEUnmix(3, **{**CONV, **options}).fit(mixture.spectra)
    return model, mixture


def test_only_long_runs_of_the_conv_encoder_in_the_main_thread_are_compiled():
    conv = _conv_fit(max_epochs=1)[0].module_
    dense = _conv_fit(max_epochs=1, encoder="dense")[0].module_
    cpu = torch.device("cpu")
    assert compiles_steps(conv, cpu, COMPILE_MIN_STEPS)
    assert compiles_steps(conv, torch.device("cuda"), COMPILE_MIN_STEPS)
    assert not compiles_steps(conv, cpu, COMPILE_MIN_STEPS - 1)
    assert not compiles_steps(dense, cpu, COMPILE_MIN_STEPS)
    assert not compiles_steps(conv, torch.device("mps"), COMPILE_MIN_STEPS)
    in_thread = []
    thread = threading.Thread(
        target=lambda: in_thread.append(compiles_steps(conv, cpu, COMPILE_MIN_STEPS))
    )
    thread.start()
    thread.join()
    assert in_thread == [False]


def test_compiled_steps_train_as_eager_ones_and_reproducibly(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="hs_aeunmix._training")
    eager, mixture = _conv_fit(conv_dropout=0.0, dropout=0.0)
    assert "torch.compile" not in caplog.text
    calls = []
    real_compile = torch.compile

    def spied_compile(function):
        calls.append(function)
        return real_compile(function)

    monkeypatch.setattr(_training, "COMPILE_MIN_STEPS", 0)
    monkeypatch.setattr(_training.torch, "compile", spied_compile)
    compiled = _conv_fit(conv_dropout=0.0, dropout=0.0)[0]
    assert calls  # the steps did go through the compiler
    # The first step's wait is said, not left unexplained.
    assert "The training steps go through torch.compile" in caplog.text
    # The same steps, rounded differently by the fused kernels.
    np.testing.assert_allclose(
        compiled.components_, eager.components_, rtol=1e-3, atol=1e-3
    )
    # Batch normalisation's running statistics were kept up to date too.
    np.testing.assert_allclose(
        compiled.transform(mixture.spectra),
        eager.transform(mixture.spectra),
        rtol=1e-3,
        atol=1e-3,
    )
    truth = GroundTruth(
        endmembers=mixture.endmembers,
        abundances=mixture.abundances,
        names=("a", "b", "c"),
        noiseless=mixture.abundances @ mixture.endmembers,
    )

    def rmse(model):
        loadings = model.transform(mixture.spectra)
        return metrics.unmixing_scores(model.components_, loadings, truth)[
            "abundance_rmse"
        ]

    untrained = _conv_fit(
        max_epochs=1, learning_rate=1e-9, endmember_learning_rate=1e-9
    )[0]
    assert rmse(untrained) > 0.3
    assert rmse(compiled) < 0.15
    # Dropout inside the compiled graph still follows random_state.
    first, second = _conv_fit()[0], _conv_fit()[0]
    np.testing.assert_array_equal(first.components_, second.components_)


def test_a_step_torch_cannot_compile_is_run_eagerly(monkeypatch):
    def no_compiler(function):
        def failing(*args, **kwargs):
            raise RuntimeError("no C++ compiler found")

        return failing

    eager = _conv_fit()[0]
    monkeypatch.setattr(_training, "COMPILE_MIN_STEPS", 0)
    monkeypatch.setattr(_training.torch, "compile", no_compiler)
    with pytest.warns(RuntimeWarning, match="could not compile the training step"):
        fallen_back = _conv_fit()[0]
    np.testing.assert_array_equal(fallen_back.components_, eager.components_)


# --- the held-out risk's veto on the kept epoch ------------------------------


def _risk_judged_run(monkeypatch, losses, levels, *, starting_weights_compete):
    """``train`` with scripted held-out losses and risk levels per evaluation.

    Each epoch marks the endmembers with its number (0: the starting
    weights); returns the history and the mark of the weights kept.
    """
    model = _projecting_model(6, projection=False)
    with torch.no_grad():
        model.decoder.weight.fill_(0.0)
    marks = iter(range(1, len(losses) + 1))

    def one_epoch(model, gradients, batches, optimizer):
        with torch.no_grad():
            model.decoder.weight.fill_(float(next(marks)))
        return 0.0

    evaluations = iter(losses)
    monkeypatch.setattr(_training, "_train_one_epoch", one_epoch)
    monkeypatch.setattr(_training, "evaluate", lambda *args: next(evaluations))
    # Each pixel's own noise is shared by every epoch's risk (it cancels in
    # the paired test); what differs between epochs is small.
    pixel_noise = np.random.default_rng(0).normal(0.0, 5.0, 400)
    epoch_noise = np.random.default_rng(1)

    def risks(model):
        level = levels[int(model.decoder.weight[0, 0])]
        return pixel_noise + level + epoch_noise.normal(0.0, 0.1, 400)

    history = _training.train(
        model,
        None,
        lambda: [],
        lambda: [],
        max_epochs=len(losses) - starting_weights_compete,
        learning_rate=1e-3,
        endmember_learning_rate=1e-3,
        patience=10,
        starting_weights_compete=starting_weights_compete,
        risks=risks,
        show_progressbar=False,
    )
    return history, int(model.decoder.weight[0, 0])


@pytest.mark.parametrize(
    ("levels", "kept_epoch"),
    [
        # The loss keeps epoch 4, whose risk (9) is far above epoch 2's (5);
        # epoch 3's is within the noise of epoch 2's and its loss is lower.
        ([None, 10.0, 5.0, 5.005, 9.0, 9.0, 9.0], 3),
        # The risk cannot tell the epochs apart: the loss's epoch stays.
        ([None, 5.005, 5.0, 5.005, 5.004, 5.0, 5.0], 4),
    ],
    ids=["worse beyond the noise", "within the noise"],
)
def test_the_risk_overrules_the_loss_only_beyond_the_noise(
    monkeypatch, levels, kept_epoch
):
    losses = [5.0, 4.0, 3.0, 1.0, 2.0, 2.5]
    history, kept = _risk_judged_run(
        monkeypatch, losses, levels, starting_weights_compete=False
    )
    assert (kept, history.best_epoch) == (kept_epoch, kept_epoch - 1)
    assert history.validation_loss == losses


@pytest.mark.parametrize(
    ("losses", "kept_epoch"),
    [
        # The loss keeps epoch 2, the risk rejects it for epoch 1: the
        # starting weights' lower risk does not bring them back.
        ([3.0, 4.0, 1.0], 1),
        # No epoch improved on the starting weights' loss: they stay.
        ([1.0, 4.0, 3.0], 0),
    ],
)
def test_starting_weights_are_not_judged(monkeypatch, losses, kept_epoch):
    # They were chosen among starts for the lowest risk: a minimum biased low.
    history, kept = _risk_judged_run(
        monkeypatch, losses, [5.0, 5.005, 9.0], starting_weights_compete=True
    )
    assert (kept, history.best_epoch) == (kept_epoch, kept_epoch - 1)
    assert history.initial_loss == losses[0]


def test_risks_need_held_out_pixels():
    model = _projecting_model(6, projection=False)
    with pytest.raises(ValueError, match="risks judge held-out pixels"):
        _training.train(
            model,
            None,
            lambda: [],
            None,
            max_epochs=1,
            learning_rate=1e-3,
            endmember_learning_rate=1e-3,
            patience=1,
            risks=lambda model: np.zeros(3),
        )


def test_lowest_loss_is_what_any_epoch_reached():
    # The kept epoch may be another one (the held-out risk's veto).
    history = TrainingHistory([4.0, 3.0, 2.0], [3.0, 1.0, 2.0], best_epoch=2)
    assert (history.best_loss, history.lowest_loss) == (2.0, 1.0)
    history.initial_loss = 0.5
    assert history.lowest_loss == 0.5
    assert np.isnan(TrainingHistory().lowest_loss)


@pytest.mark.parametrize("of_residual", [True, False])
def test_a_loss_of_the_residual_is_computed_on_the_residual_pair(of_residual):
    # A background model's step then never forms the reconstruction.
    from hs_aeunmix._losses import get_loss

    model = background_autoencoder(40, 2, 2, pixel_total=10.0)
    calls = []
    reconstruct = model.reconstruct

    def counted(*args):
        calls.append(1)
        return reconstruct(*args)

    model.reconstruct = counted
    batch = torch.rand(6, 40)
    loss, n_pixels = _training.pixel_objective(
        get_loss("mse", sad_weight=0.0), None, of_residual=of_residual
    )(model.eval(), batch)
    assert n_pixels == 6
    assert len(calls) == (0 if of_residual else 1)
    expected = torch.nn.functional.mse_loss(
        reconstruct(model.encode(batch), batch), batch
    )
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
