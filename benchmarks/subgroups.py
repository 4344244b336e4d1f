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

Prints, per generator, ``family.table`` of the default and the peers, then
per subgroup the columns where a peer is at least as good, and which peer.
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
            values = {
                m: statistic([family._value(by_key[(i, m)], key) for i in scenes])
                for m in methods
            }
            best = min(PEERS, key=lambda m: values.get(m, np.inf))
            if values[best] <= values["ae"]:
                lost.append(
                    f"{column} ({best} {values[best]:.3f} against {values['ae']:.3f})"
                )
        verdict = "; ".join(lost) if lost else "best on all four columns"
        lines.append(f"| {subgroup} | {len(scenes)} | {verdict} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", default="epoch veto among the epochs trained after the choice"
    )
    parser.add_argument("--generators", nargs="+", default=list(family.GENERATORS))
    args = parser.parse_args(argv)
    for generator in args.generators:
        records = records_of(generator, args.variant)
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
