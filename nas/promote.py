"""Promote a study's winners to a larger budget.

    python -m nas.promote studies/skip_connections.yaml --stage long

Trains the top K architectures of the study under the stage's settings (more epochs, the
full data set, ImageNet at 224 ...) and records each result in the linked Optuna study
``<study>-<stage>`` (same storage). A stage with ``from: <stage>`` trains that stage's top
K from their checkpoints, and runs it first if it has not run (nas/promotion/lineage.py). Re-running
skips what is recorded, and a training run that was interrupted resumes from its last
checkpoint. ``workers > 1`` trains with
distributed data parallel through Ray Train's TorchTrainer on the Ray cluster.
"""
from __future__ import annotations

import argparse
import sys

from .promotion.stage import promote
from .study import add_common_flags, load_study_from_args, run_command


def print_promoted(linked, title: str) -> None:
    """The linked study as a table: source trial, repeat, accuracies, epochs, time."""
    from rich.console import Console
    from rich.table import Table

    def pct(v) -> str:
        return "–" if v is None else f"{100 * v:.2f}"

    table = Table(title=title)
    for col in ("source trial", "repeat", "val acc %", "best val %", "test acc %", "epochs", "wall"):
        table.add_column(col, justify="right")
    for t in linked.get_trials(deepcopy=False):
        a = t.user_attrs
        table.add_row(str(a.get("source_trial")), str(a.get("repeat")), pct(t.value),
                      pct(a.get("best_val_acc")), pct(a.get("test_acc")), str(a.get("epochs")),
                      f"{a.get('wall_seconds') or 0:.0f} s")
    Console(width=120).print(table)
    print(f"results: the Optuna study {linked.study_name!r} in the same storage")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.promote", description=__doc__.split("\n")[0])
    add_common_flags(ap, search=False)
    ap.add_argument("--stage", required=True, help="a stage of the study's promotion section")
    ap.add_argument("--top", type=int, help="how many (default: the stage's top)")
    ap.add_argument("--fresh", action="store_true",
                    help="delete what the stage recorded (its linked study, its checkpoints) and train it again")
    args = ap.parse_args(argv)

    def body() -> None:
        cfg = load_study_from_args(args)
        if args.data_root and args.stage in cfg.promotion:
            cfg.promotion[args.stage].data["root"] = cfg.data.root  # --data-root: the stage's too
        print_promoted(promote(cfg, args.stage, args.top, fresh=args.fresh), f"{cfg.name}: stage {args.stage}")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
