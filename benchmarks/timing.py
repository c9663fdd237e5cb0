"""Timing helpers shared by the benchmark scripts (run them as ``python benchmarks/NAME.py``)."""
from __future__ import annotations

import time
from typing import Callable, Iterator

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU x{torch.get_num_threads()} threads"


def items_per_second(step: Callable[[], None], items: int, steps: int, warmup: int,
                     device: torch.device) -> float:
    """``items`` x ``steps`` / the seconds of ``steps`` calls of ``step`` after ``warmup``."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return items * steps / (time.perf_counter() - start)


def sgd_step(model: torch.nn.Module, opt: torch.optim.Optimizer,
             batches: Iterator[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
             amp_dtype: torch.dtype | None = None) -> Callable[[], None]:
    """One training step of nas.train's kind: loss on the time-averaged logits, backward, update."""

    def step() -> None:
        xb, yb = next(batches)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step
