"""Sphinx configuration of the hs_aeunmix documentation.

Build (warnings are errors, as in CI: tests/test_docs.py)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Needs the ``doc`` extra (``pip install ".[doc]"``). Nothing is downloaded
while building (no intersphinx) and the notebooks are rendered as stored,
never executed: tests/test_notebooks.py runs them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The package documented is the one beside this folder, installed or not.
sys.path.insert(0, str(ROOT))
# Figures drawn while importing the API must not open windows.
os.environ.setdefault("MPLBACKEND", "Agg")

import hs_aeunmix  # noqa: E402

project = "hs_aeunmix"
author = "hs_aeunmix developers"
copyright = "2026, hs_aeunmix developers"
# From the installed metadata, whose one source is pyproject.toml.
release = version = hs_aeunmix.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_copybutton",
    "sphinx_design",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
# Sphinx's own names for references that docstrings write without a role.
default_role = "py:obj"

# -- API reference: autodoc + numpydoc ---------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections give the types
autodoc_inherit_docstrings = False  # scikit-learn's mixins document themselves
autoclass_content = "class"
numpydoc_show_class_members = False  # members are listed by autodoc
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_{method}_request`` methods.

    scikit-learn adds them to every estimator class (metadata routing); their
    docstrings refer to scikit-learn's own glossary, which does not exist
    here, and they are scikit-learn's API rather than this package's.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)


# -- Markdown pages and notebooks: MyST-NB -----------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # render the stored notebooks; never execute them
nb_merge_streams = True

# -- HTML: the PyData theme, as HyperSpy and its extensions use ---------------
html_theme = "pydata_sphinx_theme"
html_title = f"hs_aeunmix {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
