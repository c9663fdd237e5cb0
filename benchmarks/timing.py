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


class Results:
    """What a benchmark prints, also kept as rows for ``--json PATH`` (one JSON object:
    the benchmark, its device and settings, and ``rows``, one dict per table row)."""

    def __init__(self, benchmark: str, device: torch.device, **settings) -> None:
        self.data = {"benchmark": benchmark, "device": device_name(device), **settings, "rows": []}

    def add(self, **row) -> None:
        self.data["rows"].append(row)

    def write(self, path: str | None) -> None:
        if path:
            import json
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(self.data, indent=1) + "\n")


def unavailable(backend: str, device: torch.device, dtype: torch.dtype = torch.float32) -> str | None:
    """Why a neuron backend cannot run here (a benchmark prints n/a rather than time the
    backend the dispatch would use instead), or None."""
    from blocks.neurons import LIF
    from blocks.neurons.backends import why_not

    reason = why_not(backend, device, dtype, LIF)
    return None if reason is None else reason.removeprefix("it ")
