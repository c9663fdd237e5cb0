"""Training-free scores: rank untrained spiking networks by one forward pass.

    python -m nas.zero_cost STUDY.yaml --candidates 1000 [--scorers snn_hamming,params]
                                       [--batch 16] [--seed 0] [--T 2]
    python -m nas.zero_cost STUDY.yaml --trained   # score what it trained; Kendall's tau

samples N distinct points of the study's space, builds each network (seeded per point),
runs ONE forward on a fixed batch of validation images with a hook on every spiking layer,
computes every requested scorer from that shared pass, prints a ranked table and stores the
scores in the study's storage (user attr ``zero_cost`` of the Optuna study: a list of
``{point, scores, settings}``, merged with earlier runs; no trials are created).

Scorers (``snn_hamming``, ``params``, ``grad_norm``; one class each): :mod:`nas.scoring`.
"""
from __future__ import annotations

import argparse
import math
import sys

from .scoring import DEFAULT_SCORERS, ZeroCostError, available_scorers, get_scorers
from .search.scores import score_study
from .study import add_common_flags, load_study_from_args, run_command


def _fmt(v: float) -> str:
    return f"{int(v):,}" if math.isfinite(v) and v == int(v) and abs(v) >= 1000 else f"{v:.4g}"


def _table(rows: list[dict], names: list[str], top: int, order=()) -> None:
    from rich.console import Console
    from rich.table import Table

    from .search.results import config_label

    first = names[0]
    ranked = sorted(rows, key=lambda r: -r["scores"][first]
                    if not math.isnan(r["scores"][first]) else math.inf)
    title = f"zero-cost scores, ranked by {first} (top {min(top, len(rows))} of {len(rows)})"
    t = Table(title=title, min_width=len(title))  # the title on one line, however short the labels
    t.add_column("#", justify="right")
    for n in names:
        t.add_column(n, justify="right")
    t.add_column("point")
    for i, r in enumerate(ranked[:top], 1):
        t.add_row(str(i), *(_fmt(r["scores"][n]) for n in names),
                  config_label(r["point"], order))
    Console(width=200).print(t)


# ---- command line --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.zero_cost", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--candidates", type=int, help="points to sample and score")
    what.add_argument("--trained", action="store_true",
                      help="score the points the study has trained, and print how well each "
                           "score agrees with their accuracy (Kendall's tau)")
    ap.add_argument("--scorers", default=",".join(DEFAULT_SCORERS),
                    help=f"comma-separated (default: {','.join(DEFAULT_SCORERS)}); the first ranks "
                         f"the table; known: {', '.join(available_scorers())}")
    ap.add_argument("--batch", type=int, default=16, help="validation images per forward (default: 16)")
    ap.add_argument("--seed", type=int, default=0, help="sampling and init seed (default: 0)")
    ap.add_argument("--T", type=int, default=None,
                    help="score every network at T steps (default: each point's own T)")
    ap.add_argument("--top", type=int, default=20, help="rows of the printed table (default: 20)")
    args = ap.parse_args(argv)
    return run_command(lambda: run_zero_cost(args))


def run_zero_cost(args) -> list[dict]:
    from .search.engine import open_study

    scorers = get_scorers(args.scorers)
    if args.candidates is not None and args.candidates < 1:
        raise ZeroCostError(f"--candidates {args.candidates}: at least 1")
    if args.batch < 2:
        raise ZeroCostError(f"--batch {args.batch}: at least 2 images (a kernel over one image "
                            "says nothing)")
    if args.T is not None and args.T < 1:
        raise ZeroCostError(f"--T {args.T}: at least 1")
    cfg = load_study_from_args(args)
    space = cfg.load_space()
    study, _ = open_study(cfg, space)  # created if the study has not run yet
    if args.trained:
        from .analysis.zero_cost_agreement import trained_accuracy

        points = [p for p, _, _ in trained_accuracy(study).values()]
        if not points:
            raise ZeroCostError(f"--trained: the study {cfg.name!r} has no COMPLETE trial yet")
    else:
        points = space.distinct_points(args.candidates, args.seed)
    rows = score_study(cfg, study, space, points, scorers, batch=args.batch,
                       seed=args.seed, T=args.T, log=lambda m: print(m, flush=True))
    _table(rows, [s.name for s in scorers], args.top, [p.name for p in space.parameters])
    if args.trained:
        from .analysis.zero_cost_agreement import agreement_markdown

        print(agreement_markdown(study) or "fewer than 3 trained points: no agreement table")
    return rows


if __name__ == "__main__":
    sys.exit(main())
