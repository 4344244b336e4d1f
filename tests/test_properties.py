"""Invariants on any input (hypothesis): shapes, constraints, round trips, errors.

Each property is checked on a few generated cases (``derandomize=True``: the
same cases on every run, so CI is reproducible); the scenes are tiny and
training is one epoch, since what is checked holds whatever the accuracy.
"""

from __future__ import annotations

import warnings

import hyperspy.api as hs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hs_aeunmix import AEUnmix, load_model

PROPERTY = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
QUICK = {"max_epochs": 1, "init": "vca", "random_state": 0, "show_progressbar": False}


@st.composite
def mixtures(draw, dtypes=(np.float32, np.float64)):
    """Non-negative linear mixtures of random size, scale and dtype."""
    n_pixels = draw(st.integers(12, 40))
    n_channels = draw(st.integers(6, 40))
    n_components = draw(st.integers(2, min(4, n_channels - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e4]))
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    endmembers = rng.random((n_components, n_channels)) + 0.05
    fractions = rng.dirichlet(np.ones(n_components), n_pixels)
    data = scale * (fractions @ endmembers + 0.01 * rng.random((n_pixels, n_channels)))
    if np.issubdtype(dtype, np.integer):
        data = np.round(data * 100 / scale)
    return data.astype(dtype), n_components


def _fit(data, n_components, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few pixels, one epoch: warnings expected
        return AEUnmix(n_components, **{**QUICK, **options}).fit(data)


@PROPERTY
@given(mixture=mixtures(), unseen_scale=st.sampled_from([0.0, 1e-6, 1.0, 1e6]))
def test_abundances_are_fractions_for_any_scan_and_unseen_data(mixture, unseen_scale):
    data, n = mixture
    model = _fit(data, n)
    unseen = np.abs(np.random.default_rng(1).normal(size=(7, data.shape[1])))
    unseen = unseen * unseen_scale
    for spectra in (data, unseen):
        fractions, intensity = model.fractions(spectra)
        assert fractions.shape == (len(spectra), n)
        assert np.isfinite(fractions).all()
        assert (fractions >= 0).all()
        np.testing.assert_allclose(fractions.sum(axis=1), 1.0, rtol=1e-5)
        assert (intensity >= 0).all()
        np.testing.assert_allclose(
            model.transform(spectra), fractions * intensity[:, None], rtol=1e-6
        )
    assert model.components_.shape == (n, data.shape[1])
    assert (model.components_ >= 0).all()


@PROPERTY
@given(mixture=mixtures(), abundance=st.sampled_from(["nonnegative", "sum_to_one"]))
def test_model_file_round_trip_is_exact(mixture, abundance, tmp_path_factory):
    data, n = mixture
    model = _fit(data, n, abundance=abundance)
    path = model.save(tmp_path_factory.mktemp("model") / "model.aeunmix")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded.transform(data), model.transform(data))
    assert loaded.get_params() == {**model.get_params(), "device": "auto"}
    assert loaded.data_scale_ == model.data_scale_


@PROPERTY
@given(
    navigation_shape=st.sampled_from([(14,), (4, 5), (3, 6)]),
    n_channels=st.integers(8, 30),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint16]),
    seed=st.integers(0, 1000),
)
def test_decomposition_returns_calibrated_signals_and_never_modifies_data(
    navigation_shape, n_channels, dtype, seed
):
    rng = np.random.default_rng(seed)
    data = (100 * rng.random((*navigation_shape, n_channels)) + 1).astype(dtype)
    signal = hs.signals.Signal1D(data)
    axis = signal.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = 400.0, 0.5, "eV"
    before = signal.data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.decomposition(
            algorithm="ae", output_dimension=2, print_info=False, **QUICK
        )
    assert signal.data.dtype == dtype
    np.testing.assert_array_equal(signal.data, before)
    factors = signal.get_decomposition_factors()
    loadings = signal.get_decomposition_loadings()
    assert factors.data.shape == (2, n_channels)
    assert factors.axes_manager.signal_axes[0].offset == 400.0
    assert factors.axes_manager.signal_axes[0].units == "eV"
    assert loadings.data.shape == (2, *navigation_shape)
    assert loadings.axes_manager.signal_shape == navigation_shape[::-1]


@PROPERTY
@given(
    mixture=mixtures(),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.integers(0, 10**6),
)
def test_non_finite_values_always_give_a_clear_error(mixture, bad, where):
    data, n = mixture
    data = data.astype(np.float64)
    data.flat[where % data.size] = bad
    with pytest.raises(ValueError, match=r"NaN|inf"):
        AEUnmix(n, **QUICK).fit(data)
    signal = hs.signals.Signal1D(data.copy())
    with pytest.raises(ValueError, match=r"NaN|inf"):
        signal.decomposition(algorithm="ae", output_dimension=n, print_info=False)
