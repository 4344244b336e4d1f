"""How many pixels the training sample needs, on large scans (issue 25).

The default trains on a uniform random sample of at most
``hs_aeunmix._fitting.MAX_TRAINING_PIXELS`` spectra; everything before the
training steps (screening, scaling, the candidate starts' statistics, the
encoder's input statistics) touches every sampled spectrum, so the cap sets
most of the time spent outside the steps on a large scan. This trains the
default on 256 x 256 scenes of the three generators (the project's family,
the independent STEM-EELS and Raman-compound generators; 65,536 pixels, so
the largest cap is the whole scan) with the cap set to each value of
``--caps``, and prints, per generator and cap, the median and 90th percentile
of the mean spectral angle and of the abundance RMSE, the median of each
scene's change against the largest cap, how many scenes got better or worse
by more than 0.005, and the median time of the call. The row "other seed"
is the largest cap again with ``random_state`` shifted by
:data:`OTHER_SEED`: how much a scene's result moves when nothing but the
random draws change, the yardstick for the caps' changes.

A cap is *accepted* on a set of scenes when the median change of both the
angle (rad) and the RMSE against the largest cap is at most
:data:`TOLERANCE` and no scene worsens by more than :data:`WORST_CHANGE` on
either (a failure introduced). The rule is applied leaving one generator
out: the smallest cap accepted on the other two, then whether it is accepted
on the one left out.

Usage::

    python benchmarks/sample_size.py        # about 30 minutes on 2 cores
    python benchmarks/sample_size.py --n-scenes 2 --caps 65536 16384
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family  # generators, patched constants
import peers  # the default through HyperSpy, scores

RESULTS = Path(__file__).parent / "results" / "sample_size.jsonl"
SHAPE = (256, 256)
TOLERANCE = 0.002
WORST_CHANGE = 0.05
CAP = "hs_aeunmix._fitting.MAX_TRAINING_PIXELS"
OTHER_SEED = 1000


def scene_records(generator: str, index: int, runs: list[tuple]) -> list[dict]:
    """The default on scene ``index`` (256 x 256) of ``generator``.

    ``runs``: ``(cap, seed offset)`` pairs, one fit each.
    """
    import hyperspy.api as hs

    from hs_aeunmix import datasets

    hs.preferences.General.show_progressbar = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal, truth, _ = getattr(datasets, family.GENERATORS[generator])(
            index, "development", shape=SHAPE
        )
    records = []
    for cap, offset in runs:
        run = peers.autoencoder()
        with family._patched({CAP: cap}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            result = run(signal, truth.n_endmembers, index + offset)
            seconds = time.perf_counter() - start
        scores = peers.score(signal, truth, *result)
        records.append(
            {
                "generator": generator,
                "index": index,
                "cap": cap,
                "seed_offset": offset,
                "angle": scores["angle"],
                "rmse": scores["rmse"],
                "seconds": seconds,
            }
        )
        print(json.dumps(records[-1]), flush=True)
    return records


def _key(record: dict) -> tuple[int, int]:
    return record["cap"], record.get("seed_offset", 0)


def _label(key: tuple[int, int]) -> str:
    return f"{key[0]}" + (" (other seed)" if key[1] else "")


def _changes(records: list[dict], key: tuple, full: tuple, metric: str) -> np.ndarray:
    reference = {(r["generator"], r["index"]): r for r in records if _key(r) == full}
    return np.array(
        [
            r[metric] - reference[(r["generator"], r["index"])][metric]
            for r in records
            if _key(r) == key
        ]
    )


def accepted(records: list[dict], key: tuple, full: tuple) -> bool:
    """Whether run ``key`` moves these scenes no more than the rule allows."""
    for metric in ("angle", "rmse"):
        change = _changes(records, key, full, metric)
        if np.median(change) > TOLERANCE or change.max() > WORST_CHANGE:
            return False
    return True


def table(records: list[dict], keys: list[tuple]) -> str:
    """Markdown table per generator and run."""
    full = (max(k[0] for k in keys), 0)
    lines = [
        "| generator | cap | scenes | angle median | angle p90 | RMSE median "
        "| RMSE p90 | angle change median | RMSE change median "
        "| better / worse (either, > 0.005) | largest worsening (angle, RMSE) "
        "| seconds median | accepted |",
        "| --- " * 13 + "|",
    ]
    for generator in sorted({r["generator"] for r in records}):
        mine = [r for r in records if r["generator"] == generator]
        for key in keys:
            rows = [r for r in mine if _key(r) == key]
            angle = _changes(mine, key, full, "angle")
            rmse = _changes(mine, key, full, "rmse")
            better = int(np.sum((angle < -0.005) | (rmse < -0.005)))
            worse = int(np.sum((angle > 0.005) | (rmse > 0.005)))
            lines.append(
                f"| {generator} | {_label(key)} | {len(rows)} "
                f"| {np.median([r['angle'] for r in rows]):.4f} "
                f"| {np.percentile([r['angle'] for r in rows], 90):.4f} "
                f"| {np.median([r['rmse'] for r in rows]):.4f} "
                f"| {np.percentile([r['rmse'] for r in rows], 90):.4f} "
                f"| {np.median(angle):+.4f} | {np.median(rmse):+.4f} "
                f"| {better} / {worse} "
                f"| {angle.max():+.3f}, {rmse.max():+.3f} "
                f"| {np.median([r['seconds'] for r in rows]):.1f} "
                f"| {'yes' if accepted(mine, key, full) else 'no'} |"
            )
    return "\n".join(lines)


def leave_one_out(records: list[dict], caps: list[int]) -> str:
    """The smallest cap accepted on two generators, checked on the third."""
    full = (max(caps), 0)
    generators = sorted({r["generator"] for r in records})
    lines = []
    for left_out in generators:
        others = [r for r in records if r["generator"] != left_out]
        chosen = min(
            c for c in caps if (c, 0) == full or accepted(others, (c, 0), full)
        )
        held = [r for r in records if r["generator"] == left_out]
        verdict = "accepted" if accepted(held, (chosen, 0), full) else "NOT accepted"
        lines.append(
            f"* {left_out} left out: cap {chosen} chosen on the others, "
            f"{verdict} on {left_out}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument("--caps", type=int, nargs="+", default=[65536, 32768, 16384])
    parser.add_argument(
        "--generators",
        nargs="+",
        default=list(family.GENERATORS),
        choices=family.GENERATORS,
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the records in results/"
    )
    args = parser.parse_args(argv)
    caps = sorted(args.caps, reverse=True)
    keys = [(caps[0], 0), (caps[0], OTHER_SEED)] + [(c, 0) for c in caps[1:]]
    records = [] if args.fresh or not RESULTS.exists() else family.load(RESULTS)
    done = {(r["generator"], r["index"], _key(r)) for r in records}
    for generator in args.generators:
        for index in range(args.n_scenes):
            missing = [k for k in keys if (generator, index, k) not in done]
            if not missing:
                continue
            new = scene_records(generator, index, missing)
            records.extend(new)
            with RESULTS.open("a") as stream:
                stream.writelines(json.dumps(r) + "\n" for r in new)
    chosen = [
        r
        for r in records
        if r["generator"] in args.generators
        and r["index"] < args.n_scenes
        and _key(r) in keys
    ]
    print(table(chosen, keys))
    print()
    print(leave_one_out(chosen, caps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
