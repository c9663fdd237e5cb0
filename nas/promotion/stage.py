"""Promotion of a study's winners to a larger budget: a stage's candidates trained under its
settings (more epochs, the full data set, ImageNet at 224 ...) and recorded in the linked
Optuna study ``<study>-<stage>`` (same storage). A stage with ``from: <stage>`` trains that
stage's top K from their checkpoints, and runs it first if it has not run (lineage.py).
Re-running skips what is recorded, and a training run that was interrupted resumes from its
last checkpoint. ``workers > 1`` trains with distributed data parallel through Ray Train's
TorchTrainer on the Ray cluster. ``python -m nas.promote`` drives ``promote``.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import blocks

from ..search.cluster import checkpoint_dir, ray_storage_path
from ..search.storage import open_study_storage
from ..study import PromotionStage, StudyConfig, StudyError
from ..training.loop import train
from .lineage import candidates, chain, linked_name


def _merge(model, over: dict):
    return model.model_validate({**model.model_dump(), **over})


def train_distributed(arch, data_cfg, train_cfg, stage: PromotionStage, ckpt: Path, cfg: StudyConfig,
                      init: dict | None = None) -> dict:
    """Data-parallel training on ``stage.workers`` Ray Train workers (gloo on CPU, NCCL on
    GPU). The checkpoint folder (below the study's ``results_storage``) must be shared by
    the workers: one host, or a shared folder on a cluster."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ..search.engine import ray_session

    def loop(config: dict) -> None:
        import json

        import torch.distributed as dist

        result = train(config["arch"], config["data"], config["train"], progress=False,
                       checkpoint_dir=config["ckpt"], distributed=True, init=config["init"])
        if dist.get_rank() == 0:  # the result travels through the shared checkpoint folder
            Path(config["ckpt"], "result.json").write_text(json.dumps(
                {k: v for k, v in result.items() if k != "history"}))

    with ray_session(cfg):
        trainer = TorchTrainer(
            loop,
            train_loop_config={"arch": arch.model_dump(mode="json"), "data": data_cfg.model_dump(),
                               "train": train_cfg.model_dump(), "ckpt": str(ckpt),
                               "init": init},
            scaling_config=ScalingConfig(num_workers=stage.workers, use_gpu=stage.use_gpu),
            run_config=RunConfig(storage_path=ray_storage_path(cfg),
                                 name=f"promote-{time.strftime('%Y%m%d-%H%M%S')}"),
        )
        trainer.fit()
    import json

    return json.loads((ckpt / "result.json").read_text())


def promote(cfg: StudyConfig, stage_name: str, top: int | None = None, fresh: bool = False):
    """Train ``stage_name``, after the stages it descends from (``from``) where they have
    not run; what a stage recorded is skipped, an interrupted training resumes. ``fresh``:
    the stage (not its parents) starts over: its linked study and checkpoints are deleted."""
    if stage_name not in cfg.promotion:
        allowed = ", ".join(cfg.promotion) or "none defined in the study's promotion section"
        raise StudyError(f"{cfg.source}: promotion.{stage_name}: no such stage; allowed: {allowed}")
    if fresh:
        _forget_stage(cfg, stage_name)
    for name in chain(cfg, stage_name):
        linked = promote_stage(cfg, name, top if name == stage_name else None)
    return linked


def _forget_stage(cfg: StudyConfig, stage_name: str) -> None:
    import shutil

    import optuna

    try:
        optuna.delete_study(study_name=linked_name(cfg, stage_name), storage=open_study_storage(cfg, create=False))
    except KeyError:
        pass
    shutil.rmtree(checkpoint_dir(cfg) / stage_name, ignore_errors=True)


def promote_stage(cfg: StudyConfig, stage_name: str, top: int | None = None):
    import optuna

    stage = cfg.promotion[stage_name]
    todo = candidates(cfg, stage_name, top or stage.top)
    linked = optuna.create_study(study_name=linked_name(cfg, stage_name), load_if_exists=True,
                                 storage=open_study_storage(cfg), direction="maximize")
    linked.set_user_attr("promoted_from", todo[0]["parent_study"])
    with warnings.catch_warnings():  # experimental in Optuna, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        linked.set_metric_names(["val_acc"])  # the dashboard's label of the stage's value
    done = {(a.get("parent_study", cfg.name), a.get("parent_trial", a.get("source_trial")), a.get("repeat"))
            for a in (t.user_attrs for t in linked.get_trials(deepcopy=False))}
    data_cfg = _merge(cfg.data, stage.data)
    for c in todo:
        arch = blocks.load_config(c["arch"], **stage.arch)
        init = None if c["parent_checkpoint"] is None else {"checkpoint": c["parent_checkpoint"],
                                                             "freeze": stage.freeze}
        what = f"{stage_name}: trial {c['parent_trial']} of {c['parent_study']}"
        for r in range(stage.repeats):
            if (c["parent_study"], c["parent_trial"], r) in done:
                print(f"{what} repeat {r}: already promoted", flush=True)
                continue
            train_cfg = _merge(cfg.train, {**stage.train, "epochs": stage.epochs,
                                           "seed": cfg.train.seed + r})
            ckpt = checkpoint_dir(cfg) / stage_name / f"trial{c['parent_trial']}-r{r}"
            print(f"{what} repeat {r}: {stage.epochs} epochs"
                  + (f", from {c['parent_checkpoint']}" if init else ""), flush=True)
            if stage.workers > 1:
                res = train_distributed(arch, data_cfg, train_cfg, stage, ckpt, cfg, init)
            else:
                res = train(arch, data_cfg, train_cfg, checkpoint_dir=ckpt, init=init)
            if res["val_acc"] is None:
                raise StudyError(f"{cfg.source}: promotion.{stage_name}.data.val_fraction: "
                                 f"{data_cfg.val_fraction} leaves no validation image to rank by")
            attrs = {"source_trial": c["source_trial"], "repeat": r, "point": c["point"],
                     "arch": blocks.load_config(ckpt / "arch.yaml").model_dump(mode="json"),
                     "checkpoint": str(ckpt), "parent_study": c["parent_study"],
                     "parent_trial": c["parent_trial"], "parent_checkpoint": c["parent_checkpoint"],
                     "lineage": c["lineage"], "data": data_cfg.model_dump(mode="json"),
                     "train": train_cfg.model_dump(mode="json"),
                     **{k: res.get(k) for k in ("val_acc", "best_val_acc", "test_acc",
                                                "train_acc", "wall_seconds", "params", "epochs")}}
            linked.add_trial(optuna.trial.create_trial(value=float(res["val_acc"]), user_attrs=attrs))
    return linked
