"""Benchmark: reapplying a trained model to new scans (issue: reuse across a series).

Trains one model per case on a first scan, then times, on a second scan of
the same sample (new maps, other dose):

* the forward pass alone (``model.transform`` on the spectra as an array),
* end to end through ``s.decomposition(algorithm="ae", model=model)``
  (intensity ratio, unmixing, HyperSpy's bookkeeping, the model copy stored
  in ``learning_results``),

as the median of several repeats, and the extra memory of the end-to-end call
(in a fresh process that loads the scan and the model: the peak resident
memory during one call minus the resident memory before it; Linux only). Prints a
markdown table; nothing here is a timed test.

Usage::

    python benchmarks/inference.py              # both cases
    python benchmarks/inference.py --cases eels4 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import hyperspy.api as hs
import torch

import hs_aeunmix
from hs_aeunmix import datasets


def _eels4(seed: int, shape, dose: float):
    signal, _ = datasets.eels_chequerboard(4, shape=shape, dose=dose, random_state=seed)
    return signal


def _raman1024(seed: int, shape, dose: float):
    signal, _ = datasets.raman_scene(
        4, shape=shape, scene="gaussian", n_channels=1024, random_state=seed
    )
    signal.data *= dose / 200.0
    return signal


# name: (generator, training shape, inference shape)
CASES = {
    "eels4": (_eels4, (64, 64), (64, 64)),
    "raman1024": (_raman1024, (64, 64), (256, 256)),
}


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _resident_peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _peak_memory_child(scan_path: str, model_path: str) -> None:
    """Run in a fresh process: print the memory added by one end-to-end call."""
    hs.preferences.General.show_progressbar = False
    signal = hs.load(scan_path)
    model = hs_aeunmix.load_model(model_path)
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current resident
    # size, so that loading the file does not hide the call's own peak.
    Path("/proc/self/clear_refs").write_text("5")
    before = _resident_peak_mib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.decomposition(algorithm="ae", model=model, print_info=False)
    extra = _resident_peak_mib() - before
    print(json.dumps({"extra_mib": extra, "input_mib": signal.data.nbytes / 2**20}))


def _peak_memory(signal, model) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        scan_path = str(Path(folder) / "scan.hspy")
        model_path = str(model.save(Path(folder) / "model"))
        signal.save(scan_path)
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", scan_path, model_path],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_case(name: str, repeats: int) -> str:
    generator, training_shape, inference_shape = CASES[name]
    first = generator(0, training_shape, 200.0)
    start = time.perf_counter()
    model = first.decomposition(
        algorithm="ae",
        output_dimension=4,
        return_info=True,
        print_info=False,
        random_state=0,
        show_progressbar=False,
    )
    training = time.perf_counter() - start
    second = generator(1, inference_shape, 300.0)
    spectra = second.data.reshape(-1, second.data.shape[-1])
    model.transform(spectra[:256])  # warm-up: first calls allocate
    forward = _median_seconds(lambda: model.transform(spectra), repeats)

    def end_to_end():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            second.decomposition(algorithm="ae", model=model, print_info=False)

    total = _median_seconds(end_to_end, repeats)
    memory = _peak_memory(second, model)
    ny, nx, channels = second.data.shape
    return (
        f"| {name} | {ny} x {nx} x {channels} | {training:.1f} "
        f"| {forward * 1e3:.0f} | {total * 1e3:.0f} "
        f"| {memory['input_mib']:.0f} | {memory['extra_mib']:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _peak_memory_child(*args.memory_child)
        return 0
    hs.preferences.General.show_progressbar = False
    print(
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"hs_aeunmix {hs_aeunmix.__version__}. Median of {args.repeats} repeats.\n"
    )
    print(
        "| case | scan (pixels x channels) | training on 64 x 64 (s) "
        "| forward pass (ms) | end to end (ms) | scan in memory (MiB) "
        "| extra memory (MiB) |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for name in args.cases:
        print(run_case(name, args.repeats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
