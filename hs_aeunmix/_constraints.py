"""Declared constraints on options, checked by scikit-learn's parameter validation.

Every option of the package (estimator hyperparameters, dataset generators,
VCA, presets) states its allowed values once, as a list of constraints in
scikit-learn's vocabulary (``_parameter_constraints`` of an estimator, or
a table checked by :func:`check_option`). A bad value raises
``sklearn.utils._param_validation.InvalidParameterError`` (a ``ValueError``
and a ``TypeError``) whose message names the option, what is allowed and
what was given.

scikit-learn's intervals accept ``True`` as the integer 1; options of this
package are never booleans in disguise, so :class:`Number` refuses them.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INTEGER",
    "Integral",
    "InvalidParameterError",
    "Number",
    "Real",
    "StrOptions",
    "check_count",
    "check_option",
    "check_positive_integers",
]


class Number(Interval):
    """An interval of numbers that refuses booleans (``True`` is not a rate)."""

    def is_satisfied_by(self, val) -> bool:
        """True when ``val`` is a number of the interval's type in its range."""
        if isinstance(val, bool | np.bool_):
            return False
        return super().is_satisfied_by(val)


def check_positive_integers(name: str, values, caller: str, *, allow_empty: bool):
    """Refuse a sequence (``"array-like"`` constraint) with an element below 1.

    scikit-learn declares sequences such as layer widths as ``"array-like"``
    and checks the elements separately; this is that check.
    """
    sizes = list(values)
    valid = (len(sizes) > 0 or allow_empty) and all(
        isinstance(size, Integral)
        and not isinstance(size, bool | np.bool_)
        and size >= 1
        for size in sizes
    )
    if not valid:
        kind = "sequence" if allow_empty else "non-empty sequence"
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be a {kind} of positive "
            f"integers. Got {values!r} instead."
        )


POSITIVE_INTEGER = Number(Integral, 1, None, closed="left")
POSITIVE = Number(Real, 0, None, closed="neither")
NON_NEGATIVE = Number(Real, 0, None, closed="left")
# [0, 1): a rate or a fraction of pixels.
FRACTION = Number(Real, 0, 1, closed="left")


def check_option(name: str, value, constraints: list, caller: str) -> None:
    """Validate one option against its constraints (raises InvalidParameterError)."""
    validate_parameter_constraints({name: constraints}, {name: value}, caller)


def check_count(name: str, value, caller: str, *, minimum: int = 1) -> int:
    """An integer option of at least ``minimum`` (never a bool), as an int.

    The one check of a count (endmembers, files, pixels, bins) outside the
    declared constraints of an estimator, so that a count of the wrong type
    or below its minimum raises the same error wherever it is given.
    """
    check_option(name, value, [Number(Integral, minimum, None, closed="left")], caller)
    return int(value)
