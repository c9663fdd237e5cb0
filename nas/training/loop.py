"""The training loop: a :class:`Trainer` sets a run up (data, model, optimisers, a resumed
checkpoint), trains and evaluates it an epoch at a time and writes its checkpoints;
``train(arch, data_cfg, train_cfg)`` fits one in a call. ``nas.train`` (the command), the
trials of a study and the promotion stages all drive it the same way.

The recipe (DESIGN.md): SGD lr 0.1, momentum 0.9, cosine to 0, weight decay 5e-4 (none on
BatchNorm, biases and scalars), cross-entropy on the time-averaged logits, AMP on CUDA.
The parameters of modules that declare ``own_optimizer = {...}`` (SNN-MLP's learnable LIF
scalars) get their own AdamW with those settings; the cosine schedule scales every
optimizer's lr.
Checkpoints (``last.pt`` every epoch, ``best.pt`` by validation accuracy) go to
``checkpoint_dir``; a run whose ``checkpoint_dir`` holds a ``last.pt`` resumes from it.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from ..recipe import DataConfig, TrainConfig
from .data import Data, DataError, load_data
from .finetune import InitFrom, freeze, init_weights

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "evaluate", "load_checkpoint", "train"]


LOG_EVERY_S = 30.0  # progress lines when stderr is not a terminal


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float, lr: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(f"training diverged: loss {loss} at epoch {epoch}, step {step} (lr {lr:.4g});"
                         " lower --lr or set grad_clip")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("cuda requested but no CUDA device is available; allowed here: auto, cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """The main optimizer (decay on weight matrices only) plus one AdamW per distinct
    ``own_optimizer`` setting that modules declare for their own (direct) parameters.
    Declared on modules, not marked on parameters, so a deep-copied model routes alike."""
    routed = {}  # parameter id -> its module's own_optimizer settings
    for module in model.modules():
        settings = getattr(module, "own_optimizer", None)
        if settings:
            for p in module.parameters(recurse=False):
                routed[id(p)] = tuple(sorted(settings.items()))
    decay, no_decay, own = [], [], {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in routed:
            own.setdefault(routed[id(p)], []).append(p)
        elif p.ndim <= 1 or p.numel() == 1:  # BatchNorm, biases, scalars
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    if cfg.optimizer == "sgd":
        main = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
    else:
        main = torch.optim.AdamW(groups, lr=cfg.lr)
    return [main] + [torch.optim.AdamW(params, **dict(key)) for key, params in own.items()]


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _autocast(device: torch.device, cfg: TrainConfig):
    enabled = cfg.amp if cfg.amp is not None else device.type == "cuda"
    if not enabled:
        return nullcontext, False
    dtype = getattr(torch, cfg.amp_dtype) if device.type == "cuda" else torch.bfloat16
    return (lambda: torch.autocast(device.type, dtype=dtype)), dtype == torch.float16


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, autocast=nullcontext,
             per_image: bool = False) -> dict[str, Any]:
    """Mean cross-entropy and accuracy of ``model`` over ``loader`` (eval mode); with
    ``per_image``, also ``correct``: a bool tensor, one entry per image in loader order."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    hits = []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        hits.append(logits.argmax(1) == y)
    correct = torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool, device=device)
    count = max(len(correct), 1)
    out = {"loss": loss_sum.item() / count, "acc": correct.sum().item() / count}
    if per_image:
        out["correct"] = correct.cpu()
    return out


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console,
                    transient=True, disable=not (enabled and console.is_terminal))


class Trainer:
    """One training run in the steps that every driver takes alike (``nas.train``, a
    study's trial, a promotion stage, a Ray Train worker):

    - set-up (the constructor): the data, the seeded model (``init``: its starting weights
      and frozen prefixes), the optimisers, the schedules and the grad scaler; a
      ``checkpoint_dir`` holding a ``last.pt`` resumes from it (``epoch``: epochs done);
    - :meth:`run_epoch`: train the next epoch, evaluate it, log its line, return its metrics;
    - :meth:`save_checkpoint`: ``last.pt`` (what resuming needs) and ``best.pt`` when the
      epoch improved the best validation accuracy;
    - :meth:`evaluate`: mean loss and accuracy on a split;
    - :meth:`fit`: the remaining epochs, each followed by its checkpoint and ``on_epoch``,
      then the final evaluation; returns the result (accuracies, timings, history).

    ``model`` (as built for the data: its ``config`` is what is trained) and ``data`` (the
    loaded :class:`~nas.training.data.Data`) are there from the set-up on, e.g. to measure
    :mod:`nas.metrics` on a fixed batch. The RNG state a resumed run read from ``last.pt`` is
    restored just before its next epoch, so what a driver does in between changes nothing.
    ``distributed``: inside an initialised process group (Ray Train), train data parallel on
    this worker's share of the data; rank 0 writes the checkpoints. ``per_image``: each
    epoch's metrics also carry ``val_correct``, the per-image correctness on the validation
    split (a bool tensor in the split's fixed order), for paired tests between trials.
    ``init``: a :class:`nas.training.finetune.InitFrom` (or its dict): start from that
    checkpoint's weights (not when resuming) and freeze its prefixes."""

    def __init__(self, arch: Any, data_cfg: DataConfig | dict, train_cfg: TrainConfig | dict, *,
                 checkpoint_dir: str | Path | None = None, progress: bool = True,
                 distributed: bool = False, per_image: bool = False, init: Any = None) -> None:
        import blocks

        self.start = time.perf_counter()
        self.data_cfg, self.cfg = DataConfig.model_validate(data_cfg), TrainConfig.model_validate(train_cfg)
        self.progress, self.per_image = progress, per_image
        self.device = device = resolve_device(self.cfg.device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.data: Data = load_data(self.data_cfg, device)
        seed_everything(self.cfg.seed)
        self.model = blocks.build(arch, num_classes=self.data.num_classes, in_channels=self.data.in_channels,
                                  image_size=self.data.image_size).to(device)
        self.arch = self.model.config.model_dump(mode="json")
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        last = self.checkpoint_dir / "last.pt" if self.checkpoint_dir is not None else None
        self.init = None if init is None else InitFrom.model_validate(init)
        if self.init is not None:
            if last is None or not last.is_file():  # resuming: last.pt wins
                for line in init_weights(self.model, self.init.checkpoint):
                    self.log(line)
            if self.init.freeze:
                self.log(f"frozen: {freeze(self.model, self.init.freeze):,} parameters under "
                         f"{', '.join(self.init.freeze)}")
        self.params = sum(p.numel() for p in self.model.parameters())
        self.rank, self.net = 0, self.model
        if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
            self.rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            if not hasattr(self.data.train, "shard"):
                raise DataError(f"data {self.data_cfg.name!r}: distributed training needs an in-memory data set")
            self.data.train.shard(self.rank, world)
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizers = make_optimizers(self.model, self.cfg)
        self.steps = len(self.data.train) if self.cfg.max_steps_per_epoch is None else min(
            len(self.data.train), self.cfg.max_steps_per_epoch)
        factor = cosine_with_warmup(self.cfg.epochs * self.steps, round(self.cfg.warmup_epochs * self.steps))
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in self.optimizers]
        self.autocast, use_scaler = _autocast(device, self.cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

        self.history: list[dict] = []
        self.best_val, self.epoch, self.prior_seconds, self.improved = -1.0, 0, 0.0, False
        self._rng: dict | None = None  # a resumed run's RNG state, restored before its next epoch
        if last is not None and last.is_file():
            self._resume(last)
        if self.checkpoint_dir is not None:
            blocks.dump_config(self.model.config, self.checkpoint_dir / "arch.yaml")
        self.log(f"training {self.arch.get('name')} ({self.params:,} params) on {self.data_cfg.name} "
                 f"{self.data.sizes} for {self.cfg.epochs} epochs on {device}"
                 + (f"; checkpoints in {self.checkpoint_dir}" if self.checkpoint_dir else "")
                 + (f"; resuming after epoch {self.epoch}" if self.epoch else ""))
        from rich.console import Console

        # no live bar (a log file, a pipe): a plain line every LOG_EVERY_S seconds instead
        self._plain = progress and not Console(stderr=True).is_terminal
        self._last_line = time.perf_counter()

    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, file=sys.stderr, flush=True)

    def _resume(self, path: Path) -> None:
        state = read_checkpoint(path, self.device, resume=True)
        if state["arch"] != self.arch:
            raise CheckpointError(f"{path}: holds another architecture ({state['arch'].get('name')!r}); "
                                  "allowed: a fresh checkpoint directory, or this run's own")
        self.model.load_state_dict(state["model"])
        for obj, saved in zip(self.optimizers + self.schedulers, state["optimizers"] + state["schedulers"]):
            obj.load_state_dict(saved)
        self.scaler.load_state_dict(state["scaler"])
        self._rng = state["rng"]
        self.history, self.best_val = list(state["history"]), state["best_val_acc"]
        self.epoch, self.prior_seconds = state["epoch"], state.get("wall_seconds", 0.0)

    def _rng_state(self) -> dict:
        if self._rng is not None:
            return self._rng
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None}

    def evaluate(self, loader, per_image: bool = False) -> dict[str, Any]:
        """:func:`evaluate` of this run's model on ``loader`` (a split of ``data``)."""
        return evaluate(self.model, loader, self.device, self.autocast, per_image=per_image)

    def run_epoch(self) -> dict[str, Any]:
        """Train epoch ``epoch + 1`` and evaluate it on the validation split; logs its line
        and returns its metrics (the history entry, plus ``val_correct`` with ``per_image``)."""
        if self._rng is not None:  # resumed: the state the saved run would go on with
            torch.set_rng_state(self._rng["torch"].cpu())
            if self.device.type == "cuda" and self._rng.get("cuda") is not None:
                torch.cuda.set_rng_state(self._rng["cuda"].cpu())
            self._rng = None
        cfg, device, epoch, steps, model = self.cfg, self.device, self.epoch, self.steps, self.model
        check_every = 1 if device.type == "cpu" else 50  # a finiteness check syncs the GPU
        t0 = time.perf_counter()
        model.train()
        self.data.train.set_epoch(epoch)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        with _progress_bar(self.progress) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps, info="")
            for step, (x, y) in enumerate(self.data.train):
                if step >= steps:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with self.autocast():
                    logits = self.net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                for opt in self.optimizers:
                    opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if cfg.grad_clip is not None:
                    for opt in self.optimizers:
                        self.scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                for opt in self.optimizers:
                    self.scaler.step(opt)
                self.scaler.update()
                for sched in self.schedulers:
                    sched.step()
                n = len(x)
                loss_sum += loss.detach() * n
                labels = y if y.ndim == 1 else y.argmax(1)
                correct += (logits.detach().argmax(1) == labels).sum()
                seen += n
                if (step + 1) % check_every == 0 or step + 1 == steps:
                    if not torch.isfinite(loss_sum):
                        raise TrainingDiverged(epoch + 1, step + 1, loss.item(),
                                               self.schedulers[0].get_last_lr()[0])
                    bar.update(task, completed=step + 1, info=f"loss {loss_sum.item() / seen:.3f}")
                    if self._plain and time.perf_counter() - self._last_line >= LOG_EVERY_S:
                        self._last_line = time.perf_counter()
                        self.log(f"epoch {epoch + 1}/{cfg.epochs}  step {step + 1}/{steps}  "
                                 f"loss {loss_sum.item() / seen:.4f}  {seen / (self._last_line - t0):.0f} img/s")
        train_seconds = time.perf_counter() - t0
        val = self.evaluate(self.data.val, self.per_image) if self.data.val is not None else None
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_acc": correct.item() / max(seen, 1),
            "val_loss": val["loss"] if val else None,
            "val_acc": val["acc"] if val else None,
            "lr": self.optimizers[0].param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - t0,
            "images_per_second": seen / max(train_seconds, 1e-9),
            "params": self.params,
        }
        self.history.append(metrics)
        self.epoch = epoch + 1
        if self.per_image and val is not None:
            metrics = {**metrics, "val_correct": val["correct"]}  # not in the history
        score = metrics["val_acc"] if metrics["val_acc"] is not None else metrics["train_acc"]
        self.improved = score > self.best_val
        self.best_val = max(self.best_val, score)
        val_text = f"val {metrics['val_acc']:.4f}" if metrics["val_acc"] is not None else "no val"
        self.log(f"epoch {epoch + 1}/{cfg.epochs}  loss {metrics['train_loss']:.4f}  "
                 f"train {metrics['train_acc']:.4f}  {val_text}  lr {metrics['lr']:.4g}  "
                 f"{metrics['epoch_seconds']:.1f}s  {metrics['images_per_second']:.0f} img/s")
        return metrics

    def save_checkpoint(self) -> None:
        """``last.pt`` with the state to resume from, and ``best.pt`` when the last epoch
        improved the best score; only with a ``checkpoint_dir``, only on rank 0."""
        if self.checkpoint_dir is None or self.rank != 0:
            return
        data = self.data
        common = {"model": self.model.state_dict(), "arch": self.arch, "epoch": self.epoch,
                  "data": self.data_cfg.model_dump(mode="json"), "train": self.cfg.model_dump(mode="json"),
                  "history": self.history, "best_val_acc": self.best_val, "params": self.params,
                  "init": self.init.model_dump() if self.init is not None else None,
                  "wall_seconds": self.prior_seconds + time.perf_counter() - self.start,
                  "meta": {"num_classes": data.num_classes, "in_channels": data.in_channels,
                           "image_size": data.image_size, "classes": data.classes,
                           "mean": list(data.mean), "std": list(data.std)}}
        if self.improved:
            save_checkpoint(self.checkpoint_dir / "best.pt", common)
        save_checkpoint(self.checkpoint_dir / "last.pt", {
            **common, "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers], "scaler": self.scaler.state_dict(),
            "rng": self._rng_state()})

    def fit(self, on_epoch: Callable[[int, dict], bool | None] | None = None) -> dict[str, Any]:
        """Train the remaining epochs, each followed by its checkpoint and ``on_epoch(epoch,
        metrics)`` (returning True stops training), then evaluate on the validation and test
        splits. Returns accuracies, timings, the parameter count and the history; with
        ``progress``, also prints it (less the history) as one JSON line."""
        stopped_early, val_acc = False, None
        while self.epoch < self.cfg.epochs:
            metrics = self.run_epoch()
            val_acc = metrics["val_acc"]
            self.save_checkpoint()
            if on_epoch is not None and on_epoch(self.epoch, dict(metrics)):
                stopped_early = True
                break
        if val_acc is None and self.data.val is not None:  # nothing trained in this call (finished run)
            val_acc = self.evaluate(self.data.val)["acc"]
        test = self.evaluate(self.data.test) if self.data.test is not None else None
        last = self.history[-1] if self.history else {}
        result = {
            "arch": self.arch.get("name"), "data": self.data_cfg.name,
            "train_acc": last.get("train_acc"),
            "val_acc": val_acc,
            "best_val_acc": self.best_val if self.data.val is not None and self.history else None,
            "test_acc": test["acc"] if test else None,
            "epochs": len(self.history), "stopped_early": stopped_early,
            "wall_seconds": self.prior_seconds + time.perf_counter() - self.start,
            "params": self.params, "checkpoint_dir": str(self.checkpoint_dir) if self.checkpoint_dir else None,
            "history": self.history,
        }
        if self.progress:
            print(json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
        return result


def train(arch: Any, data_cfg: DataConfig | dict, train_cfg: TrainConfig | dict, *,
          on_epoch: Callable[[int, dict], bool | None] | None = None, **setup: Any) -> dict[str, Any]:
    """Train ``arch`` (a preset name, YAML path, dict or ``blocks.ArchConfig``) on the data
    of ``data_cfg``: ``Trainer(arch, data_cfg, train_cfg, **setup).fit(on_epoch)`` (the set-up's
    keywords: ``checkpoint_dir``, ``progress``, ``distributed``, ``per_image``, ``init``)."""
    return Trainer(arch, data_cfg, train_cfg, **setup).fit(on_epoch)
