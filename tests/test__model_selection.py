"""Tests of scan_components: choosing the number of endmembers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from hs_aeunmix import ComponentScan, datasets, scan_components
from hs_aeunmix._losses import volume_penalty
from hs_aeunmix._model_selection import _suggest


@pytest.fixture(scope="module")
def eels_scan():
    signal, _ = datasets.eels_chequerboard(
        3, shape=(32, 32), block_size=4, filter_size=5, random_state=0
    )
    return scan_components(signal, range(2, 6), show_progressbar=False)


def test_true_number_on_eels(eels_scan):
    assert isinstance(eels_scan, ComponentScan)
    assert eels_scan.suggested == 3
    np.testing.assert_array_equal(eels_scan.n_components, [2, 3, 4, 5])
    assert "Suggested n = 3" in eels_scan.reason
    assert "n = 2 fits" in eels_scan.reason


def test_true_number_on_raman():
    signal, _ = datasets.raman_scene(
        4, shape=(32, 32), scene="chessboard", random_state=0
    )
    # Gaussian noise makes negative values: said once, not once per model.
    with pytest.warns(UserWarning, match="negative values") as caught:
        scan = scan_components(signal, range(2, 7), show_progressbar=False)
    assert len([w for w in caught if "negative values" in str(w.message)]) == 1
    assert scan.suggested == 4


def test_scan_keeps_models_and_losses(eels_scan):
    for n, loss, volume in zip(
        eels_scan.n_components,
        eels_scan.validation_loss,
        eels_scan.volume_loss,
        strict=True,
    ):
        model = eels_scan.model(n)
        assert model.components_.shape == (n, 200)
        assert loss == model.history_.best_loss
        scaled = torch.from_numpy(model.components_ / model.data_scale_)
        assert volume == pytest.approx(float(volume_penalty(scaled)))
    with pytest.raises(ValueError, match="n_components=9 was not scanned"):
        eels_scan.model(9)


def test_each_model_grows_from_the_previous(eels_scan):
    three, four = eels_scan.model(3), eels_scan.model(4)
    np.testing.assert_array_equal(four.init[:3], three.components_)
    assert eels_scan.model(2).init == "vca"


def test_table_and_plot(eels_scan):
    text = str(eels_scan)
    assert text.splitlines()[0] == "n_components  validation loss  volume loss"
    assert "<- suggested" in text.splitlines()[2]
    ax = eels_scan.plot()
    assert ax.get_xlabel() == "Number of endmembers"
    assert len(ax.figure.axes) == 2


def test_suggestion_at_the_edge_of_the_scan():
    suggested, reason = _suggest(np.array([3, 4]), np.array([1.0, 0.99]))
    assert suggested == 3
    assert "smallest n scanned" in reason
    suggested, reason = _suggest(np.array([3, 4]), np.array([1.0, 0.5]))
    assert suggested == 4
    assert "largest n scanned" in reason


@pytest.mark.parametrize(
    ("numbers", "options", "error", "match"),
    [
        ([3], {}, ValueError, "at least two numbers"),
        ([0, 2], {}, ValueError, "all positive"),
        ([2, 3], {"init": "random"}, TypeError, "sets init itself"),
    ],
)
def test_bad_scans(numbers, options, error, match):
    with pytest.raises(error, match=match):
        scan_components(np.ones((20, 10)), numbers, **options)


def test_a_lazy_signal_is_refused_with_what_to_do():
    import hyperspy.api as hs

    lazy = hs.signals.Signal1D(np.ones((4, 5, 10))).as_lazy()
    with pytest.raises(NotImplementedError, match=r"lazy\. Load it with s\.compute"):
        scan_components(lazy, [2, 3])
