"""Freed memory kept for reuse while a network trains (glibc's malloc only).

Each training step allocates and frees the same few large tensors: a
convolutional encoder's feature maps are 13 MiB per batch of 128 spectra of
200 channels, a dense encoder's batches of 1024-channel spectra several MiB.
glibc serves blocks that large with ``mmap`` and gives them back to the
system when freed, or trims them off the top of its heap, so that every step
faults the same memory in again, page by page. Measured on 2 cores
(``benchmarks/allocator.py``, 20 epochs of the ``pnas2024`` network on a
64 x 64 x 200 scan): 9.7-9.9 million page faults and 20-21 s of system time
in a 30-34 s fit without this module, 0.3 million and 1 s in 20-24 s with
it. The default network's fits hardly change (9-12 s either way).

:func:`freed_memory_reused` raises glibc's thresholds while training, so
that blocks up to :data:`_KEPT_BLOCK` come from the heap and freed memory up
to :data:`_KEPT_TOTAL` stays there for the next step; on leaving, the
defaults glibc documents are set again (its dynamic adjustment of them is not
restored: there is no way to) and the free memory is returned to the system
(``malloc_trim``). On other C libraries (macOS, Windows, musl) it does
nothing. The same effect for a whole process: jemalloc or tcmalloc in
``LD_PRELOAD``, as PyTorch's performance guide recommends.

The weights training keeps from every epoch (for
:func:`~hs_aeunmix._risk.epoch_to_keep`) are copied outside the heap
(:func:`copied_apart`): in the heap, each copy lies above the large
temporaries freed after it, which can then no longer be reused whole. Kept
there, they grew the peak memory of a 256 x 256 x 1024 fit by an evaluation
batch (16 MiB) per epoch: 751 MiB extra, against 459-516 MiB with them
apart and 400-408 MiB before epochs were judged at all (the risks and
their bookkeeping, still in the heap, hold the rest; moving the risks
apart too measured no better).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import mmap
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap while training: the largest
# value glibc accepts on 64-bit systems.
_KEPT_BLOCK = 32 << 20
# Free memory at the top of the heap up to this size is kept while training.
_KEPT_TOTAL = 1 << 30
# glibc's documented defaults (mallopt(3)), set again on leaving.
_DEFAULT_THRESHOLD = 128 << 10

_lock = threading.Lock()
_depth = 0


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


def _set(trim: int, mmap: int) -> bool:
    return bool(
        _LIBC.mallopt(_M_TRIM_THRESHOLD, trim)
        and _LIBC.mallopt(_M_MMAP_THRESHOLD, mmap)
    )


@contextmanager
def freed_memory_reused() -> Iterator[None]:
    """Keep freed memory in the process for reuse inside the block (see module).

    Nested and concurrent blocks share one setting: the first one in sets
    it, the last one out restores the defaults.
    """
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        if _depth == 0 and not _set(_KEPT_TOTAL, _KEPT_BLOCK):
            _logger.debug("mallopt refused the thresholds")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(_DEFAULT_THRESHOLD, _DEFAULT_THRESHOLD)
                _LIBC.malloc_trim(0)


def copied_apart(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Host copies of ``tensors`` in one anonymous map (see the module docstring)."""
    offsets, end = [], 0
    for tensor in tensors.values():
        offsets.append(end)
        # Each tensor starts on a 64-byte boundary (any dtype's alignment).
        end += -(-tensor.numel() * tensor.element_size() // 64) * 64
    # Anonymous memory of its own, returned to the system when dropped.
    memory = mmap.mmap(-1, max(end, 1))
    copies = {}
    for (name, tensor), offset in zip(tensors.items(), offsets, strict=True):
        if not tensor.numel():
            # torch.frombuffer refuses a count of 0.
            copies[name] = torch.empty_like(tensor, device="cpu")
            continue
        view = torch.frombuffer(
            memory, dtype=tensor.dtype, count=tensor.numel(), offset=offset
        )
        copies[name] = view.view(tensor.shape).copy_(tensor)
    return copies
