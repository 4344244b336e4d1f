"""Physics-constrained autoencoder unmixing of spectrum images, for HyperSpy.

``import hs_aeunmix`` enables ``s.decomposition(algorithm="ae",
output_dimension=n)`` on every HyperSpy signal (HyperSpy reads this
package's ``hyperspy_extension.yaml`` but does not import it);
:class:`AEUnmix` is the scikit-learn estimator behind it, and
:func:`decompose` / :func:`apply` do the same as the patched method without
relying on it. A trained model is saved with ``model.save(path)``, loaded
with :func:`load_model` and reapplied to later scans with
``s.decomposition(algorithm="ae", model=...)``, or to a whole series of
scan files, on a dask cluster if one is given, with :func:`apply_series`.
:func:`decompose_series` unmixes a sample series with one model (shared
endmembers, each scan's own maps, offset and intensity), and
:class:`LiveUnmixer` unmixes a scan while it is being acquired.
:func:`gui` shows the options as a Jupyter panel.
"""

from importlib.metadata import PackageNotFoundError, version

from hs_aeunmix import datasets, metrics, presets
from hs_aeunmix._adapters import ModelMismatchWarning
from hs_aeunmix._estimator import AEUnmix, load_model
from hs_aeunmix._gui import UnmixingOptions, UnmixingPanel, gui
from hs_aeunmix._hyperspy import apply, decompose, get_uncertainty, shift_map
from hs_aeunmix._hyperspy import enable as _enable
from hs_aeunmix._joint import SeriesFit, SeriesScan, decompose_series
from hs_aeunmix._live import LiveUnmixer, replay_scan
from hs_aeunmix._model_selection import ComponentScan, scan_components
from hs_aeunmix._persistence import ModelFileError
from hs_aeunmix._series import ScanReport, apply_series
from hs_aeunmix._training import TrainingHistory

try:
    __version__ = version("hs-aeunmix")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_enable()

__all__ = [
    "AEUnmix",
    "ComponentScan",
    "LiveUnmixer",
    "ModelFileError",
    "ModelMismatchWarning",
    "ScanReport",
    "SeriesFit",
    "SeriesScan",
    "TrainingHistory",
    "UnmixingOptions",
    "UnmixingPanel",
    "__version__",
    "apply",
    "apply_series",
    "datasets",
    "decompose",
    "decompose_series",
    "get_uncertainty",
    "gui",
    "load_model",
    "metrics",
    "presets",
    "replay_scan",
    "scan_components",
    "shift_map",
]
