"""An options panel for ``algorithm="ae"``: traits, and a Jupyter widget.

:class:`UnmixingOptions` holds the options of ``s.decomposition(
algorithm="ae", ...)`` as traits (HyperSpy's own vocabulary for interactive
tools), built from :class:`~hs_aeunmix.AEUnmix`'s declared parameter
constraints and documented from its docstring, so a new hyperparameter
appears here without editing this file. :func:`gui` shows them as
ipywidgets with each option's documentation, an *Unmix* button that runs the
decomposition, and a *Scan n* button that runs
:func:`~hs_aeunmix.scan_components`; the training curve and the maps are
drawn below when each finishes (not while training runs: the panel
waits for the call like any cell). With traitsui installed,
``UnmixingOptions().edit_traits()`` gives the same options in a Qt dialog.
"""

from __future__ import annotations

import ast
import inspect
import logging
from numbers import Integral

import traits.api as t
from sklearn.utils._param_validation import Interval, StrOptions

from hs_aeunmix._docstrings import ae_options
from hs_aeunmix._estimator import AEUnmix

_logger = logging.getLogger(__name__)

# Options a panel does not offer: arrays are given in Python, and a panel
# always trains afresh and shows HyperSpy's progress bar preference.
_NOT_IN_PANEL = ("fixed_endmembers", "warm_start", "show_progressbar")


def _trait(constraints: list, default, description: str):
    """The trait for one option, from its scikit-learn constraints."""
    if len(constraints) == 1 and isinstance(constraints[0], StrOptions):
        choices = sorted(constraints[0].options, key=lambda choice: choice != default)
        return t.Enum(*choices, desc=description)
    if constraints == ["boolean"]:
        return t.Bool(default, desc=description)
    if len(constraints) == 1 and isinstance(constraints[0], Interval):
        if constraints[0].type is Integral:
            return t.Int(default, desc=description)
        return t.Float(default, desc=description)
    # Several kinds ("auto" or a number, a tuple, None, a seed): a Python
    # literal, parsed when the panel runs.
    return t.Str(repr(default), desc=description)


def _option_traits() -> dict[str, t.TraitType]:
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(AEUnmix.__init__).parameters.items()
    }
    described = {
        name: " ".join(option.description)
        for option in ae_options()
        for name in option.names
    }
    traits = {"n_components": t.Int(3, desc="Number of endmembers (output_dimension).")}
    for name, constraints in AEUnmix._parameter_constraints.items():
        if name == "n_components" or name in _NOT_IN_PANEL:
            continue
        traits[name] = _trait(constraints, defaults[name], described.get(name, ""))
    return traits


def _literal(name: str, text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.isidentifier():
            return text  # a bare word, such as auto or cpu
        raise ValueError(
            f"{name}={text!r} is not a Python value: write a number, a quoted "
            "string, a tuple such as (128, 64), True, False or None."
        ) from None


def _ipywidgets():
    """ipywidgets, or an ImportError that says how to install it."""
    try:
        import ipywidgets
    except ImportError:
        raise ImportError(
            'hs_aeunmix.gui needs ipywidgets: pip install "hs-aeunmix[gui]"'
        ) from None
    return ipywidgets


class UnmixingOptions(t.HasTraits):
    """The options of ``decomposition(algorithm="ae")`` as traits.

    Every hyperparameter of :class:`~hs_aeunmix.AEUnmix` whose value a panel
    can hold (not ``fixed_endmembers``, ``warm_start``,
    ``show_progressbar``), with its documentation as the trait's ``desc``;
    options that take several kinds of value (``baseline``: ``"auto"``, a
    degree or None; ``hidden_layer_sizes``; ``random_state``) are Python
    literals written as text.

    Examples
    --------
    >>> options = hs_aeunmix.UnmixingOptions(n_components=4, max_epochs=20)
    >>> options.decomposition_kwargs()["max_epochs"]
    20
    """

    def __init__(self, **values) -> None:
        for name, trait in _option_traits().items():
            self.add_trait(name, trait)
        texts = {
            name: repr(value)
            for name, value in values.items()
            if isinstance(self.trait(name).trait_type, t.Str)
        }
        super().__init__(**{**values, **texts})

    @property
    def option_names(self) -> list[str]:
        """The options, in the order of the estimator's parameters."""
        return [name for name in _option_traits() if name != "n_components"]

    def decomposition_kwargs(self) -> dict:
        """Keyword arguments of ``s.decomposition(algorithm="ae", ...)``.

        Raises
        ------
        ValueError
            A text option is not a Python literal.
        """
        kwargs = {"output_dimension": self.n_components}
        for name in self.option_names:
            value = getattr(self, name)
            if isinstance(self.trait(name).trait_type, t.Str):
                value = _literal(name, value)
            kwargs[name] = value
        return kwargs


class UnmixingPanel:
    """The Jupyter panel of :func:`gui`: options, buttons, results.

    Attributes
    ----------
    options : UnmixingOptions
        The options the widgets edit (linked both ways).
    widget : ipywidgets.VBox
        The panel; the object displays as it in Jupyter.
    model : AEUnmix or None
        The model of the last *Unmix*.
    scan : ComponentScan or None
        The result of the last *Scan n*.
    """

    def __init__(self, signal, options: UnmixingOptions) -> None:
        widgets = _ipywidgets()

        self.signal = signal
        self.options = options
        self.model = None
        self.scan = None
        self.fields = {
            name: self._field(name) for name in ["n_components", *options.option_names]
        }
        self.unmix_button = widgets.Button(
            description="Unmix", button_style="primary", icon="play"
        )
        self.scan_button = widgets.Button(description="Scan n", icon="search")
        self.scan_range = widgets.IntRangeSlider(
            value=(2, 8), min=1, max=20, description="n from, to"
        )
        self.output = widgets.Output()
        self.unmix_button.on_click(lambda _: self.unmix())
        self.scan_button.on_click(lambda _: self.scan_components())
        rows = [
            widgets.HBox([field, widgets.HTML(f"<small>{self._help(name)}</small>")])
            for name, field in self.fields.items()
        ]
        self.widget = widgets.VBox(
            [
                widgets.Accordion(
                    children=[widgets.VBox(rows)], titles=("Options (algorithm='ae')",)
                ),
                widgets.HBox([self.unmix_button, self.scan_button, self.scan_range]),
                self.output,
            ]
        )

    def _help(self, name: str) -> str:
        import html

        text = self.options.trait(name).desc or ""
        first = text.split(". ")[0].rstrip(".")
        return html.escape(first + "." if first else "")

    def _field(self, name: str):
        widgets = _ipywidgets()

        trait = self.options.trait(name).trait_type
        value = getattr(self.options, name)
        style = {"description_width": "16em"}
        layout = widgets.Layout(width="32em")
        if isinstance(trait, t.Enum):
            field = widgets.Dropdown(options=list(trait.values), value=value)
        elif isinstance(trait, t.Bool):
            field = widgets.Checkbox(value=value, indent=False)
        elif isinstance(trait, t.Int):
            field = widgets.IntText(value=value)
        elif isinstance(trait, t.Float):
            field = widgets.FloatText(value=value)
        else:
            field = widgets.Text(value=value)
        field.description, field.style, field.layout = name, style, layout
        # The widget (traitlets) and the trait (traits) follow each other.
        field.observe(
            lambda change: setattr(self.options, name, change["new"]), names="value"
        )
        self.options.observe(lambda event: setattr(field, "value", event.new), name)
        return field

    def unmix(self) -> None:
        """Run the decomposition with the options; draw the results."""
        import matplotlib.pyplot as plt

        self.output.clear_output()
        with self.output:
            try:
                self.model = self.signal.decomposition(
                    algorithm="ae",
                    return_info=True,
                    print_info=True,
                    **self.options.decomposition_kwargs(),
                )
            except Exception as error:  # shown in the panel, not raised
                print(f"{type(error).__name__}: {error}")
                return
            self.model.history_.plot()
            n_components = len(self.model.components_)
            self.signal.plot_decomposition_factors(comp_ids=n_components)
            self.signal.plot_decomposition_loadings(comp_ids=n_components)
            plt.show()

    def scan_components(self) -> None:
        """Run :func:`~hs_aeunmix.scan_components` over the range; plot it."""
        import matplotlib.pyplot as plt

        from hs_aeunmix._model_selection import scan_components

        self.output.clear_output()
        with self.output:
            low, high = self.scan_range.value
            options = self.options.decomposition_kwargs()
            # The scan chooses the number and each model's start itself.
            options.pop("output_dimension")
            options.pop("init")
            try:
                self.scan = scan_components(
                    self.signal, range(low, high + 1), **options
                )
            except Exception as error:  # shown in the panel, not raised
                print(f"{type(error).__name__}: {error}")
                return
            print(self.scan)
            self.scan.plot()
            plt.show()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def gui(signal, **options) -> UnmixingPanel:
    """The options of ``algorithm="ae"`` for ``signal``, as a Jupyter panel.

    Each option comes with its documentation; *Unmix* runs
    ``signal.decomposition(algorithm="ae", ...)`` with them and draws the
    training curve and the decomposition results, *Scan n* runs
    :func:`~hs_aeunmix.scan_components` over a range of numbers of
    endmembers and plots it. Needs ipywidgets (``pip install
    "hs-aeunmix[gui]"``).

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        The spectrum image to unmix.
    **options
        Starting values of the options (``n_components``, ``max_epochs``, ...).

    Returns
    -------
    UnmixingPanel
        Displays as the panel when it ends a Jupyter cell; its ``options``
        give the values chosen (``options.decomposition_kwargs()`` for a
        script) and ``model`` the last model trained.

    Examples
    --------
    >>> hs_aeunmix.gui(s, n_components=4)  # doctest: +SKIP
    """
    _ipywidgets()
    return UnmixingPanel(signal, UnmixingOptions(**options))
