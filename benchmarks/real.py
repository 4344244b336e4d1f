"""Benchmark: the real scans of ``../shared/data/real`` against NMF.

None of them has an exact answer, so the table reports what can be judged:
the relative residual of ``s.get_decomposition_model()`` (the default and
HyperSpy's NMF with the same number of components, NMF on the data clipped
at zero), the number of pixels each endmember dominates (fraction > 0.5),
the stability report and the training seconds.

Usage::

    python benchmarks/real.py
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import hyperspy.api as hs
import numpy as np

import hs_aeunmix  # noqa: F401  (enables algorithm="ae")
from hs_aeunmix import datasets

REAL = Path(__file__).parents[1].parent / "shared" / "data" / "real"


# The number of endmembers of each: GaAs, 2-3 significant components (the
# data's README); THP-1, the 5 of the RamanSpy tutorial's N-FINDR; LSMO/STO,
# the two materials and their interface.
SCANS = {
    "GaAs solar cell EELS": ("gaas_solar_cell_eels", 3),
    "THP-1 cell Raman": ("thp1_cell_raman", 5),
    "LSMO/STO EELS line scan": ("lsmo_sto_eels_linescan", 3),
}


def relative_residual(signal, data=None) -> float:
    """What ``get_decomposition_model()`` leaves of ``data`` (default: the signal's)."""
    data = signal.data if data is None else data
    model = signal.get_decomposition_model().data
    return float(np.linalg.norm(model - data) / np.linalg.norm(data))


def measure(name: str, scan: str, n: int, seed: int = 0) -> dict:
    """The default and NMF on one scan."""
    signal = datasets.real_scan(scan, REAL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model = signal.decomposition(
            algorithm="ae",
            output_dimension=n,
            return_info=True,
            print_info=False,
            random_state=seed,
            show_progressbar=False,
        )
        seconds = time.perf_counter() - start
    residual = relative_residual(signal)
    spectra = signal.data.reshape(-1, signal.axes_manager.signal_size)
    fractions, _ = model.fractions(np.asarray(spectra, dtype=float))
    dominant = (fractions > 0.5).sum(axis=0)
    nmf = signal.deepcopy()
    np.clip(nmf.data, 0, None, out=nmf.data)
    nmf.decomposition(
        algorithm="NMF", output_dimension=n, print_info=False, random_state=seed
    )
    return {
        "name": name,
        "shape": signal.data.shape,
        "n": n,
        "residual": residual,
        # NMF is fitted to the data clipped at zero, but judged, as the
        # autoencoder, on what it leaves of the data themselves.
        "nmf": relative_residual(nmf, signal.data),
        "dominant": dominant.tolist(),
        "seconds": seconds,
        "init": model.init_,
        "pixel_scale": model.module_.has_pixel_scale,
        "background": model.baseline_components_.shape[0],
        "stability": str(model.stability_),
        "screening": model.screening_,
        "warnings": [str(w.message)[:100] for w in caught],
    }


def main() -> int:
    """Print the table."""
    hs.preferences.General.show_progressbar = False
    print(
        "| scan | shape | n | residual (ae) | residual (NMF) | ratio "
        "| pixels dominated (fraction > 0.5) | training (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    details = []
    for name, (scan, n) in SCANS.items():
        row = measure(name, scan, n)
        details.append(row)
        print(
            f"| {name} | {row['shape']} | {n} | {row['residual']:.4f} "
            f"| {row['nmf']:.4f} | {row['residual'] / row['nmf']:.2f} "
            f"| {row['dominant']} | {row['seconds']:.1f} |",
            flush=True,
        )
    for row in details:
        print(
            f"\n{row['name']}: start {row['init']}, per-pixel intensity "
            f"{row['pixel_scale']}, background terms {row['background']}, "
            f"screening {row['screening']}"
        )
        print(row["stability"])
        for message in row["warnings"]:
            print(f"  warning: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
