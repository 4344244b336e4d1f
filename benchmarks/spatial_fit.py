"""The spatial layer's fit: the error in closed form against the reconstruction.

The layer is fitted with the endmembers and the spectra fixed, so each
pixel's squared error needs only a few products of its spectrum computed
once (``UnmixingAutoencoder.squared_error_given``); until 2026-12-06 every
step reconstructed the spectra. On each scene this script trains the
default once (``family.default_fit``), refits the layer alone both ways
from the same start and prints, per generator, the median time of the fit
each way, the largest difference between the two fits' maps (over the
scenes and pixels) and the abundance RMSE's median and 90th percentile
each way.

Usage::

    python benchmarks/spatial_fit.py --n-scenes 20 --jobs 2
    python benchmarks/spatial_fit.py --split held_out --n-scenes 20 --jobs 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

WAYS = ("closed form", "reconstruction")


def run_one(task: tuple[str, int, str]) -> dict:
    """Time, maps and RMSE of the layer fitted each way on one scene."""
    import torch

    from hs_aeunmix import metrics
    from hs_aeunmix._losses import pixel_squared_error
    from hs_aeunmix._spatial import NeighbourhoodAttention

    torch.set_num_threads(1)
    generator, index, split = task
    signal, truth, _, model = family.default_fit(generator, index, split)
    record = {"generator": generator, "index": index}
    if model.module_.spatial is None:
        return record
    navigation = signal.axes_manager.navigation_shape[::-1]
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    module = model.module_
    maps = {}
    for way in WAYS:
        if way == "reconstruction":
            module.squared_error_given = lambda x: (
                lambda abundances: pixel_squared_error(
                    module.reconstruct(abundances, x), x
                )
            )
        module.spatial = NeighbourhoodAttention()
        start = time.perf_counter()
        model._refit_spatial_layer(spectra, image_shape=navigation)
        record[f"{way} seconds"] = time.perf_counter() - start
        maps[way] = model.transform(spectra, image_shape=navigation)
        scores = metrics.unmixing_scores(model.components_, maps[way], truth)
        record[f"{way} rmse"] = scores["abundance_rmse"]
    del module.squared_error_given  # the class's method again
    fractions = [
        way_maps / way_maps.sum(axis=1, keepdims=True) for way_maps in maps.values()
    ]
    record["largest difference"] = float(np.abs(fractions[0] - fractions[1]).max())
    return record


def table(records: list[dict]) -> str:
    """One row per generator."""
    lines = [
        "| generator | scenes | fit, closed form (s, median) | fit, reconstruction "
        "(s, median) | largest difference of a fraction | RMSE median / p90, "
        "closed form | reconstruction |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for generator in dict.fromkeys(r["generator"] for r in records):
        # Scenes whose default has no spatial layer have nothing to compare.
        rows = [
            r
            for r in records
            if r["generator"] == generator and "closed form rmse" in r
        ]
        cells = [
            f"{np.median([r[f'{way} seconds'] for r in rows]):.2f}" for way in WAYS
        ]
        rmse = [
            "{:.4f} / {:.4f}".format(
                *np.percentile([r[f"{way} rmse"] for r in rows], [50, 90])
            )
            for way in WAYS
        ]
        difference = max(r["largest difference"] for r in rows)
        lines.append(
            f"| {generator} | {len(rows)} | {cells[0]} | {cells[1]} | "
            f"{difference:.1e} | {rmse[0]} | {rmse[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return family.table_of_every_scene(
        argv, __doc__, run_one, table, n_scenes=8, split="development"
    )


if __name__ == "__main__":
    raise SystemExit(main())
