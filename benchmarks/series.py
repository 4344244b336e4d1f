"""A sample series on a dask cluster: the same results as one scan at a time.

Writes 20 scans of one sample (64 x 64 x 512 float32 linear mixtures, each
with its own maps and noise) to a temporary folder, trains a model on the
first, then applies it to all 20 twice with :func:`hs_aeunmix.apply_series`:
in this process, one scan after the other, and on a ``LocalCluster`` of 2
worker processes (one thread each). Prints the seconds per scan of each run
(wall time over 20, and the median time spent unmixing one scan) and the
largest difference between their loadings.

Usage::

    python benchmarks/series.py    # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

N_SCANS = 20
SHAPE = (64, 64)
N_CHANNELS = 512


def _scan(seed: int):
    import hyperspy.api as hs

    rng = np.random.default_rng(seed)
    channels = np.arange(N_CHANNELS)
    endmembers = np.stack(
        [
            10 + 100 * np.exp(-0.5 * ((channels - centre) / 20) ** 2)
            for centre in (120, 260, 400)
        ]
    )
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]] / 16.0
    phase = rng.uniform(0, 2 * np.pi, 3)
    maps = np.stack([1.5 + np.sin(x + p) * np.cos(0.7 * y - p) for p in phase], axis=-1)
    maps /= maps.sum(-1, keepdims=True)
    data = maps @ endmembers
    data += rng.normal(0, 1.0, data.shape)
    signal = hs.signals.Signal1D(data.astype(np.float32))
    signal.axes_manager.signal_axes[0].units = "eV"
    return signal


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    import hyperspy.api as hs
    from dask.distributed import Client, LocalCluster

    import hs_aeunmix

    hs.preferences.General.show_progressbar = False
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = []
        for index in range(N_SCANS):
            path = folder / "scans" / f"scan{index:02d}.hspy"
            path.parent.mkdir(exist_ok=True)
            _scan(index).save(path)
            files.append(path)
        model = hs.load(files[0]).decomposition(
            algorithm="ae",
            output_dimension=3,
            return_info=True,
            print_info=False,
            random_state=0,
        )
        model_path = model.save(folder / "series.aeunmix")
        rows = []
        loadings = {}
        for label in ("one by one, in this process", "LocalCluster, 2 workers"):
            output = folder / label.split(",")[0].replace(" ", "_")
            start = time.perf_counter()
            if label.startswith("LocalCluster"):
                with (
                    LocalCluster(
                        n_workers=2, threads_per_worker=1, processes=True
                    ) as cluster,
                    Client(cluster) as client,
                ):
                    start = time.perf_counter()  # the cluster's start-up apart
                    reports = hs_aeunmix.apply_series(
                        model_path, files, output, client=client
                    )
            else:
                reports = hs_aeunmix.apply_series(model_path, files, output)
            wall = time.perf_counter() - start
            failed = sum(report.failed for report in reports)
            loadings[label] = [
                hs.load(output / f"{path.stem}_ae.hspy").learning_results.loadings
                for path in files
            ]
            rows.append(
                f"| {label} | {N_SCANS} | {failed} | {wall / N_SCANS:.2f} | "
                f"{statistics.median(r.seconds for r in reports):.2f} |"
            )
        first, second = loadings.values()
        difference = max(
            float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True)
        )
    print(
        "| run | scans | failed | wall seconds per scan | unmixing seconds "
        "per scan (median) |"
    )
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print()
    print(f"largest difference between the two runs' loadings: {difference:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
