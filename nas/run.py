"""Run a study: ``python -m nas.run studies/skip_connections.yaml``.

Trials are Ray Tune trials sampled by Optuna (through Ray Tune's OptunaSearch on a real
Optuna storage), pruned by the study's scheduler on validation accuracy per epoch
(nas/search/engine.py). Running the same command again continues the study: finished
trials are kept, trials of a killed driver are re-queued, and ``trials`` is the study's
total. ``--fresh`` restarts. The end: the ranking, the scheduler's table, the component
effects (a study that records per-image correctness) and the commands to go on with.
"""
from __future__ import annotations

import argparse
import sys

from .analysis.effects import print_end_of_run
from .search.engine import print_next_steps, run
from .study import add_common_flags, load_study_from_args, overrides_from_args, run_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.run", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    ap.add_argument("--fresh", action="store_true", help="delete the stored study and start over")
    args = ap.parse_args(argv)

    def body() -> None:
        cfg = load_study_from_args(args)
        study = run(cfg, fresh=args.fresh)
        print_end_of_run(study, cfg)
        print_next_steps(cfg, args.smoke_test, overrides_from_args(args))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
