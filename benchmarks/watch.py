"""Benchmark: the watched folder's delay from a scan file closed to its results.

A small model is trained, then ``hs_aeunmix._watch.watch_folder`` watches a
temporary folder in a thread while this script writes scans into it (a
64 x 64 x 200 synthetic EELS scan per file, written to a temporary name and
renamed, as acquisition software does). For each file the delay from the
rename to the moment its results were written (``on_result``) is printed,
with the part the watch spends waiting for the file to settle (``--settle``
plus up to one ``--interval``, then loading and writing the results) and
the part spent unmixing.
Nothing here is a timed test.

Usage::

    python benchmarks/watch.py
    python benchmarks/watch.py --files 5 --interval 0.5 --settle 1
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import warnings
from pathlib import Path

import hyperspy.api as hs
import numpy as np

from hs_aeunmix import datasets
from hs_aeunmix._watch import DONE, watch_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    warnings.simplefilter("ignore")
    root = Path(tempfile.mkdtemp())
    incoming, output = root / "incoming", root / "results"
    incoming.mkdir()
    first, _ = datasets.eels_chequerboard(3, random_state=0)
    model = first.decomposition(
        algorithm="ae",
        output_dimension=3,
        random_state=0,
        return_info=True,
        print_info=False,
    )
    model_path = model.save(root / "first.aeunmix")
    closed: dict[str, float] = {}
    finished: dict[str, tuple[float, float]] = {}
    stop = threading.Event()

    def on_result(result) -> None:
        if result.outcome == DONE:
            finished[Path(result.source).name] = (time.perf_counter(), result.seconds)
        if len(finished) == args.files:
            stop.set()

    watcher = threading.Thread(
        target=watch_folder,
        args=(incoming, model_path, output),
        kwargs={
            "interval": args.interval,
            "settle": args.settle,
            "stop": stop,
            "on_result": on_result,
        },
    )
    watcher.start()
    for number in range(args.files):
        scan, _ = datasets.eels_chequerboard(3, random_state=number + 1)
        temporary = incoming / f".scan{number}.hspy"
        scan.save(temporary)
        final = incoming / f"scan{number}.hspy"
        temporary.rename(final)
        closed[final.name] = time.perf_counter()
        # The next acquisition takes a while: one file at a time.
        while final.name not in finished and watcher.is_alive():
            time.sleep(0.05)
    stop.set()
    watcher.join()
    print(
        f"interval {args.interval:g} s, settle {args.settle:g} s; 64 x 64 x 200 "
        "EELS scans\n"
    )
    print(
        "| file | closed to results (s) | unmixing (s) "
        "| settling, loading, writing (s) |"
    )
    print("| --- | --- | --- | --- |")
    delays = []
    for name, started in closed.items():
        done, seconds = finished[name]
        delay = done - started
        delays.append(delay)
        print(f"| {name} | {delay:.2f} | {seconds:.2f} | {delay - seconds:.2f} |")
    print(f"\nmedian delay {np.median(delays):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
