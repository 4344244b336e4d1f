"""The ``algorithm="ae"`` section of HyperSpy's ``decomposition`` docstring.

``s.decomposition?`` in Jupyter shows the docstring of the method that
``import hs_aeunmix`` wraps (:mod:`._hyperspy_internals`); this module
writes the section appended to HyperSpy's own text. The options are read
from :class:`~hs_aeunmix.AEUnmix`'s numpydoc ``Parameters`` (one source for
the estimator, the README's table and this help) plus the options of the
HyperSpy route alone (:data:`._options.GLUE_OPTIONS`), so that a new
hyperparameter appears here without editing this file.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass

from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._options import FINE_TUNE_EPOCHS, GLUE_OPTIONS, autoencoder_options
from hs_aeunmix.presets import PRESETS

SECTION_TITLE = 'Autoencoder unmixing: algorithm="ae" (hs_aeunmix)'

# Options of ``decomposition(algorithm="ae")`` that are not AEUnmix
# hyperparameters, in the numpydoc form of the estimator's own.
_GLUE_DOCS = {
    "preset": (
        "{" + ", ".join(f'"{name}"' for name in PRESETS) + "} or None, default=None",
        "Configure the estimator as the method of one of the papers this "
        "package comes from (see :mod:`hs_aeunmix.presets`); options given "
        "beside it replace the preset's values.",
    ),
    "model": (
        "AEUnmix, path, HyperSpy signal or None, default=None",
        "A trained model, a model file (``.aeunmix``), or a results file or "
        'signal unmixed with ``"ae"``: unmix this signal with it instead of '
        "training (no training unless ``fine_tune``). ``output_dimension`` "
        "is then the model's and may be left out. The same as "
        ":func:`hs_aeunmix.apply`.",
    ),
    "fine_tune": (
        "bool, default=False",
        "With ``model=``: continue training a copy of the model on this "
        f"signal first, for ``max_epochs={FINE_TUNE_EPOCHS}`` epochs unless "
        "another value is given (any training option can be).",
    ),
}


@dataclass(frozen=True)
class Parameter:
    """One entry of a numpydoc ``Parameters`` section."""

    names: tuple[str, ...]
    type: str
    description: tuple[str, ...]

    def render(self) -> list[str]:
        """The entry as numpydoc lines (description indented by four spaces)."""
        header = ", ".join(self.names)
        if self.type:
            header += f" : {self.type}"
        return [header, *(f"    {line}" if line else "" for line in self.description)]


def numpydoc_parameters(docstring: str | None) -> list[Parameter]:
    """The entries of the ``Parameters`` section of a numpydoc docstring.

    Parameters
    ----------
    docstring : str or None
        The docstring, indented or not.

    Returns
    -------
    list of Parameter
        In the order written; empty when there is no such section.
    """
    lines = inspect.cleandoc(docstring or "").splitlines()
    start = _section_start(lines, "Parameters")
    if start is None:
        return []
    entries: list[Parameter] = []
    header: str | None = None
    description: list[str] = []

    def close() -> None:
        if header is None:
            return
        names, _, type_ = header.partition(" : ")
        while description and not description[-1]:
            description.pop()
        entries.append(
            Parameter(
                tuple(name.strip() for name in names.split(",") if name.strip()),
                type_.strip(),
                tuple(description),
            )
        )

    for index in range(start, len(lines)):
        line = lines[index]
        if _is_section_header(lines, index):
            break
        if line and not line[0].isspace():
            close()
            header, description = line.strip(), []
        elif header is not None:
            description.append(line[4:] if line.startswith("    ") else line.strip())
    close()
    return entries


def _section_start(lines: list[str], title: str) -> int | None:
    for index in range(len(lines) - 1):
        if lines[index].strip() == title and _is_underline(lines[index + 1]):
            return index + 2
    return None


def _is_section_header(lines: list[str], index: int) -> bool:
    line = lines[index]
    return (
        bool(line.strip())
        and not line[0].isspace()
        and index + 1 < len(lines)
        and _is_underline(lines[index + 1])
    )


def _is_underline(line: str) -> bool:
    return re.fullmatch(r"-{3,}", line.strip()) is not None


def ae_options() -> list[Parameter]:
    """Every keyword argument of ``decomposition(algorithm="ae", ...)``, documented.

    The glue options first, then the estimator's hyperparameters in the
    order of its docstring; a hyperparameter the docstring does not
    describe comes last, with a pointer to :class:`~hs_aeunmix.AEUnmix`.
    Types that do not state a default get the constructor's.
    """
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(AEUnmix.__init__).parameters.items()
    }
    wanted = autoencoder_options()
    options = [
        Parameter(
            (name,), _GLUE_DOCS[name][0], tuple(textwrap.wrap(_GLUE_DOCS[name][1], 72))
        )
        for name in GLUE_OPTIONS
    ]
    entries = [
        Parameter(names, entry.type, entry.description)
        for entry in numpydoc_parameters(AEUnmix.__doc__)
        if (names := tuple(name for name in entry.names if name in wanted))
    ]
    listed = {name for entry in entries for name in entry.names}
    entries += [
        Parameter((name,), "", ("See :class:`hs_aeunmix.AEUnmix`.",))
        for name in wanted
        if name not in listed
    ]
    for entry in entries:
        type_ = entry.type
        if len(entry.names) == 1 and "default" not in type_:
            default = f"default={_literal(defaults[entry.names[0]])}"
            type_ = f"{type_}, {default}" if type_ else default
        options.append(Parameter(entry.names, type_, entry.description))
    return options


def _literal(value) -> str:
    """A default as the docstrings write it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def ae_section() -> str:
    """The ``algorithm="ae"`` section, unindented numpydoc text."""
    lines = [
        SECTION_TITLE,
        "-" * len(SECTION_TITLE),
        "``import hs_aeunmix`` is needed first: HyperSpy reads the package's",
        "extension file but does not import it, and without the import",
        '``algorithm="ae"`` is not recognised. The autoencoder\'s endmember',
        "spectra are stored as the decomposition factors and its abundances",
        "as the loadings; ``output_dimension`` is the number of endmembers and",
        "``return_info=True`` returns the trained :class:`hs_aeunmix.AEUnmix`",
        "(an instance may also be given as ``algorithm``).",
        "``normalize_poissonian_noise`` and ``centre`` are refused (use",
        '``loss="poisson"`` for counts). :func:`hs_aeunmix.decompose` does',
        "the same without this wrapped method. Options (keyword arguments):",
        "",
    ]
    for option in ae_options():
        lines.extend(option.render())
    return "\n".join(lines) + "\n"
