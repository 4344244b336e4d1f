"""Tests of the training loop and its mini-batches."""

from __future__ import annotations

import pytest
import torch

from hs_aeunmix._training import (
    TrainingHistory,
    batch_boundaries,
    resolve_show_progressbar,
    shuffled_minibatches,
)


@pytest.mark.parametrize(
    ("n_samples", "batch_size", "expected"),
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (9, 4, [(0, 4), (4, 9)]),
        (8, 4, [(0, 4), (4, 8)]),
        (3, 8, [(0, 3)]),
    ],
)
def test_batch_boundaries_never_leave_a_single_sample(n_samples, batch_size, expected):
    assert batch_boundaries(n_samples, batch_size) == expected


def test_shuffled_minibatches_cover_every_row_once_per_epoch():
    data = torch.arange(23, dtype=torch.float32).unsqueeze(1)
    epoch = shuffled_minibatches(data, 5, torch.Generator().manual_seed(0))
    first = torch.cat(list(epoch())).squeeze(1)
    second = torch.cat(list(epoch())).squeeze(1)
    assert sorted(first.tolist()) == list(range(23))
    assert sorted(second.tolist()) == list(range(23))
    assert first.tolist() != second.tolist()


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
