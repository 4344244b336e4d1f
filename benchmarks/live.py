"""Benchmark: unmixing while the scan is acquired (``hs_aeunmix.LiveUnmixer``).

Trains a small model on a synthetic scan of 256 pixels per row, then pushes
the rows of a second scan one at a time and times each ``push`` (unmixing,
writing the maps, the mismatch measure, the ``data_changed`` events), for
spectra of 256 and 1024 channels. Prints the median and 90th percentile
latency per row, the throughput in spectra per second, and checks that the
maps equal one batch ``transform`` of the whole scan exactly. Nothing here
is a timed test.

Usage::

    python benchmarks/live.py
    python benchmarks/live.py --rows 128 --channels 1024
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch

from hs_aeunmix import AEUnmix, LiveUnmixer

ROW_PIXELS = 256


def scan(n_rows: int, n_channels: int, seed: int) -> np.ndarray:
    """Poisson counts of three Gaussian-band phases mixed smoothly along x."""
    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    endmembers = np.stack(
        [
            5 + 40 * np.exp(-0.5 * ((channels - centre * n_channels) / 12.0) ** 2)
            for centre in (0.25, 0.5, 0.75)
        ]
    )
    x = np.linspace(0, 1, ROW_PIXELS)
    weights = np.stack([(1 - x) ** 2, 2 * x * (1 - x), x**2], axis=-1)
    weights = np.broadcast_to(weights, (n_rows, ROW_PIXELS, 3))
    return rng.poisson(weights @ endmembers).astype(np.float64)


def run(n_channels: int, n_rows: int) -> dict:
    training = scan(64, n_channels, seed=0).reshape(-1, n_channels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AEUnmix(3, max_epochs=5, random_state=0, show_progressbar=False)
        model.fit(training)
    data = scan(n_rows, n_channels, seed=1)
    live = LiveUnmixer(model, (ROW_PIXELS, n_rows))
    live.push(data[0], 0)  # first call: lazy initialisations
    latencies = []
    for row in range(n_rows):
        started = time.perf_counter()
        live.push(data[row], row)
        latencies.append(time.perf_counter() - started)
    maps = live.loadings.data.reshape(3, -1).T
    exact = np.array_equal(maps, model.transform(data.reshape(-1, n_channels)))
    return {
        "channels": n_channels,
        "median_ms": 1e3 * float(np.median(latencies)),
        "p90_ms": 1e3 * float(np.percentile(latencies, 90)),
        "spectra_per_s": ROW_PIXELS / float(np.median(latencies)),
        "exact": exact,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--channels", type=int, nargs="+", default=[256, 1024])
    args = parser.parse_args(argv)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"rows of {ROW_PIXELS} pixels, {args.rows} rows\n"
    )
    print(
        "| channels | push per row, median (ms) | p90 (ms) | spectra / s "
        "| maps = transform |"
    )
    print("| --- | --- | --- | --- | --- |")
    for n_channels in args.channels:
        result = run(n_channels, args.rows)
        print(
            f"| {result['channels']} | {result['median_ms']:.2f} | "
            f"{result['p90_ms']:.2f} | {result['spectra_per_s']:.3g} | "
            f"{'exactly' if result['exact'] else 'NO'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
