"""Contract tests: the private HyperSpy API that ``_hyperspy_internals`` relies on.

Each test pins one thing HyperSpy does that the module assumes. When HyperSpy
moves or renames one of them, a test here fails with the name of what moved,
before users meet a confusing error from the wrapped ``decomposition``.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from hyperspy._signals.lazy import LazySignal
from hyperspy.learn._mva import MVA, LearningResults

from hs_aeunmix import _hyperspy_internals as internals
from hs_aeunmix import _routing
from hs_aeunmix._routing import enable


@pytest.mark.parametrize(
    "signature",
    [internals.DECOMPOSITION_SIGNATURE, internals.LAZY_DECOMPOSITION_SIGNATURE],
    ids=["MVA", "LazySignal"],
)
def test_decomposition_still_takes_every_argument_the_handler_reads(signature):
    missing = set(internals.USED_ARGUMENTS) - set(signature.parameters)
    assert not missing, f"HyperSpy's decomposition lost arguments {missing}"


def test_originals_are_hyperspys_own_methods():
    assert internals.ORIGINAL_DECOMPOSITION.__module__ == "hyperspy.learn._mva"
    assert internals.ORIGINAL_LAZY_DECOMPOSITION.__module__ == "hyperspy._signals.lazy"


def test_wrappers_are_installed_on_both_classes_and_wrap_the_originals():
    enable()
    assert MVA.decomposition.__wrapped__ is internals.ORIGINAL_DECOMPOSITION
    assert LazySignal.decomposition.__wrapped__ is internals.ORIGINAL_LAZY_DECOMPOSITION
    assert "hs_aeunmix" in MVA.decomposition.__doc__
    assert inspect.signature(MVA.decomposition) == internals.DECOMPOSITION_SIGNATURE


def test_the_wrapped_method_is_a_method_with_hyperspys_signature_and_ours_doc():
    # Bound to a signal it is a real bound method (help() and Jupyter's `?`
    # document it as one), without `self` in its signature.
    signal = hs.signals.Signal1D(np.ones((2, 5)))
    bound = signal.decomposition
    assert inspect.ismethod(bound)
    assert bound.__self__ is signal
    assert "self" not in inspect.signature(bound).parameters
    assert inspect.getdoc(bound) == inspect.getdoc(MVA.decomposition)
    assert 'algorithm="ae"' in inspect.getdoc(bound)


def test_the_section_is_built_when_the_docstring_is_first_read(monkeypatch):
    built = []

    def section():
        built.append(None)
        return "Extra\n-----\nbuilt on demand"

    monkeypatch.setattr(MVA, "decomposition", MVA.decomposition)
    monkeypatch.setattr(LazySignal, "decomposition", LazySignal.decomposition)
    internals.install(lambda signal, arguments: None, lambda a: False, print, section)
    assert built == []
    assert MVA.decomposition.__doc__.endswith("built on demand")
    assert MVA.decomposition.__doc__.endswith("built on demand")
    assert built == [None]


def test_a_moved_private_api_warns_and_leaves_the_estimator_route(monkeypatch):
    # A HyperSpy release whose internals moved: the import warns (it does not
    # fail), and the message names the routes that still work.
    def moved(*args):
        raise AttributeError("type object 'MVA' has no attribute 'decomposition'")

    monkeypatch.setattr(internals, "install", moved)
    with pytest.warns(RuntimeWarning, match=r"algorithm=hs_aeunmix.AEUnmix\(n\)"):
        _routing.enable()


def _signal(rng, lazy=False):
    data = rng.random((4, 5, 12)) + 0.1
    signal = hs.signals.Signal1D(data)
    return signal.as_lazy() if lazy else signal


@pytest.mark.parametrize("lazy", [False, True])
def test_other_algorithms_reach_hyperspy_with_their_arguments(monkeypatch, lazy):
    calls = []

    def handler(signal, arguments):  # pragma: no cover - must not be called
        raise AssertionError("an SVD call reached the autoencoder handler")

    def after(results):
        calls.append(results)

    monkeypatch.setattr(MVA, "decomposition", MVA.decomposition)
    monkeypatch.setattr(LazySignal, "decomposition", LazySignal.decomposition)
    internals.install(handler, lambda algorithm: algorithm == "ae", after)
    signal = _signal(np.random.default_rng(0), lazy=lazy)
    algorithm = "PCA" if lazy else "SVD"
    signal.decomposition(algorithm=algorithm, output_dimension=2, print_info=False)
    assert signal.learning_results.decomposition_algorithm == algorithm
    assert calls == [signal.learning_results]


def _install_recording(monkeypatch, received: dict) -> None:
    def handler(signal, arguments):
        received.update(arguments, signal=signal)
        return "handled"

    monkeypatch.setattr(MVA, "decomposition", MVA.decomposition)
    monkeypatch.setattr(LazySignal, "decomposition", LazySignal.decomposition)
    internals.install(handler, lambda algorithm: algorithm == "ae", lambda r: None)


@pytest.mark.parametrize("lazy", [False, True])
def test_routed_calls_receive_bound_arguments_with_defaults(monkeypatch, lazy):
    received = {}
    _install_recording(monkeypatch, received)
    signal = _signal(np.random.default_rng(0), lazy=lazy)
    assert signal.decomposition(False, "ae", 3, seed=1) == "handled"
    assert received["signal"] is signal
    assert received["normalize_poissonian_noise"] is False
    assert received["output_dimension"] == 3
    assert received["navigation_mask"] is None
    assert received["kwargs"] == {"seed": 1}
    assert set(internals.USED_ARGUMENTS) <= set(received)


class _Overriding(hs.signals.Signal1D):
    # An extension's signal that sets its own defaults for HyperSpy's
    # algorithms and returns nothing, as eXSpy's EDS-TEM signal does.
    calls: ClassVar[list] = []

    def decomposition(self, normalize_poissonian_noise=True, closing=True, **kwargs):
        self.calls.append(normalize_poissonian_noise)
        super().decomposition(
            normalize_poissonian_noise=normalize_poissonian_noise, **kwargs
        )


def test_routed_calls_skip_an_extensions_override_and_its_defaults(monkeypatch):
    received = {}
    _install_recording(monkeypatch, received)
    _Overriding.calls = []
    signal = _Overriding(np.random.default_rng(0).random((4, 5, 12)) + 0.1)
    assert signal.decomposition(algorithm="ae", output_dimension=2, seed=1) == (
        "handled"
    )
    assert _Overriding.calls == []
    assert received["signal"] is signal
    # HyperSpy's default, not the override's.
    assert received["normalize_poissonian_noise"] is False
    assert received["kwargs"] == {"seed": 1}
    # Every other algorithm runs the override with its defaults.
    signal.decomposition(algorithm="SVD", output_dimension=2, print_info=False)
    assert _Overriding.calls == [True]
    assert signal.learning_results.poissonian_noise_normalized
    assert inspect.signature(_Overriding.decomposition) == inspect.signature(
        _Overriding.decomposition.__wrapped__
    )


def test_install_routes_the_overrides_of_classes_defined_before_it(monkeypatch):
    # Classes defined after it are routed when they are created.
    raw = _Overriding.__dict__["decomposition"].__wrapped__
    monkeypatch.setattr(_Overriding, "decomposition", raw)
    received = {}
    _install_recording(monkeypatch, received)
    signal = _Overriding(np.ones((3, 4)))
    assert signal.decomposition(algorithm="ae") == "handled"
    assert received["normalize_poissonian_noise"] is False


def test_a_class_defined_after_the_import_is_routed_when_it_is_created():
    enable()

    class Later(hs.signals.Signal1D):
        def decomposition(self, normalize_poissonian_noise=True, **kwargs):
            raise AssertionError("the override ran")  # pragma: no cover

    routed = Later.__dict__["decomposition"]
    assert isinstance(routed, internals.RoutedMethod)
    assert "normalize_poissonian_noise=True" in str(inspect.signature(routed))


def test_hyperspy_decomposition_runs_past_the_override(monkeypatch):
    _Overriding.calls = []
    signal = _Overriding(np.random.default_rng(0).random((4, 5, 12)) + 0.1)
    internals.hyperspy_decomposition(
        signal, algorithm="SVD", output_dimension=2, print_info=False
    )
    assert _Overriding.calls == []
    assert not signal.learning_results.poissonian_noise_normalized


def test_twin_shares_the_data_and_copies_axes_and_metadata():
    signal = _signal(np.random.default_rng(0))
    signal.axes_manager.signal_axes[0].offset = 700.0
    signal.metadata.General.title = "scan"
    data = signal.data.astype(np.float32)
    twin = internals.twin(signal, data)
    assert twin.data is data
    assert twin.metadata.General.title == "scan"
    assert twin.axes_manager.signal_axes[0].offset == 700.0
    twin.axes_manager.signal_axes[0].offset = 0.0
    twin.metadata.General.title = "changed"
    assert signal.axes_manager.signal_axes[0].offset == 700.0
    assert signal.metadata.General.title == "scan"


def test_adopt_results_drops_the_estimator_handle():
    signal = _signal(np.random.default_rng(0))
    twin = internals.twin(signal, signal.data.copy())
    twin.learning_results.factors = np.ones((12, 2))
    twin.learning_results._object = object()
    results = internals.adopt_results(signal, twin)
    assert isinstance(results, LearningResults)
    assert results is signal.learning_results
    np.testing.assert_array_equal(results.factors, np.ones((12, 2)))
    assert "_object" not in results.__dict__


def test_hyperspy_keeps_the_estimator_of_lazy_decompositions_in_object():
    # adopt_results removes ``_object``: HyperSpy must still store it there.
    class Mean:
        def fit(self, X):
            return self.partial_fit(X)

        def partial_fit(self, X):
            self.components_ = np.ones((1, X.shape[1]))
            return self

        def transform(self, X):
            return X.mean(axis=1, keepdims=True)

    signal = _signal(np.random.default_rng(0), lazy=True)
    estimator = Mean()
    signal.decomposition(algorithm=estimator, output_dimension=1, print_info=False)
    assert signal.learning_results._object is estimator


def test_flat_navigation_mask_follows_hyperspys_conventions():
    # A scan of navigation shape (3, 2): data array (2, 3, ...).
    as_signal = hs.signals.BaseSignal(np.zeros((2, 3), dtype=bool)).T
    as_signal.data[0, 2] = True
    flat = internals.flat_navigation_mask(as_signal)
    assert flat.tolist() == [False, False, True, False, False, False]
    as_array = np.zeros((3, 2), dtype=bool)  # navigation-shape order
    as_array[2, 0] = True
    assert internals.flat_navigation_mask(as_array).tolist() == flat.tolist()
    assert internals.flat_navigation_mask(None) is None


def test_navigation_mask_conventions_hold_in_hyperspys_own_decomposition():
    # The same pixel masked both ways leaves the same pixel unset (NaN).
    data = np.random.default_rng(0).random((2, 3, 6)) + 0.1
    as_signal = hs.signals.BaseSignal(np.zeros((2, 3), dtype=bool)).T
    as_signal.data[0, 2] = True
    as_array = np.zeros((3, 2), dtype=bool)
    as_array[2, 0] = True
    loadings = []
    for mask in (as_signal, as_array):
        signal = hs.signals.Signal1D(data.copy())
        signal.decomposition(
            algorithm="SVD", output_dimension=2, navigation_mask=mask, print_info=False
        )
        loadings.append(np.isnan(signal.learning_results.loadings[:, 0]))
    np.testing.assert_array_equal(loadings[0], loadings[1])
    assert np.flatnonzero(loadings[0]).tolist() == [2]


def test_is_lazy():
    signal = _signal(np.random.default_rng(0))
    assert not internals.is_lazy(signal)
    assert internals.is_lazy(signal.as_lazy())
    assert internals.is_lazy(hs.signals.Signal1D(da.ones((2, 5))).as_lazy())
