"""The installed package's version (``hs_aeunmix.__version__``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hs-aeunmix")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"
