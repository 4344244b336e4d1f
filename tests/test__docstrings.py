"""``s.decomposition?`` documents algorithm="ae" and every one of its options."""

from __future__ import annotations

import inspect

import hyperspy.api as hs
import pytest

from hs_aeunmix import AEUnmix, _docstrings, _hyperspy_internals, _routing
from hs_aeunmix._options import GLUE_OPTIONS, autoencoder_options

SECTION = _docstrings.SECTION_TITLE


def option_names() -> list[str]:
    return [*GLUE_OPTIONS, *autoencoder_options()]


@pytest.mark.parametrize(
    "method",
    [
        hs.signals.Signal1D.decomposition,
        hs.signals.BaseSignal.decomposition,
        hs.signals.LazySignal1D.decomposition,
    ],
    ids=["Signal1D", "BaseSignal", "lazy"],
)
def test_decomposition_docstring_documents_ae(method):
    doc = inspect.getdoc(method)
    assert SECTION in doc
    section = doc[doc.index(SECTION) :]
    assert 'algorithm="ae"' in section
    assert "import hs_aeunmix" in section
    documented = {
        entry.names[0]
        for entry in _docstrings.numpydoc_parameters(
            "Parameters\n----------\n" + section.split("\n\n", 1)[1]
        )
    }
    assert set(option_names()) <= documented
    for name in option_names():
        assert f"\n{name} : " in section


def test_hyperspys_own_documentation_is_kept():
    ours = hs.signals.Signal1D.decomposition.__doc__
    original = inspect.cleandoc(_hyperspy_internals.ORIGINAL_DECOMPOSITION.__doc__)
    assert ours.startswith(original.rstrip())
    lazy = hs.signals.LazySignal1D.decomposition.__doc__
    lazy_original = _hyperspy_internals.ORIGINAL_LAZY_DECOMPOSITION.__doc__
    assert lazy.startswith(inspect.cleandoc(lazy_original).rstrip())


def test_wrapped_method_keeps_hyperspys_signature():
    ours = inspect.signature(hs.signals.Signal1D.decomposition)
    assert ours == _hyperspy_internals.DECOMPOSITION_SIGNATURE


def test_every_estimator_option_is_described_by_its_docstring():
    """No option falls back to "See AEUnmix": AEUnmix's docstring covers all."""
    fallback = "See :class:`hs_aeunmix.AEUnmix`."
    undocumented = [
        option.names
        for option in _docstrings.ae_options()
        if option.description == (fallback,)
    ]
    assert undocumented == []


def test_options_carry_defaults_and_descriptions():
    options = {option.names[0]: option for option in _docstrings.ae_options()}
    assert list(options)[: len(GLUE_OPTIONS)] == list(GLUE_OPTIONS)
    assert "n_components" not in options  # that is output_dimension
    assert 'default="dense"' in options["encoder"].type
    assert f"default={AEUnmix().max_epochs}" in options["max_epochs"].type
    assert "default=False" in options["fine_tune"].type
    for name in ("pnas2024", "volume", "daeu", "udas"):
        assert f'"{name}"' in options["preset"].type
    assert all(option.description for option in options.values())


def test_section_follows_a_new_option(monkeypatch):
    """A hyperparameter added to AEUnmix appears without editing _docstrings."""
    monkeypatch.setattr(_docstrings, "AEUnmix", AEUnmixDoc)
    monkeypatch.setattr(
        _docstrings, "autoencoder_options", lambda: ["alpha", "beta", "gamma"]
    )
    options = {option.names[0]: option for option in _docstrings.ae_options()}
    assert options["alpha"].type == "float, default=0.5"
    assert options["alpha"].description == ("First line.", "", "Second paragraph.")
    assert options["beta"].type == 'str, default="b"'
    assert options["gamma"].description == ("See :class:`hs_aeunmix.AEUnmix`.",)
    assert "fitted_" not in options  # the Attributes section is not read


class AEUnmixDoc:
    """An estimator.

    Parameters
    ----------
    alpha : float
        First line.

        Second paragraph.
    beta : str
        The second.

    Attributes
    ----------
    fitted_ : int
        Not an option.
    """

    def __init__(self, *, alpha=0.5, beta="b", gamma=None):
        pass


def test_numpydoc_parameters_reads_grouped_names_and_stops_at_next_section():
    entries = _docstrings.numpydoc_parameters(
        """Summary.

        Parameters
        ----------
        x, y : array
            Coordinates.
        flag
            No type.

        Returns
        -------
        int
        """
    )
    assert [(entry.names, entry.type) for entry in entries] == [
        (("x", "y"), "array"),
        (("flag",), ""),
    ]
    assert _docstrings.numpydoc_parameters("No sections.") == []
    assert _docstrings.numpydoc_parameters(None) == []


def test_install_is_idempotent_and_keeps_one_section():
    _routing.enable()
    _routing.enable()
    assert hs.signals.Signal1D.decomposition.__doc__.count(SECTION) == 1
