"""How many passes of the spatial layer: the maps' error against the truth.

The spatial layer (``hs_aeunmix._spatial``) replaces each pixel's abundances
by an edge-aware weighted mean over its 3 x 3 neighbourhood, applied
``PASSES`` times. On each scene this script trains the default once
(``family.default_fit``), then refits the layer alone with each number of
passes (endmembers and encoder stay: only the maps change) and prints, per
generator and number of passes, the abundance RMSE's median and 90th
percentile, how many scenes are better or worse than with one pass by more
than 0.01, and the largest rise of one endmember's normalised map error
(``abundance_nmse_per_endmember``; a small phase averaged away would show
there first). The per-pixel maps (no layer) are the first row.

Usage::

    python benchmarks/spatial_passes.py --generators stem_eels --n-scenes 28 --jobs 2
    python benchmarks/spatial_passes.py --split held_out --n-scenes 20 --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

PASSES = (1, 3, 5)


def run_one(task: tuple[str, int, str]) -> dict:
    """The maps' scores per number of passes on one scene."""
    import torch

    from hs_aeunmix import metrics
    from hs_aeunmix._spatial import NeighbourhoodAttention

    torch.set_num_threads(1)
    generator, index, split = task
    signal, truth, _, model = family.default_fit(generator, index, split)
    navigation = signal.axes_manager.navigation_shape[::-1]
    spectra = signal.data.reshape(-1, signal.data.shape[-1])

    def scores(image_shape) -> dict:
        maps = model.transform(spectra, image_shape=image_shape)
        found = metrics.unmixing_scores(model.components_, maps, truth)
        return {
            "rmse": found["abundance_rmse"],
            "nmse": list(found["abundance_nmse_per_endmember"].values()),
        }

    record = {"generator": generator, "index": index, "per pixel": scores(None)}
    for passes in PASSES:
        model.module_.spatial = NeighbourhoodAttention(passes=passes)
        model._refit_spatial_layer(spectra, image_shape=navigation)
        record[passes] = scores(navigation)
    return record


def table(records: list[dict]) -> str:
    """One row per generator and number of passes."""
    lines = [
        "| generator | scenes | maps | RMSE median | RMSE p90 | better / worse "
        "than one pass | largest rise of one endmember's NMSE |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for generator in dict.fromkeys(r["generator"] for r in records):
        rows = [r for r in records if r["generator"] == generator]
        one = np.array([r[1]["rmse"] for r in rows])
        for key in ("per pixel", *PASSES):
            rmse = np.array([r[key]["rmse"] for r in rows])
            better, worse = family.better_worse(rmse, one)
            rise = max(max(np.subtract(r[key]["nmse"], r[1]["nmse"])) for r in rows)
            name = key if key == "per pixel" else f"{key} pass" + "es" * (key > 1)
            lines.append(
                f"| {generator} | {len(rows)} | {name} | {np.median(rmse):.3f} | "
                f"{np.percentile(rmse, 90):.3f} | {better} / {worse} | {rise:+.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family.add_scene_arguments(parser, n_scenes=8, split="development")
    args = parser.parse_args(argv)
    tasks = [
        (generator, index, args.split)
        for generator in args.generators
        for index in range(args.n_scenes)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs) as pool:
        records = pool.map(run_one, tasks, chunksize=1)
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
