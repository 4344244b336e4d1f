"""Does the report's noise test pick out the scenes where the default is wrong?

``fit`` counts the directions along which the training spectra vary more
than their noise explains (``model.stability_.directions``,
:func:`hs_aeunmix._subspace.directions_above_noise`) and warns when there
are fewer than the ``n - 1`` that ``n`` endmembers need. This script counts
them on the scenes of the three generators and splits the cached results of
the default, before and since the starts are kept within the directions
above the noise, and of the plain autoencoder (nothing is trained here)
between the scenes the test flags and the others: a test worth its warning
flags the scenes where the answers are poor and few others.

The directions are counted on each scene's spectra with their dead pixels
(total below 0.1 % of the median's) left out, as training does; training
also holds out a few percent of the pixels and, with a background model
(Raman), removes the smooth background first, so the count of a fit can
differ by a direction on some scenes. Records (``results/``): development
scenes, ``ablation_GENERATOR.jsonl`` (:data:`NOW`, :data:`BEFORE` and
"plain AE (peer)"); held-out scenes, ``ablation_held_out_GENERATOR.jsonl``
and ``held_out_GENERATOR.jsonl`` (the plain AE).

Usage::

    python benchmarks/noise_directions.py            # about a minute
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

RESULTS = Path(__file__).parent / "results"
NOW = "default, 2026-12-05, starts within the directions above the noise"
# The package's records before the starts were kept within the directions
# above the noise, development and held-out.
BEFORE = {
    "development": "default, 2026-12-05, residual pair",
    "held_out": "epoch veto among the epochs trained after the choice",
}


def directions(generator: str, index: int, split: str) -> tuple[int, int]:
    """``(directions above the noise, endmembers)`` of one scene."""
    from hs_aeunmix import _subspace
    from hs_aeunmix._screening import DEAD_FRACTION

    signal, truth, _ = family.generated(generator, index, split)
    spectra = np.asarray(signal.data, dtype=np.float64)
    spectra = spectra.reshape(-1, spectra.shape[-1])
    totals = spectra.sum(axis=1)
    spectra = spectra[totals > DEAD_FRACTION * np.median(totals[totals > 0])]
    eigenvalues = _subspace.centred_eigenvalues(spectra)
    found = _subspace.directions_above_noise(eigenvalues, *spectra.shape)
    return found, truth.n_endmembers


def _by_index(path: Path, key: str, value: str) -> dict[int, dict]:
    return {
        r["index"]: r
        for r in family.load(path)
        if r.get(key) == value and "failed" not in r
    }


def _summary(rows: list[dict], method: str) -> str:
    if not rows:
        return "-"
    angles = [r[method]["angle"] for r in rows]
    rmses = [r[method]["rmse"] for r in rows]
    return (
        f"{np.median(angles):.3f} / {np.percentile(angles, 90):.3f}, "
        f"{np.median(rmses):.3f} / {np.percentile(rmses, 90):.3f}"
    )


def _records(generator: str, split: str) -> dict[str, dict[int, dict]]:
    prefix = "ablation" if split == "development" else "ablation_held_out"
    ablation = RESULTS / f"{prefix}_{generator}.jsonl"
    if split == "development":
        plain = _by_index(ablation, "variant", "plain AE (peer)")
    else:
        plain = _by_index(RESULTS / f"held_out_{generator}.jsonl", "method", "plain AE")
    return {
        "before": _by_index(ablation, "variant", BEFORE[split]),
        "now": _by_index(ablation, "variant", NOW),
        "plain": plain,
    }


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    print(
        "Angle median / p90, RMSE median / p90. Before: the default before the "
        "starts were kept within the directions above the noise; now: with it.\n"
    )
    print(
        "| generator | split | scenes | flagged | flagged: before | flagged: now "
        "| flagged: plain AE | others: now | others: plain AE |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for generator in family.GENERATORS:
        for split in ("development", "held_out"):
            records = _records(generator, split)
            shared = set.intersection(*(set(r) for r in records.values()))
            rows = []
            for index in sorted(shared):
                found, n = directions(generator, index, split)
                rows.append(
                    {"flagged": found < n - 1}
                    | {name: records[name][index] for name in records}
                )
            flagged = [r for r in rows if r["flagged"]]
            others = [r for r in rows if not r["flagged"]]
            cells = [
                _summary(flagged, "before"),
                _summary(flagged, "now"),
                _summary(flagged, "plain"),
                _summary(others, "now"),
                _summary(others, "plain"),
            ]
            print(
                f"| {generator} | {split} | {len(rows)} | {len(flagged)} | "
                + " | ".join(cells)
                + " |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
