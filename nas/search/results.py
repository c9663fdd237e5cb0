"""Reading a study back: trials as a table, points ranked over their repeats, and the
per-image correctness that trials record on the validation split."""
from __future__ import annotations

import json
import math


import optuna
import pandas as pd
from optuna.trial import TrialState

from ..study import StudyConfig, StudyError
from ..trial_record import DUPLICATE_OF, INTERRUPTED, is_proposal_only, point_key
from .storage import open_study_storage

CALIBRATION_WARN = 0.6  # a stored calibration's Kendall tau below this: the end table warns


def load_existing_study(cfg: StudyConfig):
    """The stored study of ``cfg``; a clear error if it was never run."""
    import optuna

    storage = open_study_storage(cfg, create=False)
    try:
        return optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        raise StudyError(f"{cfg.source}: no study named {cfg.name!r} in {cfg.storage_url}; "
                         f"run it first: python -m nas.run {cfg.source}") from None


def best_points(study, cfg: StudyConfig, top: int) -> list[dict]:
    """``[{"rank", "trial", "point", "values", "n", "arch", "repeat", "threads"}]`` best first
    (``threads``: the CPU threads its trial trained with, None if it did not record them)."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "arch" in t.user_attrs]
    by_point: dict[str, list] = {}
    for t in complete:
        by_point.setdefault(point_key(t.params), []).append(t)
    if cfg.multi_objective:
        pareto = {point_key(t.params) for t in study.best_trials}
        order = [p for p in by_point if p in pareto]
    else:
        ranked = ranking(trials_frame(study, cfg), cfg)
        order = [p for p in ranked["point"] if p in by_point]
    out = []
    for rank, point in enumerate(order[:top], 1):
        trials = by_point[point]
        values = [sum(t.values[i] for t in trials) / len(trials) for i in range(len(cfg.objectives))]
        out.append({"rank": rank, "trial": trials[0].number, "point": json.loads(point),
                    "values": values, "n": len(trials), "arch": trials[0].user_attrs["arch"],
                    "repeat": int(trials[0].user_attrs.get("repeat", 0)),
                    "threads": trials[0].user_attrs.get("threads")})
    return out


def config_label(params: dict, order=()) -> str:
    """The one name of a point, used by every command and file: ``{"PT": True, "PC":
    False}`` -> ``"(PT)"``; no switch on -> ``"none"``; other values -> ``"k=v, ..."``; the
    base itself -> ``"(base)"``. Names in ``order`` (the space file's: :func:`space_order`)
    come first, in that order."""
    if not params:
        return "(base)"
    rank = {name: i for i, name in enumerate(order)}
    params = dict(sorted(params.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    if all(isinstance(v, bool) for v in params.values()):
        on = [k for k, v in params.items() if v]
        return f"({', '.join(on)})" if on else "none"
    return ", ".join(f"{k}={v}" for k, v in params.items())


def space_order(study: optuna.Study) -> list[str]:
    """The study's parameter names in its space file's order (as stored at its first run)."""
    definition = study.user_attrs.get("definition") or {}
    return [p["name"] for p in definition.get("space", {}).get("parameters", [])]


STATE_ORDER = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def trial_counts(study: optuna.Study) -> str:
    """The study's trials by state, as Optuna and optuna-dashboard count them (the one
    count of the end table and summary.md); FAIL and WAITING trials said for what they are."""
    trials = study.get_trials(deepcopy=False)
    fails = [t.user_attrs for t in trials if t.state == TrialState.FAIL]
    kinds = {"interrupted by a stopped driver, its point queued again": sum(bool(a.get(INTERRUPTED)) for a in fails),
             "proposals of a point the study had, never trained": sum(DUPLICATE_OF in a for a in fails)}
    kinds["raised an error"] = len(fails) - sum(kinds.values())
    notes = {"WAITING": "queued, not run yet",
             "FAIL": ", ".join(f"{n} {what}" for what, n in kinds.items() if n) if len(fails) > kinds["raised an error"] else ""}
    parts = []
    for state in STATE_ORDER:
        n = sum(t.state.name == state for t in trials)
        if n:
            parts.append(f"{state} {n}" + (f" ({notes[state]})" if notes.get(state) else ""))
    return f"{len(trials)} trials: " + (", ".join(parts) or "none")


def trials_frame(study: optuna.Study, cfg: StudyConfig) -> pd.DataFrame:
    """One row per trial: number, state, point, repeat, epochs, objectives, error."""
    rows = []
    names = [o.metric for o in cfg.objectives]
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING or is_proposal_only(t):
            continue  # queued, or a proposal of a point the study had (never trained)
        row = {"number": t.number, "state": t.state.name, "point": point_key(t.params),
               "repeat": t.user_attrs.get("repeat", 0), "epochs": t.user_attrs.get("epochs", 0),
               "params": t.user_attrs.get("params"), "error": t.user_attrs.get("error"),
               "interrupted": bool(t.user_attrs.get(INTERRUPTED))}
        values = t.values if t.state == TrialState.COMPLETE else None
        for i, name in enumerate(names):
            row[name] = values[i] if values else None
        if values is None and t.user_attrs.get("curve"):
            row["last_" + names[0]] = t.user_attrs["curve"][-1]
        rows.append(row)
    return pd.DataFrame(rows)


def ranking(df: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """COMPLETE (full-budget) trials grouped by point: mean, std and count per objective,
    best first by the first objective."""
    names = [o.metric for o in cfg.objectives]
    done = df[df["state"] == "COMPLETE"] if len(df) else df
    if not len(done):
        return pd.DataFrame(columns=["point", "n"])
    g = done.groupby("point")
    out = pd.DataFrame({"n": g.size()})
    for name in names:
        out[f"{name}_mean"] = g[name].mean()
        out[f"{name}_std"] = g[name].std(ddof=1).fillna(0.0) if g.size().max() > 1 else 0.0
    first = cfg.objectives[0]
    out = out.sort_values(f"{first.metric}_mean", ascending=first.direction == "minimize")
    return out.reset_index()


def print_ranking(study: optuna.Study, cfg: StudyConfig, limit: int = 20) -> pd.DataFrame:
    from rich.console import Console
    from rich.table import Table

    df = trials_frame(study, cfg)
    ranked = ranking(df, cfg)
    epochs = cfg.fidelity.max_epochs
    title = f"{cfg.name}: ranking at the full budget ({epochs} epoch{'s' * (epochs > 1)})"
    caption = f"{len(ranked)} points; {trial_counts(study)}"
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left",
                  min_width=min(max(len(title), len(caption)), 140))  # each on one line
    table.add_column("rank", justify="right")
    table.add_column("point")
    table.add_column("n", justify="right")
    for o in cfg.objectives:
        table.add_column(f"{o.metric} ({'max' if o.direction == 'maximize' else 'min'})", justify="right")
    order = space_order(study)
    for i, row in ranked.head(limit).iterrows():
        cells = []
        for o in cfg.objectives:
            m, s = row[f"{o.metric}_mean"], row[f"{o.metric}_std"]
            cells.append(f"{m:.4g}" + (f" ± {s:.2g}" if row["n"] > 1 and not math.isnan(s) else ""))
        table.add_row(str(i + 1), config_label(json.loads(row["point"]), order), str(row["n"]), *cells)
    Console(width=100).print(table)
    cal = study.user_attrs.get("calibration")
    if cal:
        low = cal["kendall_tau"] < CALIBRATION_WARN or cal["kendall_tau"] != cal["kendall_tau"]
        print(f"calibration ({cal['k']} points, {' '.join(cal['low'])} vs {' '.join(cal['high'])}): "
              f"Kendall tau {cal['kendall_tau']:.2f}" + (f", below {CALIBRATION_WARN}: this cheap "
              "ranking may not hold at the expensive setting" if low else ""), flush=True)
    return ranked
