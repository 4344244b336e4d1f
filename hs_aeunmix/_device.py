"""Where work runs: :func:`resolve_device` (``device="auto"`` and checks) for
the networks, :func:`map_in_threads` for numpy work on the CPU's cores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA, else Apple's MPS, else the CPU; other values go to torch."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu' "
            "or 'cuda'."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch finds no CUDA device; use "
            "device='auto' to fall back to the CPU."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            "device='mps' was requested but torch finds no Apple GPU (MPS); use "
            "device='auto' to fall back to the CPU."
        )
    return resolved


def map_in_threads(
    function: Callable[[_Item], _Result], items: Iterable[_Item]
) -> list[_Result]:
    """``[function(item) for item in items]``, on as many threads as torch uses.

    For numpy work on independent blocks of spectra: numpy's elementwise
    operations release the GIL, so the blocks run on the cores at once.
    The threads are torch's intra-op setting (``torch.set_num_threads``,
    ``OMP_NUM_THREADS``), the one knob that limits the package's CPU use;
    with one thread the items run in this thread. The results keep the
    items' order, so they are those of the loop.
    """
    n_threads = torch.get_num_threads()
    if n_threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(function, items))
