"""Tests of the allocator settings kept while training."""

from __future__ import annotations

import resource

import numpy as np
import pytest
import torch

from hs_aeunmix import AEUnmix, _allocator
from hs_aeunmix._allocator import copied_apart

glibc_only = pytest.mark.skipif(
    _allocator._LIBC is None, reason="mallopt is glibc's (Linux)"
)


def _page_faults_of_training_like_steps() -> int:
    """Minor page faults of 20 steps that each hold three 12 MiB blocks."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        blocks = [np.ones(3 << 20, dtype=np.float32) for _ in range(3)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc_only
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    with _allocator.freed_memory_reused():
        pass  # leaves glibc's documented defaults in place
    outside = _page_faults_of_training_like_steps()
    with _allocator.freed_memory_reused():
        _page_faults_of_training_like_steps()  # the heap grows once
        inside = _page_faults_of_training_like_steps()
    # Every step faults its blocks in again when nothing is kept (31,080
    # faults here: fewer than the 184,320 pages where the kernel maps huge
    # pages), and none once the heap holds them.
    assert outside > 10_000
    assert inside < outside / 100


@pytest.fixture
def settings(monkeypatch) -> list[tuple[int, int]]:
    """The (trim, mmap) thresholds set, in order, instead of setting them."""
    calls = []
    monkeypatch.setattr(
        _allocator, "_set", lambda trim, mmap: calls.append((trim, mmap)) or True
    )
    return calls


@glibc_only
def test_thresholds_are_set_once_and_restored_by_the_last_one_out(settings):
    calls = settings
    kept = (_allocator._KEPT_TOTAL, _allocator._KEPT_BLOCK)
    default = (_allocator._DEFAULT_THRESHOLD,) * 2
    with _allocator.freed_memory_reused():
        with _allocator.freed_memory_reused():
            assert calls == [kept]
        assert calls == [kept]
    assert calls == [kept, default]


@glibc_only
def test_training_and_transform_keep_freed_memory(settings):
    calls = settings
    kept = (_allocator._KEPT_TOTAL, _allocator._KEPT_BLOCK)
    rng = np.random.default_rng(0)
    spectra = rng.random((64, 3)) @ rng.random((3, 40))
    model = AEUnmix(3, max_epochs=1, random_state=0, show_progressbar=False)
    model.fit(spectra)
    assert calls[0] == kept
    calls.clear()
    model.transform(spectra)
    assert calls[0] == kept


def test_epoch_copies_are_exact_and_apart_from_the_weights():
    state = {
        "weight": torch.randn(5, 3),
        "count": torch.tensor(7, dtype=torch.int64),
        "odd": torch.randn(3, dtype=torch.float16),
        "empty": torch.empty(0, 4),
    }
    copied = copied_apart(state)
    for name, tensor in state.items():
        assert copied[name].dtype == tensor.dtype
        assert torch.equal(copied[name], tensor)
    state["weight"].add_(1.0)
    assert not torch.equal(copied["weight"], state["weight"])
