"""Every use of HyperSpy's private API, in one small module.

HyperSpy 2.5 has no registry of decomposition algorithms, so ``"ae"`` is made
available by wrapping ``MVA.decomposition`` (and its lazy override): calls
with ``algorithm="ae"`` or an :class:`~hs_aeunmix.AEUnmix` instance go to a
handler, every other call goes to HyperSpy untouched. A signal class of an
extension that overrides ``decomposition`` with its own defaults (eXSpy's
EDS-TEM spectrum) is wrapped too, so that those calls skip the override.
The rest of the package uses only HyperSpy's public custom-estimator
protocol (``decomposition`` with an object that has ``fit_transform``,
``transform`` and ``components_``), so that a refactor of HyperSpy's
internals breaks this module alone;
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
    first read (what ``s.decomposition?`` shows). Signal classes that
    override ``decomposition``, defined now or later, send routed calls
    past their override (:func:`_route_past_override`). Idempotent.
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

        routed = RoutedMethod(decomposition, original, extra_doc)
        routed.routes = routes_to_handler
        return routed

    MVA.decomposition = wrap(ORIGINAL_DECOMPOSITION, DECOMPOSITION_SIGNATURE)
    LazySignal.decomposition = wrap(
        ORIGINAL_LAZY_DECOMPOSITION, LAZY_DECOMPOSITION_SIGNATURE
    )
    _Overrides.extra_doc = extra_doc
    for signal_class in _subclasses(BaseSignal):
        _route_past_override(signal_class)
    installed = BaseSignal.__dict__.get("__init_subclass__")
    if not getattr(getattr(installed, "__func__", None), "routes_overrides", False):
        BaseSignal.__init_subclass__ = _routing_new_subclasses(installed)


class _Overrides:
    # The docstring section of every routed override (install's extra_doc).
    extra_doc: Callable[[], str] = str


def _subclasses(cls: type) -> list[type]:
    """Every class derived from ``cls``, at any depth, once each."""
    found: dict[type, None] = {}
    pending = list(cls.__subclasses__())
    while pending:
        subclass = pending.pop()
        if subclass not in found:
            found[subclass] = None
            pending.extend(subclass.__subclasses__())
    return list(found)


def _routing_new_subclasses(previous: classmethod | None) -> classmethod:
    """``BaseSignal.__init_subclass__`` that also routes a new class's override.

    Extensions imported after ``hs_aeunmix`` (eXSpy's EDS-TEM signal) define
    their signal classes later. ``previous``: BaseSignal's own hook, if any.
    """

    def __init_subclass__(cls, **kwargs):
        if previous is None:
            super(BaseSignal, cls).__init_subclass__(**kwargs)
        else:
            previous.__func__(cls, **kwargs)
        _route_past_override(cls)

    __init_subclass__.routes_overrides = True
    return classmethod(__init_subclass__)


def _route_past_override(signal_class: type) -> None:
    """Send ``algorithm="ae"`` calls past ``signal_class``'s own ``decomposition``.

    Extensions override ``decomposition`` to set their own defaults for
    HyperSpy's algorithms: eXSpy's EDS-TEM signal turns on
    ``normalize_poissonian_noise`` (which the autoencoder refuses: it
    breaks the abundances' meaning), masks vacuum pixels and discards the
    returned estimator. A routed call skips the override and reaches
    HyperSpy's method (and the handler) with the arguments the user gave
    and HyperSpy's defaults, as on any other signal; every other call runs
    the override unchanged.
    """
    override = signal_class.__dict__.get("decomposition")
    if override is None or isinstance(override, RoutedMethod):
        return
    signature = inspect.signature(override)

    def decomposition(self, *args, **kwargs):
        given = _named_arguments(signature.bind(self, *args, **kwargs))
        inherited = super(signal_class, self).decomposition
        routes = getattr(getattr(inherited, "__func__", None), "routes", None)
        if given is None or routes is None or not routes(given.get("algorithm")):
            return override(self, *args, **kwargs)
        return inherited(**given)

    signal_class.decomposition = RoutedMethod(
        decomposition, override, lambda: _Overrides.extra_doc()
    )


def _named_arguments(bound: inspect.BoundArguments) -> dict | None:
    """The arguments the caller gave, by name; None if some have no name."""
    given = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        elif kind is inspect.Parameter.VAR_KEYWORD:
            given.update(value)
        elif name != "self":
            given[name] = value
    return given


def hyperspy_decomposition(signal: BaseSignal, **arguments):
    """HyperSpy's own ``decomposition`` of ``signal``, past an extension's override.

    For running the autoencoder's estimator on a twin: an override would
    put its own defaults in (see :func:`_route_past_override`).
    """
    base = LazySignal if is_lazy(signal) else MVA
    return base.decomposition(signal, **arguments)


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
