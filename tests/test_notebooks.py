"""The notebooks run from top to bottom on a fresh kernel.

Each notebook checks its own results with ``assert`` cells (accuracy against
the known answer on synthetic scans, reconstruction against NMF's and the
support of every endmember on real ones): an error output fails the test.
The real scans are read from ``../shared/data/real`` beside the checkout,
never downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hs_aeunmix.datasets._real import ENVIRONMENT_VARIABLE

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REAL_DATA = ROOT.parent / "shared" / "data" / "real"


def test_notebooks_exist():
    assert len(NOTEBOOKS) == 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    if "real" in path.stem and not REAL_DATA.is_dir():
        # CI has the checkout's ../shared and fails on any skip.
        pytest.skip(f"the real scans are read from {REAL_DATA}, absent here")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(REAL_DATA))
    notebook = nbformat.read(path, as_version=4)
    # No time limit per cell: the tests assert results, not speed.
    client = NotebookClient(
        notebook,
        timeout=None,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    ]
    assert not [out for out in outputs if out.output_type == "error"]
    # Every assert cell ran.
    checks = [cell for cell in notebook.cells if "assert " in cell.source]
    assert checks
    assert all(cell.get("execution_count") for cell in checks)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_outputs_name_no_path_outside_the_repository(path):
    # Stored outputs are rendered in the HTML docs: a developer's checkout,
    # home or virtual environment must not show there (stderr is stripped
    # before storing).
    notebook = nbformat.read(path, as_version=4)
    texts = [
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    pattern = re.compile(r"(/(home|root|work|tmp|Users|usr)/|[A-Z]:\\\\)")
    assert not [text for text in texts if pattern.search(text)]
    assert not [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr"
    ]
