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

from blocks.errors import NasError

RESUME_KEYS = ("model", "optimizers", "schedulers", "scaler", "rng")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CheckpointError(NasError):
    """A file that is not a checkpoint of ours; ``str()`` is one line naming it."""


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    resume: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path`` (tensors and plain data only: ``weights_only``), or a
    :class:`CheckpointError` line: unreadable or cut short, a pickle of other objects,
    not written by nas.train, or (``resume``) without the state to resume from."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many kinds for a bad file
        if "allowed global" in str(err) or "Unsupported global" in str(err):
            raise CheckpointError(f"{path}: refused: it holds Python objects other than tensors "
                                  "and plain data (not loaded, nothing of it ran); allowed: a "
                                  "best.pt/last.pt written by nas.train") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (cut short, or another format: "
                              f"{type(err).__name__}); allowed: a best.pt/last.pt written by "
                              "nas.train") from None
    need = ("model", "arch") + (RESUME_KEYS if resume else ())
    if not isinstance(state, dict) or not all(k in state for k in need) \
            or not isinstance(state["model"], dict) or not isinstance(state["arch"], dict):
        held = sorted(map(str, state))[:6] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not a nas.train checkpoint{' to resume from' if resume else ''} "
                              f"(it holds {held}); allowed: a file with {', '.join(need)}")
    return state


def weights_mismatch(model: nn.Module, weights: dict[str, torch.Tensor], show: int = 4) -> str | None:
    """Why ``weights`` do not fit ``model`` (missing, unexpected and differently shaped
    entries, a few of each named), or None when they fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in weights and tuple(weights[k].shape) != tuple(v.shape)]
    parts = []
    for what, names in (("differently shaped (checkpoint vs model)", shapes), ("missing", missing),
                        ("unexpected", unexpected)):
        if names:
            more = f" and {len(names) - show} more" if len(names) > show else ""
            parts.append(f"{len(names)} {what}: {', '.join(names[:show])}{more}")
    return "; ".join(parts) or None


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """``model.load_state_dict(weights)``, or a ValueError naming what does not fit."""
    why = weights_mismatch(model, weights)
    if why:
        raise ValueError(f"the weights do not fit the architecture: {why}")
    model.load_state_dict(weights)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The model stored in ``path`` (rebuilt from its config, weights loaded, eval mode)
    and the rest of the checkpoint's metadata (configs, epoch, history ...)."""
    import blocks

    state = read_checkpoint(path, device)
    model = blocks.build(state["arch"])
    load_weights(model, state["model"])
    model.to(device).eval()
    return model, {k: v for k, v in state.items() if k not in RESUME_KEYS}
