"""GPU: the CUDA checks and the timings of training and reapplying, one table.

Prepared so that a session lent a CUDA machine spends its minutes measuring,
not writing. On a CUDA machine (``device="auto"`` picks it), it

1. **checks** that the model trains on the GPU and reports it
   (``model.device_``), that a model saved on the GPU loads on the CPU with
   the same endmembers (bitwise) and unmixes the same scan to within 1e-4 of
   the GPU's fractions, that a lazy reapply on the GPU gives the per-pixel
   fractions and an in-memory one the spatial layer's (``spatial="auto"``),
   and that the conv encoder's fused branches give
   what its branches run one by one give;
2. **times** training (``s.decomposition(algorithm="ae")``, default options)
   and reapplying the model to the same scan, for a 64 x 64 x 200 EELS scan
   (``datasets.eels_chequerboard``), a 256 x 256 x 1024 scan in memory and a
   lazy scan of 4 GiB generated block by block (``scale.py``'s scans; trained
   on its sample, unmixed chunk by chunk).

Without CUDA it runs the same checks and timings on the CPU (the fallback,
``--quick`` for small scans and one run of each: about 35 s on 2 cores; CI
runs it), so that the script itself is known to work before a GPU is lent.
Each in-memory timing is otherwise the second of two runs (the first warms up
CUDA's kernels and caches); the lazy scan, which comes after them and whose
time is dominated by reading its chunks, is timed once. Rows are printed as
they finish, so that a run stopped at its time limit keeps what it measured;
the table says which device ran each.

Usage::

    python benchmarks/gpu.py            # on the CUDA machine
    python benchmarks/gpu.py --quick    # small scans, any machine

The test suite on the CUDA machine (``device="auto"`` trains every test's
model there), naming each failure as it happens so that a run stopped at its
time limit still says which tests failed::

    python -m pytest -n 12 -o addopts="" -v tests \
        | grep -E "FAILED|ERROR|passed|failed"
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import scale

GiB = 2**30


def _scans(quick: bool) -> list[tuple[str, object]]:
    """(label, signal factory) of the scans timed."""
    from hs_aeunmix import datasets

    if quick:
        lazy_side = 96  # 36 MiB, four chunks
        return [
            (
                "EELS 32 x 32 x 200",
                lambda: datasets.eels_chequerboard(3, shape=(32, 32))[0],
            ),
            ("48 x 48 x 1024 in memory", lambda: scale._memory_scan((48, 48))),
            (
                f"lazy {lazy_side} x {lazy_side} x 1024",
                lambda: scale._lazy_scan((lazy_side, lazy_side), lazy_side // 2),
            ),
        ]
    lazy_side = int(np.sqrt(4 * GiB / (4 * scale.N_CHANNELS)))  # 1024: 4 GiB
    return [
        ("EELS 64 x 64 x 200", lambda: datasets.eels_chequerboard(3)[0]),
        ("256 x 256 x 1024 in memory", lambda: scale._memory_scan((256, 256))),
        (
            f"lazy {lazy_side} x {lazy_side} x 1024 (4 GiB)",
            lambda: scale._lazy_scan((lazy_side, lazy_side), 256),
        ),
    ]


def _train(signal):
    return signal.decomposition(
        algorithm="ae",
        output_dimension=3,
        return_info=True,
        random_state=0,
        print_info=False,
        show_progressbar=False,
    )


def _reapply(signal, path: Path) -> None:
    signal.decomposition(
        algorithm="ae", model=path, print_info=False, show_progressbar=False
    )


def _timed(function, *args) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args)
    if _cuda():
        import torch

        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def checks(folder: Path) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) of the device checks."""
    import hs_aeunmix
    from hs_aeunmix import datasets

    signal = datasets.eels_chequerboard(3, shape=(24, 24), random_state=1)[0]
    model = _train(signal.deepcopy())
    expected = "cuda" if _cuda() else "cpu"
    results = [
        (
            f'device="auto" trains on {expected}',
            model.device_.type == expected,
            str(model.device_),
        )
    ]
    path = folder / "model.aeunmix"
    model.save(path)
    on_cpu = hs_aeunmix.load_model(path, device="cpu")
    same = np.array_equal(on_cpu.components_, model.components_)
    results.append(("saved, loaded on the CPU: same endmembers", same, "bitwise"))
    spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    difference = _largest_difference(
        on_cpu.transform(spectra), model.transform(spectra)
    )
    results.append(
        (
            "same fractions on the CPU",
            difference < 1e-4,
            f"largest difference {difference:.1e}",
        )
    )
    # spatial="auto": a scan in memory gets the neighbourhood layer's maps,
    # a lazy one (chunks without neighbours) each pixel's own fractions.
    in_memory = signal.deepcopy()
    in_memory.decomposition(
        algorithm="ae", model=model, print_info=False, show_progressbar=False
    )
    lazy = signal.deepcopy().as_lazy()
    lazy.decomposition(
        algorithm="ae", model=model, print_info=False, show_progressbar=False
    )
    grid = signal.data.shape[:-1]
    difference = max(
        _largest_difference(lazy.learning_results.loadings, model.transform(spectra)),
        _largest_difference(
            in_memory.learning_results.loadings,
            model.transform(spectra, image_shape=grid),
        ),
    )
    results.append(
        (
            "lazy and in-memory reapply = transform without and with the grid",
            difference < 1e-5,
            f"largest difference {difference:.1e}",
        )
    )
    results.append(_fused_conv_check())
    return results


def _largest_difference(first, second) -> float:
    """Largest absolute difference between two arrays (dask arrays computed)."""
    return float(np.max(np.abs(np.asarray(first) - np.asarray(second))))


def _fused_conv_check() -> tuple[str, bool, str]:
    """The conv encoder's fused branches against its branches run in turn."""
    import torch

    from hs_aeunmix._device import resolve_device
    from hs_aeunmix._networks import MultiBranchConvEncoder, NetworkOptions

    device = resolve_device("auto")
    torch.manual_seed(0)
    options = NetworkOptions(encoder="conv", conv_dropout=0.0)
    encoder = MultiBranchConvEncoder(200, 3, options).to(device)
    spectra = torch.rand(64, 200, device=device)
    largest = 0.0
    for mode in ("train", "eval"):
        getattr(encoder, mode)()
        with torch.no_grad():
            maps = torch.cat(
                [branch(spectra.unsqueeze(1)) for branch in encoder.branches], dim=1
            )
            expected = encoder.reduction(encoder.merge(maps).squeeze(1))
            largest = max(largest, float((encoder(spectra) - expected).abs().max()))
    return (
        f"conv encoder on {device.type}: fused = branch by branch",
        largest < 1e-4,
        f"largest difference {largest:.1e}",
    )


def timings(quick: bool, folder: Path) -> Iterator[dict]:
    """Training and reapplying each scan, the second of two runs in memory.

    The CPU fallback with ``--quick`` checks that the script runs, and times
    one run (the checks before it did the imports).
    """
    for label, make in _scans(quick):
        runs = 1 if (quick and not _cuda()) or label.startswith("lazy") else 2
        for _ in range(runs):
            signal = make()
            model, train_seconds = _timed(_train, signal)
        path = folder / "timed.aeunmix"
        model.save(path)
        for _ in range(runs):
            signal = make()
            _, apply_seconds = _timed(_reapply, signal, path)
        yield {
            "scan": label,
            "device": str(model.device_),
            "train": train_seconds,
            "reapply": apply_seconds,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scans")
    args = parser.parse_args(argv)
    import hyperspy.api as hs
    import torch

    hs.preferences.General.show_progressbar = False
    warnings.simplefilter("ignore")
    name = torch.cuda.get_device_name() if _cuda() else "no CUDA: CPU fallback"
    print(f"torch {torch.__version__}, {name}\n")
    with tempfile.TemporaryDirectory() as folder:
        results = checks(Path(folder))
        print("| check | passed | detail |\n| --- | --- | --- |")
        for check, passed, detail in results:
            print(f"| {check} | {'yes' if passed else 'NO'} | {detail} |")
        print(
            "\n| scan | device | train (s) | reapply (s) |\n| --- | --- | --- | --- |"
        )
        for row in timings(args.quick, Path(folder)):
            print(
                f"| {row['scan']} | {row['device']} | {row['train']:.2f} | "
                f"{row['reapply']:.3f} |",
                flush=True,
            )
    return 0 if all(passed for _, passed, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
