"""Selection rules compared offline on the candidates the default trains.

``init="auto"`` trains one network per start (ICA, SPA, VCA) for a few
epochs and keeps one (``hs_aeunmix._selection.choose``: candidates tied with
the best held-out fit within the noise, then the smallest endmember simplex).
This script records, on the development scenes of each independently written
generator, every candidate the default trains (its start, held-out risks,
simplex volume and mean spectral angle to the truth when chosen), and
the plain-autoencoder peer (``peers.plain_autoencoder``) as a fourth
candidate; then it scores selection rules on those candidates without
training again, and prints, per generator, the median / 90th percentile of
the angle of the candidate each rule keeps, and how many scenes it makes
better or worse (by more than 0.01 rad) than the current rule.

The angles are those of the candidates when the choice is made (after their
candidate epochs), not after the kept one trains on; the "final" row gives
the default's angle after training, for scale. Held-out losses of the
plain-autoencoder candidate cannot come from the package's networks, so the
rules that include it compare every candidate by the same non-negative least
squares fit of the held-out spectra instead.

Development scenes only: a rule that wins here is a candidate for
``ablation.py``'s leave-one-generator-out rounds, not a default.

Usage::

    python benchmarks/selection_rules.py --n-scenes 10 --jobs 2
    python benchmarks/selection_rules.py --table-only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family
import peers

CACHE = family.RESULTS / "selection_candidates.jsonl"
GENERATORS = ("stem_eels", "family", "raman_compounds")
# Held-out spectra fitted by NNLS per candidate (plenty for a paired test).
NNLS_PIXELS = 500


def _nnls_losses(endmembers: np.ndarray, spectra: np.ndarray) -> list[float]:
    from scipy.optimize import nnls

    return [
        float(nnls(endmembers.T, spectrum)[1] ** 2 / spectrum.size)
        for spectrum in spectra
    ]


def record(task) -> dict:
    """Every candidate of the default, and the plain autoencoder, on one scene."""
    generator, index = task
    import hyperspy.api as hs
    import torch

    from hs_aeunmix import _fitting, datasets, metrics
    from hs_aeunmix._selection import simplex_volume

    torch.set_num_threads(1)
    hs.preferences.General.show_progressbar = False
    seen: dict = {}
    held_out_risk, choose = _fitting.held_out_risk, _fitting.choose

    def recording_losses(prepared, basis):
        seen["validation"] = prepared.validation[:NNLS_PIXELS].astype(float)
        return held_out_risk(prepared, basis)

    def recording_choose(candidates):
        seen["candidates"] = [
            (c.start, c.module.decoder.endmembers.detach().cpu().numpy().astype(float))
            for c in candidates
        ]
        seen["losses"] = [c.losses.tolist() for c in candidates]
        seen["chosen"] = choose(candidates)
        return seen["chosen"]

    _fitting.held_out_risk = recording_losses
    _fitting.choose = recording_choose
    try:
        scene = getattr(datasets, family.GENERATORS[generator])
        signal, truth, description = scene(index, "development")
        n = truth.n_endmembers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (final, *_), _ = peers.timed(
                peers.autoencoder(), signal.deepcopy(), n, index
            )
            (plain, _), _ = peers.timed(peers.plain_autoencoder, signal, n, index)
    finally:
        _fitting.held_out_risk, _fitting.choose = held_out_risk, choose
    validation = seen["validation"]

    def angle(endmembers):
        return float(metrics.mean_spectral_angle(endmembers, truth.endmembers))

    candidates = [
        {
            "start": start,
            "angle": angle(endmembers),
            "volume": simplex_volume(endmembers),
            "losses": losses,
            "nnls_losses": _nnls_losses(endmembers, validation),
        }
        for (start, endmembers), losses in zip(
            seen["candidates"], seen["losses"], strict=True
        )
    ]
    plain = np.asarray(plain, dtype=float)
    return {
        "generator": generator,
        "index": index,
        "subgroups": list(description.subgroups),
        "chosen": seen["chosen"],
        "final_angle": angle(np.asarray(final, dtype=float)),
        "candidates": candidates,
        "plain": {
            "start": "plain AE",
            "angle": angle(plain),
            "volume": simplex_volume(plain),
            "nnls_losses": _nnls_losses(plain, validation),
        },
    }


def _tied(losses: list[np.ndarray], tolerance: float = 0.0) -> np.ndarray:
    """The package's paired test, optionally widened by a relative tolerance."""
    from hs_aeunmix._selection import tied

    kept = tied([SimpleNamespace(losses=v, fit=float(v.mean())) for v in losses])
    means = np.array([values.mean() for values in losses])
    return kept | (means - means.min() <= tolerance * means.min())


def _smallest(candidates: list[dict], kept) -> int:
    volumes = [
        c["volume"] if k else np.inf for c, k in zip(candidates, kept, strict=True)
    ]
    return int(np.argmin(volumes))


def _tie_then_smallest(key: str, tolerance: float = 0.0, with_plain: bool = False):
    def rule(scene: dict) -> float:
        candidates = scene["candidates"] + ([scene["plain"]] if with_plain else [])
        losses = [np.asarray(c[key]) for c in candidates]
        return candidates[_smallest(candidates, _tied(losses, tolerance=tolerance))][
            "angle"
        ]

    return rule


def _smallest_of_all(with_plain: bool):
    def rule(scene: dict) -> float:
        candidates = scene["candidates"] + ([scene["plain"]] if with_plain else [])
        return candidates[_smallest(candidates, [True] * len(candidates))]["angle"]

    return rule


def _best_fit(scene: dict) -> float:
    candidates = scene["candidates"]
    fits = [np.mean(c["losses"]) for c in candidates]
    return candidates[int(np.argmin(fits))]["angle"]


RULES = {
    "current (tied within 2 SE, smallest simplex)": lambda s: s["candidates"][
        s["chosen"]
    ]["angle"],
    "best held-out fit": _best_fit,
    "tied, or within 0.5 % of the best fit": _tie_then_smallest("losses", 0.005),
    "tied, or within 2 % of the best fit": _tie_then_smallest("losses", 0.02),
    "smallest simplex, fit ignored": _smallest_of_all(with_plain=False),
    "with the plain AE: tied (NNLS fit), smallest": _tie_then_smallest(
        "nnls_losses", with_plain=True
    ),
    "with the plain AE: smallest simplex": _smallest_of_all(with_plain=True),
    "the plain AE alone": lambda s: s["plain"]["angle"],
    "the best candidate (hindsight)": lambda s: min(
        c["angle"] for c in [*s["candidates"], s["plain"]]
    ),
}


def table(scenes: list[dict]) -> str:
    lines = []
    for generator in GENERATORS:
        rows = sorted(
            (s for s in scenes if s["generator"] == generator),
            key=lambda s: s["index"],
        )
        if not rows:
            continue
        current = np.array([RULES[next(iter(RULES))](s) for s in rows])
        lines += [
            f"\n{generator}: {len(rows)} development scenes, mean spectral angle "
            "(rad) of the kept candidate; final (after training): median "
            f"{np.median([s['final_angle'] for s in rows]):.3f}\n",
            "| rule | median | p90 | better / worse than current | per scene |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, rule in RULES.items():
            angles = np.array([rule(s) for s in rows])
            better = int(np.sum(angles < current - 0.01))
            worse = int(np.sum(angles > current + 0.01))
            cells = " ".join(f"{a:.2f}" for a in angles)
            lines.append(
                f"| {label} | {np.median(angles):.3f} | "
                f"{np.percentile(angles, 90):.3f} | {better} / {worse} | {cells} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.table_only:
        tasks = [(g, i) for g in GENERATORS for i in range(args.n_scenes)]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            scenes = pool.map(record, tasks)
        CACHE.write_text("".join(json.dumps(scene) + "\n" for scene in scenes))
    scenes = [json.loads(line) for line in CACHE.read_text().splitlines()]
    print(table(scenes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
