"""Calibration of the per-pixel uncertainty (``AEUnmix.uncertainty``), measured.

On held-out (``--split development``: development) scenes of each generator
(``family.py --generator``), trains the default, computes each pixel's
fractions and their standard deviations on the true endmembers' scale
(``metrics.uncertainty_on_reference_scale``) and prints, per subgroup, the
share of pixel-endmember pairs whose true fraction lies within ±2σ and
within ±σ (coverage; about 0.95 and 0.68 for calibrated Gaussian errors)
and Spearman's rank correlation between σ and the actual error, over the
endmembers the stability report calls identified (spread below 0.1 rad and
well supported) and over all of them.

Usage::

    python benchmarks/uncertainty.py --n-scenes 10 --jobs 2
    python benchmarks/uncertainty.py --table-only
    python benchmarks/uncertainty.py --split development --n-scenes 10 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

RESULTS = Path(__file__).parent / "results"


def results_file(split: str) -> Path:
    """Cached records of one split (the held-out one keeps its old name)."""
    name = "uncertainty" if split == "held_out" else f"uncertainty_{split}"
    return RESULTS / f"{name}.jsonl"


def run_one(generator: str, index: int, split: str = "held_out") -> dict:
    """Coverage and rank correlation of one scene."""
    import hyperspy.api as hs
    import torch

    from hs_aeunmix import metrics

    torch.set_num_threads(1)
    hs.preferences.General.show_progressbar = False
    signal, truth, description, model = family.default_fit(generator, index, split)
    spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    # What get_uncertainty gives: the spatial layer's fractions, when the
    # model has one (results/uncertainty_per_pixel.jsonl: before it had).
    grid = (
        {"image_shape": signal.data.shape[:-1]}
        if model.module_.spatial is not None
        else {}
    )
    fractions, covariance = model._fractions_and_covariance(spectra, **grid)
    order = metrics.match_endmembers(model.components_, truth.endmembers)
    rescaled, sigma = metrics.uncertainty_on_reference_scale(
        model.components_, fractions, covariance, truth.endmembers, order
    )
    true_fractions = truth.abundances.reshape(len(rescaled), -1)
    report = model.stability_
    unsure = {*report.unstable.tolist(), *report.thin.tolist()}
    identified = [k for k, estimated in enumerate(order) if estimated not in unsure]
    record = {
        "generator": generator,
        "index": index,
        "subgroups": list(description.subgroups),
        "modality": description.modality,
        "all": metrics.uncertainty_scores(rescaled, sigma, true_fractions),
        "identified_endmembers": len(identified),
        "n": truth.n_endmembers,
    }
    if identified:
        record["identified"] = metrics.uncertainty_scores(
            rescaled[:, identified], sigma[:, identified], true_fractions[:, identified]
        )
    return record


def _worker(task):
    return run_one(*task)


# The scenes the target is set on: those not in the low-dose subgroup.
NOT_LOW_DOSE = "not low_dose"


def _belongs(record: dict, subgroup: str) -> bool:
    if subgroup == NOT_LOW_DOSE:
        return "low_dose" not in family.groups(record)
    return subgroup == "all" or subgroup in family.groups(record)


def table(records: list[dict]) -> str:
    lines = [
        "| generator | subgroup | scenes | coverage ±2σ / ±σ (identified) | rank "
        "correlation (identified) | coverage ±2σ / ±σ (all) | rank correlation "
        "(all) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for generator in family.GENERATORS:
        rows = [r for r in records if r["generator"] == generator]
        for subgroup in (*family.SUBGROUPS, NOT_LOW_DOSE):
            chosen = [r for r in rows if _belongs(r, subgroup)]
            if not chosen:
                continue
            identified = [r["identified"] for r in chosen if "identified" in r]
            every = [r["all"] for r in chosen]

            def median(scores, key):
                values = [s[key] for s in scores if np.isfinite(s.get(key, np.nan))]
                return f"{np.median(values):.2f}" if values else "-"

            lines.append(
                f"| {generator} | {subgroup} | {len(chosen)} "
                f"| {median(identified, 'coverage')} / "
                f"{median(identified, 'coverage_1sigma')} "
                f"| {median(identified, 'rank_correlation')} "
                f"| {median(every, 'coverage')} / {median(every, 'coverage_1sigma')} "
                f"| {median(every, 'rank_correlation')} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family.add_scene_arguments(parser, n_scenes=10, split="held_out")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    path = results_file(args.split)
    records = family.load(path)
    done = {(r["generator"], r["index"]) for r in records}
    tasks = [
        (generator, index, args.split)
        for generator in args.generators
        for index in range(args.n_scenes)
        if (generator, index) not in done
    ]
    if tasks and not args.table_only:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool:
            for record in pool.imap_unordered(_worker, tasks):
                with open(path, "a") as stream:
                    stream.write(json.dumps(record) + "\n")
                records.append(record)
                print(
                    f"{record['generator']} {record['index']}: "
                    f"{record['all']['coverage']:.2f}",
                    flush=True,
                )
    print("Median over scenes of each scene's coverage and rank correlation.")
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
