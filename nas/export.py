"""Export the best architectures of a study as YAML files that rebuild them exactly.

    python -m nas.export studies/skip_connections.yaml --top 5 --out DIR

Single objective: the top K points by their mean over repeats (full-budget trials only).
Several objectives: the Pareto set. Each file is an architecture config for
``python -m nas.train --arch-config FILE``; ``summary.md`` lists them. ``--stage S``: the
networks a promotion stage trained, each with its weights and its lineage
(nas/promotion/winners.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .promotion.winners import export, export_stage
from .study import StudyError, add_common_flags, load_study_from_args, output_folder, run_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.export", description=__doc__.split("\n")[0])
    add_common_flags(ap, search=False)
    ap.add_argument("--top", type=int, help="how many (default: the study's export.top)")
    ap.add_argument("--out", help="output folder (default: runs/<study>/export)")
    ap.add_argument("--stage", help="export the networks a promotion stage trained (weights and "
                                    "lineage) instead of the search's architectures")
    args = ap.parse_args(argv)

    def body() -> None:
        cfg = load_study_from_args(args)
        if args.top is not None and args.top < 1:
            raise StudyError(f"--top: {args.top}; allowed: a whole number >= 1")
        out = output_folder(Path(args.out or cfg.export.out or cfg.run_dir / "export"),
                            "--out" if args.out else "export.out", cfg.source)
        if args.stage:
            export_stage(cfg, args.stage, args.top or cfg.export.top, out)
        else:
            export(cfg, args.top or cfg.export.top, out)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
