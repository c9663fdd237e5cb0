"""What each component of a study's space contributes to accuracy, and how sure we are.

    python -m nas.effects STUDY [--storage URL] [--epoch E] [--margin M] [--json]
    python -m nas.effects STUDY --plan --delta 1.0 [--power 0.8]

Main effects and two-factor interactions with 95% intervals, p-values and decisions
(positive, negative, negligible within +-margin points, undecided), from the per-image
correctness the study's trials recorded; ``--plan`` sizes the next, longer run from this
one as a pilot (nas/analysis/effects.py, docs/ablations.md).
"""
from __future__ import annotations

import argparse
import sys

from .study import StudyError, add_common_flags, load_study_from_args, run_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.effects", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    ap.add_argument("--epoch", type=int, help="estimate at this epoch (default: the last "
                                              "that every point reached)")
    ap.add_argument("--margin", type=float, help="equivalence margin in accuracy points "
                                                 "(default: the study's race.margin)")
    ap.add_argument("--json", action="store_true", help="print the effects as JSON")
    ap.add_argument("--plan", action="store_true", help="seeds needed for the next run, with "
                                                        "this study as the pilot")
    ap.add_argument("--delta", type=float, default=1.0, help="--plan: the effect to detect, "
                                                             "accuracy points (default 1)")
    ap.add_argument("--power", type=float, default=0.8, help="--plan: the power (default 0.8)")
    args = ap.parse_args(argv)

    def body() -> None:
        from .analysis.effects import (NoEffects, plan, plan_markdown, print_effects,
                                       study_effects, write_json)
        from .search.results import load_existing_study

        for flag, value, ok in (("--margin", args.margin, args.margin is None or 0 < args.margin < 100),
                                ("--delta", args.delta, 0 < args.delta < 100),
                                ("--power", args.power, 0 < args.power < 1)):
            if not ok:
                raise StudyError(f"{flag}: {value}; allowed: {'0 < power < 1' if flag == '--power' else 'between 0 and 100 points'}")
        cfg = load_study_from_args(args)
        study = load_existing_study(cfg)
        try:
            result = study_effects(study, cfg, args.epoch, args.margin)
            if args.plan:
                print(plan_markdown(plan(result, args.delta / 100, args.power), result,
                                    args.delta / 100, args.power))
            elif args.json:
                print(write_json(result))
            else:
                print_effects(result, cfg.name)
        except NoEffects as err:
            raise StudyError(f"{cfg.source}: {err}") from None

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
