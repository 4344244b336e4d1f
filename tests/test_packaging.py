"""What pyproject.toml declares matches what the package imports and ships.

* Every import of the package is the standard library, the package itself,
  or a declared dependency; a module imported only on demand may come from
  an extra instead, behind ``except ImportError`` (exspy for the EELS
  datasets). Every declared dependency is imported (no ``tqdm`` left over).
* The floors are at least what the code needs (the table below says why),
  and the installed versions satisfy them.
* ``import hs_aeunmix`` does not import exspy; ``import hyperspy.api``
  imports neither hs_aeunmix nor torch (HyperSpy reads the extension file
  without importing the package).
* The version is written once, in pyproject.toml.
* A wheel built from the tree holds the extension file, the license and the
  metadata HyperSpy and pip read.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "hs_aeunmix"
# Top-level names this distribution installs: the package and the light
# command-line front.
OWN_MODULES = ("hs_aeunmix", "hs_aeunmix_cli")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
NAME = PROJECT["name"]

# What the code needs from each dependency; the declared floor may be higher
# (HyperSpy 2.5's own floors) but never lower. Keep in step with the comment
# above ``dependencies`` in pyproject.toml.
NEEDED_FLOORS = {
    "hyperspy": ("2.5", "the private MVA.decomposition wrapped for 'ae'"),
    "torch": ("2.1", "load_state_dict(assign=True); torch.device as a context"),
    "scikit-learn": ("1.6", "sklearn.utils.validation.validate_data"),
    "jsonschema": ("4.0", "Draft202012Validator"),
    "numpy": ("1.25", "HyperSpy 2.5 needs numpy>=1.25"),
    "scipy": ("1.10", "HyperSpy 2.5 needs scipy>=1.10"),
    "matplotlib": ("3.5", "Figure(layout='constrained')"),
    "traits": ("7.0", "HyperSpy 2.5 needs traits>=7.0"),
    "safetensors": ("0.4", "safetensors.torch.save(metadata=) / load(bytes)"),
    "h5py": ("3.8", "RosettaSciIO's hdf5 floor"),
    "pooch": ("1.6", "pooch.retrieve(known_hash=..., fname=..., path=os_cache)"),
    "dask": ("2024.12", "HyperSpy 2.5 needs dask[array]>=2024.12.0"),
}


def requirements(extra: str | None = None) -> list[Requirement]:
    """The runtime requirements, or those of one extra."""
    if extra is None:
        return [Requirement(text) for text in PROJECT["dependencies"]]
    return [Requirement(text) for text in PROJECT["optional-dependencies"][extra]]


def provided(reqs: list[Requirement], seen: frozenset = frozenset()) -> set[str]:
    """Distributions ``reqs`` install: their names and those of their extras.

    Extras are followed one level into installed distributions' metadata
    (``hyperspy[speed]`` brings numba) and fully through this project's own
    (``hs-aeunmix[eels]``).
    """
    names: set[str] = set()
    for req in reqs:
        name = canonicalize_name(req.name)
        names.add(name)
        if name == canonicalize_name(NAME):
            for extra in req.extras - seen:
                names |= provided(requirements(extra), seen | {extra})
            continue
        for extra in req.extras:
            try:
                dependency_requires = importlib.metadata.requires(req.name) or []
            except importlib.metadata.PackageNotFoundError:
                continue
            for text in dependency_requires:
                sub = Requirement(text)
                environment = {**default_environment(), "extra": extra}
                if sub.marker is not None and sub.marker.evaluate(environment):
                    names.add(canonicalize_name(sub.name))
    return names


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str:
    """The distribution that installs top-level ``module`` (or its own name)."""
    names = _distributions().get(module)
    return canonicalize_name(names[0] if names else module)


class _Imports(ast.NodeVisitor):
    """Third-party top-level names a module imports, and where."""

    def __init__(self) -> None:
        self.found: list[tuple[str, bool, bool, int]] = []
        self._depth = 0  # functions entered
        self._guarded = 0  # try blocks with an ``except ImportError`` entered

    def _function(self, node) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Try(self, node: ast.Try) -> None:
        guards = any(
            handler.type is not None
            and re.search(
                r"\b(ImportError|ModuleNotFoundError)\b", ast.unparse(handler.type)
            )
            for handler in node.handlers
        )
        self._guarded += guards
        for statement in node.body:
            self.visit(statement)
        self._guarded -= guards
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def _record(self, module: str, line: int) -> None:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in ("__future__", *OWN_MODULES):
            return
        self.found.append((top, self._depth == 0, self._guarded > 0, line))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._record(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._record(node.module, node.lineno)


def package_imports() -> list[tuple[str, str, bool, bool, int]]:
    """(module, file, at import time, behind except ImportError, line) of each."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        relative = str(path.relative_to(ROOT))
        found += [(top, relative, *rest) for top, *rest in visitor.found]
    return found


def test_every_import_is_declared():
    runtime = provided(requirements())
    extras = set()
    for extra in PROJECT["optional-dependencies"]:
        extras |= provided(requirements(extra))
    problems = []
    for module, path, at_import, guarded, line in package_imports():
        distribution = distribution_of(module)
        if distribution in runtime:
            continue
        where = f"{path}:{line} imports {module} ({distribution})"
        if at_import:
            problems.append(f"{where} when the package is imported, undeclared")
        elif distribution not in extras:
            problems.append(f"{where}, in no dependency or extra")
        elif not guarded:
            problems.append(f"{where} from an extra without except ImportError")
    assert problems == []


def test_every_dependency_is_imported():
    imported = {distribution_of(module) for module, *_ in package_imports()}
    unused = [
        req.name
        for req in requirements()
        if canonicalize_name(req.name) not in imported
    ]
    assert unused == []


def test_exspy_is_an_extra_and_tqdm_is_gone():
    runtime = {canonicalize_name(req.name) for req in requirements()}
    assert "exspy" not in runtime
    assert "tqdm" not in runtime
    assert "exspy" in {canonicalize_name(r.name) for r in requirements("eels")}
    # The README's install command (".[test]") runs the EELS demo.
    assert "eels" in provided_extras("test")


def provided_extras(extra: str) -> set[str]:
    own = [r for r in requirements(extra) if canonicalize_name(r.name) == NAME]
    return {name for req in own for name in req.extras}


@pytest.mark.parametrize("extra", ["eels", "gui", "doc", "benchmark"])
def test_test_extra_installs_every_other_extra(extra):
    assert extra in provided_extras("test")


@pytest.mark.parametrize("name", sorted(NEEDED_FLOORS))
def test_floor_is_at_least_what_the_code_needs(name):
    needed, why = NEEDED_FLOORS[name]
    (req,) = [r for r in requirements() if canonicalize_name(r.name) == name]
    floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert floors, f"{name} has no floor"
    assert max(floors) >= Version(needed), f"{name} needs >= {needed}: {why}"


def test_installed_versions_satisfy_the_declaration():
    unsatisfied = []
    for req in requirements():
        installed = importlib.metadata.version(req.name)
        if not req.specifier.contains(installed, prereleases=True):
            unsatisfied.append(f"{req.name} {installed} (declared {req})")
    assert unsatisfied == []


def test_hyperspy_is_capped_until_a_newer_one_is_tested():
    (req,) = [r for r in requirements() if r.name == "hyperspy"]
    assert req.specifier == SpecifierSet(">=2.5,<2.6")
    assert "speed" in req.extras  # numba: no "Numba is not installed" warning


def test_only_the_python_ci_runs_is_claimed():
    # CI runs one interpreter (the one running this test); the classifiers,
    # the floor and ruff's target claim that one and no other, until another
    # one is tested (its CPU torch wheel is not on the CI machine).
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = "Programming Language :: Python :: 3."
    claimed = {
        classifier.removeprefix("Programming Language :: Python :: ")
        for classifier in PROJECT["classifiers"]
        if classifier.startswith(prefix)
    }
    assert claimed == {running}
    assert PROJECT["requires-python"] == f">={running}"
    assert (
        PYPROJECT["tool"]["ruff"]["target-version"] == f"py{running.replace('.', '')}"
    )


def test_build_system_reads_the_spdx_license():
    (req,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert req.name == "setuptools"
    assert req.specifier.contains("77.0.0")
    assert not req.specifier.contains("76.9")
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text(encoding="utf-8")


def test_classifiers_are_known_to_pypi():
    trove_classifiers = pytest.importorskip("trove_classifiers")
    unknown = sorted(set(PROJECT["classifiers"]) - trove_classifiers.classifiers)
    assert unknown == []


def test_project_urls_are_https():
    assert PROJECT["urls"]
    assert all(url.startswith("https://") for url in PROJECT["urls"].values())


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return result.stdout.strip()


def test_import_hs_aeunmix_does_not_import_exspy():
    code = "import sys, hs_aeunmix; print('exspy' in sys.modules)"
    assert _run(code) == "False"


SOLVER_MODULES = (
    "_fitting",
    "_plan",
    "_training",
    "_selection",
    "_initialisation",
    "_losses",
    "_networks",
    "_state",
)


@pytest.mark.parametrize("module", SOLVER_MODULES)
def test_the_solver_never_reaches_back_into_the_estimator(module):
    """The fit pipeline takes values (FitPlan), not the estimator: no import of
    _estimator at any level, type-checking blocks included."""
    tree = ast.parse((ROOT / "hs_aeunmix" / f"{module}.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {"hs_aeunmix._estimator", "_estimator", "AEUnmix"} & imported


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports() -> dict[str, set[str]]:
    """Each package module -> the package modules it imports, at any level
    (functions and type-checking blocks included). ``from package import
    submodule`` is an import of the submodule only."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[
                        : len(package.split(".")) - node.level + 1
                    ]
                    base = ".".join([*parents, *([node.module] if node.module else [])])
                submodules = {f"{base}.{a.name}" for a in node.names} & files.keys()
                imported |= submodules
                if base in files and len(submodules) < len(node.names):
                    imported.add(base)
        graph[name] = imported - {name}
    return graph


def test_no_import_cycle_in_the_package():
    graph = internal_imports()
    # A module is on a cycle when it can reach itself.
    on_cycles = []
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            module = stack.pop()
            if module == start:
                on_cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])
    assert on_cycles == []


# Who may build on the estimator class: the HyperSpy route (glue, adapters,
# option checks, docstring section, options panel) and the public functions
# built on it (series, joint series, live unmixing, choosing n). The
# package's __init__ reaches it by name, on first use; the command line, a
# run's jobs and the watched folder only load model files (load_model).
AEUNMIX_USERS = {
    "hs_aeunmix._hyperspy",
    "hs_aeunmix._adapters",
    "hs_aeunmix._options",
    "hs_aeunmix._docstrings",
    "hs_aeunmix._gui",
    "hs_aeunmix._series",
    "hs_aeunmix._joint",
    "hs_aeunmix._live",
    "hs_aeunmix._model_selection",
}


def test_only_the_front_imports_the_estimator_class():
    users = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and any(
                alias.name == "AEUnmix" for alias in node.names
            ):
                users.add(_module_name(path))
    assert users - {"hs_aeunmix"} == AEUNMIX_USERS


def test_no_module_is_over_900_lines():
    long = {
        _module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 900
    }
    assert long == {}


def test_series_and_watched_folder_do_not_depend_on_the_command_line():
    """The public apply_series and the watcher share the run's jobs (_jobs),
    not the command line's private helpers."""
    code = (
        "import sys, hs_aeunmix._series, hs_aeunmix._watch; "
        "print('hs_aeunmix._cli' in sys.modules, 'hs_aeunmix_cli' in sys.modules)"
    )
    assert _run(code) == "False False"


def test_import_hs_aeunmix_imports_neither_torch_nor_sklearn():
    # The done-when of the light import: `python -X importtime -c "import
    # hs_aeunmix"` lists neither; the "ae" route and the public names still
    # work, each importing what it needs on first use.
    code = (
        "import json, subprocess, sys\n"
        "heavy = lambda: sorted({m.split('.')[0] for m in sys.modules}"
        " & {'torch', 'sklearn'})\n"
        "import hs_aeunmix\n"
        "at_import = heavy()\n"
        "import numpy as np, hyperspy.api as hs\n"
        "s = hs.signals.Signal1D(np.random.default_rng(0).random((6, 6, 24)) + 0.1)\n"
        "s.decomposition(algorithm='ae', output_dimension=2, max_epochs=1,"
        " print_info=False, show_progressbar=False)\n"
        "print(json.dumps([at_import, s.learning_results.loadings.shape,"
        " hs_aeunmix.AEUnmix.__name__, 'torch' in sys.modules]))"
    )
    at_import, shape, name, torch_loaded = json.loads(_run(code).splitlines()[-1])
    assert at_import == []
    assert shape == [36, 2]
    assert name == "AEUnmix"
    assert torch_loaded


def test_python_dash_m_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "hs_aeunmix", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == f"hs-aeunmix {importlib.metadata.version(NAME)}"


def test_every_public_name_resolves():
    import hs_aeunmix

    for name in hs_aeunmix.__all__:
        assert getattr(hs_aeunmix, name) is not None, name
    assert sorted(dir(hs_aeunmix)) == sorted(hs_aeunmix.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        hs_aeunmix.nonexistent  # noqa: B018


def test_import_hyperspy_does_not_import_hs_aeunmix_or_torch():
    code = (
        "import sys, hyperspy.api; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'hs_aeunmix', 'torch', 'exspy'}))"
    )
    assert _run(code) == "[]"


def test_version_is_written_once():
    version = PROJECT["version"]
    assert "version" not in PROJECT.get("dynamic", [])
    import hs_aeunmix

    assert importlib.metadata.version(NAME) == version, (
        "the installed metadata is stale: reinstall (pip install -e .)"
    )
    assert hs_aeunmix.__version__ == version
    literal = re.compile(r"""__version__\s*=\s*["'](?!0\+unknown)""")
    assert not [p for p in PACKAGE.rglob("*.py") if literal.search(p.read_text())]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(citation["version"]) == version


def test_changelog_has_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert "keepachangelog.com" in text


def test_hyperspy_finds_the_extension_file():
    (entry,) = [
        e
        for e in importlib.metadata.entry_points(group="hyperspy.extensions")
        if e.value == "hs_aeunmix"
    ]
    # HyperSpy looks for the file beside the module named like the entry
    # point, without importing it.
    spec = importlib.util.find_spec(entry.name)
    path = Path(spec.origin).parent / "hyperspy_extension.yaml"
    extension = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(extension, dict)
    from hyperspy.extensions import ALL_EXTENSIONS  # parsed it at import

    assert isinstance(ALL_EXTENSIONS["signals"], dict)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the tree and the wheel setuptools builds from it (no network)."""
    pytest.importorskip("setuptools", minversion="77")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        PACKAGE, source / "hs_aeunmix", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; "
            "print(build_meta.build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=180,
    )
    (path,) = out.glob("*.whl")
    return source, path


@pytest.fixture(scope="module")
def wheel(build) -> Path:
    return build[1]


def test_wheel_ships_the_extension_file_and_every_module(build):
    source, wheel = build
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "hs_aeunmix/hyperspy_extension.yaml" in names
    modules = {
        path.relative_to(source).as_posix()
        for path in (source / "hs_aeunmix").rglob("*.py")
    }
    assert modules <= names


def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        dist_info = next(
            n.split("/")[0] for n in archive.namelist() if ".dist-info/" in n
        )
        metadata = Parser().parsestr(
            archive.read(f"{dist_info}/METADATA").decode("utf-8")
        )
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        names = set(archive.namelist())
    assert metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert f"{dist_info}/licenses/LICENSE" in names
    runtime = {
        str(Requirement(r))
        for r in metadata.get_all("Requires-Dist")
        if "extra ==" not in r
    }
    assert runtime == {str(req) for req in requirements()}
    assert set(metadata.get_all("Provides-Extra")) == set(
        PROJECT["optional-dependencies"]
    )
    assert "[hyperspy.extensions]\nhs_aeunmix = hs_aeunmix" in entry_points
    assert "hs-aeunmix = hs_aeunmix_cli:main" in entry_points
