"""The training loop: ``train(arch, data_cfg, train_cfg)`` builds the model, trains it
and evaluates it every epoch; ``nas.train`` (the command), the trials of a study and the
promotion stages all drive it.

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

__all__ = ["TrainConfig", "TrainingDiverged", "evaluate", "load_checkpoint", "train"]


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


def train(arch: Any, data_cfg: DataConfig | dict, train_cfg: TrainConfig | dict, *,
          on_epoch: Callable[[int, dict], bool | None] | None = None,
          checkpoint_dir: str | Path | None = None, progress: bool = True,
          distributed: bool = False,
          on_model: Callable[[nn.Module, Data], None] | None = None,
          on_end: Callable[[nn.Module, Data], None] | None = None,
          per_image: bool = False, init: Any = None) -> dict[str, Any]:
    """Train ``arch`` (a preset name, YAML path, dict or ``blocks.ArchConfig``) on the data
    of ``data_cfg``. ``on_epoch(epoch, metrics)`` runs after every epoch; returning True
    stops training. Returns accuracies, timings, the parameter count and the history.
    ``distributed``: inside an initialised process group (Ray Train), train data parallel
    on this worker's share of the data; rank 0 writes the checkpoints. ``on_model(model, data)``
    sees the model as built for the data (its ``config`` is what is trained) and the loaded
    :class:`~nas.training.data.Data`.
    ``on_end(model, data)`` runs after the final evaluation, before returning, with the
    trained model and the loaded :class:`~nas.training.data.Data` (e.g. to measure
    :mod:`nas.metrics` on a fixed batch without loading the data again). ``per_image``:
    ``on_epoch`` also gets ``val_correct``, the per-image correctness on the validation
    split (a bool tensor in the split's fixed order), for paired tests between trials.
    ``init``: a :class:`nas.training.finetune.InitFrom` (or its dict): start from that checkpoint's
    weights (not when resuming) and freeze its prefixes (see :mod:`nas.training.finetune`)."""
    import blocks

    start = time.perf_counter()
    data_cfg, train_cfg = DataConfig.model_validate(data_cfg), TrainConfig.model_validate(train_cfg)
    device = resolve_device(train_cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data: Data = load_data(data_cfg, device)
    seed_everything(train_cfg.seed)
    model = blocks.build(arch, num_classes=data.num_classes, in_channels=data.in_channels,
                         image_size=data.image_size).to(device)
    arch_dict = model.config.model_dump(mode="json")
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    def log(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    init = None if init is None else InitFrom.model_validate(init)
    if init is not None:
        if ckpt_dir is None or not (ckpt_dir / "last.pt").is_file():  # resuming: last.pt wins
            for line in init_weights(model, init.checkpoint):
                log(line)
        if init.freeze:
            log(f"frozen: {freeze(model, init.freeze):,} parameters under {', '.join(init.freeze)}")
    if on_model is not None:
        on_model(model, data)
    params = sum(p.numel() for p in model.parameters())
    rank, net = 0, model
    if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if not hasattr(data.train, "shard"):
            raise DataError(f"data {data_cfg.name!r}: distributed training needs an in-memory data set")
        data.train.shard(rank, world)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizers = make_optimizers(model, train_cfg)
    steps = len(data.train) if train_cfg.max_steps_per_epoch is None else min(
        len(data.train), train_cfg.max_steps_per_epoch)
    factor = cosine_with_warmup(train_cfg.epochs * steps, round(train_cfg.warmup_epochs * steps))
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]
    autocast, use_scaler = _autocast(device, train_cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    history: list[dict] = []
    best_val, first_epoch, prior_seconds = -1.0, 0, 0.0
    if ckpt_dir is not None and (ckpt_dir / "last.pt").is_file():
        state = read_checkpoint(ckpt_dir / "last.pt", device, resume=True)
        if state["arch"] != arch_dict:
            raise CheckpointError(f"{ckpt_dir / 'last.pt'}: holds another architecture "
                                  f"({state['arch'].get('name')!r}); allowed: a fresh checkpoint "
                                  "directory, or this run's own")
        model.load_state_dict(state["model"])
        for obj, saved in zip(optimizers + schedulers, state["optimizers"] + state["schedulers"]):
            obj.load_state_dict(saved)
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu())
        history, best_val = list(state["history"]), state["best_val_acc"]
        first_epoch, prior_seconds = state["epoch"], state.get("wall_seconds", 0.0)
    if ckpt_dir is not None:
        blocks.dump_config(model.config, ckpt_dir / "arch.yaml")

    log(f"training {arch_dict.get('name')} ({params:,} params) on {data_cfg.name} {data.sizes} "
        f"for {train_cfg.epochs} epochs on {device}" + (f"; checkpoints in {ckpt_dir}" if ckpt_dir else "")
        + (f"; resuming after epoch {first_epoch}" if first_epoch else ""))
    check_every = 1 if device.type == "cpu" else 50  # a finiteness check syncs the GPU
    from rich.console import Console

    # no live bar (a log file, a pipe): a plain line every LOG_EVERY_S seconds instead
    plain = progress and not Console(stderr=True).is_terminal
    last_line = time.perf_counter()
    stopped_early = False
    val_metrics: dict[str, float] | None = None
    for epoch in range(first_epoch, train_cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        data.train.set_epoch(epoch)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        with _progress_bar(progress) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{train_cfg.epochs}", total=steps, info="")
            for step, (x, y) in enumerate(data.train):
                if step >= steps:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with autocast():
                    logits = net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=train_cfg.label_smoothing)
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if train_cfg.grad_clip is not None:
                    for opt in optimizers:
                        scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
                for opt in optimizers:
                    scaler.step(opt)
                scaler.update()
                for sched in schedulers:
                    sched.step()
                n = len(x)
                loss_sum += loss.detach() * n
                labels = y if y.ndim == 1 else y.argmax(1)
                correct += (logits.detach().argmax(1) == labels).sum()
                seen += n
                if (step + 1) % check_every == 0 or step + 1 == steps:
                    if not torch.isfinite(loss_sum):
                        raise TrainingDiverged(epoch + 1, step + 1, loss.item(), schedulers[0].get_last_lr()[0])
                    bar.update(task, completed=step + 1, info=f"loss {loss_sum.item() / seen:.3f}")
                    if plain and time.perf_counter() - last_line >= LOG_EVERY_S:
                        last_line = time.perf_counter()
                        log(f"epoch {epoch + 1}/{train_cfg.epochs}  step {step + 1}/{steps}  "
                            f"loss {loss_sum.item() / seen:.4f}  {seen / (last_line - t0):.0f} img/s")
        train_seconds = time.perf_counter() - t0
        val_metrics = (evaluate(model, data.val, device, autocast, per_image=per_image)
                       if data.val is not None else None)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_acc": correct.item() / max(seen, 1),
            "val_loss": val_metrics["loss"] if val_metrics else None,
            "val_acc": val_metrics["acc"] if val_metrics else None,
            "lr": optimizers[0].param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - t0,
            "images_per_second": seen / max(train_seconds, 1e-9),
            "params": params,
        }
        history.append(metrics)
        if per_image and val_metrics is not None:
            metrics = {**metrics, "val_correct": val_metrics["correct"]}  # not in the history
        score = metrics["val_acc"] if metrics["val_acc"] is not None else metrics["train_acc"]
        improved = score > best_val
        best_val = max(best_val, score)
        val_text = f"val {metrics['val_acc']:.4f}" if metrics["val_acc"] is not None else "no val"
        log(f"epoch {epoch + 1}/{train_cfg.epochs}  loss {metrics['train_loss']:.4f}  "
            f"train {metrics['train_acc']:.4f}  {val_text}  lr {metrics['lr']:.4g}  "
            f"{metrics['epoch_seconds']:.1f}s  {metrics['images_per_second']:.0f} img/s")
        if ckpt_dir is not None and rank == 0:
            common = {"model": model.state_dict(), "arch": arch_dict, "epoch": epoch + 1,
                      "data": data_cfg.model_dump(mode="json"), "train": train_cfg.model_dump(mode="json"),
                      "history": history, "best_val_acc": best_val, "params": params,
                      "init": init.model_dump() if init is not None else None,
                      "wall_seconds": prior_seconds + time.perf_counter() - start,
                      "meta": {"num_classes": data.num_classes, "in_channels": data.in_channels,
                               "image_size": data.image_size, "classes": data.classes,
                               "mean": list(data.mean), "std": list(data.std)}}
            if improved:
                save_checkpoint(ckpt_dir / "best.pt", common)
            rng = {"torch": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}
            save_checkpoint(ckpt_dir / "last.pt", {
                **common, "optimizers": [o.state_dict() for o in optimizers],
                "schedulers": [s.state_dict() for s in schedulers], "scaler": scaler.state_dict(), "rng": rng})
        if on_epoch is not None and on_epoch(epoch + 1, dict(metrics)):
            stopped_early = True
            break

    if val_metrics is None and data.val is not None:  # nothing trained in this call (finished run)
        val_metrics = evaluate(model, data.val, device, autocast)
    test = evaluate(model, data.test, device, autocast) if data.test is not None else None
    if on_end is not None:
        on_end(model, data)
    last = history[-1] if history else {}
    result = {
        "arch": arch_dict.get("name"), "data": data_cfg.name,
        "train_acc": last.get("train_acc"),
        "val_acc": val_metrics["acc"] if val_metrics else None,
        "best_val_acc": best_val if data.val is not None and history else None,
        "test_acc": test["acc"] if test else None,
        "epochs": len(history), "stopped_early": stopped_early,
        "wall_seconds": prior_seconds + time.perf_counter() - start,
        "params": params, "checkpoint_dir": str(ckpt_dir) if ckpt_dir else None,
        "history": history,
    }
    if progress:
        print(json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
    return result
