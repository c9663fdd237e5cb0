"""A study's component effects: which factor changes accuracy, by how much, how sure.

Reads the per-image correctness the study's trials recorded (``record_predictions``, on
for races), takes the last epoch that every point reached (a race stops points early;
the effects are estimated there, and the table says at which epoch), and estimates every
main effect and two-factor interaction of the space's parameters with
:mod:`nas.search.effects_stats`. Used by ``python -m nas.effects``, the end of ``nas.run``
and ``nas.report`` (``effects.png``, summary.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blocks.errors import NasError

from ..search.effects_stats import (Components, Effect, components, contrasts, estimate_effects,
                                    factor_levels, power, seeds_needed, space_factors)
from ..search.racing_stats import seed_interaction
from ..trial_record import RACE_ANSWERED, correct_by_epoch, is_proposal_only, point_key, trial_point
from ..study import StudyConfig

HOW_TO_READ = (
    "How to read this: an effect is the change in validation accuracy (points) when the "
    "component is switched on (main effect), or half the change of one component's effect "
    "when the other is switched on (interaction), averaged over every other factor of the "
    "design. The interval is 95% over seeds x validation images, the seed part pooled over "
    "all points; p is two-sided. positive/negative: the interval excludes 0; negligible: "
    "the whole interval lies within +-margin; undecided: neither (more seeds narrow it: "
    "`nas.effects --plan`). Aliased effects cannot be told apart by the design.")


class NoEffects(NasError):
    """The study has nothing to estimate effects from; ``str()`` says why."""


@dataclass
class StudyEffects:
    effects: list[Effect]
    epoch: int
    seeds: int
    images: int
    points: list[dict]
    margin: float  # accuracy units
    max_epochs: int
    levels: dict[str, list] = field(default_factory=dict)  # factor -> levels, reference first
    arrays: list[np.ndarray] = field(repr=False, default_factory=list)

    def as_json(self) -> list[dict]:
        return [e.as_dict(self.epoch) for e in self.effects]


def _by_point(study) -> dict[str, dict[int, dict[int, np.ndarray]]]:
    """point key -> repeat -> epoch -> correctness, of every trial that trained."""
    from optuna.trial import TrialState

    out: dict[str, dict[int, dict[int, np.ndarray]]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if is_proposal_only(t):
            continue
        correct = correct_by_epoch(t)
        if correct:
            key = point_key(trial_point(t))
            out.setdefault(key, {})[int(t.user_attrs.get("repeat", 0))] = correct
    return out


def _common(by_point: dict, epoch: int) -> list[int]:
    """The repeats that every point recorded at ``epoch``."""
    seeds = None
    for runs in by_point.values():
        have = {r for r, c in runs.items() if epoch in c}
        seeds = have if seeds is None else seeds & have
    return sorted(seeds or ())


def pick_epoch(by_point: dict, epoch: int | None = None) -> tuple[int, list[int]]:
    """``epoch`` (or the last at which every point has its most seeds) and its seeds."""
    epochs = sorted({e for runs in by_point.values() for c in runs.values() for e in c}, reverse=True)
    if epoch is not None:
        if epoch not in epochs:
            raise NoEffects(f"--epoch {epoch}: no trial recorded epoch {epoch}; recorded: "
                            f"{', '.join(map(str, sorted(epochs))) or 'none'}")
        seeds = _common(by_point, epoch)
        if not seeds:
            raise NoEffects(f"--epoch {epoch}: not every point reached epoch {epoch}")
        return epoch, seeds
    most = max(len(runs) for runs in by_point.values())
    for e in epochs:
        seeds = _common(by_point, e)
        if len(seeds) >= min(2, most):
            return e, seeds
    raise NoEffects("no epoch that every point reached with the same seeds")


def study_effects(study, cfg: StudyConfig, epoch: int | None = None,
                  margin: float | None = None) -> StudyEffects:
    """The effects of the study's factors at ``epoch`` (default: see :func:`pick_epoch`)."""
    by_point = _by_point(study)
    if len(by_point) < 2:
        raise NoEffects(f"needs per-image correctness (record_predictions: true, or scheduler: "
                        f"race) of >= 2 points; the study has {len(by_point)}")
    e, seeds = pick_epoch(by_point, epoch)
    keys = list(by_point)
    points = [json.loads(k) for k in keys]
    levels = factor_levels(points, *space_factors(cfg.load_space()))
    if not levels:
        raise NoEffects("no parameter of the space takes 2 or more values over the trained points")
    arrays = [np.stack([by_point[k][s][e] for s in seeds]) for k in keys]
    m = cfg.race.margin if margin is None else margin
    effects = estimate_effects(arrays, contrasts(points, levels), m / 100)
    return StudyEffects(effects, e, len(seeds), arrays[0].shape[1], points, m / 100,
                        cfg.fidelity.max_epochs, levels, arrays)


# ---------------------------------------------------------------- tables

def _pts(v: float, sign: bool = True) -> str:
    return "–" if v != v else (f"{100 * v:+.2f}" if sign else f"{100 * v:.2f}")


def _name(e: Effect) -> str:
    return e.name + (f" (= {', '.join(e.aliases)})" if e.aliases else "")


def _headline(r: StudyEffects) -> str:
    return (f"epoch {r.epoch} of {r.max_epochs}, {len(r.points)} points x {r.seeds} seed(s), "
            f"{r.images} validation images; margin ±{100 * r.margin:g} points")


def effects_markdown(r: StudyEffects) -> str:
    lines = ["## Component effects", "", _headline(r) + ".", "",
             "| effect | estimate (points) | 95% CI | p | decision |", "|---|---:|---:|---:|---|"]
    for e in r.effects:
        p = "–" if e.p != e.p else f"{e.p:.2g}"
        lines.append(f"| {_name(e)} | {_pts(e.estimate)} | ({_pts(e.ci_low)}, {_pts(e.ci_high)}) "
                     f"| {p} | {e.decision} |")
    if r.seeds < 2:
        lines += ["", "One seed: the seed-to-seed variance is unknown, so no interval and no "
                  "decision (set `repeats: 2` or more)."]
    return "\n".join(lines + ["", HOW_TO_READ, ""])


def print_effects(r: StudyEffects, title: str) -> None:
    """The effects as a table that fits 100 columns."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title}: component effects", caption=_headline(r), title_justify="left",
                  caption_justify="left")
    for col, just in (("effect", "left"), ("estimate", "right"), ("95% CI (points)", "right"),
                      ("p", "right"), ("decision", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for e in r.effects:
        ci = "–" if e.ci_low != e.ci_low else f"{_pts(e.ci_low)} … {_pts(e.ci_high)}"
        table.add_row(_name(e), _pts(e.estimate), ci,
                      "–" if e.p != e.p else f"{e.p:.2g}", e.decision)
    console = Console(width=100)
    console.print(table)
    console.print(HOW_TO_READ.replace("`", ""), soft_wrap=False, highlight=False)


def answered_line(study) -> str | None:
    """Why a race with ``answer: effects`` stopped, if it did."""
    for t in study.get_trials(deepcopy=False):
        got = t.user_attrs.get(RACE_ANSWERED)
        if got:
            decided = ", ".join(f"{k} {v}" for k, v in got["main_effects"].items())
            return (f"the race stopped after epoch {got['rung']}: every main effect is decided "
                    f"({decided}); nothing is lost: every trial's results up to that epoch are "
                    "stored (PRUNED at that epoch)")
    return None


def print_end_of_run(study, cfg: StudyConfig) -> None:
    """The effects table at the end of ``nas.run`` for a study that records per-image
    correctness, and why a race for the effects stopped."""
    if not cfg.record_predictions:
        return
    try:
        result = study_effects(study, cfg)
    except NoEffects:
        return
    line = answered_line(study)
    if line:
        print(line, flush=True)
    print_effects(result, cfg.name)


# ---------------------------------------------------------------- the figure

def fig_effects(r: StudyEffects, title: str, out: Path, save) -> list[Path]:
    """A forest plot: main effects, then interactions, each with its 95% interval, the
    ±margin band shaded, coloured by decision."""
    import matplotlib.pyplot as plt

    colors = {"positive": "tab:green", "negative": "tab:red", "negligible": "tab:blue",
              "undecided": "tab:gray"}
    fig, ax = plt.subplots(figsize=(8, 1.3 + 0.38 * len(r.effects)))
    ax.axvspan(-100 * r.margin, 100 * r.margin, color="tab:blue", alpha=0.08, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for i, e in enumerate(r.effects):
        m = 100 * e.estimate
        if e.ci_low == e.ci_low:
            lo, hi = 100 * e.ci_low, 100 * e.ci_high
            ax.errorbar(m, i, xerr=[[m - lo], [hi - m]], fmt="o", capsize=3, color=colors[e.decision])
        else:
            ax.plot(m, i, "o", color=colors[e.decision])
    mains = sum(e.kind == "main" for e in r.effects)
    if 0 < mains < len(r.effects):
        ax.axhline(mains - 0.5, color="gray", lw=0.6, ls="--")
    ax.set_yticks(range(len(r.effects)), [_name(e) for e in r.effects])
    ax.invert_yaxis()
    for d, c in colors.items():
        ax.plot([], [], "o", color=c, label=d)
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("effect on validation accuracy (points), 95% CI over seeds x images")
    ax.set_title(f"{title}: {_headline(r)}", fontsize=9)
    return save(fig, out, "effects")


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class PlanRow:
    target: str
    seeds: int | None
    trials: int | None
    trial_epochs: int | None
    power_now: float
    image_floor: float = 0.0  # the 95% half-width the image term alone leaves (accuracy)


def plan(r: StudyEffects, delta: float, target: float = 0.8, alpha: float = 0.05,
         points: int | None = None) -> list[PlanRow]:
    """Seeds needed, at the pilot's validation size, to detect each main effect of size
    ``delta`` (accuracy units) and to tell two configurations ``delta`` apart, with power
    ``target``; their cost at the study's budget (``points`` x seeds x max_epochs)."""
    x = np.stack(r.arrays).astype(np.float64)
    if x.shape[1] < 2:
        raise NoEffects("--plan needs a pilot with >= 2 seeds (its seed-to-seed variance)")
    term = seed_interaction(list(x))
    n_points = points or len(r.points)
    rows = []
    df_now = max((len(r.points) - 1) * (r.seeds - 1), 1)

    def row(name: str, comp: Components, design_points: int) -> PlanRow:
        s = seeds_needed(delta, comp, r.images, len(r.points), target, alpha)
        now = power(delta, comp, r.seeds, r.images, df_now, alpha)
        floor = 1.96 * float(np.sqrt(comp.image / r.images))
        return PlanRow(name, s, None if s is None else design_points * s,
                       None if s is None else design_points * s * r.max_epochs, now, floor)

    for c in contrasts(r.points, r.levels, interactions=False):
        d = np.tensordot(c.weights, x, axes=1)
        rows.append(row(f"main effect {c.name}", components(d, term, float(np.sum(c.weights ** 2))),
                        n_points))
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    comps = [components(x[j] - x[i], term, 2.0) for i, j in pairs]
    pair = Components(*(float(np.mean([getattr(c, k) for c in comps])) for k in ("seed", "image", "residual")))
    rows.append(row("two configurations apart", pair, n_points))
    return rows


def plan_markdown(rows: list[PlanRow], r: StudyEffects, delta: float, target: float) -> str:
    lines = [f"Plan from this pilot ({_headline(r)}): seeds needed to detect {100 * delta:g} "
             f"points with power {target:g} (two-sided, alpha 0.05), at {r.images} validation "
             f"images and {r.max_epochs} epochs per trial; power now at {r.seeds} seeds.", "",
             "| target | seeds | trials | trial-epochs | power now |", "|---|---:|---:|---:|---:|"]
    for p in rows:
        miss = (f"none: the images alone leave ±{100 * p.image_floor:.1f} points; more "
                "validation images" if p.image_floor / 1.96 * 2.8 >= delta else "> 1000")  # z 0.975 + z 0.8
        lines.append(f"| {p.target} | {p.seeds or miss} | {p.trials or '–'} | {p.trial_epochs or '–'} "
                     f"| {p.power_now:.2f} |")
    return "\n".join(lines) + "\n"


def write_json(r: StudyEffects, path: Any = None) -> str:
    text = json.dumps(r.as_json(), indent=1)
    if path:
        Path(path).write_text(text + "\n")
    return text
