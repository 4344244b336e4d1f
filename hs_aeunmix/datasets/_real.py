"""Real spectrum images from public repositories, fetched on demand.

:func:`real_scan` returns a measured scan as a HyperSpy signal. The file is
read from ``folder`` (or the ``HS_AEUNMIX_REAL_DATA`` environment variable)
when a copy lies there, so that tests and offline machines never download
anything; otherwise it is downloaded once from its public repository into
pooch's cache. Either way pooch (a HyperSpy dependency) checks it against the
known SHA-256 of its registry; a local copy that differs is refused, never
replaced. Nothing is shipped with the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENVIRONMENT_VARIABLE = "HS_AEUNMIX_REAL_DATA"


@dataclass(frozen=True)
class RealScan:
    """Where a real scan comes from and what it holds."""

    filename: str
    url: str
    sha256: str
    description: str


REAL_SCANS = {
    "gaas_solar_cell_eels": RealScan(
        "GaAs_solar_cell_EELS_SI_70-172eV.dm3",
        "https://github.com/vcangadi1/EELS_Hyperspy/raw/HEAD/"
        "EELS%20Spectrum%20Image%20small%20disp0.1offset80time0.5s.dm3",
        "9fc94537ecf1db9282409e41c3f57736db6134d9e6cdcf6c71145af856ae3884",
        "STEM-EELS spectrum image across a GaAs multilayer solar cell, 70-172 eV "
        "(Al L2,3 73 eV, Si L2,3 99 eV, Al L1 118 eV, P L2,3 132 eV), 45 x 22 "
        "pixels, 1024 channels of 0.1 eV (repository vcangadi1/EELS_Hyperspy).",
    ),
    "thp1_cell_raman": RealScan(
        "THP1_cell_map_L5.mat",
        "https://github.com/barahona-research-group/RamanSpy/raw/HEAD/docs/source/"
        "examples/3D%20THP1%20map%20001%20L5%20(B%2BR)%20(Sub%20BG).mat",
        "9c1de7b9e74b23e56d658577eaa67baa4fc50d6c1df0e7ffad1ccf87bf72eb1e",
        "Confocal Raman map of one layer of a THP-1 cell (Kallepitis et al., Nat. "
        "Commun. 2017), background subtracted, 40 x 40 pixels of 0.625 µm, 500 "
        "channels over 501-1802 cm⁻¹ (repository barahona-research-group/RamanSpy, "
        "BSD-3-Clause).",
    ),
    "lsmo_sto_eels_linescan": RealScan(
        "exspydemos_LSMO_STO_linescan.hspy",
        "https://github.com/hyperspy/exspy-demos/raw/HEAD/EELS/datasets/"
        "LSMO_STO_linescan.hspy",
        "f528d1e18c095a94f6dd74a2f446496f3636b17f698dbc4e61e8aa0315f3fa71",
        "EELS line scan across an La0.7Sr0.3MnO3/SrTiO3 interface, 10 pixels, "
        "395-906 eV (Ti L2,3, O K, Mn L2,3, La M4,5) (repository "
        "hyperspy/exspy-demos).",
    ),
}


def _store(path: str | os.PathLike):
    """A pooch registry of the real scans kept in ``path``; updates refused."""
    import pooch

    return pooch.create(
        path=path,
        base_url="",
        registry={
            scan.filename: f"sha256:{scan.sha256}" for scan in REAL_SCANS.values()
        },
        urls={scan.filename: scan.url for scan in REAL_SCANS.values()},
        allow_updates=False,
    )


def real_scan_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The local file of real scan ``name``, fetched if no verified copy is at hand.

    Parameters
    ----------
    name : str
        One of :data:`REAL_SCANS`.
    folder : path, optional
        A folder holding copies of the files (default: the
        ``HS_AEUNMIX_REAL_DATA`` environment variable). A copy there is
        used (after its SHA-256 is checked); without one, the file is
        fetched into pooch's cache.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        When the copy in ``folder`` is not the published file.
    """
    if name not in REAL_SCANS:
        raise ValueError(
            f"No real scan called {name!r}; choose one of {', '.join(REAL_SCANS)}."
        )
    scan = REAL_SCANS[name]
    folder = folder if folder is not None else os.environ.get(ENVIRONMENT_VARIABLE)
    if folder is None or not (Path(folder) / scan.filename).is_file():
        import pooch

        folder = pooch.os_cache("hs_aeunmix")
    try:
        return Path(_store(folder).fetch(scan.filename, progressbar=False))
    except ValueError as error:
        raise ValueError(
            f"{Path(folder) / scan.filename} is not the published {name} file (its "
            "SHA-256 differs); remove it, or point folder= or "
            f"{ENVIRONMENT_VARIABLE} at a verified copy."
        ) from error


def real_scan(name: str, folder: str | os.PathLike | None = None):
    """A real spectrum image as a HyperSpy signal (see :data:`REAL_SCANS`).

    ``"thp1_cell_raman"`` is a WITec Project FIVE export (a MATLAB struct):
    it becomes a ``Signal1D`` with navigation axes y, x (µm) and the Raman
    shift (cm⁻¹) as a non-uniform signal axis. The others load with
    ``hs.load`` (the ``.dm3`` as an exspy ``EELSSpectrum`` when exspy is
    installed).

    Examples
    --------
    >>> from hs_aeunmix.datasets import real_scan
    >>> s = real_scan("gaas_solar_cell_eels")  # doctest: +SKIP
    """
    import hyperspy.api as hs

    path = real_scan_path(name, folder)
    if name != "thp1_cell_raman":
        return hs.load(path)
    import scipy.io

    contents = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    record = next(value for key, value in contents.items() if not key.startswith("__"))
    ny, nx = (int(size) for size in np.atleast_1d(record.imagesize))
    shifts = np.asarray(record.axisscale[1, 0], dtype=float)
    positions = np.asarray(record.imageaxisscale[0, 0], dtype=float)
    step = float(np.mean(np.diff(positions))) if positions.size > 1 else 1.0
    axes = [
        {"name": "y", "units": "µm", "scale": step, "offset": 0.0, "size": ny},
        {"name": "x", "units": "µm", "scale": step, "offset": 0.0, "size": nx},
        {"name": "Raman shift", "units": "cm⁻¹", "axis": shifts},
    ]
    signal = hs.signals.Signal1D(
        np.asarray(record.data, dtype=float).reshape(ny, nx, -1), axes=axes
    )
    signal.metadata.General.title = "THP-1 cell, confocal Raman, layer 5"
    signal.metadata.set_item("Signal.quantity", "Intensity (a.u.)")
    return signal
