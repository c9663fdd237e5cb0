"""Training checkpoints: atomic saves and a model rebuilt from the stored architecture.

A checkpoint is a plain dict saved by ``torch.save``: ``model`` (state dict), ``arch``
(the architecture config as JSON-able dict), ``data`` and ``train`` (the configs),
``epoch`` (epochs completed), ``history``, ``best_val_acc`` and, in ``last.pt``, the
optimizer, scheduler, grad-scaler and RNG states needed to resume.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

RESUME_KEYS = ("model", "optimizers", "schedulers", "scaler", "rng")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=device, weights_only=True)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The model stored in ``path`` (rebuilt from its config, weights loaded, eval mode)
    and the rest of the checkpoint's metadata (configs, epoch, history ...)."""
    import blocks

    state = read_checkpoint(path, device)
    model = blocks.build(state["arch"])
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, {k: v for k, v in state.items() if k not in RESUME_KEYS}
