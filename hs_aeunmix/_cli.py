"""Command line: ``hs-aeunmix demo``, ``train FILE -n N`` and ``apply MODEL FILES``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

_logger = logging.getLogger(__name__)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="folder for the results")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--no-progressbar", action="store_true", help="hide the progress bar"
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """Training options; those left out keep the estimator's defaults."""
    from hs_aeunmix._estimator import LOSS_CHOICES
    from hs_aeunmix._networks import ABUNDANCE_CONSTRAINTS, ENCODERS
    from hs_aeunmix.presets import PRESETS

    _add_output_options(parser)
    parser.add_argument("--preset", choices=list(PRESETS), help="a paper's method")
    parser.add_argument("--encoder", choices=list(ENCODERS))
    parser.add_argument("--abundance", choices=list(ABUNDANCE_CONSTRAINTS))
    parser.add_argument("--loss", choices=list(LOSS_CHOICES))
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument(
        "--spatial", action="store_true", default=None, help="use neighbouring pixels"
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state")


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
        "train",
        help="unmix a file HyperSpy can read; save the results and the model",
    )
    train.add_argument("file", type=Path, help="spectrum image (any HyperSpy format)")
    train.add_argument(
        "-n", "--n-components", type=int, required=True, help="number of endmembers"
    )
    _add_training_options(train)
    apply = commands.add_parser(
        "apply",
        help="unmix more scans with a trained model (no training)",
    )
    apply.add_argument(
        "model",
        type=Path,
        help="model file (.aeunmix) or a results file (.hspy) unmixed with 'ae'",
    )
    apply.add_argument(
        "files", type=Path, nargs="+", help="spectrum images (any HyperSpy format)"
    )
    _add_output_options(apply)
    return parser


def _estimator_options(args: argparse.Namespace) -> dict:
    given = {
        "preset": args.preset,
        "encoder": args.encoder,
        "abundance": args.abundance,
        "loss": args.loss,
        "max_epochs": args.max_epochs,
        "spatial": args.spatial,
    }
    return {
        **{name: value for name, value in given.items() if value is not None},
        "random_state": args.seed,
        "device": args.device,
        "show_progressbar": not args.no_progressbar,
    }


def _describe(signal, stem: str) -> str:
    return (
        f"{signal.metadata.General.title or stem}: "
        f"{signal.axes_manager.navigation_shape} pixels x "
        f"{signal.axes_manager.signal_size} channels"
    )


def _write_results(signal, output: Path, stem: str, reference=None) -> list[Path]:
    """The results file and the two figures of a decomposed signal."""
    from hs_aeunmix._figures import abundance_figure, endmember_figure

    output.mkdir(parents=True, exist_ok=True)
    results_file = output / f"{stem}_ae.hspy"
    endmember_path = output / f"{stem}_endmembers.png"
    abundance_path = output / f"{stem}_abundances.png"
    signal.save(results_file, overwrite=True)
    endmember_figure(signal.get_decomposition_factors(), reference).savefig(
        endmember_path, dpi=120
    )
    abundance_figure(signal.get_decomposition_loadings()).savefig(
        abundance_path, dpi=120
    )
    return [results_file, endmember_path, abundance_path]


def _train_and_save(
    signal, n_components: int, args, output: Path, stem: str, truth=None
):
    """Train on ``signal``; write results, model and figures; print a summary."""
    from hs_aeunmix import metrics

    start = time.perf_counter()
    model = signal.decomposition(
        algorithm="ae",
        output_dimension=n_components,
        return_info=True,
        print_info=False,
        **_estimator_options(args),
    )
    seconds = time.perf_counter() - start
    history = model.history_
    best = history.best_epoch
    lines = [
        f"data            {_describe(signal, stem)}",
        f"endmembers      {n_components}",
        f"training        {seconds:.2f} s, {history.n_epochs} epochs "
        f"(best {best + 1}), device {model.device_}",
        f"final loss      training {history.train_loss[best]:.4g}"
        + (
            f", validation {history.validation_loss[best]:.4g}"
            if history.validation_loss
            else ""
        ),
    ]
    reference = None
    if truth is not None:
        factors = signal.learning_results.factors.T
        scores = metrics.unmixing_scores(
            factors, signal.learning_results.loadings, truth
        )
        order = np.array(scores["order"])
        lines += [
            "spectral angle  "
            + ", ".join(f"{np.degrees(a):.2f}°" for a in scores["sad_rad"].values())
            + f" (mean {scores['mean_sad_rad']:.4f} rad)",
            f"abundance RMSE  {scores['abundance_rmse']:.4f} (fractions)",
        ]
        reference = np.full_like(factors, np.nan)
        reference[order] = truth.endmembers
    output.mkdir(parents=True, exist_ok=True)
    written = [*_write_results(signal, output, stem, reference)]
    written.append(model.save(output / f"{stem}.aeunmix"))
    lines += [f"wrote           {path}" for path in written]
    print("\n".join(lines))
    return model


def _load_single_signal(path: Path):
    import hyperspy.api as hs

    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    signal = hs.load(path)
    if isinstance(signal, list):
        raise ValueError(
            f"{path} holds {len(signal)} signals; save the spectrum image on its "
            "own and try again."
        )
    return signal


def run_demo(args: argparse.Namespace) -> int:
    from hs_aeunmix.datasets import eels_chequerboard

    signal, truth = eels_chequerboard(3, random_state=args.seed)
    output = args.output or Path("hs_aeunmix_demo")
    print(
        "Built-in data: synthetic EELS chequerboard, 3 endmembers (64 x 64 x 200, "
        "Poisson noise)."
    )
    _train_and_save(signal, 3, args, output, "eels_chequerboard", truth=truth)
    return 0


def run_train(args: argparse.Namespace) -> int:
    signal = _load_single_signal(args.file)
    output = args.output or args.file.parent
    _train_and_save(signal, args.n_components, args, output, args.file.stem)
    return 0


def run_apply(args: argparse.Namespace) -> int:
    """Unmix every file with the model; a file that fails does not stop the rest."""
    from hyperspy.external.progressbar import progressbar

    from hs_aeunmix._estimator import load_model

    model = load_model(args.model, device=args.device)
    failures = 0
    files = progressbar(
        args.files, desc="Unmixing scans", unit="scan", disable=args.no_progressbar
    )
    for path in files:
        try:
            signal = _load_single_signal(path)
            start = time.perf_counter()
            signal.decomposition(algorithm="ae", model=model, print_info=False)
            seconds = time.perf_counter() - start
            written = _write_results(signal, args.output or path.parent, path.stem)
        except (OSError, ValueError, TypeError) as error:
            failures += 1
            print(f"hs-aeunmix: {path}: {error}", file=sys.stderr)
            continue
        files.write(
            f"{_describe(signal, path.stem)}: unmixed in {seconds:.3f} s, wrote "
            + ", ".join(str(item) for item in written)
        )
    if failures:
        print(
            f"hs-aeunmix: {failures} of {len(args.files)} scans failed",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hs-aeunmix`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    import hs_aeunmix  # noqa: F401  (enables algorithm="ae")

    runner = {"demo": run_demo, "train": run_train, "apply": run_apply}[args.command]
    try:
        return runner(args)
    except (OSError, ValueError, TypeError, NotImplementedError) as error:
        print(f"hs-aeunmix: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
