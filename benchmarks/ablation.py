"""Ablation of the default pipeline, one part at a time, on every generator.

Each row switches off (or replaces) one part of what ``algorithm="ae"`` does
by default and runs it on the development scenes of the three independently
written generators (``family.py --generator``); the table gives, per
generator, the median and 90th percentile of the mean spectral angle and of
the abundance RMSE, and how many scenes the change made better or worse by
more than 0.01 rad. A part is kept in the default only when switching it off
makes the results worse across the generators. Parts that are module
constants of the package (not user options) are switched with
``family.py``'s ``patch`` mechanism. A row with a ``"method"`` key runs a
peer of ``peers.PEERS`` instead (the plain autoencoder), on the same scenes.

Rounds are cached apart (``results/<round>_<generator>.jsonl``, one line per
scene and variant). Round 1 (``--round ablation_round1``) chose the start
selection; it ran at commit 7a2d4d6, where the previous rule and the new one
were development switches (``git checkout 7a2d4d6`` to rerun it): its
"default" is the previous default. :data:`VARIANTS` are those of the
current default.

A change chosen on the development scenes is checked on the held-out ones
with ``--split held_out`` (cached apart, ``results/ablation_held_out_*``).

Usage::

    python benchmarks/ablation.py --n-scenes 12 --jobs 2
    python benchmarks/ablation.py --split held_out --n-scenes 10 --jobs 2 \
        --variants default "k-means start among the candidates"
    python benchmarks/ablation.py --round ablation_round1 --table-only
    python benchmarks/ablation.py --split held_out --n-scenes 20 --jobs 2 \
        --variants spatial "spatial, SURE selection" --compared spatial

Each row is computed on the scenes the variant shares with ``--compared``
(``default`` unless given), whose count the "scenes" column gives.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family

RESULTS = Path(__file__).parent / "results"

# The plain autoencoder's training (benchmarks/peers.py) as options: 1200
# steps of batches of 4096 spectra (a whole 64 x 64 scan), steps of 3e-3.
PLAIN_SETTINGS = {
    "input_components": None,
    "batch_norm": False,
    "pixel_scale": False,
    "activation": "relu",
    "learning_rate": 3e-3,
    "endmember_learning_rate": 3e-3,
    "batch_size": 4096,
    "max_epochs": 24,
    "patience": 1000,
}


def _the_loss_choice(losses, risks, kept: int) -> int:
    """``_risk.epoch_to_keep`` that keeps the held-out loss's epoch."""
    return kept


def _averaged_choice(only_tied: bool):
    """``_fitting.choose`` that also averages the candidates' endmembers.

    Issue 21, "or remove the need to choose": the chosen network's
    endmembers become the mean of its own and the other candidates'
    (matched by angle, each scaled to the chosen one's sums), of the tied
    ones only or of all; the chosen network then trains on from there.
    """

    def choose(candidates) -> int:
        import torch
        from scipy.optimize import linear_sum_assignment

        from hs_aeunmix import _selection

        index = _selection.choose(candidates)
        decoder = candidates[index].module.decoder
        chosen = decoder.endmembers.detach().cpu().numpy().astype(np.float64)
        keep = _selection.tied(candidates) if only_tied else None
        unit = chosen / np.linalg.norm(chosen, axis=1, keepdims=True)
        total, count = chosen.copy(), 1
        seen = {id(candidates[index].module)}
        for number, candidate in enumerate(candidates):
            if id(candidate.module) in seen or (keep is not None and not keep[number]):
                continue
            seen.add(id(candidate.module))
            other = candidate.module.decoder.endmembers.detach().cpu().numpy()
            other = other.astype(np.float64)
            unit_other = other / np.linalg.norm(other, axis=1, keepdims=True)
            rows, columns = linear_sum_assignment(-(unit @ unit_other.T))
            matched = other[columns[np.argsort(rows)]]
            sums = np.maximum(matched.sum(axis=1, keepdims=True), 1e-30)
            total += matched * (chosen.sum(axis=1, keepdims=True) / sums)
            count += 1
        with torch.no_grad():
            decoder.weight.copy_(torch.from_numpy(total / count).T)
            decoder.clamp_()
        return index

    return choose


def _cosine_steps(epochs: int):
    """``_training._train_one_epoch`` whose step sizes fall as a half cosine.

    Each training (each optimizer) starts at its step sizes and reaches
    zero after ``epochs`` epochs: the steps' noise shrinks as training
    ends, instead of keeping the weights in a ball around the optimum.
    """
    import math
    import weakref

    from hs_aeunmix import _training

    original = _training._train_one_epoch
    started = weakref.WeakKeyDictionary()

    def one_epoch(model, gradients, train_batches, optimizer):
        if optimizer not in started:
            started[optimizer] = [0, [group["lr"] for group in optimizer.param_groups]]
        epoch, initial = started[optimizer]
        factor = 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
        for group, rate in zip(optimizer.param_groups, initial, strict=True):
            group["lr"] = rate * factor
        started[optimizer][0] += 1
        return original(model, gradients, train_batches, optimizer)

    return one_epoch


def _fourth_start(start: str) -> dict:
    """Options that add ``start`` to ``init="auto"``'s three candidates."""
    return {
        "patch": {
            "hs_aeunmix._initialisation.AUTO_STARTS": ("ica", "spa", "vca", start)
        }
    }


# label -> options of s.decomposition (a "patch" key sets package constants).
VARIANTS: dict[str, dict] = {
    "default": {},
    "endmember step 1e-3": {"endmember_learning_rate": 1e-3},
    "endmember step 3e-3": {"endmember_learning_rate": 3e-3, "learning_rate": 3e-3},
    "candidates 15 epochs": {"patch": {"hs_aeunmix._fitting.CANDIDATE_EPOCHS": 15}},
    "drift-aware": {"max_shift": 3.0},
    "min volume 0.01": {"min_volume_weight": 0.01},
    "no encoder input projection": {"input_components": None},
    "no batch norm": {"batch_norm": False},
    "no per-pixel scale": {"pixel_scale": False},
    "twice the steps": {"max_epochs": 80},
    "flat start": {"init": "flat"},
    "flat start among the candidates": _fourth_start("flat"),
    # The plain autoencoder's settings through the options: what is left
    # between the two is screening, the data's scale, the held-out split, the
    # endmembers' parametrisation (projection against softplus) and the start
    # (random pixels, or featureless spectra like the plain autoencoder's).
    "plain settings": {**PLAIN_SETTINGS, "init": "random"},
    "plain settings, flat start": {**PLAIN_SETTINGS, "init": "flat"},
    # Cluster means average hundreds of pixels where a vertex start takes one
    # (issue 21: on STEM-EELS the vertex starts pick look-alike pixels).
    "k-means start": {"init": "kmeans"},
    "k-means start among the candidates": _fourth_start("kmeans"),
    # Which part of the plain settings gives their STEM-EELS abundance RMSE:
    # the start alone, or with the per-pixel scale off as well.
    "random start": {"init": "random"},
    "random start, no per-pixel scale": {"init": "random", "pixel_scale": False},
    "ReLU encoder": {"activation": "relu"},
    "no screening": {
        "patch": {
            "hs_aeunmix._screening.SPIKE_THRESHOLD": 1e9,
            "hs_aeunmix._screening.DEAD_FRACTION": 0.0,
        }
    },
    # A peer, not a variant: the scenes it wins on say what the default lacks.
    "plain AE (peer)": {"method": "plain AE"},
    "spatial": {"spatial": True},
    # The k-means candidate (better angles, worse per-pixel maps) judged
    # again once the maps are the spatial layer's.
    "spatial, candidates trained 30 epochs": {
        "spatial": True,
        "patch": {"hs_aeunmix._fitting.CANDIDATE_EPOCHS": 30},
    },
    # Selection on held-out risks (SURE) instead of the networks' held-out
    # fit: the default since 2026-12-04, so now the same as "spatial" (the
    # records of both labels up to that day were run with the previous
    # rule under "spatial" and this one through a switch since removed).
    "spatial, SURE selection": {"spatial": True},
    "spatial, k-means start among the candidates": {
        **_fourth_start("kmeans"),
        "spatial": True,
    },
    # The package's default as it is now (run again: the labels above hold
    # records of earlier versions), and with the minimum-volume weight that
    # decompose_series takes (chosen on series, 2026-12-05), not tuned here.
    "default, 2026-12-05": {},
    "default, 2026-12-05, min volume 0.005": {"min_volume_weight": 0.005},
    # Issue 21's "remove the need to choose": average the starts' endmembers
    # (2026-12-05, development scenes first).
    "average of the tied starts": {
        "patch": {"hs_aeunmix._fitting.choose": _averaged_choice(only_tied=True)}
    },
    "average of all starts": {
        "patch": {"hs_aeunmix._fitting.choose": _averaged_choice(only_tied=False)}
    },
    # How wide the tie is: more ties leave more choices to the minimum volume.
    "ties within 1 standard error": {"patch": {"hs_aeunmix._selection.TIE_Z": 1.0}},
    "ties within 4 standard errors": {"patch": {"hs_aeunmix._selection.TIE_Z": 4.0}},
    # Shorter brief training of the starts (issue 25: the time of a call).
    "candidates 3 epochs": {"patch": {"hs_aeunmix._fitting.CANDIDATE_EPOCHS": 3}},
    # The spectral-angle loss of daeu, whose endmember angles beat the
    # default's on the family (2026-12-05, twelfth session).
    # The same options after the exact speed-ups of issue 25 (2026-12-05,
    # twelfth session): the same numbers, in less time.
    "default, 2026-12-05, later": {},
    # Issue 21: the kept epoch judged by the held-out risk that chooses the
    # start (2026-12-05, twelfth session). The records of "epochs kept by
    # held-out risk" (risk also stopping early), its variant "..., then the
    # encoder" and "epoch of lowest loss unless the risk rejects it" (the tie
    # at TIE_Z) were run with patches removed since (commit 59f083a has
    # them). "..., for the epochs compared" became the package's rule
    # (_risk.epoch_to_keep) in three versions (2026-12-05, thirteenth
    # session), whose records stay under their labels: "default, 2026-12-05,
    # epoch veto" (every training judged, commit 4481d9d), "epoch veto after
    # the choice of start" (the kept start's training only, its starting
    # weights judged too; never committed) and "epoch veto among the epochs
    # trained after the choice" (that version with the starting weights
    # left out by a patch, since removed: the package's rule from commit
    # 2544929 on, which gave the patch's numbers on the 24 development
    # scenes). The default since:
    "default, 2026-12-05, epoch veto among trained epochs": {},
    # Issue 25: the squared error of a background model computed on the
    # spectrum and the mixture without their background part (the same loss
    # to rounding, 10-13 % faster fits; 2026-12-05, fourteenth session).
    "default, 2026-12-05, residual pair": {},
    # Issue 21: with fewer directions of variation above the noise than the
    # endmembers need, every start projected on the mean spectrum plus those
    # directions (2026-12-05, sixteenth session; README, "Directions above
    # the noise"). Before it, the package gave the records of "default,
    # 2026-12-05, residual pair" (development) and "epoch veto among the
    # epochs trained after the choice" (held-out) on every scene.
    "default, 2026-12-05, starts within the directions above the noise": {},
    # How much the count's factor on the noise edge matters (a measurement,
    # not a choice: the factor's argument is in hs_aeunmix._subspace).
    "noise edge factor 1.5": {"patch": {"hs_aeunmix._subspace.NOISE_EDGE_FACTOR": 1.5}},
    "noise edge factor 3": {"patch": {"hs_aeunmix._subspace.NOISE_EDGE_FACTOR": 3.0}},
    # The rule switched off: every direction counts, no start is projected
    # (the package before it, to the last bit on the scenes checked). The
    # labels of earlier defaults run the current package: on held-out scenes
    # 50-59 this one stands for the default before the rule.
    "starts from every direction": {
        "patch": {"hs_aeunmix._subspace.NOISE_EDGE_FACTOR": 0.0}
    },
    # Issue 21 (2026-12-05, seventeenth session): baseline="auto" also keeps
    # the background where its smooth directions carry nearly all that
    # varies between pixels above the noise (hs_aeunmix._baseline,
    # holds_background): the rank-n residual test misses a background the
    # rank-n approximation takes in, 8 of 27 fluorescent development scenes
    # of the Raman-compound generator.
    "default, 2026-12-05, background when nearly all that varies": {},
    # The same switched off: the default of the sixteenth session, to the
    # last bit.
    "background by the residual test alone": {
        "patch": {"hs_aeunmix._baseline.SMOOTH_SHARE": float("inf")}
    },
    # Issue 21 (2026-12-06, eighteenth session): the spatial layer applied
    # three times (hs_aeunmix._spatial, PASSES), its weights recomputed at
    # each pass: maps of low-dose scans averaged over more than 3 x 3 pixels,
    # still stopped at edges.
    "default, 2026-12-06, three passes of the spatial layer": {},
    # The same with one pass: the default of the seventeenth session, to the
    # last bit.
    "one pass of the spatial layer": {"patch": {"hs_aeunmix._spatial.PASSES": 1}},
    "without the epoch veto": {
        "patch": {"hs_aeunmix._training.epoch_to_keep": _the_loss_choice}
    },
    # A fourth start judged by the held-out risk and the epoch veto (2026-12-05,
    # fourteenth session): on held-out STEM-EELS scene 0 all three starts end
    # 0.34-0.62 rad from the truth with a held-out risk 18 standard errors
    # above a featureless start's (an exploratory script).
    "flat start among the candidates, with the veto": _fourth_start("flat"),
    "k-means start among the candidates, with the veto": _fourth_start("kmeans"),
    # Issue 25: training within 2x NMF's time on the 256 x 256 x 1024 scan
    # needs about a thousand fewer steps (2026-12-05, fourteenth session).
    "half the steps, with the veto": {"max_epochs": 20},
    # The endmembers' step against the encoder's (2026-12-05, fifteenth
    # session): the family's held-out angles lose to daeu, whose endmembers
    # move with the encoder's step.
    "endmember step 3e-4, 2026-12-05": {"endmember_learning_rate": 3e-4},
    "endmember step 1e-3, 2026-12-05": {"endmember_learning_rate": 1e-3},
    # Step sizes falling as a half cosine over the 40 epochs of a training
    # (2026-12-05, fifteenth session): the package keeps them constant.
    "cosine step decay": {
        "patch": {"hs_aeunmix._training._train_one_epoch": _cosine_steps(40)}
    },
    "encoder step 3e-3, 2026-12-05": {"learning_rate": 3e-3},
    "batches of 512, 2026-12-05": {"batch_size": 512},
    # Low-dose STEM-EELS (2026-12-05, fifteenth session): the featureless
    # start finds closer endmembers there, with worse maps; a stronger
    # spatial prior on the maps, with and without it.
    "spatial weight 100": {"spatial_weight": 100.0},
    "flat start among the candidates, spatial weight 100": {
        **_fourth_start("flat"),
        "spatial_weight": 100.0,
    },
    "per-pixel scale always": {"pixel_scale": True},
    "loss sad": {"loss": "sad"},
    "loss mse_sad": {"loss": "mse_sad"},
}
CURRENT_ROUND = "ablation"


def _worker(task):
    import torch

    torch.set_num_threads(1)
    generator, index, label, split = task
    options = dict(VARIANTS[label])
    method = options.pop("method", "ae")
    record = family.run_one(
        split,
        index,
        method,
        options if method == "ae" else None,
        generator=generator,
    )
    record["variant"] = label
    return record


def _summary(records: list[dict], label: str, baseline: dict) -> str | None:
    """A table row, or None where ``label`` shares no scene with ``baseline``."""
    rows = [r for r in records if r["variant"] == label and r["index"] in baseline]
    if not rows:
        return None
    angles = np.array([family._value(r, "angle") for r in rows])
    rmse = np.array([family._value(r, "rmse") for r in rows])
    counts = []
    for key, values in (("angle", angles), ("rmse", rmse)):
        reference = np.array([family._value(baseline[r["index"]], key) for r in rows])
        better, worse = family.better_worse(values, reference)
        counts.append(f"{better} / {worse}")
    return (
        f"| {label} | {len(rows)} | {np.median(angles):.4f} | "
        f"{np.percentile(angles, 90):.4f} | {np.median(rmse):.4f} | "
        f"{np.percentile(rmse, 90):.4f} | {' | '.join(counts)} |"
    )


def table(records_by_generator: dict[str, list[dict]], compared: str) -> str:
    """One table per generator: each variant on the scenes it shares with ``compared``.

    Variants run on different numbers of scenes (the "scenes" column); the
    better / worse counts are against ``compared`` on the same scenes.
    """
    lines = []
    for generator, records in records_by_generator.items():
        baseline = {r["index"]: r for r in records if r["variant"] == compared}
        if not baseline:
            continue
        present = list(dict.fromkeys(r["variant"] for r in records))
        present.sort(key=lambda label: label != compared)
        lines += [
            f"**{generator}** ({records[0]['split']}, up to {len(baseline)} scenes)",
            "",
            "| variant | scenes | angle median | angle p90 | RMSE median | "
            f"RMSE p90 | angle better / worse than {compared} (> {family.MARGIN} "
            f"rad) | RMSE better / worse (> {family.MARGIN}) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        rows = (_summary(records, label, baseline) for label in present)
        lines += [row for row in rows if row is not None]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family.add_scene_arguments(parser, n_scenes=24, split="development")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument(
        "--round",
        default=CURRENT_ROUND,
        help="cache name: results/<round>_<generator>.jsonl",
    )
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument(
        "--first",
        type=int,
        default=0,
        help="first scene index (held-out scenes not yet seen by a rule: 10 on)",
    )
    parser.add_argument(
        "--compared",
        default="default",
        help="the variant the others are counted better or worse than",
    )
    args = parser.parse_args(argv)
    if args.split == "held_out" and args.round == CURRENT_ROUND:
        args.round = f"{CURRENT_ROUND}_held_out"
    elif args.round != CURRENT_ROUND and not args.table_only:
        parser.error("only the current round can run; older ones: --table-only")
    records_by_generator = {}
    tasks = []
    for generator in args.generators:
        path = RESULTS / f"{args.round}_{generator}.jsonl"
        records = family.load(path)
        done = {(r["index"], r["variant"]) for r in records}
        tasks += [
            (generator, index, label, args.split)
            for label in args.variants
            for index in range(args.first, args.first + args.n_scenes)
            if (index, label) not in done
        ]
        records_by_generator[generator] = records
    if tasks and not args.table_only:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool:
            for record in pool.imap_unordered(_worker, tasks):
                path = RESULTS / f"{args.round}_{record['generator']}.jsonl"
                with open(path, "a") as stream:
                    stream.write(json.dumps(record) + "\n")
                records_by_generator[record["generator"]].append(record)
                family._report(record)
    print(table(records_by_generator, args.compared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
