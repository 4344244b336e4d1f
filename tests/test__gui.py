"""The options panel: traits built from the estimator, and the Jupyter widget."""

from __future__ import annotations

import inspect

import pytest
import traits.api as t
from conftest import make_mixture, to_signal

import hs_aeunmix
from hs_aeunmix import AEUnmix, UnmixingOptions

ipywidgets = pytest.importorskip("ipywidgets")


def test_every_option_is_a_documented_trait():
    options = UnmixingOptions()
    expected = set(AEUnmix._get_param_names()) - {
        "n_components",
        "fixed_endmembers",
        "warm_start",
        "show_progressbar",
    }
    assert set(options.option_names) == expected
    for name in options.option_names:
        assert options.trait(name).desc, f"{name} has no documentation"


def test_default_options_are_the_estimators_defaults():
    kwargs = UnmixingOptions(n_components=4).decomposition_kwargs()
    assert kwargs.pop("output_dimension") == 4
    defaults = AEUnmix().get_params()
    assert kwargs == {name: defaults[name] for name in kwargs}


def test_traits_follow_the_declared_constraints():
    options = UnmixingOptions()
    kinds = {
        name: type(options.trait(name).trait_type) for name in options.option_names
    }
    assert kinds["loss"] is t.Enum  # choices only
    assert kinds["spatial"] is t.Bool
    assert kinds["max_epochs"] is t.Int
    assert kinds["learning_rate"] is t.Float
    assert kinds["input_components"] is t.Str  # a number or None
    assert kinds["baseline"] is t.Str  # "auto", a degree or None
    with pytest.raises(t.TraitError):
        options.loss = "hinge"
    with pytest.raises(t.TraitError):
        options.max_epochs = "many"


def test_text_options_are_python_literals():
    options = UnmixingOptions(baseline=None, hidden_layer_sizes=(32,))
    assert options.baseline == "None"
    options.init = "vca"  # a bare word is a string
    kwargs = options.decomposition_kwargs()
    assert kwargs["baseline"] is None
    assert kwargs["hidden_layer_sizes"] == (32,)
    assert kwargs["init"] == "vca"
    options.hidden_layer_sizes = "(128, 64"
    with pytest.raises(ValueError, match=r"hidden_layer_sizes='\(128, 64' is not"):
        options.decomposition_kwargs()


@pytest.fixture
def signal():
    return to_signal(make_mixture(shape=(12, 12)))


def test_panel_shows_a_field_per_option_linked_to_the_traits(signal):
    panel = hs_aeunmix.gui(signal, n_components=3, max_epochs=2)
    assert list(panel.fields) == ["n_components", *panel.options.option_names]
    assert panel.fields["max_epochs"].value == 2
    assert isinstance(panel.fields["loss"], ipywidgets.Dropdown)
    panel.fields["max_epochs"].value = 5
    assert panel.options.max_epochs == 5
    panel.options.spatial = True
    assert panel.fields["spatial"].value is True
    assert "_repr_mimebundle_" in dir(panel)
    assert set(inspect.signature(hs_aeunmix.gui).parameters) == {"signal", "options"}


def test_unmix_button_runs_the_decomposition(signal):
    panel = hs_aeunmix.gui(
        signal, n_components=3, max_epochs=2, init="vca", random_state=0
    )
    panel.unmix_button.click()
    assert signal.learning_results.decomposition_algorithm == "ae"
    assert signal.learning_results.factors.shape[1] == 3
    assert panel.model.max_epochs == 2


def test_bad_option_is_reported_in_the_panel(signal, capsys):
    panel = hs_aeunmix.gui(signal, n_components=3)
    panel.options.hidden_layer_sizes = "(0,)"
    panel.unmix_button.click()  # never raises in a notebook
    assert panel.model is None
    assert "hidden_layer_sizes" in capsys.readouterr().out
    assert signal.learning_results.decomposition_algorithm is None


def test_scan_button_runs_scan_components(signal):
    panel = hs_aeunmix.gui(signal, max_epochs=2, init="vca", random_state=0)
    panel.scan_range.value = (2, 3)
    panel.scan_button.click()
    assert list(panel.scan.n_components) == [2, 3]
