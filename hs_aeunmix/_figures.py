"""Static figures of decomposition results, drawn by HyperSpy's own plotting.

:func:`endmember_figure` is ``hs.plot.plot_spectra`` of the decomposition
factors and :func:`abundance_figure` is ``hs.plot.plot_images`` of the
loadings (``hs.plot.plot_spectra`` of the profiles of a line scan), each
drawn on a :class:`matplotlib.figure.Figure` that belongs to no pyplot
window: saving one needs no display, and a command that writes figures for
many scans leaves none open. In a notebook, ``s.plot_decomposition_results()``
is the interactive view, and ``s.export_decomposition_results()`` writes
the factors and loadings as files.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

SLICES = ("first", "all")
# Resolution of the figures written beside results (command line, series).
FIGURE_DPI = 120


def endmember_figure(
    factors, reference: np.ndarray | None = None, *, style: str = "overlap"
) -> Figure:
    """Endmember spectra, as ``hs.plot.plot_spectra`` draws them.

    Parameters
    ----------
    factors : hyperspy.signals.Signal1D
        The endmembers, one per navigation index:
        ``s.get_decomposition_factors()``. Lazy factors are computed.
    reference : numpy.ndarray of shape (n_components, n_channels), optional
        A known answer matched to ``factors`` in order (e.g. the ground
        truth of synthetic data), drawn dashed in each endmember's colour,
        each row scaled to its endmember by least squares: unmixing
        determines an endmember's shape, not its scale (that is shared with
        the loadings), so drawn on its own scale a spectrum 1° from the
        truth would look far off. Rows of NaN are not drawn. Only with
        ``style="overlap"``.
    style : {"overlap", "cascade"}, default="overlap"
        HyperSpy's styles: on one intensity axis, or stacked one above the
        other (each spectrum scaled to its own range).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        ``reference`` does not match ``factors``, or is given with
        ``style="cascade"`` (which rescales each spectrum).
    """
    import hyperspy.api as hs

    if style not in ("overlap", "cascade"):
        raise ValueError(f"style={style!r} must be 'overlap' or 'cascade'.")
    factors = _in_memory(factors)
    spectra = [
        factors.inav[index] for index in range(factors.axes_manager.navigation_size)
    ]
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        expected = (len(spectra), factors.axes_manager.signal_size)
        if reference.shape != expected:
            raise ValueError(
                f"reference has shape {reference.shape}; the endmembers need "
                f"{expected} (n_components, n_channels)."
            )
        if style != "overlap":
            raise ValueError(
                "A reference can only be drawn with style='overlap': 'cascade' "
                "rescales and shifts each spectrum."
            )
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = hs.plot.plot_spectra(
        spectra,
        style=style,
        fig=figure,
        legend=None,
        legend_picking=False,
        auto_update=False,
    )
    lines = ax.get_lines()[: len(spectra)]
    handles = list(lines)
    labels = [_component_label(index) for index in range(len(spectra))]
    if reference is not None:
        energies = factors.axes_manager.signal_axes[0].axis
        for line, spectrum, learned in zip(lines, reference, factors.data, strict=True):
            if np.isfinite(spectrum).any():
                ax.plot(
                    energies,
                    spectrum * _scale_onto(spectrum, learned),
                    ls="--",
                    lw=1,
                    color=line.get_color(),
                )
        handles.append(Line2D([], [], ls="--", lw=1, color="0.4"))
        labels.append("ground truth")
        ax.autoscale(tight=True)
    ax.legend(handles, labels, loc="best")
    return figure


def _scale_onto(spectrum: np.ndarray, target: np.ndarray) -> float:
    """The factor that brings ``spectrum`` closest to ``target`` (least squares)."""
    finite = np.isfinite(spectrum) & np.isfinite(target)
    norm = float(spectrum[finite] @ spectrum[finite])
    return float(spectrum[finite] @ target[finite]) / norm if norm > 0 else 1.0


def abundance_figure(loadings, *, slices: str = "first") -> Figure:
    """Abundance maps, as ``hs.plot.plot_images`` draws them.

    Parameters
    ----------
    loadings : hyperspy.signals.BaseSignal
        The abundances, one per navigation index, over the scan's axes:
        ``s.get_decomposition_loadings()``.
    slices : {"first", "all"}, default="first"
        For a scan of more than two navigation dimensions (a map series:
        time, tilt, focal series), which 2-D maps to draw: ``"first"``,
        those of the first index of every further axis (the figure's title
        says which); ``"all"``, every slice, one row per endmember. The
        results file holds every slice either way.

    Returns
    -------
    matplotlib.figure.Figure
        For a line scan, the abundance profiles on one axes
        (``plot_spectra``); for a map or a map series, one image per
        endmember (and slice) on a shared colour scale, so that abundances
        compare across maps (``plot_images``).

    Raises
    ------
    ValueError
        ``slices`` is not one of :data:`SLICES`, or ``loadings`` has no
        scan axes (a single spectrum).
    """
    if slices not in SLICES:
        raise ValueError(f"slices={slices!r} must be one of {SLICES}.")
    loadings = _in_memory(loadings)
    n_components = loadings.axes_manager.navigation_size
    scan_dimension = loadings.axes_manager.signal_dimension
    if scan_dimension == 0:
        raise ValueError("A single spectrum has no abundance map to draw.")
    if scan_dimension == 1:
        return _profile_figure(loadings.transpose(signal_axes=1), n_components)
    # Signal axes: the map's x and y; navigation axes: any further scan
    # axes, then the component index (HyperSpy lists axes x first).
    maps = loadings.transpose(signal_axes=2)
    further = maps.axes_manager.navigation_axes[:-1]
    if slices == "all":
        positions = list(itertools.product(*(range(axis.size) for axis in further)))
    else:
        positions = [(0,) * len(further)]
    images, labels = [], []
    for component in range(n_components):
        for position in positions:
            images.append(maps.inav[(*position, component)])
            labels.append(
                ", ".join(
                    [
                        _component_label(component),
                        *(
                            _axis_value(axis, index)
                            for axis, index in zip(further, position, strict=True)
                            if slices == "all"
                        ),
                    ]
                )
            )
    suptitle = None
    if further and slices == "first":
        suptitle = "First slice: " + ", ".join(
            f"{_axis_value(axis, 0)} (of {axis.size})" for axis in further
        )
    per_row = len(positions) if slices == "all" and len(positions) > 1 else n_components
    return _image_figure(images, labels, per_row, suptitle)


def _profile_figure(profiles, n_components: int) -> Figure:
    """Abundance profiles of a line scan on one axes."""
    import hyperspy.api as hs

    figure = Figure(figsize=(7, 3.5), layout="constrained")
    ax = hs.plot.plot_spectra(
        [profiles.inav[index] for index in range(n_components)],
        style="overlap",
        fig=figure,
        legend=None,
        legend_picking=False,
        auto_update=False,
    )
    # HyperSpy lists its legend in reverse; in plotting order here.
    ax.legend(
        ax.get_lines()[:n_components],
        [_component_label(index) for index in range(n_components)],
        loc="best",
    )
    ax.set_ylabel("Abundance")
    return figure


def _image_figure(
    images: Sequence, labels: Sequence[str], per_row: int, suptitle: str | None
) -> Figure:
    """``hs.plot.plot_images`` of 2-D maps with one shared colour bar."""
    import hyperspy.api as hs

    rows = -(-len(images) // per_row)
    title_space = 0.5 if suptitle else 0.0
    height = 3.0 * rows + 0.3 + title_space
    figure = Figure(figsize=(1.2 + 3.0 * per_row, height))
    x_axis, y_axis = images[0].axes_manager.signal_axes
    maps = hs.plot.plot_images(
        list(images),
        per_row=per_row,
        label=list(labels),
        suptitle=suptitle,
        suptitle_fontsize=11,
        # One scale for every map (HyperSpy adds it with fig.colorbar; the
        # per-map colour bars use pyplot, which a figure without a window
        # must avoid). HyperSpy puts it at the right edge, beyond 0.85.
        colorbar="single",
        axes_decor="all" if _calibrated(x_axis) and _calibrated(y_axis) else "ticks",
        fig=figure,
    )
    for ax in figure.axes:
        if ax not in maps:  # the colour bar
            ax.set_ylabel("Abundance")
    figure.subplots_adjust(
        left=0.9 / figure.get_figwidth(),
        right=0.84,
        bottom=0.6 / height,
        top=1 - (0.4 + title_space) / height,
        wspace=0.45,
        hspace=0.45,
    )
    return figure


def _in_memory(signal):
    """``signal``, computed if lazy (factors and loadings are small)."""
    from hs_aeunmix._hyperspy_internals import is_lazy

    if is_lazy(signal):
        signal = signal.deepcopy()
        signal.compute(show_progressbar=False)
    return signal


def _component_label(index: int) -> str:
    return f"endmember {index}"


def _calibrated(axis) -> bool:
    """Whether an axis has a name and units (HyperSpy labels it then)."""
    return all(
        isinstance(value, str) and value and value != "<undefined>"
        for value in (axis.name, axis.units)
    )


def _axis_value(axis, index: int) -> str:
    """``"name = value units"`` of one index of a navigation axis."""
    name = axis.name if isinstance(axis.name, str) and axis.name else "axis"
    units = (
        f" {axis.units}"
        if isinstance(axis.units, str) and axis.units not in ("", "<undefined>")
        else ""
    )
    return f"{name} = {axis.axis[index]:.4g}{units}"
