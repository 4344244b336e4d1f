"""Shared fixtures (the helpers they use are in ``_helpers.py``)."""

from __future__ import annotations

import os

# The suite runs in pytest-xdist workers, one per core (pyproject's
# addopts): each worker, and each process it starts (notebook kernels, the
# command line), computes on one thread, so that the workers do not fight
# over the cores (two threads per worker on two cores made training 10x
# slower). Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import hyperspy.api as hs
import pytest
from _helpers import Mixture, make_mixture, to_signal

import hs_aeunmix  # noqa: F401  (enables algorithm="ae")


@pytest.fixture(scope="session")
def mixture() -> Mixture:
    return make_mixture()


@pytest.fixture
def spectrum_image(mixture) -> hs.signals.Signal1D:
    return to_signal(mixture)


@pytest.fixture
def ctrl_c_at_the_second_epoch(monkeypatch):
    """Training raises KeyboardInterrupt as its second epoch starts (Ctrl-C)."""
    from hs_aeunmix import _training

    real_epoch = _training._train_one_epoch
    epochs = []

    def interrupting(*args, **kwargs):
        epochs.append(None)
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(_training, "_train_one_epoch", interrupting)
