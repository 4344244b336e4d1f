"""An options panel for ``algorithm="ae"``, shown through HyperSpy's GUIs.

:class:`UnmixingOptions` holds the options of ``s.decomposition(
algorithm="ae", ...)`` as traits (HyperSpy's own vocabulary for interactive
tools), built from :class:`~hs_aeunmix.AEUnmix`'s declared parameter
constraints and documented from its docstring, so a new hyperparameter
appears here without editing this file. Like HyperSpy's own tools, it
declares a toolkey (``hs_aeunmix.UnmixingOptions``, listed in this package's
``hyperspy_extension.yaml`` with the widget of each toolkit), so
``options.gui()`` shows it in whichever of HyperSpy's toolkits is installed
and enabled: the ipywidgets panel defined here, or the traitsui dialog of
:mod:`hs_aeunmix._gui_traitsui`. :func:`gui` is the Jupyter shortcut: each
option with its documentation, an *Unmix* button that runs the
decomposition, and a *Scan n* button that runs
:func:`~hs_aeunmix.scan_components`; the training curve and the maps are
drawn below when each finishes (not while training runs: the panel waits
for the call like any cell).
"""

from __future__ import annotations

import ast
import html
import inspect
import logging
from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any

import traits.api as t
from hyperspy.ui_registry import add_gui_method
from sklearn.utils._param_validation import Interval, StrOptions

from hs_aeunmix._docstrings import ae_options
from hs_aeunmix._estimator import AEUnmix

if TYPE_CHECKING:
    from hyperspy.signal import BaseSignal

    from hs_aeunmix._model_selection import ComponentScan

_logger = logging.getLogger(__name__)

# The name under which HyperSpy's ui_registry finds this tool's widgets; it
# must also be listed under ``GUI: toolkeys`` in hyperspy_extension.yaml,
# which HyperSpy reads when it is imported (before this module).
TOOLKEY = "hs_aeunmix.UnmixingOptions"

# Options a panel does not offer: arrays are given in Python, and a panel
# always trains afresh and shows HyperSpy's progress bar preference.
_NOT_IN_PANEL = ("fixed_endmembers", "warm_start", "show_progressbar")

# Bounds of the numbers of endmembers the *Scan n* range offers: a scan
# trains a model per number, so more than a few tens is never meant.
_SCAN_LIMITS = (1, 20)


def _trait(constraints: list, default: Any, description: str) -> t.TraitType:
    """The trait for one option, from its scikit-learn constraints."""
    if len(constraints) == 1 and isinstance(constraints[0], StrOptions):
        choices = sorted(constraints[0].options, key=lambda choice: choice != default)
        return t.Enum(*choices, desc=description)
    if constraints == ["boolean"]:
        return t.Bool(default, desc=description)
    words = [kind for kind in constraints if isinstance(kind, StrOptions)]
    if len(constraints) == 2 and "boolean" in constraints and words:
        # A word or a boolean (spatial="auto"): one list of choices.
        choices = [*sorted(words[0].options), True, False]
        return t.Enum(default, choices, desc=description)
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


def _literal(name: str, text: str) -> Any:
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


def _display(widget) -> None:
    """Show ``widget`` in Jupyter (IPython comes with ipywidgets)."""
    try:
        from IPython.display import display
    except ImportError:
        raise ImportError(
            'hs_aeunmix.gui needs IPython: pip install "hs-aeunmix[gui]"'
        ) from None
    display(widget)


def _link():
    """link_traits' ``link``, or an ImportError that says how to install it."""
    try:
        from link_traits import link
    except ImportError:
        raise ImportError(
            'hs_aeunmix.gui needs link_traits: pip install "hs-aeunmix[gui]"'
        ) from None
    return link


@add_gui_method(toolkey=TOOLKEY)
class UnmixingOptions(t.HasTraits):
    """The options of ``decomposition(algorithm="ae")`` as traits.

    Every hyperparameter of :class:`~hs_aeunmix.AEUnmix` whose value a panel
    can hold (not ``fixed_endmembers``, ``warm_start``,
    ``show_progressbar``), with its documentation as the trait's ``desc``;
    options that take several kinds of value (``baseline``: ``"auto"``, a
    degree or None; ``hidden_layer_sizes``; ``random_state``) are Python
    literals written as text. ``options.gui()`` shows them through
    HyperSpy's GUI toolkits (ipywidgets in Jupyter, traitsui in a Qt
    window), with buttons that call :meth:`unmix` and
    :meth:`scan_components` on ``signal``.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D, optional
        The spectrum image that :meth:`unmix` and :meth:`scan_components`
        work on; the options alone need none.
    **values
        Starting values of the options (``n_components``, ``max_epochs``,
        ...) and of ``scan_range``.

    Attributes
    ----------
    signal : hyperspy.signals.Signal1D or None
        The spectrum image the buttons work on.
    model : AEUnmix or None
        The model of the last :meth:`unmix`.
    scan : ComponentScan or None
        The result of the last :meth:`scan_components`.
    scan_range : tuple of int
        The smallest and largest number of endmembers that
        :meth:`scan_components` tries (each from 1 to 20; default (2, 8)).

    Raises
    ------
    TypeError
        A value is given for a name that is neither an option nor
        ``scan_range``.

    Examples
    --------
    >>> options = hs_aeunmix.UnmixingOptions(n_components=4, max_epochs=20)
    >>> options.decomposition_kwargs()["max_epochs"]
    20
    >>> options.gui(toolkit="ipywidgets")  # doctest: +SKIP
    """

    scan_range = t.Tuple(
        t.Range(*_SCAN_LIMITS, 2),
        t.Range(*_SCAN_LIMITS, 8),
        desc="The smallest and largest number of endmembers that Scan n tries.",
    )

    def __init__(self, signal: BaseSignal | None = None, **values) -> None:
        option_traits = _option_traits()
        # HasTraits would keep a misspelt option as a plain attribute, and the
        # panel would silently train with the default instead.
        unknown = sorted(set(values) - set(option_traits) - {"scan_range"})
        if unknown:
            raise TypeError(
                f"Unknown option(s) {', '.join(unknown)}: the options are "
                f"{', '.join(option_traits)} and scan_range."
            )
        for name, trait in option_traits.items():
            self.add_trait(name, trait)
        texts = {
            name: repr(value)
            for name, value in values.items()
            if name in option_traits and isinstance(self.trait(name).trait_type, t.Str)
        }
        super().__init__(**{**values, **texts})
        # Plain attributes, not traits: a trait would compare a new signal
        # with the old one by ``!=``, which a signal answers element-wise.
        self.signal = signal
        self.model = None
        self.scan = None

    @property
    def option_names(self) -> list[str]:
        """The options, in the order of the estimator's parameters."""
        return [name for name in _option_traits() if name != "n_components"]

    def decomposition_kwargs(self) -> dict:
        """Keyword arguments of ``s.decomposition(algorithm="ae", ...)``.

        Returns
        -------
        dict
            ``output_dimension`` (from ``n_components``) and every option.

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

    def _signal(self):
        if self.signal is None:
            raise ValueError(
                "No signal to unmix: give one, as in "
                "UnmixingOptions(signal=s) or hs_aeunmix.gui(s)."
            )
        return self.signal

    def unmix(self) -> AEUnmix:
        """Run the decomposition with the options; draw the results.

        Prints HyperSpy's decomposition summary, then draws the training
        curve, the endmembers and the maps.

        Returns
        -------
        AEUnmix
            The trained model, also kept as ``model``.

        Raises
        ------
        ValueError
            No ``signal``, or an option HyperSpy or the estimator refuses.
        """
        import matplotlib.pyplot as plt

        signal = self._signal()
        self.model = signal.decomposition(
            algorithm="ae",
            return_info=True,
            print_info=True,
            **self.decomposition_kwargs(),
        )
        self.model.history_.plot()
        n_components = len(self.model.components_)
        signal.plot_decomposition_factors(comp_ids=n_components)
        signal.plot_decomposition_loadings(comp_ids=n_components)
        plt.show()
        return self.model

    def scan_components(self) -> ComponentScan:
        """Run :func:`~hs_aeunmix.scan_components` over ``scan_range``; plot it.

        Returns
        -------
        ComponentScan
            The scan, also kept as ``scan``.

        Raises
        ------
        ValueError
            No ``signal``, or an option the estimator refuses.
        """
        import matplotlib.pyplot as plt

        from hs_aeunmix._model_selection import scan_components

        signal = self._signal()
        low, high = self.scan_range
        options = self.decomposition_kwargs()
        # The scan chooses the number and each model's start itself.
        options.pop("output_dimension")
        options.pop("init")
        self.scan = scan_components(signal, range(low, high + 1), **options)
        print(self.scan)
        self.scan.plot()
        plt.show()
        return self.scan


class UnmixingPanel:
    """The ipywidgets panel of :class:`UnmixingOptions`: options, buttons, results.

    Each option's widget is linked both ways to its trait with
    ``link_traits.link``, as in HyperSpy's own ipywidgets GUIs: editing a
    widget sets the option, setting the option updates the widget.

    Parameters
    ----------
    options : UnmixingOptions
        The options the widgets edit; their ``signal`` is what the buttons
        unmix.

    Attributes
    ----------
    options : UnmixingOptions
        The options the widgets edit.
    fields : dict of str to ipywidgets.Widget
        The widget of each option, ``n_components`` first.
    unmix_button, scan_button : ipywidgets.Button
        Run :meth:`unmix` and :meth:`scan_components`.
    scan_range : ipywidgets.IntRangeSlider
        The numbers of endmembers *Scan n* tries (``options.scan_range``).
    output : ipywidgets.Output
        Where the summaries, errors and figures go.
    widget : ipywidgets.VBox
        The panel; the object displays as it in Jupyter.
    links : list of link_traits.link
        The trait-widget links (``unlink()`` one to detach its widget).
    """

    def __init__(self, options: UnmixingOptions) -> None:
        widgets = _ipywidgets()
        link = _link()

        self.options = options
        self.fields = {
            name: self._field(name) for name in ["n_components", *options.option_names]
        }
        self.unmix_button = widgets.Button(
            description="Unmix", button_style="primary", icon="play"
        )
        self.scan_button = widgets.Button(description="Scan n", icon="search")
        self.scan_range = widgets.IntRangeSlider(
            min=_SCAN_LIMITS[0], max=_SCAN_LIMITS[1], description="n from, to"
        )
        self.output = widgets.Output()
        self.links = [
            link((options, name), (field, "value"))
            for name, field in self.fields.items()
        ]
        self.links.append(link((options, "scan_range"), (self.scan_range, "value")))
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

    @property
    def signal(self) -> BaseSignal | None:
        """The spectrum image the buttons work on (``options.signal``)."""
        return self.options.signal

    @property
    def model(self) -> AEUnmix | None:
        """The model of the last *Unmix* (``options.model``)."""
        return self.options.model

    @property
    def scan(self) -> ComponentScan | None:
        """The result of the last *Scan n* (``options.scan``)."""
        return self.options.scan

    def _help(self, name: str) -> str:
        text = self.options.trait(name).desc or ""
        first = text.split(". ")[0].rstrip(".")
        return html.escape(first + "." if first else "")

    def _field(self, name: str):
        """The widget of one option, of the kind its trait holds (not linked)."""
        widgets = _ipywidgets()

        trait = self.options.trait(name)
        kind = trait.trait_type
        if isinstance(kind, t.Enum):
            field = widgets.Dropdown(options=list(kind.values))
        elif isinstance(kind, t.Bool):
            field = widgets.Checkbox(indent=False)
        elif isinstance(kind, t.Int):
            field = widgets.IntText()
        elif isinstance(kind, t.Float):
            field = widgets.FloatText()
        else:
            field = widgets.Text()
        field.description = name
        field.tooltip = trait.desc or ""
        field.style = {"description_width": "16em"}
        field.layout = widgets.Layout(width="32em")
        return field

    def _run(self, action: Callable[[], object]) -> None:
        self.output.clear_output()
        with self.output:
            try:
                action()
            except Exception as error:  # shown in the panel, not raised
                print(f"{type(error).__name__}: {error}")

    def unmix(self) -> None:
        """Run :meth:`UnmixingOptions.unmix` in the panel's output."""
        self._run(self.options.unmix)

    def scan_components(self) -> None:
        """Run :meth:`UnmixingOptions.scan_components` in the panel's output."""
        self._run(self.options.scan_components)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def unmixing_options_ipywidgets(
    obj: UnmixingOptions, display: bool = True, **kwargs
) -> dict | None:
    """The ipywidgets GUI of the ``hs_aeunmix.UnmixingOptions`` toolkey.

    HyperSpy's ``ui_registry`` calls this (named in
    ``hyperspy_extension.yaml``) for ``options.gui(toolkit="ipywidgets")``.
    It keeps the contract of hyperspy_gui_ipywidgets' widget functions
    (their ``add_display_arg``) without importing that package, which this
    panel does not otherwise need.

    Parameters
    ----------
    obj : UnmixingOptions
        The options to show.
    display : bool, default True
        Display the panel; if False, return its widgets instead.
    **kwargs
        Ignored (HyperSpy passes the ``gui`` call's extra arguments).

    Returns
    -------
    dict or None
        With ``display=False``: ``"widget"`` (the whole panel),
        ``"panel"`` (the :class:`UnmixingPanel`), ``"unmix_button"``,
        ``"scan_button"``, ``"scan_range"``, ``"output"`` and each option's
        widget under the option's name.
    """
    panel = UnmixingPanel(obj)
    if display:
        _display(panel.widget)
        return None
    return {
        "widget": panel.widget,
        "panel": panel,
        "unmix_button": panel.unmix_button,
        "scan_button": panel.scan_button,
        "scan_range": panel.scan_range,
        "output": panel.output,
        **panel.fields,
    }


def gui(signal, **options) -> UnmixingPanel:
    """The options of ``algorithm="ae"`` for ``signal``, as a Jupyter panel.

    Each option comes with its documentation; *Unmix* runs
    ``signal.decomposition(algorithm="ae", ...)`` with them and draws the
    training curve and the decomposition results, *Scan n* runs
    :func:`~hs_aeunmix.scan_components` over a range of numbers of
    endmembers and plots it. The panel is HyperSpy's ipywidgets GUI of
    :class:`UnmixingOptions` (``UnmixingOptions(signal=s).gui()`` shows it
    too, or the traitsui dialog with ``toolkit="traitsui"``). Needs
    ipywidgets (``pip install "hs-aeunmix[gui]"``).

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        The spectrum image to unmix.
    **options
        Starting values of the options (``n_components``, ``max_epochs``,
        ...) and of ``scan_range``.

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
    widgets = UnmixingOptions(signal=signal, **options).gui(
        display=False, toolkit="ipywidgets"
    )
    return widgets["ipywidgets"]["panel"]
