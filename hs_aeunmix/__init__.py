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

from importlib import import_module

from hs_aeunmix._routing import enable as _enable
from hs_aeunmix._version import __version__ as __version__

_enable()

# Public name -> the module that defines it. Imported on first use: torch and
# scikit-learn (behind nearly all of them) take seconds to import, and a
# Jupyter user who only loads data should not wait for them.
_LAZY = {
    "AEUnmix": "_estimator",
    "ComponentScan": "_model_selection",
    "LiveUnmixer": "_live",
    "ModelFileError": "_persistence",
    "ModelMismatchWarning": "_adapters",
    "ScanReport": "_series",
    "SeriesFit": "_joint",
    "SeriesScan": "_joint",
    "TrainingHistory": "_training",
    "UnmixingOptions": "_gui",
    "UnmixingPanel": "_gui",
    "apply": "_hyperspy",
    "apply_series": "_series",
    "decompose": "_hyperspy",
    "decompose_series": "_joint",
    "get_uncertainty": "_hyperspy",
    "gui": "_gui",
    "load_model": "_estimator",
    "replay_scan": "_live",
    "scan_components": "_model_selection",
    "shift_map": "_hyperspy",
}
_SUBMODULES = ("datasets", "metrics", "presets")

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
