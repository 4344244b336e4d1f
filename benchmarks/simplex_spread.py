"""How far apart the endmembers found are, against how far apart the true ones are.

A diagnosis for the STEM-EELS gap (issue 21): on each development scene of
each generator, the default (``init="auto"``) and the featureless start
(``init="flat"``) are trained and the table gives, per generator, the
median over scenes of

* the angle to the truth (mean spectral angle after matching, rad);
* the spread of the endmembers: the median angle between two endmembers,
  found and true, and their ratio (found / true): above 1, the simplex
  found is wider than the true one; below 1, narrower;

then one line per scene. The training is seeded (``random_state=0``), the
scene is the generator's own (``hs_aeunmix.datasets``).

Usage::

    python benchmarks/simplex_spread.py                 # 8 scenes each, ~5 min
    python benchmarks/simplex_spread.py --n-scenes 4 --generators stem_eels
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from family import GENERATORS

STARTS = ("auto", "flat")


def pairwise_spread(endmembers: np.ndarray) -> float:
    """Median angle (rad) between two distinct endmembers."""
    unit = endmembers / np.linalg.norm(endmembers, axis=1, keepdims=True)
    cosines = np.clip(unit @ unit.T, -1.0, 1.0)
    return float(np.median(np.arccos(cosines[np.triu_indices(len(unit), 1)])))


def scene_row(generator: str, index: int) -> dict:
    """Angles and spreads of the starts on one development scene."""
    import hyperspy.api as hs

    from hs_aeunmix import AEUnmix, datasets
    from hs_aeunmix.metrics import mean_spectral_angle

    hs.preferences.General.show_progressbar = False
    signal, truth, _ = getattr(datasets, GENERATORS[generator])(index)
    spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    row = {"index": index, "true spread": pairwise_spread(truth.endmembers)}
    for init in STARTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AEUnmix(
                truth.n_endmembers, init=init, random_state=0, show_progressbar=False
            ).fit(spectra)
        row[f"{init} angle"] = mean_spectral_angle(model.components_, truth.endmembers)
        row[f"{init} spread"] = pairwise_spread(model.components_)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument(
        "--generators", nargs="+", choices=tuple(GENERATORS), default=tuple(GENERATORS)
    )
    args = parser.parse_args(argv)
    summary, details = [], []
    for generator in args.generators:
        rows = [scene_row(generator, index) for index in range(args.n_scenes)]
        median = {key: float(np.median([r[key] for r in rows])) for key in rows[0]}
        ratio = {
            init: float(
                np.median([r[f"{init} spread"] / r["true spread"] for r in rows])
            )
            for init in STARTS
        }
        summary.append(
            f"| {generator} | {median['true spread']:.3f} "
            + " ".join(
                f"| {median[f'{init} angle']:.3f} | {median[f'{init} spread']:.3f} "
                f"| {ratio[init]:.2f}"
                for init in STARTS
            )
            + " |"
        )
        details += [
            f"| {generator} | {r['index']} | {r['true spread']:.3f} "
            + " ".join(
                f"| {r[f'{init} angle']:.3f} | {r[f'{init} spread']:.3f}"
                for init in STARTS
            )
            + " |"
            for r in rows
        ]
    print(
        "| generator | true spread | auto: angle | auto: spread | auto: spread / "
        "true | flat: angle | flat: spread | flat: spread / true |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(summary))
    print()
    print(
        "| generator | scene | true spread | auto: angle | auto: spread "
        "| flat: angle | flat: spread |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
