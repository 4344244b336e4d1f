"""Which Raman scenes does ``baseline="auto"`` give a background, and why?

``baseline="auto"`` keeps its background model when the spectra hold a
smooth background that varies between pixels
(:func:`hs_aeunmix._baseline.holds_background`): by the residual test
(removing polynomials lowers the rank-n residual by more than the noise
explains and by a share of its misfit) or, since 2026-12-05 (seventeenth
session), when the polynomials' directions carry nearly all the spectra's
variation between pixels above the noise
(:data:`hs_aeunmix._baseline.SMOOTH_SHARE`). This prints, for the Raman
scenes of the family and of the Raman-compound generator, per split, how
many scenes with and without a background each rule gives one, and the
range of the smooth share on each kind; then the scenes the share decides.
Nothing is trained: the numbers are computed on each scene's spectra as
generated (training decides on its screened, scaled sample, which can
differ on a scene near a threshold).

Usage::

    python benchmarks/background_share.py              # about two minutes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import family

GENERATORS = ("family", "raman_compounds")


def has_background(description) -> bool:
    """Whether the generator drew a background for the scene."""
    return "background" in description.subgroups or (
        getattr(description, "baseline_amplitude", 0.0) > 0
    )


def scene_evidence(generator: str, index: int, split: str):
    """``(truth, evidence)`` of a Raman scene, None for another modality."""
    from hs_aeunmix._baseline import AUTO_DEGREE, background_evidence

    signal, truth, description = family.generated(generator, index, split)
    if description.modality != "raman":
        return None
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    evidence = background_evidence(spectra, truth.n_endmembers, AUTO_DEGREE, index)
    return has_background(description), evidence


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=60)
    args = parser.parse_args(argv)
    print(
        "| generator | split | with a background | found by the residual test "
        "| found now | smooth share (with) | without | given one by the "
        "residual test | given one now | smooth share (without) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    decided = []
    for generator in GENERATORS:
        for split in ("development", "held_out"):
            rows = []
            for index in range(args.n_scenes):
                found = scene_evidence(generator, index, split)
                if found is not None:
                    rows.append((index, *found))
            cells = []
            for truth in (True, False):
                kind = [(i, e) for i, t, e in rows if t is truth]
                cells += [
                    str(len(kind)),
                    str(sum(e.residual_test for _, e in kind)),
                    str(sum(e.held for _, e in kind)),
                    _range([e.smooth_share for _, e in kind]),
                ]
                decided += [
                    (generator, split, i, truth, e)
                    for i, e in kind
                    if e.held != e.residual_test
                ]
            print(f"| {generator} | {split} | " + " | ".join(cells) + " |", flush=True)
    print("\nScenes the smooth share gives a background the residual test does not:\n")
    for generator, split, index, truth, evidence in decided:
        print(
            f"* {generator} {split} {index}: "
            f"{'a' if truth else 'no'} background, smooth share "
            f"{evidence.smooth_share:.3f} ({evidence.smooth_to_noise:.0f} times "
            "the noise)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
