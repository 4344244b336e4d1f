"""Every use of HyperSpy's private API, in one small module.

HyperSpy 2.5 has no registry of decomposition algorithms, so ``"ae"`` is made
available by wrapping ``MVA.decomposition`` (and its lazy override): calls
with ``algorithm="ae"`` or an :class:`~hs_aeunmix.AEUnmix` instance go to a
handler, every other call goes to HyperSpy untouched. The rest of the package
uses only HyperSpy's public custom-estimator protocol (``decomposition``
with an object that has ``fit_transform``, ``transform`` and ``components_``),
so that a refactor of HyperSpy's internals breaks this module alone;
``tests/test__hyperspy_internals.py`` fails loudly when one of the names used
here moves. The public functions :func:`hs_aeunmix.decompose` and
:func:`hs_aeunmix.apply` work without the wrapper.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import types
from collections.abc import Callable, Iterator

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy.learn._mva import MVA, LearningResults
from hyperspy.signal import BaseSignal

ORIGINAL_DECOMPOSITION = MVA.decomposition
ORIGINAL_LAZY_DECOMPOSITION = LazySignal.decomposition
DECOMPOSITION_SIGNATURE = inspect.signature(ORIGINAL_DECOMPOSITION)
LAZY_DECOMPOSITION_SIGNATURE = inspect.signature(ORIGINAL_LAZY_DECOMPOSITION)
# The arguments of ``decomposition`` the handler reads; the contract tests
# check that HyperSpy still has them.
USED_ARGUMENTS = (
    "normalize_poissonian_noise",
    "algorithm",
    "output_dimension",
    "centre",
    "navigation_mask",
    "signal_mask",
    "return_info",
    "print_info",
)

Handler = Callable[[BaseSignal, dict], object]
Router = Callable[[object], bool]


def install(
    handler: Handler,
    routes_to_handler: Router,
    after_other_decomposition: Callable[[LearningResults], None],
    extra_doc: Callable[[], str] = str,
) -> None:
    """Route ``decomposition`` calls whose algorithm ``routes_to_handler`` accepts.

    ``handler(signal, arguments)`` receives the bound arguments of the call
    (defaults applied; extra keyword arguments under ``"kwargs"``). Any other
    decomposition goes to HyperSpy, then ``after_other_decomposition``
    receives the signal's learning results. The wrapped methods' docstring
    is HyperSpy's followed by ``extra_doc()``, called when the docstring is
    first read (what ``s.decomposition?`` shows). Idempotent.
    """

    def wrap(original, signature):
        def decomposition(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            if not routes_to_handler(bound.arguments.get("algorithm")):
                result = original(self, *args, **kwargs)
                after_other_decomposition(self.learning_results)
                return result
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            del arguments["self"]
            return handler(self, arguments)

        return RoutedMethod(decomposition, original, extra_doc)

    MVA.decomposition = wrap(ORIGINAL_DECOMPOSITION, DECOMPOSITION_SIGNATURE)
    LazySignal.decomposition = wrap(
        ORIGINAL_LAZY_DECOMPOSITION, LAZY_DECOMPOSITION_SIGNATURE
    )


class RoutedMethod:
    # A function's __doc__ is a plain attribute, computed when it is set; a
    # method object built here can compute its own when first read (the
    # section needs modules too heavy for ``import hs_aeunmix``). Bound to a
    # signal it is a real bound method (``types.MethodType``), whose
    # ``__doc__`` is this object's; ``__wrapped__`` gives HyperSpy's
    # signature to ``inspect.signature``.

    def __init__(self, function, original, extra_doc: Callable[[], str]):
        self._function = function
        self._extra_doc = extra_doc
        self._doc: str | None = None
        self.__wrapped__ = original
        self.__name__ = original.__name__
        self.__qualname__ = original.__qualname__
        self.__module__ = original.__module__

    @property
    def __doc__(self) -> str | None:
        if self._doc is None:
            self._doc = _with_section(self.__wrapped__.__doc__, self._extra_doc())
        return self._doc

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __get__(self, instance, owner=None):
        return self if instance is None else types.MethodType(self, instance)


def _with_section(docstring: str | None, section: str) -> str | None:
    """``docstring`` (indentation removed) followed by ``section``."""
    if not section:
        return docstring
    return f"{inspect.cleandoc(docstring or '').rstrip()}\n\n{section}"


def is_lazy(signal: BaseSignal) -> bool:
    """Whether ``signal`` is dask-backed."""
    return isinstance(signal, LazySignal)


def twin(signal: BaseSignal, data) -> BaseSignal:
    """A signal with ``signal``'s axes and metadata around ``data`` (not copied).

    HyperSpy unfolds the signal it decomposes (in place) and refuses integer
    data, so the decomposition runs on a twin; the user's signal only
    receives the results.
    """
    return signal._deepcopy_with_new_data(data)


def adopt_results(signal: BaseSignal, twin_signal: BaseSignal) -> LearningResults:
    """Give ``signal`` the twin's learning results, minus HyperSpy's estimator handle.

    Lazy decompositions keep the estimator object in ``_object``, which
    ``s.save`` cannot write (it logs an error); the model travels in the
    results as bytes instead.
    """
    results = twin_signal.learning_results
    results.__dict__.pop("_object", None)
    signal.learning_results.__dict__.update(results.__dict__)
    return signal.learning_results


def flat_navigation_mask(navigation_mask) -> np.ndarray | None:
    """A navigation mask as booleans in the data array's pixel order.

    HyperSpy's convention: a mask given as a signal is in array order, one
    given as an array is in navigation-shape order (axes reversed).
    """
    if navigation_mask is None:
        return None
    if isinstance(navigation_mask, BaseSignal):
        return np.asarray(navigation_mask.data, dtype=bool).ravel()
    return np.asarray(navigation_mask, dtype=bool).T.ravel()


class _Silenced:
    # State of progressbars_shown(False): blocks in several threads (an
    # in-process dask cluster unmixing scans) share one change of the
    # globals, made by the first to start and undone by the last to end.
    lock = threading.Lock()
    depth = 0
    saved: tuple = ()


@contextlib.contextmanager
def progressbars_shown(show: bool) -> Iterator[None]:
    """Hide HyperSpy's progress bars while the block runs, unless ``show``.

    ``preferences.General.show_progressbar`` hides HyperSpy's bars of
    loading, saving and computing, but not the "Learn" and "Project" bars
    of its lazy ``decomposition``, which call HyperSpy's ``progressbar``
    (tqdm) without ``disable``: that function is replaced, where the lazy
    module and its own module hold it, by one that disables its bar.

    Parameters
    ----------
    show : bool
        Leave the bars as they are (True) or hide them all (False).
    """
    if show:
        yield
        return
    import hyperspy._signals.lazy as lazy_module
    import hyperspy.external.progressbar as progressbar_module
    from hyperspy.defaults_parser import preferences

    with _Silenced.lock:
        if _Silenced.depth == 0:
            _Silenced.saved = (
                preferences.General.show_progressbar,
                lazy_module.progressbar,
                progressbar_module.progressbar,
            )
            preferences.General.show_progressbar = False
            lazy_module.progressbar = functools.partial(
                _Silenced.saved[1], disable=True
            )
            progressbar_module.progressbar = functools.partial(
                _Silenced.saved[2], disable=True
            )
        _Silenced.depth += 1
    try:
        yield
    finally:
        with _Silenced.lock:
            _Silenced.depth -= 1
            if _Silenced.depth == 0:
                (
                    preferences.General.show_progressbar,
                    lazy_module.progressbar,
                    progressbar_module.progressbar,
                ) = _Silenced.saved
