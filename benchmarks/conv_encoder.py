"""The ``pnas2024`` preset (the seed paper's convolutional encoder) on eels3.

Prints two tables:

1. accuracy and training time of the preset as the paper trains it (VCA
   start, step size 1e-3 for encoder and endmembers, non-negative
   abundances without sum-to-one, no per-pixel intensity, 20 epochs) and
   with one of those choices changed at a time, against the default;
2. where a training step's time goes: forward and backward through the
   encoder, its four convolutional branches run one after the other (as
   their layers are written) and fused (as the encoder computes them), and
   through the whole network, per batch (the allocator set as in training,
   see ``hs_aeunmix._allocator``).

Usage::

    python benchmarks/conv_encoder.py            # about 8 minutes on 2 cores
    python benchmarks/conv_encoder.py --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import run  # the named cases and their scoring

PRESET = {"preset": "pnas2024", "max_epochs": 20}
VARIANTS = {
    "pnas2024 as in the paper (20 epochs)": PRESET,
    "  trained 3 x longer (60 epochs)": {**PRESET, "max_epochs": 60},
    "  starts of the default (init='auto')": {**PRESET, "init": "auto"},
    "  endmember step 10 x smaller": {**PRESET, "endmember_learning_rate": 1e-4},
    "  sum-to-one abundances": {**PRESET, "abundance": "sum_to_one"},
    "  sum-to-one, per-pixel intensity": {
        **PRESET,
        "abundance": "sum_to_one",
        "pixel_scale": "auto",
    },
    "default (dense encoder)": {},
}


def accuracy_table(seed: int) -> None:
    """Print the accuracy table, a row as each variant finishes."""
    print("| variant | angle (rad) | abundance RMSE | epochs | training s |")
    print("| --- | --- | --- | --- | --- |", flush=True)
    for label, options in VARIANTS.items():
        method = run._ae(**options)
        signal, truth = run.CASES["eels3"](seed)
        start = time.perf_counter()
        result = method(signal, truth.endmembers.shape[0], seed)
        seconds = time.perf_counter() - start
        endmembers, loadings, *reconstruction = result
        scores = run.peers.score(signal, truth, endmembers, loadings, *reconstruction)
        model = _model(method)
        epochs = model.n_iter_ if model is not None else float("nan")
        print(
            f"| {label} | {scores['angle']:.4f} | {scores['rmse']:.3f} | "
            f"{epochs} | {seconds:.1f} |",
            flush=True,
        )


def _model(method):
    """The model the last call of a ``run._ae`` method trained."""
    for cell in method.__closure__ or ():
        model = getattr(cell.cell_contents, "model", None)
        if model is not None:
            return model
    return None


def step_table(n_channels: int = 200, batch_size: int = 128, repeats: int = 20) -> str:
    import torch

    from hs_aeunmix import AEUnmix, presets
    from hs_aeunmix._allocator import freed_memory_reused

    rng = np.random.default_rng(0)
    spectra = rng.random((batch_size * 4, n_channels)).astype(np.float32) + 0.1
    model = AEUnmix(3, random_state=0, show_progressbar=False)
    model.set_params(**{**presets.pnas2024(3), "max_epochs": 1})
    model.fit(spectra)
    module = model.module_
    module.train()
    batch = torch.from_numpy(spectra[:batch_size])
    encoder = module.encoder

    def timed(step) -> float:
        step()  # warm up
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        return (time.perf_counter() - start) / repeats * 1000

    def branches_one_by_one():
        # The layers of each branch run in turn, as they are written.
        maps = torch.cat(
            [branch(batch.unsqueeze(1)) for branch in encoder.branches], dim=1
        )
        encoder.reduction(encoder.merge(maps).squeeze(1)).sum().backward()

    def branches_fused():
        # As the encoder's forward computes them (one matrix, batch norm folded).
        encoder(batch).sum().backward()

    def whole_network():
        reconstruction, _ = module(batch)
        ((reconstruction - batch) ** 2).mean().backward()

    with freed_memory_reused():
        rows = [
            (
                "encoder, branch by branch, forward + backward",
                timed(branches_one_by_one),
            ),
            ("encoder, fused, forward + backward", timed(branches_fused)),
            ("whole network, forward + backward", timed(whole_network)),
        ]
    lines = [
        f"| {n_channels} channels, batch {batch_size} | ms per step |",
        "| --- | --- |",
    ]
    lines += [f"| {label} | {ms:.1f} |" for label, ms in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import hyperspy.api as hs

    hs.preferences.General.show_progressbar = False
    print(step_table(), flush=True)
    print()
    accuracy_table(args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
