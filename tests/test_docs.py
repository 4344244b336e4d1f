"""The documentation builds without a single warning (as in CI).

``sphinx-build -W --keep-going -b html docs <tmp>``: the API reference
(autodoc + numpydoc of the public names), the pages that include README.md
and CHANGELOG.md, and the notebooks rendered as stored (never executed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "sphinx", reason="Sphinx is not installed: pip install '.[doc]' (or '.[test]')"
)

DOCS = Path(__file__).parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            "-q",
            str(DOCS),
            str(html),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    for page in (
        "index.html",
        "installation.html",
        "user_guide/index.html",
        "examples.html",
        "citing.html",
        "changelog.html",
        "api/estimator.html",
    ):
        assert (html / page).is_file(), page
    api = (html / "api" / "estimator.html").read_text(encoding="utf-8")
    assert "hs_aeunmix.AEUnmix" in api
    assert "n_components" in api  # numpydoc rendered the Parameters section
    notebooks = sorted((DOCS.parent / "notebooks").glob("*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        assert (html / "notebooks" / f"{notebook.stem}.html").is_file()
