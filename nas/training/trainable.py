"""What one Ray Tune trial runs: build the sampled architecture, train it, report per epoch.

Kept apart from the search space and the engine (Ray Tune's own examples do the same), so
a trial can be run and debugged alone: ``run_trial({"params": {...}, "repeat": 0}, study)``.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from ..cache import cache_dir, remove_if_owner_gone
from ..metrics import EVAL_IMAGES, eval_batch, measure
from ..objectives import METRIC_KINDS
from ..study import StudyConfig
from ..trial_record import pack_correct, worst
from .loop import Trainer

_SPACES: dict[str, Any] = {}  # per worker process: reused actors load a space once


def _space(study: StudyConfig):
    key = study.model_dump_json(include={"space", "base", "arch"})
    if key not in _SPACES:
        _SPACES[key] = study.load_space()
    return _SPACES[key]


def _numbers(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class _PausableReport:
    """Ray Tune's report for a trial its scheduler may pause (the race): training keeps
    its checkpoint in a folder of the trial's own, restored from Ray's checkpoint when the
    trial resumes, and the results of a rung epoch carry it (Ray keeps the latest). The
    folder is in our cache folder (nas/cache.py), never the system's temporary folder, and
    is removed when the trial ends (:meth:`close`), or at the latest by the next trial
    once its process is gone."""

    def __init__(self, rungs: list[int]) -> None:
        import shutil
        import tempfile
        import weakref

        from ray import tune

        self.rungs = set(rungs)
        parent = cache_dir("trials")
        parent.mkdir(parents=True, exist_ok=True)
        remove_orphan_trial_dirs(parent)
        self.checkpoint_dir = tempfile.mkdtemp(prefix=f"nas-trial-{os.getpid()}-", dir=parent)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.checkpoint_dir, ignore_errors=True)
        restored = tune.get_checkpoint()
        if restored is not None:
            with restored.as_directory() as d:
                shutil.copytree(d, self.checkpoint_dir, dirs_exist_ok=True)

    def __call__(self, metrics: dict) -> None:
        from ray import tune

        if int(metrics.get("epoch", 0)) in self.rungs:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(self.checkpoint_dir))
        else:
            tune.report(metrics)

    def close(self) -> None:
        self._cleanup()


def remove_orphan_trial_dirs(parent: Path) -> list[Path]:
    """Trial folders (``nas-trial-<pid>-*``, ours by their place) whose process is gone."""
    pids = {d: d.name.split("-")[2] for d in parent.glob("nas-trial-*-*")}
    return remove_if_owner_gone({d: int(pid) for d, pid in pids.items() if pid.isdigit()})


def where() -> dict:
    """The Ray node and process running this trial (empty outside Ray): every result
    carries them, and the searcher stores them in the trial's ``nodes``."""
    import os
    import socket

    import ray

    if not ray.is_initialized():
        return {}
    return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "node_host": socket.gethostname(), "worker_pid": os.getpid()}


def _tune_report(study: StudyConfig):
    if study.scheduler == "race":
        return _PausableReport(study.race_rungs[:-1])
    from ray import tune

    return tune.report


def run_trial(config: dict, study: StudyConfig | str, report=None) -> dict:
    """Train the architecture of ``config["params"]``; report each epoch through
    ``report`` (default: Ray Tune's); never raises: failures are reported as ``error``.
    A trial that reaches ``max_epochs`` is measured (:mod:`nas.metrics`: energy, SOPs,
    firing rates ... on the first validation images) before its last epoch is reported,
    so that the last result carries those metrics (they can be study objectives). When a
    study's objectives include such a cost metric, every epoch's result carries the cost
    metrics too, measured on the same fixed batch, so that a multi-objective scheduler
    can prune on them."""
    if isinstance(study, str):
        study = StudyConfig.model_validate_json(study)
    if report is None:
        report = _tune_report(study)
    start = time.time()
    gpu = study.resources.gpu > 0 and torch.cuda.is_available()
    threads = max(1, int(study.resources.cpu))  # recorded: nas.train repeats a trial with it
    torch.set_num_threads(threads)
    last: dict = {**where(), "threads": threads}
    try:
        arch = _space(study).to_config(config["params"])
        # cost objectives (energy, SOPs ...): measured every epoch on the fixed batch
        per_epoch_cost = any(METRIC_KINDS[o.metric].cost for o in study.objectives)
        train_cfg = study.train.model_copy(update={
            "epochs": study.fidelity.max_epochs,
            "seed": study.train.seed + int(config.get("repeat", 0)),
            "device": "cuda" if gpu else "cpu",
            "max_steps_per_epoch": study.fidelity.max_steps_per_epoch,
        })
        trainer = Trainer(arch, study.data, train_cfg, progress=False, per_image=study.record_predictions,
                          checkpoint_dir=getattr(report, "checkpoint_dir", None))
        arch_json = trainer.model.config.model_dump_json()  # as built for the data: what is trained
        images = eval_batch(trainer.data, EVAL_IMAGES) if per_epoch_cost else None

        def on_epoch(epoch: int, metrics: dict) -> None:
            last.update(_numbers(metrics), epoch=epoch, T=arch.T, arch_json=arch_json,
                        wall_seconds=time.time() - start)
            if "val_correct" in metrics:
                last["val_correct"] = pack_correct(metrics["val_correct"])
            if not math.isfinite(last.get("train_loss", 0.0)):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            if epoch < train_cfg.epochs:  # the last epoch is reported below, measured
                if per_epoch_cost:
                    m = measure(trainer.model, images)
                    last.update({k: v for k, v in m.as_dict().items() if k != "T"})
                report(dict(last))

        trainer.fit(on_epoch)
        if last.get("epoch", 0) >= train_cfg.epochs:  # the trained model, after its final evaluation
            m = measure(trainer.model, images if per_epoch_cost else eval_batch(trainer.data, EVAL_IMAGES))
            last.update({k: v for k, v in m.as_dict().items() if k != "T"},
                        layer_rates_json=json.dumps(m.layer_rates()),
                        wall_seconds=time.time() - start)
            report(dict(last))
    except Exception as err:  # noqa: BLE001 - every failure is recorded, the study goes on
        if isinstance(err, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        failed = {o.metric: worst(o.direction) for o in study.objectives}
        failed.update(where(), epoch=last.get("epoch", 0), error=f"{type(err).__name__}: {err}"[:2000],
                      wall_seconds=time.time() - start)
        report(failed)
        return failed
    finally:
        if hasattr(report, "close"):
            report.close()  # its temporary folder: the last result was reported
    return last
