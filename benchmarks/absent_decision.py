"""Calling a phase absent from a scan of a series, and zeroing its map (issue 22).

``decompose_series`` measures, per scan and endmember, how much of the phase
the scan's spectra need (its level and upper bound, and how many tested
pixels need or hold it; :mod:`hs_aeunmix._presence`), and calls the phase
absent where the upper bound is below a ratio times the phase's median
level over the series and no tested pixel holds mostly the phase; the map
is then set to zero. This benchmark chooses that ratio without looking at
the source it is judged on.

On the three series sources of ``benchmarks/joint_volume.py`` (written
independently of each other: ``eels_series``, and series mixed from the
STEM-EELS and the Raman-compound generators' endmembers and maps, the last
phase removed from scans 4 and 8), each series is unmixed once with
``zero_absent=False``; each scan's maps are scored against the truth with
every set of maps zeroed; then every rule (a ratio; no pixel condition, a
share of the tested pixels allowed to need the phase, which was the rule
first chosen, or no tested pixel holding it, the default) is applied with
the same functions ``decompose_series`` uses, and scored: the mean and
worst abundance RMSE over the series' scans, the absent phase's mean
fraction in the scans without it, how many of those scans are called, and
which present phases are wrongly called (with their true mean fraction).
Ratio 0 is no decision (the maps as trained).

With the default's pixel condition, the ratio is then chosen leaving each
source out: the one with the lowest mean RMSE over the other two sources'
series (ties: the smaller ratio), and reported on the source left out
against no decision. Records go to ``results/absent_decision.jsonl``;
``--table-only`` reprints from them.

``--real`` asks a real scan instead, where no phase is known to be absent:
the GaAs solar-cell EELS map of ``../shared/data/real`` (45 x 22 x 1024)
cut into 5 strips of 9 rows across its layers and unmixed as a series of
3 endmembers. It prints each strip's mean shares of the signal, its upper
bound over the series' median level, the pixels holding each phase and the
decision; a phase with a sizeable share zeroed there would be a false call.

Usage::

    python benchmarks/absent_decision.py                 # about 5 minutes on 2 cores
    python benchmarks/absent_decision.py --real          # about 20 seconds
    python benchmarks/absent_decision.py --seeds 0 --sources raman
    python benchmarks/absent_decision.py --table-only
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import joint  # a series fit's scores on the model's channels
import joint_volume  # the series sources

RATIOS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
# Pixel conditions: none; at most a share of the tested pixels needing the
# phase on their own (its fit losing more than PIXEL_CHI_SQUARE without
# it); no tested pixel holding mostly the phase (the default).
GUARDS = (
    None,
    *[("needing", share) for share in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2)],
    ("holding", 0),
)
RECORDS = Path(__file__).parent / "results" / "absent_decision.jsonl"


def series_record(source: str, seed: int) -> dict:
    """Per scan: the levels, the true fractions, the scores of every zeroing."""
    import hs_aeunmix
    from hs_aeunmix._presence import held_in_map, without_phases

    signals, truths = joint_volume.SOURCES[source](seed)
    n = truths[0].endmembers.shape[0]
    fit = hs_aeunmix.decompose_series(
        [signal.deepcopy() for signal in signals],
        n,
        random_state=seed,
        max_offset=joint_volume.MAX_OFFSET[source],
        zero_absent=False,
    )
    channels = fit.model.signal_calibration_.trained_channels
    endmembers = fit.model.components_
    scans = []
    for scan, truth in zip(fit.scans, truths, strict=True):
        loadings = np.asarray(scan.signal.learning_results.loadings)[:, :n]
        outcomes = {}
        for mask in range(2**n - 1):  # every set of zeroed maps but all
            zeroed = np.array([bool(mask >> k & 1) for k in range(n)])
            scores = joint._scores(
                endmembers, without_phases(loadings, zeroed), truth, channels
            )
            outcomes[mask] = [
                scores["abundance_rmse"],
                float(scores["fractions"][:, -1].mean()),
            ]
        # scores["order"][j]: the model's endmember standing for phase j.
        true_means = np.zeros(n)
        true_means[scores["order"]] = truth.abundances.reshape(-1, n).mean(axis=0)
        levels = scan.levels
        scans.append(
            {
                "level": levels.level.tolist(),
                "upper": levels.upper.tolist(),
                "n_needing": levels.n_needing.tolist(),
                "n_holding": levels.n_holding.tolist(),
                "map_holding": held_in_map(loadings, endmembers).tolist(),
                "n_pixels": levels.n_pixels,
                "true_mean": true_means.tolist(),
                "last_absent": bool(truth.abundances[..., -1].max() == 0),
                "outcomes": outcomes,
            }
        )
    return {"source": source, "seed": seed, "scans": scans}


def evaluate(record: dict, ratio: float, guard) -> dict:
    """The decision rule's outcome on one series."""
    from hs_aeunmix._presence import PhaseLevels, absent_phases

    scans = record["scans"]
    n = len(scans[0]["level"])
    levels = [
        PhaseLevels(
            np.array(s["level"]),
            np.array(s["upper"]),
            s["n_pixels"],
            np.array(s["n_needing"]),
            np.array(s["n_holding"]),
        )
        for s in scans
    ]
    if ratio == 0:
        absent = np.zeros((len(scans), n), bool)
    elif guard is None:
        absent = absent_phases(levels, n, ratio, max_holding=None)
    elif guard[0] == "holding":
        # As decompose_series: the tested pixels, then every pixel's map.
        absent = absent_phases(levels, n, ratio, max_holding=guard[1]) & (
            np.array([s["map_holding"] for s in scans]) <= guard[1]
        )
    else:
        needing = np.array([s["n_needing"] for s in scans])
        allowed = guard[1] * np.array([[s["n_pixels"]] for s in scans])
        absent = absent_phases(levels, n, ratio, max_holding=None) & (
            needing <= allowed
        )
    rmses, leaks, called, wrong = [], [], 0, []
    for scan, lacks in zip(scans, absent, strict=True):
        mask = sum(1 << k for k in range(n) if lacks[k])
        rmse, leak = scan["outcomes"][str(mask)]
        rmses.append(rmse)
        if scan["last_absent"]:
            leaks.append(leak)
        for k in np.flatnonzero(lacks):
            if scan["true_mean"][k] == 0:
                called += 1
            else:
                wrong.append(round(scan["true_mean"][k], 3))
    return {
        "rmse": float(np.mean(rmses)),
        "worst_rmse": float(np.max(rmses)),
        "leak": float(np.mean(leaks)),
        "called": called,
        "absent_scans": len(leaks),
        "wrong": wrong,
    }


def rules():
    yield 0.0, None
    for ratio in RATIOS[1:]:
        for guard in GUARDS:
            yield ratio, guard


def _name(rule) -> str:
    ratio, guard = rule
    if ratio == 0:
        return "none"
    if guard is None:
        return f"{ratio:g}"
    if guard[0] == "holding":
        return f"{ratio:g}, no pixel holding it"
    return f"{ratio:g}, at most {100 * guard[1]:g} % of pixels needing it"


def choose(sources: list[str], mean) -> tuple:
    """The ratio with the lowest mean RMSE over ``sources``' series.

    The pixel condition is the default's, fixed beforehand (no tested pixel
    holds mostly the phase); the ratio is chosen, no decision (ratio 0)
    among the candidates. Ties (as when two ratios take the same decisions
    there) go to the smaller ratio: the rule that acts least.
    """
    candidates = [rule for rule in rules() if rule[0] == 0 or rule[1] == ("holding", 0)]

    def key(rule):
        rmse = np.mean([mean(source, rule, "rmse") for source in sources])
        return round(rmse, 6), rule[0]

    return min(candidates, key=key)


def table(records: list[dict]) -> str:
    sources = list(dict.fromkeys(r["source"] for r in records))
    lines = [
        "| series | rule: ratio, pixels | mean RMSE | worst scan's RMSE "
        "| absent phase's fraction | absent scans called "
        "| present phases called (true mean fraction) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    results = {}
    for source in sources:
        series = [r for r in records if r["source"] == source]
        for rule in rules():
            outcomes = [evaluate(r, *rule) for r in series]
            results[source, rule] = outcomes
            wrong = [value for o in outcomes for value in o["wrong"]]
            lines.append(
                f"| {source} ({len(series)} seeds) | {_name(rule)} | "
                f"{np.mean([o['rmse'] for o in outcomes]):.4f} | "
                f"{np.mean([o['worst_rmse'] for o in outcomes]):.3f} | "
                f"{np.mean([o['leak'] for o in outcomes]):.3f} | "
                f"{sum(o['called'] for o in outcomes)} of "
                f"{sum(o['absent_scans'] for o in outcomes)} | "
                f"{len(wrong)} {wrong if wrong else ''} |"
            )
    lines += [
        "",
        "Leaving each source out (with no tested pixel holding the phase, the "
        "ratio with the lowest mean RMSE on the others, ties to the smaller):",
        "",
        "| left out | rule chosen | its mean RMSE: none -> chosen "
        "| absent phase's fraction: none -> chosen | present phases called |",
        "| --- | --- | --- | --- | --- |",
    ]

    def mean(source, rule, key):
        return np.mean([o[key] for o in results[source, rule]])

    chosen = choose(sources, mean)
    lines.append(f"| none (all three) | {_name(chosen)} | | | |")
    for left_out in sources:
        others = [source for source in sources if source != left_out]
        if not others:
            continue
        chosen = choose(others, mean)
        none = (0.0, None)
        wrong = sum(len(o["wrong"]) for o in results[left_out, chosen])
        lines.append(
            f"| {left_out} | {_name(chosen)} | {mean(left_out, none, 'rmse'):.4f} -> "
            f"{mean(left_out, chosen, 'rmse'):.4f} | "
            f"{mean(left_out, none, 'leak'):.3f} -> "
            f"{mean(left_out, chosen, 'leak'):.3f} | {wrong} |"
        )
    return "\n".join(lines)


def real_strips() -> str:
    """The GaAs EELS map cut into strips, unmixed as a series (``--real``)."""
    import hyperspy.api as hs

    import hs_aeunmix
    from hs_aeunmix import datasets

    real = Path(__file__).parents[1].parent / "shared" / "data" / "real"
    scan = datasets.real_scan("gaas_solar_cell_eels", real)
    strips = [scan.inav[:, row : row + 9] for row in range(0, 45, 9)]
    for number, strip in enumerate(strips, 1):
        strip.metadata.General.title = f"rows {9 * number - 8}-{9 * number}"
    hs.preferences.General.show_progressbar = False
    fit = hs_aeunmix.decompose_series(strips, 3, random_state=0, max_offset=0.0)
    totals = fit.model.components_.sum(axis=1)
    median = np.median([strip.levels.level for strip in fit.scans], axis=0)
    lines = [
        "| strip | mean share of the signal | upper bound / series median "
        "| pixels holding | absent |",
        "| --- | --- | --- | --- | --- |",
    ]
    for strip in fit.scans:
        loadings = np.asarray(strip.signal.learning_results.loadings)[:, :3]
        shares = loadings * totals / (loadings * totals).sum(axis=1, keepdims=True)
        lines.append(
            f"| {strip.signal.metadata.General.title} | "
            f"{np.round(shares.mean(axis=0), 3).tolist()} | "
            f"{np.round(strip.levels.upper / median, 2).tolist()} | "
            f"{strip.levels.n_holding.tolist()} | "
            f"{np.flatnonzero(strip.absent).tolist() or 'none'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=joint_volume.SOURCES,
        default=list(joint_volume.SOURCES),
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--real", action="store_true")
    args = parser.parse_args(argv)
    if args.real:
        warnings.simplefilter("ignore")
        print(real_strips())
        return 0
    if not args.table_only:
        import hyperspy.api as hs

        hs.preferences.General.show_progressbar = False
        warnings.simplefilter("ignore")
        done = (
            {
                (r["source"], r["seed"])
                for r in map(json.loads, RECORDS.read_text().splitlines())
            }
            if RECORDS.exists()
            else set()
        )
        for source in args.sources:
            for seed in args.seeds:
                if (source, seed) in done:
                    continue
                with RECORDS.open("a") as handle:
                    handle.write(json.dumps(series_record(source, seed)) + "\n")
                print(f"{source} seed {seed} done", flush=True)
    records = [json.loads(line) for line in RECORDS.read_text().splitlines()]
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
