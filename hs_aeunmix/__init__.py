"""Physics-constrained autoencoder unmixing of spectrum images, for HyperSpy.

``import hs_aeunmix`` enables ``s.decomposition(algorithm="ae",
output_dimension=n)`` on every HyperSpy signal; :class:`AEUnmix` is the
scikit-learn estimator behind it. A trained model is saved with
``model.save(path)``, loaded with :func:`load_model` and reapplied to later
scans with ``s.decomposition(algorithm="ae", model=...)``.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

from hs_aeunmix import datasets, metrics, presets
from hs_aeunmix._estimator import AEUnmix
from hs_aeunmix._hyperspy import enable as _enable
from hs_aeunmix._model_selection import ComponentScan, scan_components
from hs_aeunmix._persistence import ModelFileError, load_model
from hs_aeunmix._training import TrainingHistory

try:
    __version__ = version("hs-aeunmix")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_logger = logging.getLogger(__name__)

_enable()

__all__ = [
    "AEUnmix",
    "ComponentScan",
    "ModelFileError",
    "TrainingHistory",
    "__version__",
    "datasets",
    "load_model",
    "metrics",
    "presets",
    "scan_components",
]
