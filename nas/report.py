"""Figures and a markdown summary of a study, from what its storage holds.

    python -m nas.report studies/skip_connections.yaml [--storage URL] --out DIR \\
        [--checkpoint runs/train/.../best.pt]

Writes PNG and PDF per figure (each a registered figure class of nas/analysis/figures.py:
ablation, intervals, effects, accuracy_energy, accuracy_params, firing_rates, token_mixing,
learning_curves, zero_cost, and lineage for a study with promotion stages) and
``summary.md`` (nas/analysis/report.py). A figure whose data does not exist is skipped, and
the command says why.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .analysis.report import report
from .study import StudyError, add_common_flags, load_study_from_args, output_folder, run_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.report", description=__doc__.split("\n")[0])
    add_common_flags(ap, search=False)
    ap.add_argument("--out", help="output folder (default: runs/<study>/report)")
    ap.add_argument("--checkpoint", help="a trained model (nas.train --out DIR: best.pt) for the "
                                         "token-mixing weights and measured firing rates")
    ap.add_argument("--images", type=int, default=64, help="validation images to measure on (64)")
    ap.add_argument("--block", type=int, default=0, help="block of each stage whose token "
                                                         "mixing is drawn (0)")
    ap.add_argument("--top", type=int, help="only the best N configurations in the figures and tables "
                                            "(default: all)")
    args = ap.parse_args(argv)

    def body() -> None:
        cfg = load_study_from_args(args)
        if args.checkpoint and not Path(args.checkpoint).is_file():
            raise StudyError(f"--checkpoint: no such file: {args.checkpoint}")
        if args.top is not None and args.top < 1:
            raise StudyError(f"--top {args.top}: at least 1")
        out = output_folder(Path(args.out or cfg.run_dir / "report"),
                            "--out" if args.out else "runs_dir", cfg.source)
        for name, got in report(cfg, out, args.checkpoint, args.images, args.block, args.top).items():
            if isinstance(got, list):
                print(f"wrote {name}: " + ", ".join(str(p) for p in got))
            else:
                print(f"skipped {name}: {got}")
        print(f"wrote {out / 'summary.md'}")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
