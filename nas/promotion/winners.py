"""The winners of a study, written as architecture files that rebuild them exactly
(``python -m nas.export`` is their command line).

``export``: the top K points of the search by their mean over repeats (full-budget trials
only), or with several objectives the Pareto set, each with the recipe it was trained with
and a ``summary.md``. ``export_stage``: the networks a promotion stage trained, each with
its weights and its lineage.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

import blocks

from ..search.results import best_points, config_label, load_existing_study, space_order
from ..study import StudyConfig, StudyError
from .lineage import linked_name, load_linked, stage_trials


def recipe(cfg: StudyConfig, trial: int, repeat: int = 0, threads: int | None = None) -> dict:
    """What a trial of the study was trained with, for ``nas.train --arch-config`` to repeat
    it exactly (data settings such as image_size included, and the CPU threads it ran with:
    another thread count sums in another order)."""
    train = cfg.train.model_dump(mode="json")
    train.update(epochs=cfg.fidelity.max_epochs, max_steps_per_epoch=cfg.fidelity.max_steps_per_epoch,
                 seed=cfg.train.seed + repeat)  # as nas.training.trainable seeds each repeat
    out = {"study": cfg.name, "trial": trial, "data": cfg.data.model_dump(mode="json"), "train": train}
    return out if threads is None else {**out, "threads": threads}


def export(cfg: StudyConfig, top: int, out: Path) -> list[Path]:
    study = load_existing_study(cfg)
    best = best_points(study, cfg, top)
    if not best:
        raise StudyError(f"{cfg.source}: study {cfg.name!r} has no full-budget (COMPLETE) trial yet")
    out.mkdir(parents=True, exist_ok=True)
    names = [o.metric for o in cfg.objectives]
    lines = [f"# {cfg.name}: {'Pareto set' if cfg.multi_objective else f'top {top}'}", "",
             "| rank | file | trial | n | " + " | ".join(names) + " | point |",
             "|---" * (5 + len(names)) + "|"]
    paths = []
    for b in best:
        arch = blocks.load_config(b["arch"])
        path = out / f"rank{b['rank']:02d}_trial{b['trial']}.yaml"
        header = (f"# exported from study {cfg.name}, trial {b['trial']} (rank {b['rank']}): "
                  + ", ".join(f"{n}={v:.4g}" for n, v in zip(names, b["values"])) + "\n")
        path.write_text(header + blocks.dump_config(arch) + yaml.safe_dump(
            {"recipe": recipe(cfg, b["trial"], b["repeat"], b["threads"])}, sort_keys=False))
        paths.append(path)
        vals = " | ".join(f"{v:.4g}" for v in b["values"])
        lines.append(f"| {b['rank']} | {path.name} | {b['trial']} | {b['n']} | {vals} | "
                     f"{config_label(b['point'], space_order(study))} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {len(paths)} architecture file(s) and summary.md to {out}; train one again "
          f"exactly with: python -m nas.train --arch-config {paths[0]}")
    return paths


def export_stage(cfg: StudyConfig, stage: str, top: int, out: Path) -> list[Path]:
    """The top K networks a promotion stage trained: for each, the architecture with its
    recipe (the stage's data and training settings) and its ``lineage`` (search trial,
    then every stage it went through, this one last) as ``rankNN_<stage>_trialM.yaml``,
    and its weights beside it (``.pt``, a nas.train checkpoint)."""
    if stage not in cfg.promotion:
        raise StudyError(f"{cfg.source}: promotion.{stage}: no such stage; allowed: "
                         f"{', '.join(cfg.promotion) or 'none'}")
    linked = load_linked(cfg, stage)
    trials = stage_trials(linked, top) if linked is not None else []
    if not trials:
        raise StudyError(f"{cfg.source}: stage {stage!r} has no finished trial; run it first: "
                         f"python -m nas.promote {cfg.source} --stage {stage}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, t in enumerate(trials, 1):
        a = t.user_attrs
        folder = Path(a["checkpoint"])
        weights = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
        path = out / f"rank{rank:02d}_{stage}_trial{t.number}.yaml"
        lineage = list(a.get("lineage", [])) + [{"stage": stage, "study": linked_name(cfg, stage),
                                                 "trial": t.number, "val_acc": t.value,
                                                 "checkpoint": str(weights)}]
        recipe = {"study": linked.study_name, "trial": t.number, "data": a["data"], "train": a["train"],
                  "lineage": lineage}
        path.write_text(f"# exported from stage {stage} of study {cfg.name}, trial {t.number} "
                        f"(rank {rank}): val_acc={t.value:.4g}\n" + blocks.dump_config(
                            blocks.load_config(a["arch"])) + yaml.safe_dump({"recipe": recipe}, sort_keys=False))
        shutil.copyfile(weights, path.with_suffix(".pt"))
        paths.append(path)
        print(f"{path}: " + " -> ".join(f"{s['stage']} {100 * s['val_acc']:.2f}%" if s.get("val_acc")
                                        is not None else s["stage"] for s in lineage))
    return paths
