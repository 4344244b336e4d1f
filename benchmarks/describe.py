"""Benchmark: EELS edges named on the true endmembers of the scene generators.

For the first ``--n-scenes`` EELS scenes of ``datasets.random_scene`` (those
whose ``modality`` is ``"eels"``) and of ``datasets.stem_eels_scene``, the
true endmembers go through :func:`hs_aeunmix._describe.describe_spectra`
(no training: the description needs only spectra and their axis), and each
scene gets

* recall: the fraction of its endmembers whose every element with an edge in
  the window is named. "In the window" is the generator's own rule: for
  ``random_scene`` the edges its ``endmember_details`` list (onsets 5 % of
  the width, at most 20 eV, after the start and 15 %, at most 60 eV, before
  the end); for ``stem_eels_scene`` every edge of the phase whose onset
  (with its chemical shift) lies between the first and the last channel;
* precision: the fraction of the elements named that the endmember's
  compound holds.

``--noise-pixels N`` adds the counting noise of an endmember averaged over
``N`` pure pixels (Poisson on ``N`` times its counts, divided by ``N``)
instead of describing the noiseless truth. The real EELS scans of
``--real`` are described on their mean spectrum. A table, not a test.

Usage::

    python benchmarks/describe.py --split development --n-scenes 30
    python benchmarks/describe.py --split held_out --noise-pixels 100
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from hs_aeunmix import datasets
from hs_aeunmix._describe import describe_spectra
from hs_aeunmix.datasets._eels_materials import _EELS_MATERIALS
from hs_aeunmix.datasets._stem_eels import COMPOUNDS, _edge_onsets

REAL = Path(__file__).parents[1].parent / "shared" / "data" / "real"
REAL_SCANS = ("gaas_solar_cell_eels", "lsmo_sto_eels_linescan")
# Small scans: the endmembers do not depend on the scan's shape, which is
# drawn apart from them; a shape the scene's structure cannot fill falls
# back to the drawn one.
SMALL = {"random_scene": (24, 24), "stem_eels_scene": (32, 32)}


def scene(generator, index: int, split: str):
    """(signal, truth, description), on a small scan where the scene allows it."""
    try:
        return generator(index, split, shape=SMALL[generator.__name__])
    except RuntimeError:
        return generator(index, split)


def family_truth(description) -> list[tuple[set[str], set[str]]]:
    """(elements with an edge in the window, elements present) per endmember."""
    truth = []
    for detail in description.endmember_details:
        name, rest = detail.split(":", 1)
        edges = rest.split(";")[0]
        needed = set()
        if "no edge" not in edges:
            needed = {label.split()[0] for label in edges.split("+")}
        present = {element for element, _, _ in _EELS_MATERIALS[name]}
        truth.append((needed, present))
    return truth


def stem_truth(description) -> list[tuple[set[str], set[str]]]:
    compounds = {compound.name: compound for compound in COMPOUNDS}
    start = description.energy_offset
    stop = start + (description.n_channels - 1) * description.dispersion
    truth = []
    for name in description.phases:
        onsets = _edge_onsets(compounds[name])
        needed = {
            shell.split("_")[0]
            for shell, onset in onsets.items()
            if start <= onset <= stop
        }
        present = set(re.findall(r"[A-Z][a-z]?", compounds[name].formula))
        truth.append((needed, present))
    return truth


def score(generator, split: str, n_scenes: int, noise_pixels: int) -> list[dict]:
    """One row per scene: recall, precision and what was missed or invented."""
    rows = []
    index = 0
    while len(rows) < n_scenes:
        if generator is datasets.random_scene:
            if datasets.describe_scene(index, split).modality != "eels":
                index += 1
                continue
            truth_of = family_truth
        else:
            truth_of = stem_truth
        signal, truth, description = scene(generator, index, split)
        axis = signal.axes_manager.signal_axes[0].axis
        endmembers = truth.endmembers
        if noise_pixels:
            rng = np.random.default_rng(index)
            endmembers = (
                rng.poisson(np.clip(endmembers, 0, None) * noise_pixels) / noise_pixels
            )
        described = describe_spectra(endmembers, axis, units="eV")
        recalled = named = right = 0
        missed, invented = [], []
        for result, (needed, present) in zip(
            described, truth_of(description), strict=True
        ):
            elements = set(result.elements)
            recalled += needed <= elements
            named += len(elements)
            right += len(elements & present)
            missed += sorted(needed - elements)
            invented += sorted(elements - present)
        rows.append(
            {
                "index": index,
                "window": f"{axis[0]:.0f}-{axis[-1]:.0f}",
                "n": len(described),
                "recalled": recalled,
                "named": named,
                "right": right,
                "missed": missed,
                "invented": invented,
            }
        )
        index += 1
    return rows


def table(name: str, rows: list[dict]) -> str:
    lines = [
        f"### {name}",
        "",
        "| scene | window (eV) | endmembers | recall | precision | missed | invented |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        precision = row["right"] / row["named"] if row["named"] else float("nan")
        lines.append(
            f"| {row['index']} | {row['window']} | {row['n']} | "
            f"{row['recalled']}/{row['n']} | {precision:.2f} | "
            f"{' '.join(row['missed'])} | {' '.join(row['invented'])} |"
        )
    endmembers = sum(row["n"] for row in rows)
    recalled = sum(row["recalled"] for row in rows)
    named = sum(row["named"] for row in rows)
    right = sum(row["right"] for row in rows)
    lines += [
        "",
        f"{name}: recall {recalled}/{endmembers} = {recalled / endmembers:.2f} "
        f"of the endmembers, precision {right}/{named} = "
        f"{right / max(named, 1):.2f} of the named elements "
        f"({len(rows)} scenes).",
        "",
    ]
    return "\n".join(lines)


def real(folder: Path) -> str:
    lines = ["### Real scans (mean spectrum)", ""]
    for name in REAL_SCANS:
        signal = datasets.real_scan(name, folder)
        axis = signal.axes_manager.signal_axes[0]
        mean = signal.data.reshape(-1, axis.size).mean(axis=0)
        (result,) = describe_spectra(
            mean[None],
            axis.axis,
            units=axis.units,
            signal_type=signal.metadata.Signal.get_item("signal_type", ""),
        )
        edges = ", ".join(
            f"{edge} onset {edge.onset_eV:.1f} eV, confidence {edge.confidence:.2f}"
            for edge in result.edges
        )
        exponent = result.background_exponent
        lines.append(
            f"- {name} ({axis.axis[0]:.0f}-{axis.axis[-1]:.0f} eV): "
            f"{edges or 'no edge'}; unnamed onsets "
            f"{list(result.unidentified_onsets_eV)}; background r = "
            + ("none" if exponent is None else f"{exponent:.2f}")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="development")
    parser.add_argument("--n-scenes", type=int, default=30)
    parser.add_argument("--noise-pixels", type=int, default=0)
    parser.add_argument("--real", type=Path, default=REAL)
    args = parser.parse_args(argv)
    # HyperSpy's deprecation notices and the generators' notes, not results.
    warnings.filterwarnings("ignore")
    noise = (
        f"counting noise of {args.noise_pixels} pixels"
        if args.noise_pixels
        else "noiseless"
    )
    print(f"## Edges named on true endmembers ({args.split}, {noise})\n")
    for name, generator in (
        ("random_scene (EELS)", datasets.random_scene),
        ("stem_eels_scene", datasets.stem_eels_scene),
    ):
        rows = score(generator, args.split, args.n_scenes, args.noise_pixels)
        print(table(name, rows), flush=True)
    if args.real.is_dir():
        print(real(args.real))
    return 0


if __name__ == "__main__":
    sys.exit(main())
