"""How much an energy or calibration drift costs, with and without drift-aware decoding.

For the scenes of every generator whose spectra drift along the axis (the
``drift`` subgroup), prints the floor of a linear model (least squares on
the *true* endmembers, the better of FCLS and NNLS as in ``peers.floor``)
before and after aligning each pixel by the offset
:func:`hs_aeunmix._shift.estimate_shifts` finds against the true mixture,
and, from the cache of the ablation's round 1 (``ablation.py``), the
default of that round against ``max_shift=3`` (drift-aware decoding):
median and 90th percentile of the abundance RMSE and of the mean spectral
angle.

Usage::

    python benchmarks/drift.py --n-scenes 12
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ablation
import family
import peers

from hs_aeunmix import datasets, metrics
from hs_aeunmix._shift import estimate_shifts, shifted

MAX_SHIFT = 3.0


def floors(signal, truth) -> tuple[float, float]:
    """Abundance RMSE of the least-squares floor, as measured and aligned."""
    spectra = peers.spectra_of(signal)
    _, plain = peers.floor(signal, truth)
    mixture = torch.from_numpy(plain @ truth.endmembers)
    data = torch.from_numpy(spectra)
    offsets = estimate_shifts(data, mixture, MAX_SHIFT, free_intensity=True)
    aligned = shifted(data, -offsets, int(np.ceil(MAX_SHIFT))).numpy()
    _, realigned = peers.floor(_with_data(signal, aligned), truth)
    return tuple(
        metrics.unmixing_scores(truth.endmembers, loadings, truth)["abundance_rmse"]
        for loadings in (plain, realigned)
    )


def _with_data(signal, spectra: np.ndarray):
    result = signal.deepcopy()
    result.data = spectra.reshape(signal.data.shape)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=12)
    args = parser.parse_args(argv)
    print(
        "| generator | drifting scenes | floor RMSE median / p90 | aligned floor "
        "| default angle | drift-aware angle | default RMSE | drift-aware RMSE |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for generator, name in family.GENERATORS.items():
        scene = getattr(datasets, name)
        cache = {
            (r["index"], r["variant"]): r
            for r in family.load(
                ablation.RESULTS / f"ablation_round1_{generator}.jsonl"
            )
        }
        plain, aligned, angles, rmse = [], [], {}, {}
        for index in range(args.n_scenes):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                signal, truth, description = scene(index, "development")
            if "drift" not in description.subgroups:
                continue
            before, after = floors(signal, truth)
            plain.append(before)
            aligned.append(after)
            for variant in ("default", "drift-aware"):
                record = cache.get((index, variant))
                if record is not None:
                    angles.setdefault(variant, []).append(
                        family._value(record, "angle")
                    )
                    rmse.setdefault(variant, []).append(family._value(record, "rmse"))
        if not plain:
            continue
        cells = [
            f"{np.median(values):.4f} / {np.percentile(values, 90):.4f}"
            if values
            else "-"
            for values in (
                plain,
                aligned,
                angles.get("default", []),
                angles.get("drift-aware", []),
                rmse.get("default", []),
                rmse.get("drift-aware", []),
            )
        ]
        print(f"| {generator} | {len(plain)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
