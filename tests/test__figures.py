"""Tests of the static figures: HyperSpy's plots for 1, 2, 3 and 4 scan axes."""

from __future__ import annotations

import logging

import hyperspy.api as hs
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from hs_aeunmix._figures import abundance_figure, endmember_figure

N_COMPONENTS = 2
N_CHANNELS = 30


def _decomposed(navigation_shape, *, calibrated=True, lazy=False):
    """A tiny signal (navigation in array order) with SVD results of 2 components."""
    rng = np.random.default_rng(0)
    channels = np.arange(N_CHANNELS)
    endmembers = np.stack(
        [np.exp(-0.5 * ((channels - centre) / 3.0) ** 2) + 0.1 for centre in (8, 20)]
    )
    abundances = rng.dirichlet(np.ones(N_COMPONENTS), size=navigation_shape)
    signal = hs.signals.Signal1D(abundances @ endmembers)
    if calibrated:
        energy = signal.axes_manager.signal_axes[0]
        energy.name, energy.units, energy.offset, energy.scale = "Energy", "eV", 100, 2
        for axis, name in zip(
            signal.axes_manager.navigation_axes, "xyzt", strict=False
        ):
            axis.name, axis.units, axis.scale = name, "nm", 0.5
    signal.decomposition(
        algorithm="SVD", output_dimension=N_COMPONENTS, print_info=False
    )
    if lazy:
        signal = signal.as_lazy()
    return signal


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The figures belong to no pyplot window: none is opened, none leaks."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def _image_axes(figure: Figure):
    return [ax for ax in figure.axes if ax.images]


def _saved(figure: Figure, tmp_path) -> int:
    path = tmp_path / "figure.png"
    figure.savefig(path, dpi=50)
    return path.stat().st_size


@pytest.mark.parametrize("navigation_shape", [(7,), (5, 6), (3, 5, 6), (2, 2, 3, 4)])
def test_endmembers_of_any_scan(navigation_shape, tmp_path):
    signal = _decomposed(navigation_shape)
    figure = endmember_figure(signal.get_decomposition_factors())
    (ax,) = figure.axes
    lines = ax.get_lines()
    assert len(lines) == N_COMPONENTS
    np.testing.assert_array_equal(lines[0].get_xdata(), 100 + 2 * np.arange(30))
    np.testing.assert_array_equal(
        lines[1].get_ydata(), signal.learning_results.factors[:, 1]
    )
    assert "Energy" in ax.get_xlabel()
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "endmember 0",
        "endmember 1",
    ]
    assert _saved(figure, tmp_path) > 0


def test_endmembers_with_a_dashed_reference():
    signal = _decomposed((5, 6))
    factors = signal.get_decomposition_factors()
    reference = np.vstack([np.full(N_CHANNELS, np.nan), np.linspace(0, 1, N_CHANNELS)])
    figure = endmember_figure(factors, reference)
    (ax,) = figure.axes
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(solid) == N_COMPONENTS
    # The NaN row (an endmember without a known answer) is not drawn.
    assert len(dashed) == 1
    assert dashed[0].get_color() == solid[1].get_color()
    # Drawn at the scale that brings it closest to its endmember.
    learned = signal.learning_results.factors[:, 1]
    scale = reference[1] @ learned / (reference[1] @ reference[1])
    np.testing.assert_allclose(dashed[0].get_ydata(), scale * reference[1])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[-1] == "ground truth"


def test_a_reference_is_drawn_on_its_endmembers_scale():
    # The truth at 1000 times the endmember's scale (the scale is shared
    # with the loadings): drawn over the learned spectrum, not above it.
    signal = _decomposed((5, 6))
    factors = signal.get_decomposition_factors()
    learned = signal.learning_results.factors.T
    figure = endmember_figure(factors, 1000 * learned)
    dashed = [
        line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"
    ]
    for line, spectrum in zip(dashed, learned, strict=True):
        np.testing.assert_allclose(line.get_ydata(), spectrum, rtol=1e-10)


def test_cascade_style():
    figure = endmember_figure(
        _decomposed((5, 6)).get_decomposition_factors(), style="cascade"
    )
    assert len(figure.axes[0].get_lines()) == N_COMPONENTS


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"style": "mosaic"}, "style="),
        ({"style": "cascade", "reference": np.zeros((2, 30))}, "overlap"),
        ({"reference": np.zeros((3, 30))}, "shape"),
    ],
)
def test_endmember_figure_refuses(options, match):
    factors = _decomposed((5, 6)).get_decomposition_factors()
    with pytest.raises(ValueError, match=match):
        endmember_figure(factors, **options)


def test_line_scan_abundances_are_profiles(tmp_path):
    signal = _decomposed((7,))
    figure = abundance_figure(signal.get_decomposition_loadings())
    (ax,) = figure.axes
    assert len(ax.get_lines()) == N_COMPONENTS
    np.testing.assert_array_equal(
        ax.get_lines()[1].get_ydata(), signal.learning_results.loadings[:, 1]
    )
    assert ax.get_ylabel() == "Abundance"
    assert "x" in ax.get_xlabel()
    assert _saved(figure, tmp_path) > 0


def test_map_abundances(tmp_path):
    signal = _decomposed((5, 6))  # 5 rows (y), 6 columns (x)
    figure = abundance_figure(signal.get_decomposition_loadings())
    maps = _image_axes(figure)
    assert len(maps) == N_COMPONENTS
    assert [ax.get_title() for ax in maps] == ["endmember 0", "endmember 1"]
    image = maps[1].images[0].get_array()
    np.testing.assert_array_equal(
        image, signal.learning_results.loadings[:, 1].reshape(5, 6)
    )
    # One colour scale for every map.
    assert len({ax.images[0].get_clim() for ax in maps}) == 1
    assert figure._suptitle is None
    assert _saved(figure, tmp_path) > 0


def test_map_series_draws_the_first_slice_by_default(tmp_path):
    signal = _decomposed((3, 5, 6))  # 3 maps (z) of 5 x 6 pixels
    figure = abundance_figure(signal.get_decomposition_loadings())
    maps = _image_axes(figure)
    assert len(maps) == N_COMPONENTS
    loadings = signal.learning_results.loadings.reshape(3, 5, 6, N_COMPONENTS)
    np.testing.assert_array_equal(maps[1].images[0].get_array(), loadings[0, :, :, 1])
    assert figure._suptitle.get_text() == "First slice: z = 0 nm (of 3)"
    assert _saved(figure, tmp_path) > 0


def test_map_series_all_slices(tmp_path):
    signal = _decomposed((3, 5, 6))
    figure = abundance_figure(signal.get_decomposition_loadings(), slices="all")
    maps = _image_axes(figure)
    assert len(maps) == 3 * N_COMPONENTS
    loadings = signal.learning_results.loadings.reshape(3, 5, 6, N_COMPONENTS)
    # One row per endmember, one column per slice.
    assert maps[4].get_title() == "endmember 1, z = 0.5 nm"
    np.testing.assert_array_equal(maps[4].images[0].get_array(), loadings[1, :, :, 1])
    assert _saved(figure, tmp_path) > 0


def test_four_scan_axes():
    signal = _decomposed((2, 2, 3, 4))
    first = abundance_figure(signal.get_decomposition_loadings())
    assert len(_image_axes(first)) == N_COMPONENTS
    assert "z = 0 nm (of 2), t = 0 nm (of 2)" in first._suptitle.get_text()
    every = abundance_figure(signal.get_decomposition_loadings(), slices="all")
    assert len(_image_axes(every)) == 4 * N_COMPONENTS


def test_uncalibrated_axes_draw_without_hyperspy_warnings(caplog):
    signal = _decomposed((5, 6), calibrated=False)
    with caplog.at_level(logging.WARNING, logger="hyperspy"):
        endmember_figure(signal.get_decomposition_factors())
        figure = abundance_figure(signal.get_decomposition_loadings())
    assert len(_image_axes(figure)) == N_COMPONENTS
    assert not [
        record for record in caplog.records if "Axes labels" in record.getMessage()
    ]


def test_lazy_results_are_drawn():
    signal = _decomposed((5, 6), lazy=True)
    factors = signal.get_decomposition_factors()
    assert factors._lazy
    assert len(endmember_figure(factors).axes[0].get_lines()) == N_COMPONENTS
    figure = abundance_figure(signal.get_decomposition_loadings())
    assert len(_image_axes(figure)) == N_COMPONENTS


def test_abundance_figure_refuses_unknown_slices():
    with pytest.raises(ValueError, match="slices="):
        abundance_figure(_decomposed((5, 6)).get_decomposition_loadings(), slices="2")
