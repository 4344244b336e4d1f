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

With ``--batch-sizes``, only the cost of a whole training step per
spectrum at those batch sizes (whether fewer, wider steps would help).
With ``--paper-length SEED ...``, the preset trained as the paper trains
(5,800 steps) on eels3, each seed twice in its own process: eagerly
(``TORCHDYNAMO_DISABLE=1``) and with its steps through ``torch.compile``
(what training does for a run that long): seconds, angle to the truth and
the held-out loss of the weights kept.

Usage::

    python benchmarks/conv_encoder.py            # about 8 minutes on 2 cores
    python benchmarks/conv_encoder.py --seed 1
    python benchmarks/conv_encoder.py --batch-sizes 128 256 512 1024
    python benchmarks/conv_encoder.py --batch-sizes 128 --compile
    python benchmarks/conv_encoder.py --paper-length 0 1 2   # about 9 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
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


def _preset_network(n_spectra: int, n_channels: int):
    """Random spectra and the ``pnas2024`` network fitted to them for one epoch.

    In training mode: what a training step's time is measured on.
    """
    from hs_aeunmix import AEUnmix, presets

    rng = np.random.default_rng(0)
    spectra = rng.random((n_spectra, n_channels)).astype(np.float32) + 0.1
    model = AEUnmix(3, random_state=0, show_progressbar=False)
    model.set_params(**{**presets.pnas2024(3), "max_epochs": 1})
    model.fit(spectra)
    model.module_.train()
    return spectra, model.module_


def step_table(n_channels: int = 200, batch_size: int = 128, repeats: int = 20) -> str:
    import torch

    from hs_aeunmix._allocator import freed_memory_reused

    spectra, module = _preset_network(batch_size * 4, n_channels)
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


def batch_table(
    batch_sizes: list[int], n_channels: int = 200, compiled: bool = False
) -> str:
    """Forward, backward and Adam step of the whole network per spectrum.

    Whether wider steps would bring the paper's training length (about
    742,000 spectrum passes) under 60 s: it needs under 0.08 ms each.
    ``compiled``: the loss through ``torch.compile`` (the first call, which
    compiles, timed apart).
    """
    import torch

    from hs_aeunmix._allocator import freed_memory_reused

    spectra, module = _preset_network(max(batch_sizes), n_channels)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)

    def loss(batch):
        reconstruction, _ = module(batch)
        return ((reconstruction - batch) ** 2).mean()

    if compiled:
        loss = torch.compile(loss)

    def step(batch):
        optimizer.zero_grad()
        loss(batch).backward()
        optimizer.step()

    label = "compiled" if compiled else "eager"
    lines = [
        f"| {n_channels} channels, {label}: batch | ms per step | ms per spectrum "
        "| first step (s) |",
        "| --- | --- | --- | --- |",
    ]
    with freed_memory_reused():
        for size in batch_sizes:
            batch = torch.from_numpy(spectra[:size])
            start = time.perf_counter()
            step(batch)
            first = time.perf_counter() - start
            repeats = max(5, 2560 // size)
            start = time.perf_counter()
            for _ in range(repeats):
                step(batch)
            seconds = (time.perf_counter() - start) / repeats
            lines.append(
                f"| {size} | {seconds * 1e3:.1f} | {seconds / size * 1e3:.3f} "
                f"| {first:.1f} |"
            )
    return "\n".join(lines)


def paper_length_run(seed: int) -> dict:
    """Train the preset as the paper does on eels3 (scan seed 0) with ``seed``."""
    import hyperspy.api as hs

    from hs_aeunmix.metrics import mean_spectral_angle

    hs.preferences.General.show_progressbar = False
    signal, case = run.CASES["eels3"](0)
    start = time.perf_counter()
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=case.endmembers.shape[0],
        preset="pnas2024",
        return_info=True,
        random_state=seed,
        print_info=False,
    )
    factors = np.asarray(signal.learning_results.factors).T
    return {
        "seconds": time.perf_counter() - start,
        "angle": mean_spectral_angle(factors, case.endmembers),
        "loss": model.history_.best_loss,
        "epochs": model.history_.n_epochs,
    }


def paper_length_table(seeds: list[int]) -> str:
    """Eager against compiled steps, each run in a fresh process."""
    lines = [
        "| seed | steps | seconds | angle (rad) | held-out loss kept | epochs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for seed in seeds:
        for label, disable in (("eager", "1"), ("compiled", "0")):
            result = subprocess.run(
                [sys.executable, __file__, "--paper-length-child", str(seed)],
                capture_output=True,
                text=True,
                env={**os.environ, "TORCHDYNAMO_DISABLE": disable},
            )
            if result.returncode:
                sys.exit(f"seed {seed}, {label} failed:\n{result.stderr}")
            r = json.loads(result.stdout.strip().splitlines()[-1])
            lines.append(
                f"| {seed} | {label} | {r['seconds']:.1f} | {r['angle']:.4f} "
                f"| {r['loss']:.5g} | {r['epochs']} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        help="only the per-spectrum cost of a training step at these batch sizes",
    )
    parser.add_argument(
        "--paper-length",
        type=int,
        nargs="+",
        metavar="SEED",
        help="only the paper-length training, eager and compiled, per seed",
    )
    parser.add_argument("--paper-length-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="with --batch-sizes: the loss through torch.compile",
    )
    args = parser.parse_args(argv)
    import hyperspy.api as hs

    hs.preferences.General.show_progressbar = False
    if args.paper_length_child is not None:
        warnings.simplefilter("ignore")
        print(json.dumps(paper_length_run(args.paper_length_child)))
        return 0
    if args.paper_length:
        print(paper_length_table(args.paper_length), flush=True)
        return 0
    if args.batch_sizes:
        print(batch_table(args.batch_sizes, compiled=args.compile), flush=True)
        return 0
    print(step_table(), flush=True)
    print()
    accuracy_table(args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
