"""Tests of where work runs: the CPU threads of numpy work."""

from __future__ import annotations

import threading

import pytest
import torch

from hs_aeunmix._device import map_in_threads


@pytest.fixture
def torch_threads():
    """Sets torch's intra-op threads for a test, then restores them."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_items_run_at_once_on_torchs_threads_in_order(torch_threads):
    torch_threads(2)
    # Each item waits for the other: only two threads at once get past it.
    both = threading.Barrier(2, timeout=10)

    def meet(item: int) -> int:
        both.wait()
        return item * item

    assert map_in_threads(meet, [3, 4]) == [9, 16]
    assert map_in_threads(lambda item: -item, range(50)) == [-i for i in range(50)]


def test_one_thread_runs_the_items_in_this_thread(torch_threads):
    torch_threads(1)
    here = threading.get_ident()
    assert map_in_threads(lambda item: threading.get_ident(), range(3)) == [here] * 3
