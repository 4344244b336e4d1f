"""The options panel: traits built from the estimator, shown through HyperSpy's
GUI mechanism (toolkey ``hs_aeunmix.UnmixingOptions``) as ipywidgets or a
traitsui dialog."""

from __future__ import annotations

import importlib
import inspect
import sys
from types import SimpleNamespace

import pytest
import traits.api as t
from _helpers import make_mixture, to_signal
from hyperspy.extensions import ALL_EXTENSIONS
from hyperspy.ui_registry import UI_REGISTRY

import hs_aeunmix
from hs_aeunmix import AEUnmix, UnmixingOptions

ipywidgets = pytest.importorskip("ipywidgets")

TOOLKEY = "hs_aeunmix.UnmixingOptions"


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
    assert kinds["batch_norm"] is t.Bool
    assert kinds["spatial"] is t.Enum  # "auto", True or False
    assert options.trait("spatial").trait_type.values == ("auto", True, False)
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


def test_a_misspelt_option_is_refused():
    # HasTraits alone would keep it as an attribute and train with the default.
    with pytest.raises(TypeError, match=r"Unknown option.*max_epoch\b"):
        UnmixingOptions(max_epoch=3)


# --- HyperSpy's GUI mechanism ------------------------------------------------


def test_the_toolkey_is_declared_and_has_both_toolkits():
    assert TOOLKEY in ALL_EXTENSIONS["GUI"]["toolkeys"]  # from our yaml
    assert set(UI_REGISTRY[TOOLKEY]) == {"ipywidgets", "traitsui"}
    for spec in UI_REGISTRY[TOOLKEY].values():
        # HyperSpy imports the module when the toolkit is asked for: it must
        # import without that toolkit's package.
        module = importlib.import_module(spec["module"])
        assert callable(getattr(module, spec["function"]))
    parameters = inspect.signature(UnmixingOptions.gui).parameters
    assert list(parameters) == ["self", "display", "toolkit", "kwargs"]


def _blocked_traitsui(monkeypatch):
    """Make ``import traitsui`` fail, as where it is not installed."""
    for name in [module for module in sys.modules if module.startswith("traitsui")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "traitsui", None)
    monkeypatch.setitem(sys.modules, "traitsui.api", None)


def test_the_traitsui_module_imports_without_traitsui(monkeypatch):
    import hs_aeunmix._gui_traitsui as module

    _blocked_traitsui(monkeypatch)
    importlib.reload(module)
    with pytest.raises(
        NotImplementedError, match=r"pip install .hs-aeunmix\[traitsui\]."
    ):
        module.unmixing_options_traitsui(UnmixingOptions(), display=True)


def test_without_traitsui_its_toolkit_is_skipped(monkeypatch):
    _blocked_traitsui(monkeypatch)
    options = UnmixingOptions()
    # HyperSpy's get_gui skips a toolkit that raises NotImplementedError, so
    # the default toolkit=None (traitsui enabled in the preferences) works.
    assert options.gui(toolkit="traitsui") is None
    widgets = options.gui(display=False, toolkit=("ipywidgets", "traitsui"))
    assert widgets["traitsui"] is None
    assert isinstance(widgets["ipywidgets"]["widget"], ipywidgets.VBox)


def test_the_traitsui_dialog_lists_every_option(monkeypatch):
    import traitsui.api as tu  # the test extra installs it

    options = UnmixingOptions(max_epochs=2)
    view = options.gui(display=False, toolkit="traitsui")["traitsui"]["view"]

    def items(group):
        for element in group.content:
            yield from items(element) if hasattr(element, "content") else [element]

    names = [item.name for item in items(view.content)]
    assert names == ["n_components", *options.option_names, "scan_range"]
    assert [button.name for button in view.buttons] == ["Unmix", "Scan n", "OK"]
    # A button's error (here: no signal) goes to a message, not a traceback.
    shown = []
    monkeypatch.setattr(tu, "message", lambda **kwargs: shown.append(kwargs))
    view.handler.unmix(SimpleNamespace(object=options))
    assert "No signal" in shown[0]["message"]


# --- the ipywidgets panel ------------------------------------------------------


@pytest.fixture
def signal():
    return to_signal(make_mixture(shape=(12, 12)))


def test_gui_returns_the_ipywidgets_headless(signal):
    options = UnmixingOptions(signal=signal, max_epochs=2, scan_range=(2, 5))
    widgets = options.gui(display=False, toolkit="ipywidgets")
    assert set(widgets) == {"ipywidgets"}
    widgets = widgets["ipywidgets"]
    assert isinstance(widgets["widget"], ipywidgets.VBox)
    assert isinstance(widgets["loss"], ipywidgets.Dropdown)
    assert widgets["max_epochs"].value == 2
    assert widgets["scan_range"].value == (2, 5)
    assert widgets["panel"].options is options
    assert widgets["panel"].signal is signal


def test_gui_displays_the_panel(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    assert UnmixingOptions().gui(toolkit="ipywidgets") is None
    assert len(shown) == 1
    assert isinstance(shown[0], ipywidgets.VBox)


def _another(trait, value):
    """A valid value of ``trait`` other than ``value``."""
    kind = trait.trait_type
    if isinstance(kind, t.Enum):
        return next(choice for choice in kind.values if choice != value)
    if isinstance(kind, t.Bool):
        return not value
    if isinstance(kind, t.Int):
        return value + 1
    if isinstance(kind, t.Float):
        return value * 2 + 1
    return "None" if value != "None" else "0"


def test_every_widget_and_its_trait_follow_each_other():
    options = UnmixingOptions()
    widgets = options.gui(display=False, toolkit="ipywidgets")["ipywidgets"]
    for name in ["n_components", *options.option_names]:
        trait, field = options.trait(name), widgets[name]
        assert field.value == getattr(options, name), name
        field.value = _another(trait, field.value)
        assert getattr(options, name) == field.value, f"widget -> trait: {name}"
        setattr(options, name, _another(trait, getattr(options, name)))
        assert field.value == getattr(options, name), f"trait -> widget: {name}"
    widgets["scan_range"].value = (3, 4)
    assert options.scan_range == (3, 4)
    options.scan_range = (2, 6)
    assert widgets["scan_range"].value == (2, 6)


def test_panel_shows_a_field_per_option_linked_to_the_traits(signal):
    panel = hs_aeunmix.gui(signal, n_components=3, max_epochs=2)
    assert isinstance(panel, hs_aeunmix.UnmixingPanel)
    assert list(panel.fields) == ["n_components", *panel.options.option_names]
    assert panel.fields["max_epochs"].value == 2
    assert isinstance(panel.fields["loss"], ipywidgets.Dropdown)
    panel.fields["max_epochs"].value = 5
    assert panel.options.max_epochs == 5
    panel.options.spatial = True
    assert panel.fields["spatial"].value is True
    assert panel.fields["loss"].tooltip == panel.options.trait("loss").desc
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
    assert panel.options.model is panel.model


def test_bad_option_is_reported_in_the_panel(signal, capsys):
    panel = hs_aeunmix.gui(signal, n_components=3)
    panel.options.hidden_layer_sizes = "(0,)"
    panel.unmix_button.click()  # never raises in a notebook
    assert panel.model is None
    assert "hidden_layer_sizes" in capsys.readouterr().out
    assert signal.learning_results.decomposition_algorithm is None


def test_a_panel_without_a_signal_says_so(capsys):
    widgets = UnmixingOptions().gui(display=False, toolkit="ipywidgets")
    widgets["ipywidgets"]["unmix_button"].click()
    assert "No signal to unmix" in capsys.readouterr().out


def test_scan_button_runs_scan_components(signal):
    panel = hs_aeunmix.gui(signal, max_epochs=2, init="vca", random_state=0)
    panel.scan_range.value = (2, 3)
    panel.scan_button.click()
    assert list(panel.scan.n_components) == [2, 3]
