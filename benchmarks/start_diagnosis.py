"""Diagnosis: which part of the pipeline costs accuracy against a plain autoencoder?

Runs the default, the plain-autoencoder peer, and variants of the default
(starts, steps, loss, early stopping, and the pipeline configured like the
plain autoencoder, with its random-pixel start or with the plain
autoencoder's flat start) on the development scenes of one generator, and
prints the mean spectral angle per scene and the median. The held-out half
is never used here. Development numbers only: a variant that wins here is a
candidate for ``ablation.py``'s leave-one-generator-out rounds, not a
default.

The flat start is the plain autoencoder's: every endmember the data's mean
value times (1 + 6.3 % Gaussian noise) per channel (softplus(0.5413 + 0.1 z)
in units of the mean).

Usage::

    python benchmarks/start_diagnosis.py --generator stem_eels --scenes 0-7
    python benchmarks/start_diagnosis.py --variants default "init ica" --scenes 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family
import peers

PLAIN_LIKE = {
    "learning_rate": 3e-3,
    "endmember_learning_rate": 3e-3,
    "batch_size": 100_000,
    "input_components": None,
    "batch_norm": False,
    "pixel_scale": False,
    "baseline": None,
    "max_epochs": 24,  # 24 epochs of 50 full-batch steps: the plain AE's 1200
    "patience": 1000,
    "activation": "relu",
}
FAST_STEPS = {"learning_rate": 3e-3, "endmember_learning_rate": 3e-3}
# label -> options of s.decomposition; "plain AE" is the peer itself;
# "start": "flat" replaces init by the flat start.
VARIANTS: dict[str, dict | None] = {
    "default": {},
    "plain AE": None,
    "no early stopping": {"patience": 1000},
    "endmember step 1e-3": {"endmember_learning_rate": 1e-3},
    "both steps 3e-3": {**FAST_STEPS, "patience": 1000},
    "loss poisson": {"loss": "poisson"},
    "init vca": {"init": "vca"},
    "init spa": {"init": "spa"},
    "init ica": {"init": "ica"},
    "init random": {"init": "random"},
    "set like plain AE": {**PLAIN_LIKE, "init": "random"},
    "set like plain AE, flat start": {**PLAIN_LIKE, "start": "flat"},
    "flat start, steps 3e-3": {**FAST_STEPS, "start": "flat"},
    "flat start, steps 3e-3, full batch": {
        **FAST_STEPS,
        "start": "flat",
        "batch_size": 100_000,
        "max_epochs": 24,
    },
}


def flat_start(spectra: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The plain autoencoder's start: the mean value with 6.3 % noise."""
    rng = np.random.default_rng(seed)
    return spectra.mean() * (1 + 0.063 * rng.standard_normal((n, spectra.shape[1])))


def run(task) -> dict:
    import hyperspy.api as hs
    import torch

    from hs_aeunmix import datasets

    torch.set_num_threads(1)
    hs.preferences.General.show_progressbar = False
    generator, index, label = task
    options = VARIANTS[label]
    if options is None:
        record = family.run_one("development", index, "plain AE", None, generator)
    elif options.get("start") != "flat":
        record = family.run_one("development", index, "ae", options, generator)
    else:
        scene = getattr(datasets, family.GENERATORS[generator])
        signal, truth, _ = scene(index, "development")
        options = {key: value for key, value in options.items() if key != "start"}
        options["init"] = flat_start(
            peers.spectra_of(signal), truth.n_endmembers, index
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, _ = peers.timed(
                peers.autoencoder(**options), signal, truth.n_endmembers, index
            )
        record = peers.score(signal, truth, *result)
    return {"index": index, "variant": label, "angle": record.get("angle")}


def _scenes(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(part) for part in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="stem_eels", choices=family.GENERATORS)
    parser.add_argument("--scenes", default="0-7", help="e.g. 0-7 or 0,3,5")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    scenes = _scenes(args.scenes)
    tasks = [(args.generator, i, label) for label in args.variants for i in scenes]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        records = pool.map(run, tasks)
    angles = {(r["index"], r["variant"]): r["angle"] for r in records}
    print(f"{args.generator}, development scenes {scenes}: mean spectral angle (rad)\n")
    print("| variant | median | " + " | ".join(f"scene {i}" for i in scenes) + " |")
    print("| --- | --- |" + " --- |" * len(scenes))
    for label in args.variants:
        values = [angles[(i, label)] for i in scenes]
        finite = [v for v in values if v is not None]
        median = f"{np.median(finite):.3f}" if finite else "failed"
        cells = " | ".join("failed" if v is None else f"{v:.3f}" for v in values)
        print(f"| {label} | {median} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
