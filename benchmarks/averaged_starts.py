"""Diagnosis: starts found on spectra averaged over 3 x 3 neighbourhoods (issue 21).

A vertex start (SPA, VCA) picks the purest-looking pixels, whose noise pulls
them outwards; averaging each spectrum with its 3 x 3 neighbourhood divides
the noise variance by up to 9 where the phases vary slowly. On the
development scenes of each generator this runs the default three ways:

* ``default``: the starts as the package finds them;
* ``six``: its three starts and the same three found on the averaged
  spectra (named ``ica3``, ``spa3``, ``vca3``), all trained and judged by
  the held-out risk as usual;
* ``three``: ICA as found, SPA and VCA on the averaged spectra.

and prints per scene the mean spectral angle and abundance RMSE with the
start kept, then medians, 90th percentiles and the scenes better / worse
than the default by more than 0.01. ``--risks GENERATOR INDEX`` prints, for
one scene and the ``six`` variant, each candidate's mean held-out risk,
angle to the truth and simplex volume (what the selection saw).
Development scenes only: a diagnosis, not a default.

Usage::

    python benchmarks/averaged_starts.py --jobs 2         # ~8 minutes
    python benchmarks/averaged_starts.py --table-only
    python benchmarks/averaged_starts.py --risks family 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family
import peers

RESULTS = Path(__file__).parent / "results" / "averaged_starts.jsonl"
VARIANTS = ("default", "six", "three")


@contextlib.contextmanager
def _averaged_starts(signal, variant: str, report=None):
    """While active, the package's starts follow ``variant`` for ``signal``."""
    from scipy.ndimage import uniform_filter

    from hs_aeunmix import _fitting
    from hs_aeunmix._initialisation import Initialisation

    data = np.asarray(signal.data, dtype=np.float64)
    averaged = uniform_filter(data, size=(3, 3, 1), mode="nearest")
    averaged = averaged.reshape(-1, data.shape[-1])
    scale = _fitting.data_scale([data.reshape(-1, data.shape[-1])])
    found, chosen = _fitting.candidate_starts, _fitting.choose

    def starts(spectra, n, method, seed, *, baseline_basis=None):
        raw = found(spectra, n, method, seed, baseline_basis=baseline_basis)
        if method != "auto" or variant == "default":
            return raw
        extra = [
            Initialisation(start.endmembers, start.method + "3")
            for start in found(
                (averaged / scale).astype(spectra.dtype),
                n,
                "auto",
                seed,
                baseline_basis=baseline_basis,
            )
        ]
        if variant == "six":
            return raw + extra
        return [s for s in raw if s.method == "ica"] + [
            s for s in extra if s.method != "ica3"
        ]

    def choose(candidates):
        index = chosen(candidates)
        if report is not None:
            report(candidates, index)
        return index

    _fitting.candidate_starts, _fitting.choose = starts, choose
    try:
        yield
    finally:
        _fitting.candidate_starts, _fitting.choose = found, chosen


def run_one(task: tuple[str, int, str]) -> dict:
    """Scores of one variant on one development scene."""
    import torch

    torch.set_num_threads(1)
    from hs_aeunmix import datasets

    generator, index, variant = task
    signal, truth, _ = getattr(datasets, family.GENERATORS[generator])(
        index, "development"
    )
    with _averaged_starts(signal, variant):
        fitted, truth, _, model = family.default_fit(generator, index, "development")
    n = truth.n_endmembers
    scores = peers.score(
        fitted,
        truth,
        fitted.learning_results.factors.T[:n],
        fitted.learning_results.loadings[:, :n],
    )
    report = model.stability_
    return {
        "generator": generator,
        "index": index,
        "variant": variant,
        "angle": scores["angle"],
        "rmse": scores["rmse"],
        "start": report.starts[report.chosen],
    }


def table(records: list[dict]) -> str:
    """Per scene, then medians and 90th percentiles against the default."""
    by_scene: dict = {}
    for r in records:
        by_scene.setdefault((r["generator"], r["index"]), {})[r["variant"]] = r
    lines = [
        "| generator | scene | " + " | ".join(VARIANTS) + " |",
        "| --- | --- |" + " --- |" * len(VARIANTS),
    ]
    for (generator, index), runs in sorted(by_scene.items()):
        cells = [
            f"{runs[v]['angle']:.3f} / {runs[v]['rmse']:.3f} ({runs[v]['start']})"
            if v in runs
            else "-"
            for v in VARIANTS
        ]
        lines.append(f"| {generator} | {index} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| generator | variant | scenes | angle median / p90 | RMSE median / p90 "
        "| angle better / worse | RMSE better / worse |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for generator in family.GENERATORS:
        for variant in VARIANTS:
            pairs = [
                (runs[variant], runs["default"])
                for (g, _), runs in sorted(by_scene.items())
                if g == generator and variant in runs and "default" in runs
            ]
            if not pairs:
                continue
            cells = []
            for key in ("angle", "rmse"):
                values = np.array([r[key] for r, _ in pairs])
                cells.append(
                    f"{np.median(values):.3f} / {np.percentile(values, 90):.3f}"
                )
            for key in ("angle", "rmse"):
                values = np.array([r[key] for r, _ in pairs])
                base = np.array([b[key] for _, b in pairs])
                cells.append(
                    f"{int(np.sum(values < base - 0.01))} / "
                    f"{int(np.sum(values > base + 0.01))}"
                )
            row = f"| {generator} | {variant} | {len(pairs)} | "
            lines.append(row + " | ".join(cells) + " |")
    return "\n".join(lines)


def risks(generator: str, index: int) -> None:
    """What the selection saw on one scene with the six starts."""
    from hs_aeunmix import datasets, metrics
    from hs_aeunmix._selection import simplex_volume

    signal, truth, _ = getattr(datasets, family.GENERATORS[generator])(
        index, "development"
    )

    def report(candidates, index):
        print("| start | mean held-out risk | angle to the truth | simplex volume |")
        print("| --- | --- | --- | --- |")
        for candidate in candidates:
            endmembers = candidate.module.decoder.endmembers.detach().cpu().numpy()
            print(
                f"| {candidate.start} | {candidate.losses.mean():.4f} | "
                f"{metrics.mean_spectral_angle(endmembers, truth.endmembers):.3f} | "
                f"{simplex_volume(endmembers):.3f} |"
            )
        print(f"\nkept: {candidates[index].start}")

    with _averaged_starts(signal, "six", report):
        family.default_fit(generator, index, "development")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--risks", nargs=2, metavar=("GENERATOR", "INDEX"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.risks:
        risks(args.risks[0], int(args.risks[1]))
        return 0
    if not args.table_only:
        tasks = [
            (generator, index, variant)
            for generator in family.GENERATORS
            for index in range(args.n_scenes)
            for variant in VARIANTS
        ]
        RESULTS.unlink(missing_ok=True)
        with (
            multiprocessing.get_context("spawn").Pool(args.jobs) as pool,
            RESULTS.open("w") as output,
        ):
            for record in pool.imap_unordered(run_one, tasks):
                output.write(json.dumps(record) + "\n")
                output.flush()
    records = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
