"""How often the other starts tie with the kept one, and what the spread tracks.

The stability report's ``spread`` is the largest angle between each kept
endmember and its match among the other starts' (``hs_aeunmix._selection``).
On the scenes of each generator this prints how many scenes have another
start whose held-out fit ties with the kept one's within the noise
(``_selection.tied``, after the starts' brief training), and Spearman's rank
correlation over scenes between the largest spread and the kept model's
mean spectral angle to the true endmembers: counting every start, and
counting only the tied ones (scenes without a tied start left out).

Usage::

    python benchmarks/start_ties.py --n-scenes 10 --jobs 2          # held-out
    python benchmarks/start_ties.py --split development --n-scenes 8 --jobs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family


def run_one(task: tuple[str, int, str]) -> dict:
    """The kept start's angle and both spreads on one scene."""
    import hyperspy.api as hs
    import torch

    from hs_aeunmix import _fitting, _selection, metrics

    torch.set_num_threads(1)
    hs.preferences.General.show_progressbar = False
    generator, index, split = task
    record: dict = {"generator": generator, "index": index}
    report = _fitting.stability

    def observed(candidates, chosen, *pixels, **options):
        keep = _selection.tied(candidates)
        endmembers = [
            c.module.decoder.endmembers.detach().cpu().numpy().astype(np.float64)
            for c in candidates
        ]
        tied = [k for k in range(len(candidates)) if k != chosen and keep[k]]
        record["tied_starts"] = len(tied)
        record["tied_spread"] = (
            float(
                max(
                    _selection._angles(endmembers[chosen], endmembers[k]).max()
                    for k in tied
                )
            )
            if tied
            else np.nan
        )
        return report(candidates, chosen, *pixels, **options)

    _fitting.stability = observed
    _, truth, _, model = family.default_fit(generator, index, split)
    record["spread"] = float(np.nanmax(model.stability_.spread))
    record["angle"] = metrics.mean_spectral_angle(model.components_, truth.endmembers)
    return record


def table(records: list[dict]) -> str:
    from scipy.stats import spearmanr

    lines = [
        "| generator | scenes | scenes where another start ties | rank correlation "
        "of the spread with the angle: every start | tied starts only (scenes) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for generator in family.GENERATORS:
        rows = [r for r in records if r["generator"] == generator]
        if not rows:
            continue
        angle = np.array([r["angle"] for r in rows])
        spread = np.array([r["spread"] for r in rows])
        tied = np.array([r["tied_spread"] for r in rows])
        some = np.isfinite(tied)
        every = spearmanr(spread, angle)[0]
        only = spearmanr(tied[some], angle[some])[0] if some.sum() > 2 else np.nan
        lines.append(
            f"| {generator} | {len(rows)} | {int(some.sum())} | {every:.2f} "
            f"| {only:.2f} ({int(some.sum())}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family.add_scene_arguments(parser, n_scenes=10, split="held_out")
    args = parser.parse_args(argv)
    records = family.on_every_scene(run_one, args)
    print(f"{args.split} scenes, {args.n_scenes} per generator")
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
