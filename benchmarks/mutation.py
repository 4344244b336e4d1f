"""Mutation scores of the modules that decide the answer, judged by their mirror tests.

For each module, a git worktree of HEAD beside the checkout (so that
``../shared`` still resolves) whose ``[tool.mutmut]`` mutates that module
only and selects its mirror tests only; ``mutmut run`` there (all mutants, or
a seeded random sample of ``--sample`` of them), then one table row: mutants
run, killed, survived, score. Survivors are listed with ``--survivors``.
Minutes per module on one core; not in CI.

Usage::

    python benchmarks/mutation.py                       # every module below
    python benchmarks/mutation.py _intensity _selection
    python benchmarks/mutation.py _fitting --sample 120 --survivors
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Module -> the tests that mirror it; the large ones are sampled by default.
MIRRORS = {
    "_intensity": ["tests/test__intensity.py"],
    "_selection": ["tests/test__selection.py"],
    "_persistence": ["tests/test__persistence.py"],
    "_fitting": ["tests/test__fitting.py", "tests/test__estimator_options.py"],
    "_losses": ["tests/test__losses.py"],
    "_screening": ["tests/test__screening.py"],
    "_baseline": ["tests/test__baseline.py"],
    "_axes": ["tests/test__axes.py"],
}
DEFAULT_SAMPLE = {"_persistence": 120, "_fitting": 120}
SEED = 27


def _worktree(module: str) -> Path:
    folder = ROOT.parent / f"mut{module}"
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(folder)],
        cwd=ROOT,
        capture_output=True,
    )
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(
        ["git", "worktree", "add", "-q", str(folder), "HEAD"], cwd=ROOT, check=True
    )
    config = (folder / "pyproject.toml").read_text()
    config = re.sub(
        r"only_mutate = \[.*?\]",
        f'only_mutate = ["hs_aeunmix/{module}.py"]',
        config,
        flags=re.S,
    )
    tests = ", ".join(f'"{path}"' for path in MIRRORS[module])
    config = re.sub(
        r"pytest_add_cli_args_test_selection = \[.*?\]",
        f"pytest_add_cli_args_test_selection = [{tests}]",
        config,
        flags=re.S,
    )
    (folder / "pyproject.toml").write_text(config)
    return folder


def _mutmut(folder: Path, *arguments: str, timeout: float | None = None):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "mutmut", *arguments],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None


def score(module: str, sample: int | None) -> dict:
    """Run mutmut on ``module`` (all mutants, or ``sample`` of them)."""
    folder = _worktree(module)
    names: list[str] = []
    if sample is not None:
        # Generating the mutants is quick; the stats run after it is not.
        _mutmut(folder, "run", "--max-children", "1", "no.such.mutant", timeout=90)
        meta = folder / "mutants" / "hs_aeunmix" / f"{module}.py.meta"
        keys = sorted(json.loads(meta.read_text())["exit_code_by_key"])
        names = sorted(random.Random(SEED).sample(keys, min(sample, len(keys))))
    _mutmut(folder, "run", "--max-children", "1", *names)
    results = _mutmut(folder, "results", "--all", "true").stdout
    status = dict(
        line.strip().rsplit(": ", 1) for line in results.splitlines() if ": " in line
    )
    if names:
        status = {name: status.get(name, "not checked") for name in names}
    run = {name: value for name, value in status.items() if value != "not checked"}
    killed = sum(value in ("killed", "timeout") for value in run.values())
    survivors = sorted(name for name, value in run.items() if value == "survived")
    return {
        "module": module,
        "mutants": len(run),
        "killed": killed,
        "survived": len(survivors),
        "sampled": sample is not None,
        "survivors": survivors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MIRRORS))
    parser.add_argument("--sample", type=int, help="mutants per module (seeded)")
    parser.add_argument("--survivors", action="store_true")
    args = parser.parse_args()
    rows = [
        score(module, args.sample or DEFAULT_SAMPLE.get(module))
        for module in args.modules
    ]
    print("| module | mutants run | killed | survived | score |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        sampled = " (random sample)" if row["sampled"] else ""
        share = row["killed"] / max(row["mutants"], 1)
        print(
            f"| {row['module']} | {row['mutants']}{sampled} | {row['killed']} | "
            f"{row['survived']} | {share:.1%} |"
        )
    if args.survivors:
        for row in rows:
            print("\n".join(row["survivors"]))


if __name__ == "__main__":
    main()
