"""Is a cheap setting ranking architectures like the expensive one? Measure it.

    python -m nas.calibrate STUDY.yaml --low fidelity.max_epochs=5 --high fidelity.max_epochs=50 --k 8
    python -m nas.calibrate STUDY.yaml --low data.image_size=32 --low arch.T=1 --high arch.T=4
    python -m nas.calibrate STUDY.yaml --free     # from the stored learning curves, no training

What is measured and stored: nas/analysis/calibration.py.
"""
from __future__ import annotations

import argparse
import sys

from .analysis.calibration import calibrate, free_calibration
from .study import StudyError, add_common_flags, load_study, overrides_from_args, parse_set, run_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.calibrate", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    ap.add_argument("--low", action="append", default=[], metavar="FIELD=VALUE",
                    help="the cheap setting (study fields, like --set; repeatable)")
    ap.add_argument("--high", action="append", default=[], metavar="FIELD=VALUE",
                    help="the expensive setting (repeatable)")
    ap.add_argument("--k", type=int, default=8, help="architectures trained at both (default: 8)")
    ap.add_argument("--free", action="store_true",
                    help="instead: epoch e vs the final epoch from the stored study's curves")
    args = ap.parse_args(argv)

    def body() -> None:
        base = overrides_from_args(args)
        if args.free:
            free_calibration(load_study(args.study, base, smoke=args.smoke_test))
            return
        if not args.low or not args.high:
            raise StudyError("--low and --high: give both settings (or --free)")
        if args.k < 3:
            raise StudyError(f"--k {args.k}: at least 3 points are needed for a rank correlation")
        calibrate(args.study, base, [parse_set(s) for s in args.low], [parse_set(s) for s in args.high],
                  args.k, smoke=args.smoke_test)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
