"""How well training-free scores agree with trained accuracy, for a study's trained points.

The points scored by :mod:`nas.zero_cost` (or the prefilter) are kept in the study's user
attr ``zero_cost``; a trained point's accuracy is the mean over its COMPLETE trials. Per
scorer: Kendall's tau-b with a bootstrap 95% interval over points, Spearman's rho and the
overlap of the top quarter. Also a figure (score against trained accuracy) for
``nas.report``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..search.racing_stats import kendall_tau, spearman, top_k_overlap
from ..search.scores import ATTR
from ..trial_record import is_proposal_only

BOOTSTRAP = 2000


def kendall_interval(x, y, seed: int = 0, n: int = BOOTSTRAP) -> tuple[float, float]:
    """A percentile bootstrap 95% interval of Kendall's tau over points (resampled pairs)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        t = kendall_tau(x[i], y[i])
        if not math.isnan(t):
            taus.append(t)
    if not taus:
        return math.nan, math.nan
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return float(lo), float(hi)


def agreement_row(scores, accs) -> dict:
    """Kendall (with interval), Spearman and top-quarter overlap of scores vs accuracies;
    non-finite scores (e.g. a network that never fires: -inf) rank lowest."""
    s = np.asarray(scores, float)
    s = np.where(np.isfinite(s), s, np.nanmin(np.where(np.isfinite(s), s, np.nan)) - 1
                 if np.isfinite(s).any() else 0.0)
    a = np.asarray(accs, float)
    lo, hi = kendall_interval(s, a)
    k = max(1, len(a) // 4)
    constant = len(a) < 2 or np.all(s == s[0])  # e.g. params over a space of skips: no ranking
    return {"n": len(a), "kendall": kendall_tau(s, a), "ci": (lo, hi), "spearman": spearman(s, a),
            "top_quarter": math.nan if constant else top_k_overlap(s, a, k), "k": k}


def trained_accuracy(study) -> dict[str, tuple[dict, float, int]]:
    """Point key -> (point, mean final val_acc over its COMPLETE trials, trials)."""
    from optuna.trial import TrialState

    from ..search.searcher import trial_key

    got: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state != TrialState.COMPLETE or is_proposal_only(t):
            continue
        acc = t.user_attrs.get("val_acc")
        if acc is None:
            continue
        got.setdefault(trial_key(t.params), [t.params, []])[1].append(float(acc))
    return {k: (p, float(np.mean(v)), len(v)) for k, (p, v) in got.items()}


def scored_and_trained(study) -> tuple[list[str], list[dict], dict[str, list[float]], list[float]]:
    """Scorer names, points, scores by scorer and accuracies of the points both scored
    (any settings: the latest row per point) and trained."""
    from ..search.searcher import trial_key

    trained = trained_accuracy(study)
    scores: dict[str, dict] = {}
    for r in study.user_attrs.get(ATTR, []):
        key = trial_key(r["point"])
        if key in trained:
            scores.setdefault(key, {}).update(r["scores"])
    keys = [k for k in trained if k in scores]
    names = sorted({n for k in keys for n in scores[k]})
    names = [n for n in names if all(n in scores[k] for k in keys)]
    return (names, [trained[k][0] for k in keys],
            {n: [scores[k][n] for k in keys] for n in names}, [trained[k][1] for k in keys])


def agreement_markdown(study) -> str:
    names, points, by_name, accs = scored_and_trained(study)
    if len(points) < 3:
        return ""
    lines = ["## Training-free scores against trained accuracy", "",
             f"{len(points)} points both scored (`nas.zero_cost`) and trained to the full budget "
             "(mean validation accuracy over their repeats). Kendall's tau-b with a bootstrap 95% "
             "interval over points; top quarter: the share of the best quarter by accuracy that "
             "the score also puts in its best quarter.", "",
             "| score | points | Kendall tau [95% CI] | Spearman rho | top quarter |",
             "|---|---:|---|---:|---:|"]
    for n in names:
        r = agreement_row(by_name[n], accs)
        lines.append(f"| {n} | {r['n']} | {tau_text(r)} | "
                     f"{r['spearman']:+.3f} | {r['top_quarter']:.2f} ({r['k']}) |")
    return "\n".join(lines) + "\n"


def tau_text(r: dict) -> str:
    """Kendall's tau with its interval, or why there is none (a constant score or accuracy)."""
    if math.isnan(r["kendall"]):
        return "undefined (the score or the accuracy is the same for every point)"
    ci = "" if math.isnan(r["ci"][0]) else f" [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]"
    return f"{r['kendall']:+.3f}{ci}"


def fig_zero_cost(study, cfg, out: Path):
    """Score against trained accuracy, one panel per scorer; the prefilter's points marked."""
    from ..plotting import pyplot, save_figure
    from ..search.searcher import trial_key

    names, points, by_name, accs = scored_and_trained(study)
    if len(points) < 2:
        return "fewer than 2 points both scored (nas.zero_cost or prefilter) and trained"
    queued = {trial_key(t.params) for t in study.get_trials(deepcopy=False)
              if "prefilter_rank" in t.user_attrs}
    mark = np.array([trial_key(p) in queued for p in points])
    plt, _ = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    y = np.asarray(accs) * 100
    for ax, n in zip(axes[0], names):
        x = np.asarray(by_name[n], float)
        finite = np.isfinite(x)
        r = agreement_row(x, accs)
        ax.scatter(x[finite & ~mark], y[finite & ~mark], s=30, color="0.5", label="sampled")
        if mark.any():
            ax.scatter(x[finite & mark], y[finite & mark], s=40, color="C3", label="prefilter")
        if finite.any() and x[finite].min() > 0 and x[finite].max() / x[finite].min() > 20:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(n)
        ax.set_title(f"{n}: Kendall {tau_text(r)}", fontsize=9)
        if (~finite).any():
            ax.text(0.02, 0.02, f"{int((~finite).sum())} without a finite score",
                    transform=ax.transAxes, fontsize=7)
    axes[0][0].set_ylabel("validation accuracy (%)")
    if mark.any():
        axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"{cfg.name}: {len(points)} trained points", fontsize=10)
    return save_figure(fig, out, "zero_cost")
