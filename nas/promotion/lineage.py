"""Chains of promotion stages, and the lineage of every network trained along one.

A stage without ``from`` trains the search's top K points; a stage with ``from: <parent>``
trains the top K trials of its parent stage, each starting from that trial's checkpoint:

    search -> imagenet -> tit (T=6, from imagenet) -> cifar10_ft (from tit)

Every promoted trial (in the Optuna study ``<study>-<stage>``) stores its parent
(``parent_study``, ``parent_trial``, ``parent_checkpoint``) and ``lineage``: its ancestors
from the search trial on, each ``{stage, study, trial, val_acc, checkpoint}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..search.results import best_points, config_label, load_existing_study
from ..search.storage import open_study_storage
from ..study import StudyError

SEARCH = "search"  # the stage name of the search itself in a lineage


def chain(cfg, stage: str) -> list[str]:
    """``stage`` and its ancestors, the first to train first."""
    out = [stage]
    while cfg.promotion[out[0]].parent is not None:
        out.insert(0, cfg.promotion[out[0]].parent)
    return out


def stage_order(cfg) -> list[str]:
    """Every stage, each after its parent."""
    return sorted(cfg.promotion, key=lambda s: (len(chain(cfg, s)), list(cfg.promotion).index(s)))


def linked_name(cfg, stage: str) -> str:
    return f"{cfg.name}-{stage}"


def load_linked(cfg, stage: str):
    """The stored study of ``stage``, or None when it has not run."""
    try:
        return optuna.load_study(study_name=linked_name(cfg, stage), storage=open_study_storage(cfg, create=False))
    except KeyError:
        return None


def stage_trials(linked, top: int | None = None) -> list:
    """COMPLETE trials of a stage's study, best first, one per architecture (its best repeat)."""
    best: dict[Any, Any] = {}
    for t in linked.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = t.user_attrs.get("source_trial")
        if key not in best or t.value > best[key].value:
            best[key] = t
    ranked = sorted(best.values(), key=lambda t: -t.value)
    return ranked[:top] if top else ranked


def _checkpoint(folder: str) -> str:
    best = Path(folder) / "best.pt"
    return str(best if best.is_file() else Path(folder) / "last.pt")


def candidates(cfg, stage_name: str, top: int) -> list[dict]:
    """What ``stage_name`` trains: ``[{parent_study, parent_trial, parent_checkpoint,
    source_trial, point, arch, lineage}]``, best first."""
    stage = cfg.promotion[stage_name]
    if stage.parent is None:
        best = best_points(load_existing_study(cfg), cfg, top)
        if not best:
            raise StudyError(f"{cfg.source}: study {cfg.name!r} has no full-budget trial to promote")
        acc = cfg.objectives[0].metric == "val_acc"
        return [{"parent_study": cfg.name, "parent_trial": b["trial"], "parent_checkpoint": stage.init_from,
                 "source_trial": b["trial"], "point": b["point"], "arch": b["arch"],
                 "lineage": [{"stage": SEARCH, "study": cfg.name, "trial": b["trial"],
                              "val_acc": b["values"][0] if acc else None, "checkpoint": None}]}
                for b in best]
    linked = load_linked(cfg, stage.parent)
    trials = stage_trials(linked, top) if linked is not None else []
    if not trials:
        raise StudyError(f"{cfg.source}: promotion.{stage_name}.from: stage {stage.parent!r} has no "
                         f"finished trial; run it first: python -m nas.promote {cfg.source} "
                         f"--stage {stage.parent}")
    out = []
    for t in trials:
        a = t.user_attrs
        ckpt = _checkpoint(a["checkpoint"])
        out.append({"parent_study": linked.study_name, "parent_trial": t.number, "parent_checkpoint": ckpt,
                    "source_trial": a["source_trial"], "point": a["point"], "arch": a["arch"],
                    "lineage": list(a.get("lineage", [])) + [{
                        "stage": stage.parent, "study": linked.study_name, "trial": t.number,
                        "val_acc": t.value, "checkpoint": ckpt}]})
    return out


def lineage_frame(cfg):
    """One row per architecture that reached a stage: ``source_trial``, ``point``, then the
    validation accuracy at the search and at every stage (best repeat), stages in order."""
    rows: dict[Any, dict] = {}
    for stage in stage_order(cfg):
        linked = load_linked(cfg, stage)
        for t in stage_trials(linked) if linked is not None else []:
            a = t.user_attrs
            row = rows.setdefault(a["source_trial"], {"source_trial": a["source_trial"],
                                                      "point": a.get("point")})
            row[stage] = t.value
            for step in a.get("lineage", []):
                row.setdefault(step["stage"], step.get("val_acc"))
    cols = ["source_trial", "point", SEARCH] + stage_order(cfg)
    return pd.DataFrame(list(rows.values())).reindex(columns=cols) if rows else pd.DataFrame(columns=cols)


def lineage_markdown(frame, order=()) -> str:
    if not len(frame):
        return ""
    stages = [c for c in frame.columns if c not in ("source_trial", "point")]
    lines = ["## Lineage: validation accuracy (%) along the promotion chain", "",
             "| search trial | point | " + " | ".join(stages) + " |", "|---" * (2 + len(stages)) + "|"]
    for _, r in frame.iterrows():
        point = config_label(r["point"] or {}, order)
        accs = " | ".join("–" if r[s] is None or r[s] != r[s] else f"{100 * r[s]:.2f}" for s in stages)
        lines.append(f"| {r['source_trial']} | {point} | {accs} |")
    return "\n".join(lines) + "\n"
