"""What keeping freed memory while training (``hs_aeunmix._allocator``) is worth.

Each row trains in a fresh process, with glibc's thresholds kept while
fitting (as the package does) or with the context switched off, and prints
wall seconds, user and system CPU seconds and minor page faults of the fit:

* the ``pnas2024`` preset for 20 epochs on the 64 x 64 x 200 EELS case
  ``eels3`` of ``benchmarks/run.py``;
* the default on a 128 x 128 x 1024 scan of ``benchmarks/scale.py``.

Runs alternate (on, off, on, off) so that the machine's drift shows.

Usage::

    python benchmarks/allocator.py          # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

CASES = ("pnas2024, 20 epochs, eels3", "default, 128 x 128 x 1024")


def _child(case: str, kept: bool) -> dict:
    import hyperspy.api as hs

    from hs_aeunmix import AEUnmix, _allocator

    sys.path.insert(0, str(Path(__file__).parent))
    warnings.simplefilter("ignore")
    hs.preferences.General.show_progressbar = False
    if not kept:
        _allocator._LIBC = None  # the context then does nothing
    if case == CASES[0]:
        import run

        signal, _ = run.CASES["eels3"](0)
        model = AEUnmix.from_preset(
            "pnas2024", 3, max_epochs=20, random_state=0, show_progressbar=False
        )
    else:
        import scale

        signal = scale._memory_scan((128, 128))
        model = AEUnmix(3, random_state=0, show_progressbar=False)
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    model.fit(spectra)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "case": case,
        "kept": kept,
        "seconds": seconds,
        "user": after.ru_utime - before.ru_utime,
        "system": after.ru_stime - before.ru_stime,
        "faults": after.ru_minflt - before.ru_minflt,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--off", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, not args.off)))
        return 0
    print(
        "| run | freed memory kept | wall s | user s | system s | minor page faults |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for case in CASES:
        for _ in range(args.repeats):
            for kept in (True, False):
                command = [sys.executable, __file__, "--child", case]
                result = subprocess.run(
                    command + ([] if kept else ["--off"]),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(result.stdout.strip().splitlines()[-1])
                print(
                    f"| {case} | {'yes' if kept else 'no'} | {r['seconds']:.1f} | "
                    f"{r['user']:.1f} | {r['system']:.1f} | {r['faults']} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
