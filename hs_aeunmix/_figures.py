"""Static figures of decomposition results, for scripts and the command line.

In a notebook, HyperSpy's own ``s.plot_decomposition_results()`` is the
interactive view; these functions write files without a display.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _axis_label(axis) -> str:
    units = (
        f" ({axis.units})" if axis.units and str(axis.units) != "<undefined>" else ""
    )
    return f"{axis.name}{units}"


def endmember_figure(factors, reference: np.ndarray | None = None) -> Figure:
    """Endmember spectra (a signal of n_components spectra) on one axes.

    ``reference`` (n_components, n_channels), matched to ``factors`` in
    order, is drawn dashed for comparison with a known answer.
    """
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    signal_axis = factors.axes_manager.signal_axes[0]
    energies = signal_axis.axis
    for index, spectrum in enumerate(factors.data):
        (line,) = ax.plot(energies, spectrum, label=f"endmember {index}")
        if reference is not None:
            ax.plot(energies, reference[index], ls="--", color=line.get_color(), lw=1)
    if reference is not None:
        ax.plot([], [], ls="--", color="0.4", label="ground truth")
    ax.set_xlabel(_axis_label(signal_axis))
    ax.set_ylabel("Intensity")
    ax.legend()
    return figure


def abundance_figure(loadings) -> Figure:
    """Abundance maps (a signal of n_components maps) side by side.

    A line scan (1-D navigation) is drawn as profiles instead of maps.
    """
    maps = loadings.data
    n_components = maps.shape[0]
    axes_info = loadings.axes_manager.signal_axes
    if len(axes_info) == 1:
        figure = Figure(figsize=(7, 3.5), layout="constrained")
        ax = figure.subplots()
        for index, profile in enumerate(maps):
            ax.plot(axes_info[0].axis, profile, label=f"endmember {index}")
        ax.set_xlabel(_axis_label(axes_info[0]))
        ax.set_ylabel("Abundance")
        ax.legend()
        return figure
    figure = Figure(figsize=(3.2 * n_components, 3.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, n_components))
    x_axis, y_axis = axes_info
    extent = (
        x_axis.axis[0],
        x_axis.axis[-1] + x_axis.scale,
        y_axis.axis[-1] + y_axis.scale,
        y_axis.axis[0],
    )
    for index, (ax, abundance_map) in enumerate(zip(axes, maps, strict=True)):
        image = ax.imshow(abundance_map, extent=extent, cmap="viridis")
        ax.set_title(f"endmember {index}")
        ax.set_xlabel(_axis_label(x_axis))
        figure.colorbar(image, ax=ax, shrink=0.8)
    axes[0].set_ylabel(_axis_label(y_axis))
    return figure
