"""Start training from another run's weights: ``nas.train --init-from CKPT``, a promotion
stage's ``init_from``, or the checkpoints of the stage it names in ``from``.

What may differ between the checkpoint and the new model:

- the number of time steps T: freely (no weight depends on it);
- the class count: the classifier (the head's last ``Linear``) is re-initialised, and the
  log says so;
- the image size: only where no weight depends on the token grid. Token-mixing FCs (and
  BatchNorm per token position) do, so such a change is refused naming those layers;
- anything else (missing, unexpected or differently shaped entries): refused, each listed.

Optimiser state is never carried over: fine-tuning starts a fresh schedule with the
recipe's ``lr`` and ``warmup_epochs`` (:class:`nas.recipe.TrainConfig`). ``freeze`` keeps
the parameters under the named prefixes fixed (e.g. ``stages.0``); BatchNorm running
statistics there still follow the new data.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from torch import nn

from blocks.errors import NasError

from .checkpoint import CheckpointError, read_checkpoint, weights_mismatch


class InitError(NasError):
    """A checkpoint that cannot start this model; the message names the layers."""


class InitFrom(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    checkpoint: str  # a best.pt / last.pt written by nas.train
    freeze: list[str] = []  # parameter-name prefixes kept fixed


def classifier(model: nn.Module) -> str | None:
    """Name of the classifier: the last ``Linear`` with one output per class."""
    classes = model.config.num_classes
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == classes]
    return names[-1] if names else None


def _layers(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(k.rsplit(".", 1)[0] for k in keys))


def init_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load the weights of the checkpoint at ``path`` into ``model`` under the rules above;
    returns what was done (lines for the log), or raises :class:`InitError`."""
    try:
        state = read_checkpoint(path)
    except (FileNotFoundError, CheckpointError) as err:
        raise InitError(str(err)) from None
    weights, src, dst = dict(state["model"]), state.get("arch", {}), model.config
    notes = [f"initialised from {path} ({src.get('name')}, T={src.get('T')} -> T={dst.T}, "
             f"image size {src.get('image_size')} -> {dst.image_size}); optimiser state not carried"]
    head = classifier(model)
    if head is not None and src.get("num_classes") != dst.num_classes:
        for key in [k for k in weights if k.startswith(head + ".")]:
            weights.pop(key)
        notes.append(f"classifier {head} re-initialised: {src.get('num_classes')} -> "
                     f"{dst.num_classes} classes")
    own = model.state_dict()
    keep = {k: v for k, v in own.items() if head is not None and k.startswith(head + ".")
            and k not in weights}
    weights.update(keep)  # the fresh classifier stays as initialised
    shaped = [k for k, v in own.items() if k in weights and tuple(weights[k].shape) != tuple(v.shape)]
    if shaped and src.get("image_size") != dst.image_size:
        layers, k = _layers(shaped), shaped[0]
        raise InitError(f"image size {src.get('image_size')} -> {dst.image_size}: {len(layers)} layer(s) "
                        f"depend on the token grid and cannot be carried over: {', '.join(layers[:6])}"
                        f"{' ...' if len(layers) > 6 else ''} (e.g. {k} {tuple(weights[k].shape)} vs "
                        f"{tuple(own[k].shape)}); fine-tune at image size {src.get('image_size')} "
                        "or train from scratch")
    why = weights_mismatch(model, weights, show=12)
    if why:
        raise InitError(f"the checkpoint does not fit the architecture: {why}")
    model.load_state_dict(weights)
    return notes


def freeze(model: nn.Module, prefixes: list[str]) -> int:
    """Keep the parameters under ``prefixes`` fixed; returns how many were frozen. A prefix
    that matches no parameter is an error naming the top-level modules."""
    count = 0
    for prefix in prefixes:
        hits = [p for n, p in model.named_parameters() if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
            raise InitError(f"freeze: {prefix!r} matches no parameter; top-level modules: "
                            f"{', '.join(tops)} (deeper prefixes such as stages.0 work too)",
                            field="freeze", flag="--freeze")
        for p in hits:
            count += p.numel() * p.requires_grad
            p.requires_grad_(False)
    return count
