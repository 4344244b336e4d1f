"""Does the default beat every peer in every subgroup of the held-out scenes?

Issue 21's test: on the held-out scenes of each generator, in every
subgroup, the default's median and 90th percentile of the spectral angle
and of the abundance RMSE must each be below every peer's (NMF, SVD+ICA,
VCA+FCLS, MCR-ALS, the plain autoencoder, ``daeu``). The peers' records
are ``family.py``'s (``results/held_out_GENERATOR.jsonl``); the default's
are a variant of ``ablation.py`` (``results/ablation_held_out_GENERATOR
.jsonl``), on the scenes both have. Nothing is run: run those two first.

Usage::

    python benchmarks/subgroups.py \
        --variant "epoch veto among the epochs trained after the choice"
    python benchmarks/subgroups.py --variant LABEL --scenes 40 60

Prints, per generator, ``family.table`` of the default and the peers, then
per subgroup the columns where a peer is at least as good, and which peer,
with how firmly the scenes say so: on how many scenes that peer is better
and worse than the default by more than 0.01, and in what share of
:data:`RESAMPLES` paired bootstrap resamples of the subgroup's scenes (the
same scenes for both methods, a fixed seed) the peer's statistic is still at
least as good. A lead that holds in about half of the resamples is one the
scenes cannot tell from a tie; the done-when counts it as a loss all the
same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

RESULTS = Path(__file__).parent / "results"
PEERS = ("NMF", "SVD+ICA", "VCA+FCLS", "MCR-ALS", "plain AE", "daeu")
# Paired bootstrap resamples of the scenes behind each lost column.
RESAMPLES = 2000
COLUMNS = {
    "angle median": ("angle", np.median),
    "angle p90": ("angle", lambda values: np.percentile(values, 90)),
    "RMSE median": ("rmse", np.median),
    "RMSE p90": ("rmse", lambda values: np.percentile(values, 90)),
}


def records_of(generator: str, variant: str) -> list[dict]:
    """The peers' records and the variant's (as method "ae") on shared scenes."""
    peers = [
        r
        for r in family.load(RESULTS / f"held_out_{generator}.jsonl")
        if r["method"] in PEERS
    ]
    default = [
        {**r, "method": "ae"}
        for r in family.load(RESULTS / f"ablation_held_out_{generator}.jsonl")
        if r["variant"] == variant
    ]
    shared = {r["index"] for r in default} & {r["index"] for r in peers}
    return [r for r in peers + default if r["index"] in shared]


def losses(records: list[dict]) -> list[str]:
    """Per subgroup, the columns where a peer is at least as good as the default."""
    by_key = {(r["index"], r["method"]): r for r in records}
    methods = ["ae", *(m for m in PEERS if any(k[1] == m for k in by_key))]
    indices = sorted({index for index, _ in by_key})
    lines = []
    for subgroup in family.SUBGROUPS:
        scenes = [
            i
            for i in indices
            if all((i, m) in by_key for m in methods)
            and (subgroup == "all" or subgroup in family.groups(by_key[(i, "ae")]))
        ]
        if not scenes:
            continue
        lost = []
        for column, (key, statistic) in COLUMNS.items():
            per_scene = {
                m: np.array([family._value(by_key[(i, m)], key) for i in scenes])
                for m in methods
            }
            values = {m: statistic(per_scene[m]) for m in methods}
            best = min(PEERS, key=lambda m: values.get(m, np.inf))
            if values[best] <= values["ae"]:
                lost.append(
                    f"{column} ({best} {values[best]:.3f} against {values['ae']:.3f}; "
                    + paired_evidence(per_scene[best], per_scene["ae"], statistic)
                    + ")"
                )
        verdict = "; ".join(lost) if lost else "best on all four columns"
        lines.append(f"| {subgroup} | {len(scenes)} | {verdict} |")
    return lines


def paired_evidence(peer: np.ndarray, default: np.ndarray, statistic) -> str:
    """How firmly the scenes say that ``peer``'s statistic beats ``default``'s.

    ``peer`` and ``default``: one value per scene, the same scenes in the same
    order. Says on how many scenes the peer is better and worse by more than
    :data:`family.MARGIN`, and in what share of :data:`RESAMPLES` paired bootstrap
    resamples of the scenes its statistic is at least as good.
    """
    better, worse = family.better_worse(peer, default)
    draws = np.random.default_rng(0).integers(0, len(peer), size=(RESAMPLES, len(peer)))
    held = np.mean(
        [statistic(peer[rows]) <= statistic(default[rows]) for rows in draws]
    )
    return f"better on {better}, worse on {worse}; holds in {held:.0%} of resamples"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", default="epoch veto among the epochs trained after the choice"
    )
    parser.add_argument("--generators", nargs="+", default=list(family.GENERATORS))
    parser.add_argument(
        "--scenes",
        nargs=2,
        type=int,
        metavar=("FIRST", "STOP"),
        help="only held-out scenes FIRST to STOP - 1 (a range not used for a choice)",
    )
    args = parser.parse_args(argv)
    for generator in args.generators:
        records = records_of(generator, args.variant)
        if args.scenes is not None:
            first, stop = args.scenes
            records = [r for r in records if first <= r["index"] < stop]
        if not records:
            print(f"**{generator}**: no shared held-out scenes\n")
            continue
        methods = ["ae", *(m for m in PEERS if any(r["method"] == m for r in records))]
        print(f"**{generator}** (ae: {args.variant})\n")
        print(family.table(records, methods))
        print("\n| subgroup | scenes | where a peer is as good or better |")
        print("| --- | --- | --- |")
        print("\n".join(losses(records)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
