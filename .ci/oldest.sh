#!/usr/bin/env bash
# CI job: the test suite against the OLDEST versions pyproject.toml declares.
#
# A clean virtual environment gets every runtime dependency (and exspy, the
# eels extra) at the oldest minor release its floor allows: ``name>=X.Y``
# becomes the pip constraint ``name==X.Y.*`` (the newest patch of that
# minor, which is what a user with that minor runs). The constraints are
# derived from pyproject.toml each time, so a raised floor is tested at once.
# Test-only tools (pytest, sphinx, ...) stay at their newest.
#
# PyTorch is the exception, pinned at 2.13.0 here as in the main job: the
# CPU wheel of 2.13.0 is on this machine's disk, and any other version,
# including the declared floor 2.1, would be a multi-GB CUDA download from
# PyPI. The torch floor rests on the APIs the code uses
# (``load_state_dict(assign=True)``, 2.1; see pyproject.toml).
#
# Runs a subset of the suite (TESTS below) so that CI, which also runs the
# whole suite with the newest versions, stays well under 15 minutes on two
# cores: the files that exercise the dependencies' APIs (HyperSpy's
# decomposition and internals, scikit-learn's validation, torch, safetensors
# and jsonschema files, SciPy's nnls (VCA), exspy's EELS edges, packaging
# metadata).
# The notebooks, the docs build, the benchmarks and the long training
# tests run in the main job only. A skipped test fails the job.
#
# Usage: bash .ci/oldest.sh [pytest arguments instead of TESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/pytest_no_skips.sh
source .ci/pytest_no_skips.sh

TESTS=(
    tests/test_packaging.py
    tests/test__docstrings.py
    tests/test__hyperspy_internals.py
    tests/test__hyperspy.py
    tests/test__estimator.py
    tests/test__persistence.py
    tests/test__networks.py
    tests/test__losses.py
    tests/test__vca.py
    tests/test__axes.py
    tests/test_presets.py
    tests/test_datasets.py
)

# Removed on exit, as the main job's: repeated runs on one machine would
# otherwise leave a 2 GB environment each in /tmp.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "+ environment: $work/venv"
constraints="$work/oldest-constraints.txt"

python3 - "$constraints" <<'EOF'
"""Write ``name==X.Y.*`` for every ``name>=X.Y`` runtime (and eels) floor."""
import re
import sys
import tomllib

with open("pyproject.toml", "rb") as stream:
    project = tomllib.load(stream)["project"]
lines = ["torch==2.13.0  # the CPU wheel on disk: see .ci/oldest.sh"]
for text in project["dependencies"] + project["optional-dependencies"]["eels"]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(\[[^\]]*\])?\s*(.*)$", text)
    name, specifier = match.group(1), match.group(3)
    floor = re.search(r">=\s*([0-9]+(?:\.[0-9]+)*)", specifier)
    if name == "torch":
        continue
    if floor is None:
        sys.exit(f"{text!r} has no floor: declare one (name>=X.Y)")
    lines.append(f"{name}=={floor.group(1)}.*")
with open(sys.argv[1], "w") as stream:
    stream.write("\n".join(lines) + "\n")
EOF
echo "+ oldest versions:"
cat "$constraints"

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
# Wheels only: an old release without a wheel for this Python would be
# built from source for minutes; failing says the floor cannot be tested
# here.
python -m pip install --quiet --only-binary=:all: -c "$constraints" ".[test]"
python - "$constraints" <<'EOF'
"""Fail unless each constrained distribution got the version asked for."""
import sys
from importlib.metadata import version

from packaging.requirements import Requirement

wrong = []
for line in open(sys.argv[1]):
    req = Requirement(line.split("#")[0].strip())
    installed = version(req.name)
    print(f"  {req.name} {installed}")
    if not req.specifier.contains(installed, prereleases=True):
        wrong.append(f"{req.name} {installed} (wanted {req.specifier})")
if wrong:
    sys.exit("not the oldest versions: " + ", ".join(wrong))
EOF

export MPLBACKEND=Agg
if [ "$#" -gt 0 ]; then
    selection=("$@")
else
    selection=()
    for path in "${TESTS[@]}"; do
        if [ -e "$path" ]; then
            selection+=("$path")
        else
            echo "note: $path does not exist; update TESTS in .ci/oldest.sh" >&2
        fi
    done
fi
pytest_no_skips python -m pytest -p no:cacheprovider "${selection[@]}"
