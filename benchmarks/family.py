"""Benchmark on randomised scene generators: the default against every peer.

Runs methods on the scenes of one of four independently written generators
(``--generator``): ``family`` (:func:`hs_aeunmix.datasets.random_scene`: EELS,
Raman and generic spectra), ``stem_eels``
(:func:`hs_aeunmix.datasets.stem_eels_scene`: STEM-EELS from eXSpy's model
components, with energy drift), ``raman_compounds``
(:func:`hs_aeunmix.datasets.raman_compound_scene`: Raman maps of real
compounds, with and without fluorescence) and ``eds``
(:func:`hs_aeunmix.datasets.eds_scene`: SEM and STEM EDS maps of real
compounds; written after the current defaults were chosen, so only checked
on). Each has a ``development`` half (where defaults are chosen, leaving one
generator out) and a ``held_out`` half (run once, at the end). It prints,
per subgroup (all, pure pixels, no pure pixels, intensity varying, low
dose, artefacts, drift, background or none, and the modality), the median
and 90th percentile of the mean spectral angle and of the abundance RMSE (scored by
:func:`hs_aeunmix.metrics.unmixing_scores`), the median relative residual of
the reconstruction and the median training seconds. Results are cached per
scene and method in a JSON-lines file, so an interrupted run resumes.

Usage::

    python benchmarks/family.py --split development --n-scenes 60
    python benchmarks/family.py --split held_out --n-scenes 60 --jobs 2
    python benchmarks/family.py --generator stem_eels --split held_out --jobs 2
    python benchmarks/family.py --variant "slow" '{"endmember_learning_rate": 1e-4}'

``--variant LABEL OPTIONS`` adds the autoencoder with other options (a JSON
object of ``decomposition`` keyword arguments) under its own label.

NMF is given the data clipped at zero (scikit-learn refuses negative values,
which Gaussian noise and background subtraction produce): the peer a user
would run. A method that fails on a scene is recorded as failed and counted
at the worst value (an angle of pi/2 and an RMSE of 1) in the percentiles,
since a user gets no answer there; so is a NaN score (an all-zero endmember,
e.g. a dead pixel taken as a vertex).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import peers

RESULTS = Path(__file__).parent / "results"
FAILED_ANGLE = math.pi / 2
FAILED_RMSE = 1.0
# A scene is better or worse for a method than for another by more than this
# (rad, or abundance RMSE): the tables' "better / worse" counts.
MARGIN = 0.01


METHODS: dict[str, Callable] = {"ae": peers.autoencoder(), **peers.PEERS}
PEERS = tuple(peers.PEERS)
# The scene generators the defaults are chosen on (leaving one out), by the
# name of their function in hs_aeunmix.datasets: scripts run on these unless
# told otherwise.
GENERATORS = {
    "family": "random_scene",
    "stem_eels": "stem_eels_scene",
    "raman_compounds": "raman_compound_scene",
}
# Generators written after the current defaults were chosen: run with
# --generator, checked on, never chosen on.
CHECKED_ONLY = {"eds": "eds_scene"}
SCENES = {**GENERATORS, **CHECKED_ONLY}
SUBGROUPS = (
    "all",
    "pure_pixels",
    "no_pure_pixels",
    "intensity_varying",
    "low_dose",
    "artefacts",
    "drift",
    "background",
    "no_background",
    "eels",
    "eds",
    "raman",
    "generic",
)


def run_one(
    split: str,
    index: int,
    method: str,
    options: dict | None = None,
    generator: str = "family",
) -> dict:
    """Scores of one method on one scene (a failure is recorded, not raised)."""
    import hyperspy.api as hs

    hs.preferences.General.show_progressbar = False
    options = dict(options) if options is not None else None
    with _patched({} if options is None else options.pop("patch", {})):
        return _run(split, index, method, options, generator)


def _run(split, index, method, options, generator) -> dict:
    from hs_aeunmix import datasets

    scene = getattr(datasets, SCENES[generator])
    signal, truth, description = scene(index, split)
    record = {
        "generator": generator,
        "split": split,
        "index": index,
        "method": method,
        "subgroups": list(description.subgroups),
        "modality": description.modality,
        "n": truth.n_endmembers,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if options is not None:
                run = peers.autoencoder(**options)
            else:
                run = METHODS[method]
            result, seconds = peers.timed(run, signal, truth.n_endmembers, index)
        endmembers, loadings, *reconstruction = result
        record.update(peers.score(signal, truth, endmembers, loadings, *reconstruction))
        model = getattr(run, "model", None)
        report = None if model is None else model.stability_
        if report is not None and len(report.starts) > 1:
            record["spread"] = float(np.nanmax(report.spread))
        if report is not None:
            record["identifiable"] = bool(report.identifiable)
            record["start"] = report.starts[report.chosen]
            record["directions"] = report.directions
        if model is not None:
            record["background_terms"] = len(model.baseline_components_)
            record["pixel_scale"] = bool(model.module_.has_pixel_scale)
        record["seconds"] = seconds
        record.pop("order", None)
    except Exception as error:
        record["failed"] = f"{type(error).__name__}: {error}"[:300]
    return record


def generated(generator: str, index: int, split: str):
    """Scene ``index`` of ``split``: ``(signal, truth, description)``, the
    generator's warnings silenced."""
    from hs_aeunmix import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(datasets, SCENES[generator])(index, split)


def default_fit(generator: str, index: int, split: str):
    """Scene ``index`` of ``split`` and the default's model of it.

    ``random_state=index``, warnings silenced, no progress bar; returns the
    signal (with its decomposition), the truth, the scene's description and
    the fitted model.
    """
    from hs_aeunmix import datasets

    scene = getattr(datasets, SCENES[generator])
    signal, truth, description = scene(index, split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = signal.decomposition(
            algorithm="ae",
            output_dimension=truth.n_endmembers,
            print_info=False,
            return_info=True,
            random_state=index,
            show_progressbar=False,
        )
    return signal, truth, description, model


@contextlib.contextmanager
def _patched(constants: dict):
    """Module constants of the package set (``{"module.NAME": value}``), then restored.

    For ablations: a worker process runs many tasks, so every change is undone.
    """
    saved = []
    try:
        for target, value in constants.items():
            module, name = target.rsplit(".", 1)
            module = importlib.import_module(module)
            if not hasattr(module, name):
                raise AttributeError(f"{target} does not exist")
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


def _worker(task):
    import torch

    torch.set_num_threads(1)
    return run_one(*task)


def load(path: Path) -> list[dict]:
    """Cached records of a results file."""
    if not path.exists():
        return []
    with open(path) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _value(record: dict, key: str) -> float:
    worst = {"angle": FAILED_ANGLE, "rmse": FAILED_RMSE}.get(key, math.nan)
    if "failed" in record:
        return worst
    value = float(record[key])
    # A zero endmember (a dead pixel taken as a vertex) has no angle.
    return worst if math.isnan(value) else value


def better_worse(values: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Scenes where ``values`` are below and above ``reference`` by more than
    :data:`MARGIN` (the same scenes in the same order)."""
    return (
        int(np.sum(values < reference - MARGIN)),
        int(np.sum(values > reference + MARGIN)),
    )


def add_scene_arguments(
    parser: argparse.ArgumentParser, *, n_scenes: int, split: str
) -> None:
    """Add ``--n-scenes``, ``--jobs``, ``--generators`` and ``--split``.

    The options of a script run on the scenes of every generator
    (``ablation.py``, ``uncertainty.py``, ``start_ties.py``).
    """
    parser.add_argument("--n-scenes", type=int, default=n_scenes)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS))
    parser.add_argument(
        "--split",
        choices=("development", "held_out"),
        default=split,
        help="development: to choose a change; held_out: to check a change "
        "chosen on the development scenes",
    )


def on_every_scene(run_one, args: argparse.Namespace) -> list[dict]:
    """``run_one((generator, index, split))`` of every scene ``args`` names.

    The scenes of :func:`add_scene_arguments`'s options, in order,
    ``args.jobs`` processes at a time (each its own, spawned: torch's
    threads do not survive a fork).
    """
    tasks = [
        (generator, index, args.split)
        for generator in args.generators
        for index in range(args.n_scenes)
    ]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        return pool.map(run_one, tasks, chunksize=1)


def table_of_every_scene(
    argv: list[str] | None, doc: str, run_one, table, *, n_scenes: int, split: str
) -> int:
    """The ``main`` of a script that prints ``table(records)`` of every scene.

    Its options are :func:`add_scene_arguments`'s (with these defaults),
    its description the first line of ``doc``; the records are
    :func:`on_every_scene`'s.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_scene_arguments(parser, n_scenes=n_scenes, split=split)
    print(table(on_every_scene(run_one, parser.parse_args(argv))))
    return 0


def groups(record: dict) -> set[str]:
    """The subgroups a scene's record belongs to, its modality included."""
    return {*record["subgroups"], record["modality"]}


def table(records: list[dict], methods: list[str]) -> str:
    """Markdown table of medians and 90th percentiles per subgroup and method."""
    lines = [
        "| subgroup | scenes | method | angle median | angle p90 | RMSE median "
        "| RMSE p90 | residual / NMF's (median) | failed | seconds (median) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(r["index"], r["method"]): r for r in records}
    indices = sorted({r["index"] for r in records})
    for subgroup in SUBGROUPS:
        scenes = [
            i
            for i in indices
            if all((i, m) in by_key for m in methods)
            and (subgroup == "all" or subgroup in groups(by_key[(i, methods[0])]))
        ]
        if not scenes:
            continue
        for method in methods:
            rows = [by_key[(i, method)] for i in scenes]
            angles = [_value(r, "angle") for r in rows]
            rmse = [_value(r, "rmse") for r in rows]
            ratios = [
                _value(r, "residual") / _value(by_key[(i, "NMF")], "residual")
                for i, r in zip(scenes, rows, strict=True)
                if (i, "NMF") in by_key and "failed" not in by_key[(i, "NMF")]
            ]
            seconds = [r["seconds"] for r in rows if "failed" not in r]
            failed = sum("failed" in r for r in rows)
            lines.append(
                f"| {subgroup} | {len(scenes)} | {method} "
                f"| {np.median(angles):.4f} | {np.percentile(angles, 90):.4f} "
                f"| {np.median(rmse):.4f} | {np.percentile(rmse, 90):.4f} "
                f"| {np.nanmedian(ratios) if ratios else math.nan:.3f} "
                f"| {failed} | {np.median(seconds) if seconds else math.nan:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the methods on the scenes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=tuple(SCENES), default="family")
    parser.add_argument(
        "--split", choices=("development", "held_out"), default="development"
    )
    parser.add_argument("--n-scenes", type=int, default=60)
    parser.add_argument("--first", type=int, default=0, help="first scene index")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--output", type=Path, help="JSON-lines results file")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument(
        "--variant",
        nargs=2,
        action="append",
        default=[],
        metavar=("LABEL", "OPTIONS"),
        help="the autoencoder with these options (JSON), under this label",
    )
    args = parser.parse_args(argv)
    variants = {label: json.loads(options) for label, options in args.variant}
    args.methods = [*args.methods, *variants]
    unknown = sorted(set(args.methods) - set(METHODS) - set(variants))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    output = args.output or RESULTS / f"{args.generator}_{args.split}.jsonl"
    output.parent.mkdir(parents=True, exist_ok=True)
    records = load(output)
    done = {(r["split"], r["index"], r["method"]) for r in records}
    indices = range(args.first, args.first + args.n_scenes)
    tasks = [
        (args.split, index, method, variants.get(method), args.generator)
        for index in indices
        for method in args.methods
        if (args.split, index, method) not in done
    ]
    if not args.table_only and tasks:
        with open(output, "a") as stream:
            if args.jobs > 1:
                context = multiprocessing.get_context("spawn")
                with context.Pool(args.jobs) as pool:
                    for record in pool.imap_unordered(_worker, tasks):
                        stream.write(json.dumps(record) + "\n")
                        stream.flush()
                        _report(record)
            else:
                for task in tasks:
                    record = run_one(*task)
                    stream.write(json.dumps(record) + "\n")
                    stream.flush()
                    _report(record)
        records = load(output)
    selected = [
        r
        for r in records
        if r["split"] == args.split
        and r["index"] in indices
        and r["method"] in args.methods
    ]
    print(table(selected, args.methods))
    if "ae" in args.methods:
        print()
        print(trust_table(selected))
    return 0


def trust_table(records: list[dict]) -> str:
    """How often the default wins, and whether its stability report warns when wrong.

    A scene is "flagged" when ``stability_.identifiable`` is False (some
    endmember differs between starts or has too little support); a "wrong"
    scene has a mean spectral angle above 0.2 rad. "Wins" counts scenes
    where the default is at least as good as every peer that answered.
    """
    by_key = {(r["index"], r["method"]): r for r in records}
    ours = [r for r in records if r["method"] == "ae" and "failed" not in r]
    flagged = [r for r in ours if not r.get("identifiable", True)]
    trusted = [r for r in ours if r.get("identifiable", True)]
    wrong = [r for r in ours if r["angle"] > 0.2]

    def wins(record: dict, keys: tuple[str, ...]) -> bool:
        return all(
            all(record[key] <= peer[key] for key in keys)
            for method in PEERS
            if (peer := by_key.get((record["index"], method))) is not None
            and "failed" not in peer
        )

    def median(rows: list[dict]) -> str:
        return f"{np.median([r['angle'] for r in rows]):.4f}" if rows else "-"

    starts = {
        start: sum(r.get("start") == start for r in ours)
        for start in ("ica", "spa", "vca")
    }

    def residual_ratio(record: dict) -> float:
        nmf = by_key.get((record["index"], "NMF"))
        if nmf is None or "failed" in nmf:
            return math.nan
        return record["residual"] / nmf["residual"]

    ratios = sorted(
        (ratio for r in ours if (ratio := residual_ratio(r)) > 1.1), reverse=True
    )
    rows = [
        ("scenes", len(ours)),
        ("best angle of all methods", sum(wins(r, ("angle",)) for r in ours)),
        (
            "best angle and RMSE of all methods",
            sum(wins(r, ("angle", "rmse")) for r in ours),
        ),
        ("flagged by the stability report", len(flagged)),
        ("median angle, flagged scenes", median(flagged)),
        ("median angle, scenes not flagged", median(trusted)),
        ("wrong (angle > 0.2 rad)", len(wrong)),
        ("wrong and flagged", sum(not r.get("identifiable", True) for r in wrong)),
        ("start kept (ica / spa / vca)", " / ".join(map(str, starts.values()))),
        (
            "residual above 1.1 x NMF's",
            f"{len(ratios)}"
            + (f" (x{', x'.join(f'{v:.2f}' for v in ratios)})" if ratios else ""),
        ),
    ]
    lines = ["| the default (ae) | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _report(record: dict) -> None:
    if "failed" in record:
        summary = f"failed: {record['failed'][:80]}"
    else:
        summary = (
            f"angle {record['angle']:.4f} rmse {record['rmse']:.4f} "
            f"residual {record['residual']:.4f} {record['seconds']:.1f} s"
        )
    print(
        f"[{os.getpid()}] {record['split']} {record['index']:3d} "
        f"{record['method']:>10}: {summary}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
