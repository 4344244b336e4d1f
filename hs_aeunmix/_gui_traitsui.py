"""The traitsui dialog of :class:`~hs_aeunmix.UnmixingOptions`.

HyperSpy's ``ui_registry`` calls :func:`unmixing_options_traitsui` (named in
``hyperspy_extension.yaml``) for ``options.gui(toolkit="traitsui")``. This
module imports traitsui only inside that call: HyperSpy imports it whenever
the traitsui toolkit is enabled, which it is by default even where traitsui
is not installed, so a module-level import would break ``options.gui()`` in
every Jupyter session without traitsui.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hs_aeunmix._gui import UnmixingOptions

_INSTALL_HINT = (
    "The traitsui options dialog needs traitsui and a Qt binding "
    "(pip install 'hs-aeunmix[traitsui]' pyqt5)."
)


def _traitsui():
    """traitsui.api, or None when it is not installed."""
    try:
        import traitsui.api as tu
    except ImportError:
        return None
    return tu


def _view(tu, options: UnmixingOptions):
    """The dialog: the options with their documentation, and the two buttons."""

    class Handler(tu.Handler):
        """Runs the buttons' actions; an error is shown, not raised."""

        def _run(self, info, action, title: str) -> None:
            try:
                action()
            except Exception as error:  # a dialog stays open after a mistake
                tu.message(message=f"{type(error).__name__}: {error}", title=title)

        def unmix(self, info) -> None:
            self._run(info, info.object.unmix, "Unmix failed")

        def scan(self, info) -> None:
            self._run(info, info.object.scan_components, "Scan n failed")

    names = ["n_components", *options.option_names]
    items = [tu.Item(name, tooltip=options.trait(name).desc or "") for name in names]
    return tu.View(
        tu.Group(*items, label="Options (algorithm='ae')", show_border=True),
        tu.Item(
            "scan_range",
            label="Scan n from, to",
            tooltip=options.trait("scan_range").desc,
        ),
        buttons=[
            tu.Action(
                name="Unmix",
                action="unmix",
                tooltip="Run the decomposition and draw the results.",
            ),
            tu.Action(
                name="Scan n",
                action="scan",
                tooltip="Run scan_components over the range and plot it.",
            ),
            tu.OKButton,
        ],
        handler=Handler(),
        kind="live",
        title="Autoencoder unmixing (hs_aeunmix)",
        resizable=True,
        scrollable=True,
    )


def unmixing_options_traitsui(
    obj: UnmixingOptions, display: bool = True, **kwargs
) -> dict | None:
    """The traitsui GUI of the ``hs_aeunmix.UnmixingOptions`` toolkey.

    Parameters
    ----------
    obj : UnmixingOptions
        The options to show; the dialog edits them in place.
    display : bool, default True
        Open the dialog; if False, return its view instead.
    **kwargs
        Ignored (HyperSpy passes the ``gui`` call's extra arguments).

    Returns
    -------
    dict or None
        With ``display=False``: ``"view"``, the ``traitsui.api.View``; None
        where traitsui is not installed.

    Raises
    ------
    NotImplementedError
        With ``display=True``, traitsui is not installed, or (raised by
        traitsui) no GUI backend is available; HyperSpy's ``gui`` skips the
        toolkit then.
    """
    tu = _traitsui()
    if tu is None:
        if display:
            # NotImplementedError, not ImportError: what HyperSpy's get_gui
            # takes as "traitsui cannot show here" (traitsui raises it without
            # a GUI backend) and skips, so options.gui() still shows the
            # ipywidgets panel where traitsui is enabled in HyperSpy's
            # preferences (the default) but not installed.
            raise NotImplementedError(_INSTALL_HINT)
        # Raising here would make get_gui file the previous toolkit's widgets
        # (or an unbound name) under "traitsui" (HyperSpy 2.5's get_gui keeps
        # its loop variable when a toolkit raises NotImplementedError).
        return None
    view = _view(tu, obj)
    if display:
        obj.edit_traits(view=view)
        return None
    return {"view": view}
