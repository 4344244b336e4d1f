"""What ``import hs_aeunmix`` does: route ``decomposition(algorithm="ae")`` here.

Importing the package must stay light (HyperSpy's extensions load on
demand; torch and scikit-learn take seconds to import), so this module
imports neither: :func:`enable` installs the routing through
:mod:`._hyperspy_internals`, and the autoencoder's glue
(:mod:`._hyperspy`), with torch behind it, is imported by the first call
that uses it. The section that ``decomposition``'s docstring gains is built
from the estimator's own docstring, so it too is built when first read.

Should HyperSpy's private API have moved (a HyperSpy release this package
has not been checked against), :func:`enable` warns instead of failing the
import: ``s.decomposition(algorithm=hs_aeunmix.AEUnmix(n))``, HyperSpy's
public route for custom estimators, and :func:`hs_aeunmix.decompose` still
work; only the ``"ae"`` short form is then unavailable.
"""

from __future__ import annotations

import sys
import warnings

from hs_aeunmix._names import ALGORITHM_NAME, LEARNING_RESULTS_ATTRIBUTE


def routes_to_autoencoder(algorithm) -> bool:
    """Whether a ``decomposition`` call with this ``algorithm`` is ours."""
    if isinstance(algorithm, str):
        return algorithm.lower() == ALGORITHM_NAME
    # An estimator instance exists only once its module was imported.
    estimator_module = sys.modules.get("hs_aeunmix._estimator")
    return estimator_module is not None and isinstance(
        algorithm, estimator_module.AEUnmix
    )


def _run(signal, arguments: dict):
    from hs_aeunmix._hyperspy import run

    return run(signal, arguments)


def _forget_model(results) -> None:
    """After another algorithm, the stored ``"ae"`` model no longer applies."""
    results.__dict__.pop(LEARNING_RESULTS_ATTRIBUTE, None)


def _section() -> str:
    from hs_aeunmix._docstrings import ae_section

    return ae_section()


def enable() -> None:
    """Make ``algorithm="ae"`` available on every HyperSpy signal (idempotent)."""
    try:
        from hs_aeunmix import _hyperspy_internals as internals

        internals.install(_run, routes_to_autoencoder, _forget_model, _section)
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        warnings.warn(
            'algorithm="ae" is not available with this HyperSpy version '
            f"({type(error).__name__}: {error}). Pass the estimator instead, "
            "s.decomposition(algorithm=hs_aeunmix.AEUnmix(n)), or use "
            "hs_aeunmix.decompose(s, n).",
            RuntimeWarning,
            stacklevel=3,
        )
