"""A race over points fixed in advance (a grid x repeats), played on recorded results.

``race(correct, rungs)`` takes every point's per-image correctness at each rung epoch,
``(seeds, images)`` paired across points (same seeds, same validation images), and plays
the rounds: after each rung, :func:`nas.search.racing_stats.race_round` compares the surviving
points with the current best and drops those worse at ``alpha``. It returns which round
dropped each point, with its p-value and the point it lost to, and the epochs the race
trained against the full grid's. The same rounds decide a live race; played on a full
grid's stored results it tells what a race would have cost and kept (benchmarks/
ablation_cost.py).
"""
from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..trial_record import RACE_RUNG, correct_by_epoch, is_proposal_only, point_key
from .racing_stats import (
    diff_ci,
    mean_ci,
    pooled_seed_term,
    race_round,
    seed_interaction,
)


@dataclass(frozen=True)
class Drop:
    rung: int  # the epoch after which the point was stopped
    p_adjusted: float
    lost_to: Hashable
    accuracy: float  # its mean accuracy at that rung


@dataclass
class RaceOutcome:
    rungs: list[int]
    survivors: list  # points trained to the last rung, best first
    dropped: dict = field(default_factory=dict)  # point -> Drop
    epochs_used: int = 0  # trial-epochs trained (points x seeds x epochs)
    epochs_full: int = 0  # the full grid's

    @property
    def cost(self) -> float:
        return self.epochs_used / self.epochs_full

    def ranking(self, final: Mapping[Hashable, float]) -> list:
        """Survivors by their final accuracy, then the dropped points, later rounds first
        (by their accuracy when dropped)."""
        late = sorted(self.dropped, key=lambda p: (-self.dropped[p].rung, -self.dropped[p].accuracy))
        return sorted(self.survivors, key=lambda p: -final[p]) + late


def race(correct: Mapping[Hashable, Mapping[int, np.ndarray]], rungs: Sequence[int],
         alpha: float = 0.05, correction: str = "range") -> RaceOutcome:
    """Play a race: ``correct[point][epoch]`` is ``(seeds, images)``; ``rungs`` the rung
    epochs, the last one the full budget (no test after it: the survivors are the answer)."""
    rungs = sorted(rungs)
    alive = list(correct)
    seeds = {p: np.asarray(next(iter(correct[p].values()))).shape[0] for p in alive}
    out = RaceOutcome(rungs, [], epochs_full=sum(seeds.values()) * rungs[-1])
    for rung in rungs[:-1]:
        result = race_round({p: correct[p][rung] for p in alive}, alpha, correction)
        for p in result.dropped:
            d = result.points[p]
            out.dropped[p] = Drop(rung, d.p_adjusted, result.best, d.accuracy)
            out.epochs_used += seeds[p] * rung
        alive = result.kept
    out.epochs_used += sum(seeds[p] for p in alive) * rungs[-1]
    last = race_round({p: correct[p][rungs[-1]] for p in alive}, alpha, correction) if len(alive) > 1 else None
    acc = {p: float(np.mean(correct[p][rungs[-1]])) for p in alive}
    out.survivors = sorted(alive, key=lambda p: -acc[p])
    out.final_round = last
    return out


# ---- a race stored in a study: its table -------------------------------------------------

def race_rows(study, cfg) -> tuple[list[dict], int, int]:
    """Per point of a race study: the budget it reached, its accuracy there with a 95%
    interval (seeds x images; the seed term pooled over the points at that budget, as the
    race's test pools it), the difference to ``race.reference`` at that budget with its
    interval, and the rung it was dropped at (p-value, the point it lost to). An interval
    that 2 seeds cannot give (no other point to pool with) is NaN. Also the trial-epochs
    spent and those of the full grid."""
    from optuna.trial import TrialState

    from .results import config_label, space_order

    by_point: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if not is_proposal_only(t):
            by_point.setdefault(point_key(t.params), []).append(t)
    correct = {p: [correct_by_epoch(t) for t in sorted(ts, key=lambda t: t.user_attrs.get("repeat", 0))]
               for p, ts in by_point.items()}
    ref = point_key(cfg.race.reference) if cfg.race.reference else None

    def at(point: str, epoch: int):
        runs = correct.get(point, [])
        return np.stack([r[epoch] for r in runs]) if runs and all(epoch in r for r in runs) else None

    def intervals(mine, theirs, epoch: int):
        peers = [a for a in (at(p, epoch) for p in by_point) if a is not None and a.shape == mine.shape]
        if len(peers) < 2 and mine.shape[0] < 3:
            return (float(mine.mean()), math.nan, math.nan), None  # 1 degree of freedom: no interval
        pooled = len(peers) >= 2
        acc = mean_ci(mine, seed_term=pooled_seed_term(peers) if pooled else None)
        diff = None if theirs is None else diff_ci(theirs, mine, seed_term=seed_interaction(peers) if pooled else None)
        return acc, diff

    rows, used, order = [], 0, space_order(study)
    for point, ts in by_point.items():
        epoch = max(int(t.user_attrs.get("epochs", 0)) for t in ts)
        used += sum(int(t.user_attrs.get("epochs", 0)) for t in ts)
        mine, theirs = at(point, epoch), at(ref, epoch) if ref and point != ref else None
        acc, diff = intervals(mine, theirs, epoch) if mine is not None else (None, None)
        rows.append({"point": config_label(json.loads(point), order), "n": len(ts), "epochs": epoch,
                     "acc": acc, "diff": diff,
                     "dropped": ts[0].user_attrs.get(RACE_RUNG), "p": ts[0].user_attrs.get("race_p_value"),
                     "lost_to": config_label(ts[0].user_attrs.get("race_lost_to") or {}, order)})
    rows.sort(key=lambda r: (-(r["epochs"]), -(r["acc"][0] if r["acc"] else 0)))
    full = len(by_point) * cfg.repeats * cfg.fidelity.max_epochs
    return rows, used, full


HOW_TO_READ = (
    "How to read this: *val. acc.* is the point's mean accuracy over its seeds and the "
    "validation images, at the budget it reached, with a 95% interval (seed-to-seed variation "
    "pooled over all points at that budget, as the race's test does; kept inside 0-100%; "
    "\"no interval\" where 2 seeds and no other point leave nothing to estimate it from). "
    "*diff* is its paired difference to the reference (same seeds, same images): an interval "
    "that excludes 0 is a difference the data support. *dropped after epoch e* (@e) means the race "
    "stopped training the point then, because it was worse than the best point of that round "
    "with the adjusted p-value *p* (below alpha; small p: clearly worse); its numbers are at "
    "epoch e. *kept*: trained to the full budget.")


def _cells(r: dict, short: bool = False) -> tuple[str, str, str]:
    """The race table's accuracy, difference and fate texts of one row of race_rows
    (``short``: for a terminal of 100 columns)."""
    if r["acc"] is None:
        acc = "–"
    elif math.isnan(r["acc"][1]):
        acc = f"{100 * r['acc'][0]:.2f} (no interval: 2 seeds)"
    else:
        acc = "{:.2f} ({:.2f}, {:.2f})".format(*(100 * v for v in r["acc"]))
    diff = "–" if r["diff"] is None else "{:+.2f} ({:+.2f}, {:+.2f})".format(*(100 * v for v in r["diff"]))
    if short:
        acc = acc.replace(" (no interval: 2 seeds)", " (2 seeds: –)")
        fate = f"dropped @{r['dropped']}, p {r['p']:.2g}" if r["dropped"] else "kept"
    else:
        fate = (f"dropped after epoch {r['dropped']} (p {r['p']:.3g}, lost to {r['lost_to']})"
                if r["dropped"] else "kept")
    return acc, diff, fate


def race_markdown(study, cfg) -> str:
    """The race table (or, for any study that records predictions, the intervals) as markdown."""
    from .results import config_label, space_order

    rows, used, full = race_rows(study, cfg)
    if not any(r["acc"] for r in rows):
        return ""
    ref = config_label(cfg.race.reference, space_order(study)) if cfg.race.reference else "the reference"
    lines = ["## Accuracy with 95% intervals" + (" and the race" if cfg.scheduler == "race" else ""), "",
             "Per point at the budget it reached: validation accuracy, mean and 95% CI over seeds x "
             f"images (paired per-image correctness); {used} of {full} trial-epochs of the full grid.", "",
             f"| point | n | epochs | val. acc. % (95% CI) | diff to {ref} (95% CI) | race |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['point']} | {r['n']} | {r['epochs']} | " + " | ".join(_cells(r)) + " |")
    return "\n".join(lines) + "\n\n" + HOW_TO_READ + "\n"


def print_race(study, cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    from .results import config_label, space_order

    rows, used, full = race_rows(study, cfg)
    ref = config_label(cfg.race.reference, space_order(study)) if cfg.race.reference else None
    race = cfg.race
    goal = (f"for the effects, margin ±{race.margin:g}" if race.answer == "effects"
            else f"for the best, alpha {race.alpha}")
    table = Table(title=f"{cfg.name}: the race ({goal}; rungs {cfg.race_rungs})",
                  caption=f"{used} of {full} trial-epochs of the full grid ({100 * used / max(full, 1):.0f}%)"
                  + (f"; diff: to {ref}" if ref else ""), title_justify="left", caption_justify="left")
    for col in ("point", "n", "epochs", "val acc % (95% CI)", "diff (95% CI)", "race"):
        table.add_column(col, justify="left" if col in ("point", "race") else "right", overflow="fold")
    for r in rows:
        table.add_row(r["point"], str(r["n"]), str(r["epochs"]), *_cells(r, short=True))
    console = Console(width=100)
    console.print(table)
    console.print(HOW_TO_READ.replace("*", ""), soft_wrap=False, highlight=False)
