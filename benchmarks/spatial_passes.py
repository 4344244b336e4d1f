"""How many passes of the spatial layer: the maps' error against the truth.

The spatial layer (``hs_aeunmix._spatial``) replaces each pixel's abundances
by an edge-aware weighted mean over its 3 x 3 neighbourhood, applied
``PASSES`` times. On each scene this script trains the default once
(``family.default_fit``), then refits the layer alone with each number of
passes (endmembers and encoder stay: only the maps change) and prints, per
generator and number of passes, the abundance RMSE's median and 90th
percentile, how many scenes are better or worse than with one pass and with
three (the default) by more than 0.01, and the largest rise of one
endmember's normalised map error (``abundance_nmse_per_endmember``; a small
phase averaged away would show there first). The per-pixel maps (no layer)
are the first row.

Two more rows ask whether the number of passes could be chosen per scene
instead of fixed: "blind-spot choice" keeps, on each scene, the number of
passes whose blind-spot loss is lowest, and "best per scene" the one whose
RMSE against the truth is (what no rule can beat). The blind-spot loss is
Noise2Self's (Batson & Royer 2019): the pixels of one of the four cosets of
a stride-2 grid have their estimates replaced by the mean of their 8
neighbours' (none of which is in the coset), the layer is applied, and
their spectra are compared with what the model reconstructs from the
layer's output there; the output at those pixels then does not depend on
their own data, so its squared error is the error against the clean
spectra plus the noise, the same for every number of passes. Summed over
the four cosets, every pixel is held out once.

Usage::

    python benchmarks/spatial_passes.py --generators stem_eels --n-scenes 28 --jobs 2
    python benchmarks/spatial_passes.py --split held_out --n-scenes 20 --jobs 2
"""

from __future__ import annotations

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
        record[passes] = {
            **scores(navigation),
            "blind spot": blind_spot_loss(model, spectra, navigation),
        }
    return record


def blind_spot_loss(model, spectra: np.ndarray, image_shape) -> float:
    """The mean squared error of every pixel's spectrum predicted without it.

    See the module docstring; in the network's units, as the layer's fit.
    """
    import torch
    from torch.nn import functional

    from hs_aeunmix._losses import pixel_squared_error

    module = model.module_
    height, width = image_shape
    target = torch.from_numpy((spectra / model.data_scale_).astype(np.float32))
    valid = torch.ones(height, width, dtype=torch.bool)
    with torch.no_grad():
        estimates = module.encode(target).T.reshape(-1, height, width)
        neighbours = functional.unfold(estimates[None], 3, padding=1).view(
            len(estimates), 9, height, width
        )
        exists = functional.unfold(torch.ones(1, 1, height, width), 3, padding=1).view(
            9, height, width
        )
        exists[4] = 0.0  # not the pixel itself
        around = (neighbours * exists).sum(dim=1) / exists.sum(dim=0)
        errors = torch.empty(height * width)
        for row, column in np.ndindex(2, 2):
            held_out = torch.zeros(height, width, dtype=torch.bool)
            held_out[row::2, column::2] = True
            maps = module.spatial(torch.where(held_out, around, estimates), valid)
            rows = held_out.flatten()
            predicted = module.reconstruct(maps[:, held_out].T, target[rows])
            errors[rows] = pixel_squared_error(predicted, target[rows])
    return float(errors.mean())


def table(records: list[dict]) -> str:
    """One row per generator and number of passes."""
    lines = [
        "| generator | scenes | maps | RMSE median | RMSE p90 | better / worse "
        "than one pass | than three | largest rise of one endmember's NMSE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for generator in dict.fromkeys(r["generator"] for r in records):
        rows = [r for r in records if r["generator"] == generator]
        one = np.array([r[1]["rmse"] for r in rows])
        three = np.array([r[3]["rmse"] for r in rows])
        for key in ("per pixel", *PASSES):
            rmse = np.array([r[key]["rmse"] for r in rows])
            rise = max(max(np.subtract(r[key]["nmse"], r[1]["nmse"])) for r in rows)
            name = key if key == "per pixel" else f"{key} pass" + "es" * (key > 1)
            lines.append(_row(generator, name, rmse, one, three, rise))
        for name, score in (
            ("blind-spot choice", "blind spot"),
            ("best per scene", "rmse"),
        ):
            chosen = [min(PASSES, key=lambda key, r=r: r[key][score]) for r in rows]
            rmse = np.array([r[c]["rmse"] for r, c in zip(rows, chosen, strict=True)])
            rise = max(
                max(np.subtract(r[c]["nmse"], r[1]["nmse"]))
                for r, c in zip(rows, chosen, strict=True)
            )
            counts = ", ".join(f"{key}: {chosen.count(key)}" for key in PASSES)
            lines.append(_row(generator, f"{name} ({counts})", rmse, one, three, rise))
    return "\n".join(lines)


def _row(generator, name, rmse, one, three, rise) -> str:
    """A table row: RMSE median and p90, better / worse than one and three passes."""
    than_one = "{} / {}".format(*family.better_worse(rmse, one))
    than_three = "{} / {}".format(*family.better_worse(rmse, three))
    return (
        f"| {generator} | {len(rmse)} | {name} | {np.median(rmse):.3f} | "
        f"{np.percentile(rmse, 90):.3f} | {than_one} | {than_three} | {rise:+.3f} |"
    )


def main(argv: list[str] | None = None) -> int:
    return family.table_of_every_scene(
        argv, __doc__, run_one, table, n_scenes=8, split="development"
    )


if __name__ == "__main__":
    raise SystemExit(main())
