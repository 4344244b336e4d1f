"""Does a change meant to be exact give the same results, and in how long?

Runs the default (``algorithm="ae"``, ``random_state`` = the scene's index)
on development scenes of the three generators with the package at two
revisions: this checkout and another commit, checked out in a temporary git
worktree. Each scene runs in a fresh process on one thread, the two
revisions alternating, and the table gives each scene's angle and abundance
RMSE at both revisions (identical or not, to the last bit) and the seconds
of the call (``peers.timed``, the imports of a first call included, equal
for both).

Usage::

    python benchmarks/same_results.py --against cd5a28f        # 3 scenes each
    python benchmarks/same_results.py --against HEAD~3 --n-scenes 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GENERATORS = ("family", "stem_eels", "raman_compounds")

# Run in a fresh interpreter with the package of ROOT first on the path.
_CHILD = """
import json, sys
root = sys.argv[1]
sys.path[:0] = [root, root + "/benchmarks"]
import torch
torch.set_num_threads(1)
import family, hs_aeunmix
assert hs_aeunmix.__file__.startswith(root), hs_aeunmix.__file__
record = family.run_one("development", int(sys.argv[3]), "ae", {}, sys.argv[2])
print(json.dumps({key: record.get(key) for key in ("angle", "rmse", "seconds")}))
"""


def _run(root: Path, generator: str, index: int) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), generator, str(index)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the other commit")
    parser.add_argument("--n-scenes", type=int, default=3)
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS))
    args = parser.parse_args(argv)
    checkout = HERE.parent
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as folder:
        other = Path(folder) / "other"
        git = ["git", "-C", str(checkout), "worktree"]
        subprocess.run([*git, "add", "-q", str(other), args.against], check=True)
        try:
            for generator in args.generators:
                for index in range(args.n_scenes):
                    before = _run(other, generator, index)
                    after = _run(checkout, generator, index)
                    same = (before["angle"], before["rmse"]) == (
                        after["angle"],
                        after["rmse"],
                    )
                    ratios.append(after["seconds"] / before["seconds"])
                    rows.append(
                        f"| {generator} | {index} | {before['angle']:.6f} / "
                        f"{before['rmse']:.6f} | {after['angle']:.6f} / "
                        f"{after['rmse']:.6f} | {'yes' if same else '**no**'} | "
                        f"{before['seconds']:.1f} | {after['seconds']:.1f} |"
                    )
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)
    print(
        f"| generator | scene | {args.against}: angle / RMSE | this checkout: "
        "angle / RMSE | identical | seconds before | seconds after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(
        f"\nTime after / before: median {np.median(ratios):.3f}, "
        f"range {min(ratios):.3f}-{max(ratios):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
