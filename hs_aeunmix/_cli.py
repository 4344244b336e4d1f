"""Command line: ``hs-aeunmix demo`` and ``hs-aeunmix train FILE -n N``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

_logger = logging.getLogger(__name__)


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="folder for the results")
    parser.add_argument("--encoder", choices=["dense", "conv"], default="dense")
    parser.add_argument(
        "--abundance", choices=["sum_to_one", "nonnegative"], default="sum_to_one"
    )
    parser.add_argument(
        "--loss", choices=["mse", "sad", "mse_sad", "poisson"], default="mse"
    )
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--no-progressbar", action="store_true", help="hide the progress bar"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hs-aeunmix",
        description="Unmix spectrum images with a physics-constrained autoencoder.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="unmix a built-in synthetic EELS spectrum image and score the result",
    )
    _add_training_options(demo)
    train = commands.add_parser(
        "train", help="unmix a file HyperSpy can read and save the results"
    )
    train.add_argument("file", type=Path, help="spectrum image (any HyperSpy format)")
    train.add_argument(
        "-n", "--n-components", type=int, required=True, help="number of endmembers"
    )
    _add_training_options(train)
    return parser


def _estimator_options(args: argparse.Namespace) -> dict:
    return {
        "encoder": args.encoder,
        "abundance": args.abundance,
        "loss": args.loss,
        "max_epochs": args.max_epochs,
        "random_state": args.seed,
        "device": args.device,
        "show_progressbar": not args.no_progressbar,
    }


def _unmix_and_save(
    signal, n_components: int, args, output: Path, stem: str, truth=None
):
    """Train on ``signal``, write the results file and figures, print a summary."""
    from hs_aeunmix import metrics
    from hs_aeunmix._figures import abundance_figure, endmember_figure

    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=n_components,
        return_info=True,
        print_info=False,
        **_estimator_options(args),
    )
    seconds = time.perf_counter() - start
    factors = signal.get_decomposition_factors()
    loadings = signal.get_decomposition_loadings()
    history = model.history_
    lines = [
        f"data            {signal.metadata.General.title or stem}: "
        f"{signal.axes_manager.navigation_shape} pixels x "
        f"{signal.axes_manager.signal_size} channels",
        f"endmembers      {n_components}",
        f"training        {seconds:.2f} s, {history.n_epochs} epochs "
        f"(best {history.best_epoch + 1}), device {model.device_}",
        f"final loss      training {history.train_loss[history.best_epoch]:.4g}"
        + (
            f", validation {history.validation_loss[history.best_epoch]:.4g}"
            if history.validation_loss
            else ""
        ),
    ]
    reference = None
    if truth is not None:
        flat_truth = truth.abundances.reshape(-1, truth.abundances.shape[-1])
        order = metrics.match_endmembers(factors.data, truth.endmembers)
        angles = metrics.spectral_angles(factors.data, truth.endmembers)
        rmse = metrics.abundance_rmse(
            signal.learning_results.loadings, flat_truth, order=order, scale="none"
        )
        lines += [
            "spectral angle  "
            + ", ".join(f"{np.degrees(a):.2f}°" for a in angles)
            + f" (mean {np.mean(angles):.4f} rad)",
            f"abundance RMSE  {rmse:.4f} (fractions, sum-to-one)",
        ]
        reference = np.full_like(factors.data, np.nan)
        reference[order] = truth.endmembers
    results_file = output / f"{stem}_ae.hspy"
    signal.save(results_file, overwrite=True)
    endmember_path = output / f"{stem}_endmembers.png"
    abundance_path = output / f"{stem}_abundances.png"
    endmember_figure(factors, reference).savefig(endmember_path, dpi=120)
    abundance_figure(loadings).savefig(abundance_path, dpi=120)
    lines += [
        f"wrote           {path}"
        for path in (results_file, endmember_path, abundance_path)
    ]
    print("\n".join(lines))
    return model


def run_demo(args: argparse.Namespace) -> int:
    from hs_aeunmix.datasets import eels_chequerboard

    signal, truth = eels_chequerboard(3, random_state=args.seed)
    output = args.output or Path("hs_aeunmix_demo")
    print(
        "Built-in data: synthetic EELS chequerboard, 3 endmembers (64 x 64 x 200, "
        "Poisson noise)."
    )
    _unmix_and_save(signal, 3, args, output, "eels_chequerboard", truth=truth)
    return 0


def run_train(args: argparse.Namespace) -> int:
    import hyperspy.api as hs

    if not args.file.exists():
        print(f"hs-aeunmix: no such file: {args.file}", file=sys.stderr)
        return 2
    signal = hs.load(args.file)
    if isinstance(signal, list):
        print(
            f"hs-aeunmix: {args.file} holds {len(signal)} signals; save the "
            "spectrum image on its own and try again.",
            file=sys.stderr,
        )
        return 2
    output = args.output or args.file.parent
    _unmix_and_save(signal, args.n_components, args, output, args.file.stem)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hs-aeunmix`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    import hs_aeunmix  # noqa: F401  (enables algorithm="ae")

    runner = {"demo": run_demo, "train": run_train}[args.command]
    try:
        return runner(args)
    except (ValueError, TypeError, NotImplementedError) as error:
        print(f"hs-aeunmix: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
