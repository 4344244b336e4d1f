"""Tests of the training loop and its mini-batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hs_aeunmix._training import (
    STEPS_PER_EPOCH,
    TrainingHistory,
    _adam,
    _train_one_epoch,
    minibatch_stream,
    resolve_show_progressbar,
)


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
    mean = _train_one_epoch(model, objective, lambda: iter(batches), optimizer)
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
