"""What racing would have cost and kept, against a full ablation grid (the ground truth).

    # 1. the ground truth: every point x seed to the full budget, per-image correctness stored
    python -m nas.run studies/skip_connections_cpu.yaml --data-root DIR/cifar10
    # 2. its results as a small table (per trial: point, seed, curve, per-epoch correctness)
    python benchmarks/ablation_cost.py export studies/skip_connections_cpu.yaml \\
        --out benchmarks/results/skip_connections_cpu.json
    # 3. replay a race on it, and the free calibration from the learning curves
    python benchmarks/ablation_cost.py replay benchmarks/results/skip_connections_cpu.json \\
        --rungs 1,2,3,4 --reference "(PT, PC, TC)" --figure docs/ablation_race.png

The race is played on the recorded results, as a live race would see them: with paired
seeds (repeat r of every point has the same data order and seed), a point stopped after
rung r has exactly the results up to r that the full run recorded.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.search.effects_stats import contrasts, estimate_effects, factor_levels  # noqa: E402
from nas.search.racing import race  # noqa: E402
from nas.search.racing_stats import (curve_calibration, diff_ci, kendall_tau, mean_ci,  # noqa: E402
                              race_round, top_k_overlap)
from nas.search.schedulers import EffectsAnswered  # noqa: E402
from nas.trial_record import point_key, unpack_correct  # noqa: E402
from search_spaces.design import factorial_design  # noqa: E402


def export(study_path: str, out: Path, storage: str | None) -> None:
    from optuna.trial import TrialState

    from nas.search.results import load_existing_study
    from nas.search.results import config_label
    from nas.trial_record import CORRECT_KEY
    from nas.study import Override, load_study

    cfg = load_study(study_path, [Override("storage", storage, "--storage")] if storage else [])
    study = load_existing_study(cfg)
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if "duplicate_of" in t.user_attrs:
            continue
        correct = {k.removeprefix(CORRECT_KEY): v for k, v in t.system_attrs.items()
                   if k.startswith(CORRECT_KEY)}
        rows.append({"trial": t.number, "point": config_label(t.params), "params": t.params,
                     "seed": t.user_attrs.get("repeat", 0), "curve": t.user_attrs["curve"],
                     "wall_seconds": t.user_attrs.get("wall_seconds"), "correct": correct})
    meta = {"study": cfg.name, "epochs": cfg.fidelity.max_epochs, "repeats": cfg.repeats,
            "base": cfg.base, "T": cfg.arch.get("T"), "data": cfg.data.model_dump(mode="json",
            exclude={"root", "synthetic"}), "trials": len(rows)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "trials": rows}, indent=None, separators=(",", ":")))
    print(f"wrote {len(rows)} trials of {cfg.name} to {out} ({out.stat().st_size / 1e3:.0f} kB)")


def load(path: Path) -> tuple[dict, dict, dict]:
    """(meta, correct[point][epoch] -> (seeds, images), curves[point] -> (seeds, epochs));
    ``meta["params"]``: point -> its parameters."""
    data = json.loads(path.read_text())
    by_point: dict[str, list] = {}
    for row in data["trials"]:
        by_point.setdefault(row["point"], []).append(row)
    correct, curves = {}, {}
    for point, rows in by_point.items():
        rows.sort(key=lambda r: r["seed"])
        epochs = sorted({int(e) for r in rows for e in r["correct"]})
        correct[point] = {e: np.stack([unpack_correct(r["correct"][str(e)]) for r in rows])
                          for e in epochs}
        curves[point] = np.array([r["curve"] for r in rows])
    meta = {**data["meta"], "params": {p: rows[0]["params"] for p, rows in by_point.items()}}
    return meta, correct, curves


# ---- component effects: full grid or half fraction, race for the best or for the effects --

def _effects(points: list[str], params: dict, correct: dict, epoch: int, margin: float,
             mains_only: bool = True) -> dict:
    """Effect name -> Effect of the points at ``epoch``."""
    pts = [params[p] for p in points]
    found = contrasts(pts, factor_levels(pts, list(pts[0])), interactions=not mains_only)
    effects = estimate_effects([correct[p][epoch] for p in points], found, margin)
    return {e.name: e for e in effects}


def print_effects_table(path: Path, margin: float, epoch: int | None = None) -> None:
    """The full grid's main effects and interactions at ``epoch`` (default: the last)."""
    meta, correct, _ = load(path)
    points = sorted(correct)
    epoch = epoch or meta["epochs"]
    found = _effects(points, meta["params"], correct, epoch, margin, mains_only=False)
    seeds, images = correct[points[0]][epoch].shape
    print(f"# {meta['study']}: {len(points)} points x {seeds} seeds, {images} validation images, "
          f"epoch {epoch} of {meta['epochs']}; margin ±{100 * margin:g} points\n")
    print("| effect | estimate (points) | 95% CI | p | decision |\n|---|---:|---:|---:|---|")
    for name, e in found.items():
        print(f"| {name} | {100 * e.estimate:+.2f} | ({100 * e.ci_low:+.2f}, {100 * e.ci_high:+.2f}) "
              f"| {e.p:.2g} | {e.decision} |")


def _agrees(mine: str, grid: str) -> bool:
    """A replay's decision agrees with the full grid's: the same sign where the grid has
    one; negligible or undecided (no sign) where the grid has none."""
    if grid in ("positive", "negative"):
        return mine == grid
    return mine in ("negligible", "undecided")


def _wrong(mine: str, grid: str) -> bool:
    """A claim the full grid contradicts (not merely one left undecided): a sign where the
    grid has the other or none it can tell from 0 within the margin, negligible where
    the grid has a sign."""
    if mine == "undecided":
        return False
    return not _agrees(mine, grid)


def replay_design(path: Path, design: str, answer: str, rungs: list[int], alpha: float,
                  margin: float, drift_guard: bool = True) -> dict:
    """Play ``design`` (full grid or half fraction) x ``answer`` (race for the best point, or
    stop when every main effect is decided) on a ground truth; compare with the full grid."""
    meta, correct, _ = load(path)
    params = meta["params"]
    everything = sorted(correct)
    last = rungs[-1]
    seeds = correct[everything[0]][last].shape[0]
    full_cost = len(everything) * seeds * last
    truth = _effects(everything, params, correct, last, margin)
    final = {p: float(correct[p][last].mean()) for p in everything}
    grid_rank = {p: i + 1 for i, p in enumerate(sorted(everything, key=lambda p: -final[p]))}
    points = everything
    if design == "half":
        names = list(params[everything[0]])
        half = factorial_design([(n, [False, True]) for n in names], "1/2").points
        points = [p for p in everything if params[p] in half]
    if answer == "best":
        outcome = race({p: correct[p] for p in points}, rungs, alpha)
        used = outcome.epochs_used
        reached = {p: (outcome.dropped[p].rung if p in outcome.dropped else last) for p in points}
        epoch = min(reached.values())
        best = outcome.survivors[0]
    else:  # the race's own stopping rule, on the rungs' correctness
        answered = EffectsAnswered(list(params[everything[0]]), {}, margin, budget=last,
                                   drift_guard=drift_guard)
        for epoch in rungs:
            decisions = answered({point_key(params[p]): correct[p][epoch] for p in points}, epoch)
            if decisions is not None:
                break
        used = len(points) * seeds * epoch
        best = max(points, key=lambda p: correct[p][epoch].mean())
    found = _effects(points, params, correct, epoch, margin)
    if answer == "effects" and decisions is None:  # trained to the budget undecided
        decisions = {k: e.decision for k, e in found.items()}
    elif answer == "best":
        decisions = {k: e.decision for k, e in found.items()}
    return {"ground_truth": meta["study"], "design": design, "answer": answer,
            "points": len(points), "epochs_used": used, "epochs_full": full_cost,
            "cost": used / full_cost, "effects_epoch": epoch,
            "drift_guard": drift_guard if answer == "effects" else None,
            "decisions": {k: [decisions[k], truth[k].decision] for k in truth},
            "estimates": {k: [100 * found[k].estimate, 100 * truth[k].estimate] for k in truth},
            "all_agree": all(_agrees(decisions[k], truth[k].decision) for k in truth),
            "wrong": [k for k in truth if _wrong(decisions[k], truth[k].decision)],
            "best": best, "best_grid_rank": grid_rank[best]}


def print_design_table(rows: list[dict], margin: float) -> None:
    print(f"| ground truth | design | answer | trial-epochs (of full grid) | effects at epoch | "
          f"main effects: replay / full grid (margin ±{100 * margin:g}) | agree | wrong claims | "
          f"best point's grid rank |")
    print("|---|---|---|---:|---:|---|---|---|---:|")
    for r in rows:
        answer = r["answer"] + ("" if r["drift_guard"] in (None, True) else ", no drift guard")
        dec = "; ".join(f"{k} {a} {m:+.1f} / {b} {t:+.1f}" for (k, (a, b)), (m, t)
                        in zip(r["decisions"].items(), r["estimates"].values()))
        print(f"| {r['ground_truth']} | {r['design']} | {answer} | {r['epochs_used']} / "
              f"{r['epochs_full']} ({100 * r['cost']:.1f}%) | {r['effects_epoch']} | {dec} | "
              f"{'yes' if r['all_agree'] else 'NO'} | {', '.join(r['wrong']) or 'none'} | "
              f"{r['best_grid_rank']} ({r['best']}) |")


def replay(path: Path, rungs: list[int], alpha: float, reference: str, figure: Path | None) -> dict:
    meta, correct, curves = load(path)
    last = rungs[-1]
    points = sorted(correct)
    final = {p: float(correct[p][last].mean()) for p in points}
    truth = sorted(points, key=lambda p: -final[p])
    seeds, images = correct[truth[0]][last].shape
    full = race_round({p: correct[p][last] for p in truth}, alpha)  # what the full grid tells
    outcome = race(correct, rungs, alpha)
    ranked = outcome.ranking(final)

    print(f"# {meta['study']}: {len(points)} points x {seeds} seeds, {images} validation images, "
          f"{last} epochs; alpha {alpha}, rungs {rungs}\n")
    print("| rank | point | val acc % (95% CI) | diff to reference (95% CI) | full grid vs best | race |")
    print("|---|---|---|---|---|---|")
    for i, p in enumerate(truth, 1):
        m, lo, hi = mean_ci(correct[p][last])
        ref = correct.get(reference, {}).get(last)
        d = "–" if ref is None or p == reference else "{:+.2f} ({:+.2f}, {:+.2f})".format(
            *(100 * v for v in diff_ci(ref, correct[p][last])))
        grid = "best" if p == full.best else ("worse" if not full.points[p].keep else "tied")
        r = outcome.dropped.get(p)
        fate = f"dropped after epoch {r.rung} (p {r.p_adjusted:.3g})" if r else "kept to the end"
        print(f"| {i} | {p} | {100 * m:.2f} ({100 * lo:.2f}, {100 * hi:.2f}) | {d} | {grid} | {fate} |")

    tied = set(full.kept)
    survivors = set(outcome.survivors)
    summary = {
        "epochs_used": outcome.epochs_used, "epochs_full": outcome.epochs_full,
        "cost": outcome.cost,
        "keeps_every_tied_point": tied <= survivors, "tied_with_best": sorted(tied),
        "survivors": outcome.survivors,
        "top1_agrees": outcome.survivors[0] == truth[0],
        "top3_kept": set(truth[:3]) <= survivors,  # (of fewer points: all of them)
        "kendall_tau_ranking": kendall_tau([ranked.index(p) for p in points],
                                           [truth.index(p) for p in points]),
    }
    print(f"\nrace: {outcome.epochs_used} of {outcome.epochs_full} trial-epochs "
          f"({100 * outcome.cost:.1f}% of the full grid); survivors {outcome.survivors}")
    print(f"keeps every point the full grid cannot tell from its best ({len(tied)}): "
          f"{summary['keeps_every_tied_point']}; best kept and ranked first: {summary['top1_agrees']}; "
          f"full grid's top 3 among survivors: {summary['top3_kept']}; Kendall tau of the race's "
          f"ranking vs the full grid's: {summary['kendall_tau_ranking']:.3f}")

    mean_curves = {p: curves[p].mean(axis=0) for p in points}
    print("\n| free calibration: epoch e vs the last | Spearman rho | Kendall tau | top-3 overlap |")
    print("|---|---|---|---|")
    summary["calibration"] = {}
    for e in range(1, last):
        c = curve_calibration(mean_curves, e)
        top3 = top_k_overlap([mean_curves[p][e - 1] for p in points], [final[p] for p in points],
                             min(3, len(points)))
        summary["calibration"][e] = {"spearman": c.spearman, "kendall_tau": c.kendall_tau, "top3": top3}
        print(f"| epoch {e} of {last} | {c.spearman:.3f} | {c.kendall_tau:.3f} | {top3:.2f} |")
    if figure is not None:
        _figure(truth, correct, last, outcome, full, figure, meta)
        print(f"\nwrote {figure}")
    return summary


def _figure(truth, correct, last, outcome, full, path: Path, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = {None: "tab:green"}
    for i, p in enumerate(truth):
        m, lo, hi = (100 * v for v in mean_ci(correct[p][last]))
        drop = outcome.dropped.get(p)
        color = colors.get(drop.rung if drop else None) or plt.cm.Reds(0.35 + 0.2 * drop.rung)
        ax.errorbar(m, i, xerr=[[m - lo], [hi - m]], fmt="o", color=color, capsize=3)
    ax.set_yticks(range(len(truth)), truth)
    ax.invert_yaxis()
    ax.set_xlabel(f"validation accuracy after {last} epochs, % (mean, 95% CI over seeds x images)")
    ax.set_title(f"{meta['study']}: the full grid; green: kept by the race, red: dropped\n"
                 f"(darker: later); the race cost {100 * outcome.cost:.0f}% of the grid's epochs", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="a study's results as a small JSON table")
    ex.add_argument("study")
    ex.add_argument("--out", required=True, type=Path)
    ex.add_argument("--storage")
    ef = sub.add_parser("effects", help="the full grid's component effects")
    ef.add_argument("results", type=Path)
    ef.add_argument("--epoch", type=int)
    ef.add_argument("--margin", type=float, default=1.0)
    rp = sub.add_parser("replay", help="play a race on the table, and the free calibration; "
                                       "with --design/--answer: the component-effects replay")
    rp.add_argument("results", type=Path, nargs="+", help="ground truths (their JSON tables)")
    rp.add_argument("--design", help="full, half or full,half: the effects replay's designs")
    rp.add_argument("--answer", help="best, effects or best,effects: race for the best point, "
                                     "or stop once every main effect is decided")
    rp.add_argument("--margin", type=float, default=1.0, help="equivalence margin, accuracy points")
    rp.add_argument("--no-drift-guard", action="store_true",
                    help="answer effects: decide at a rung without the drift guard (race.drift_guard: false)")
    rp.add_argument("--rungs", help="rung epochs, the last the full budget (default: every epoch)")
    rp.add_argument("--alpha", type=float, default=0.05)
    rp.add_argument("--reference", default="(PT, PC, TC)", help="the point differences refer to")
    rp.add_argument("--figure", type=Path)
    rp.add_argument("--json", type=Path, help="also write the summary here")
    args = ap.parse_args()
    if args.cmd == "export":
        export(args.study, args.out, args.storage)
        return 0
    if args.cmd == "effects":
        print_effects_table(args.results, args.margin / 100, args.epoch)
        return 0
    if args.design or args.answer:
        rows = []
        for path in args.results:
            rungs = _rungs(args.rungs, path)
            for design in (args.design or "full,half").split(","):
                for answer in (args.answer or "best,effects").split(","):
                    rows.append(replay_design(path, design, answer, rungs, args.alpha, args.margin / 100,
                                             drift_guard=not args.no_drift_guard))
        print_design_table(rows, args.margin / 100)
        summary: object = rows
    else:
        outs = [replay(p, _rungs(args.rungs, p), args.alpha, args.reference, args.figure)
                for p in args.results]
        summary = outs[0] if len(outs) == 1 else outs
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str))
    return 0


def _rungs(text: str | None, path: Path) -> list[int]:
    if text:
        return [int(r) for r in text.split(",")]
    return list(range(1, json.loads(path.read_text())["meta"]["epochs"] + 1))


if __name__ == "__main__":
    sys.exit(main())
