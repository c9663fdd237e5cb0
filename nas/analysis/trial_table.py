"""A study's trials as one table, for its report (``nas.analysis.report``) and figures
(``nas.analysis.figures``): one row per trial with its point, curve and measured values;
the configurations (points) over their repeats; the best trial; the Pareto front."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..search.pareto import front_ranks
from ..search.results import config_label, space_order
from ..study import StudyConfig
from ..trial_record import is_proposal_only, point_key

METRIC_LABELS = {"val_acc": "validation accuracy (%)", "energy_uj": "energy per image (µJ)",
                 "sops": "synaptic operations per image", "firing_rate": "mean firing rate",
                 "sparsity": "sparsity (spikes / neuron / step)", "params": "parameters",
                 "macs": "MACs per image", "ann_flops": "ANN FLOPs per image", "T": "time steps"}
VALUE_KEYS = ("val_acc", "energy_uj", "sops", "firing_rate", "sparsity", "macs", "ann_flops",
              "params", "T")


def drawn_value(metric: str, value: Any) -> float:
    """A stored value as drawn: accuracy in percent, None as NaN."""
    if value is None:
        return math.nan
    v = float(value)
    return 100.0 * v if metric == "val_acc" else v


def trial_rows(study, cfg: StudyConfig) -> pd.DataFrame:
    """One row per trial (not waiting): number, state, point, label, repeat, epochs,
    curve, and the measured values (objectives, else the stored user attributes)."""
    from optuna.trial import TrialState

    names = [o.metric for o in cfg.objectives]
    rows, order = [], space_order(study)
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING or is_proposal_only(t):
            continue  # queued, or a discarded proposal (never trained)
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name, "point": point_key(t.params),
            "label": config_label(t.params, order), "repeat": t.user_attrs.get("repeat", 0),
            "epochs": t.user_attrs.get("epochs", 0), "curve": list(t.user_attrs.get("curve") or []),
            "layer_rates": t.user_attrs.get("layer_rates"), "arch": t.user_attrs.get("arch")}
        complete = t.state == TrialState.COMPLETE
        for key in VALUE_KEYS:
            value = t.user_attrs.get(key) if complete or key in ("params", "T") else None
            if complete and key in names:
                value = t.values[names.index(key)]
            row[key] = math.nan if value is None else float(value)
        rows.append(row)
    cols = ["number", "state", "point", "label", "repeat", "epochs", "curve", "layer_rates",
            "arch", *VALUE_KEYS]
    return pd.DataFrame(rows, columns=cols)


def configurations(df: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials grouped by point: n, mean and sd of every value, best accuracy first."""
    done = df[df["state"] == "COMPLETE"]
    if not len(done):
        return pd.DataFrame()
    g = done.groupby("point", sort=False)
    out = pd.DataFrame({"label": g["label"].first(), "n": g.size()})
    for key in VALUE_KEYS:
        out[f"{key}_mean"] = g[key].mean()
        out[f"{key}_std"] = g[key].std(ddof=1)
    sort = "val_acc_mean" if out["val_acc_mean"].notna().any() else out.columns[2]
    return out.sort_values(sort, ascending=False).reset_index()


def top_points(df: pd.DataFrame, top: int | None) -> pd.DataFrame:
    """The trials of the ``top`` best configurations (all trials when ``top`` is None)."""
    if top is None:
        return df
    keep = set(configurations(df).head(top)["point"]) if len(df) else set()
    return df[df["point"].isin(keep)]


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points not dominated when minimising ``x`` and maximising ``y``."""
    return front_ranks(np.column_stack([-np.asarray(x, float), np.asarray(y, float)])) == 0


def best_trial(df: pd.DataFrame, cfg: StudyConfig) -> pd.Series | None:
    """The COMPLETE trial best on the first objective (accuracy if several)."""
    done = df[df["state"] == "COMPLETE"]
    first = cfg.objectives[0]
    key = first.metric if first.metric in done else "val_acc"
    done = done[done[key].notna()]
    if not len(done):
        return None
    asc = first.direction == "minimize" and key == first.metric
    return done.sort_values([key, "number"], ascending=[asc, True]).iloc[0]
