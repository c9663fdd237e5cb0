"""What one network costs, measured (``nas.inspect``): the model of a preset, an
architecture file or a checkpoint (its trained weights), and the images it is measured on:
the first validation images of the data named, else of the data the checkpoint was trained
on, else of the architecture file's recipe, at the network's image size; without any,
Gaussian noise (BatchNorm calibrated on it so that an untrained network fires: the counts
show the structure, not trained behaviour). A source that does not load, other than the
data named, falls back to noise with a ``note:`` line on stderr. Counts are per image; see
:mod:`nas.metrics` for the definitions."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from blocks.errors import NasError

from ..metrics import E_AC, E_MAC, ModelMetrics, eval_batch, measure
from ..mfi import calibrate_bn
from ..recipe import DataConfig
from ..training.checkpoint import CheckpointError, load_weights, read_checkpoint
from ..training.data import load_data


class InspectError(NasError):
    """An input that cannot be measured; ``str()`` is one line starting with the flag."""


@dataclass(frozen=True)
class Inspection:
    metrics: ModelMetrics
    title: str  # the network, its weights and the images it was measured on


def _data_source(arch_config: str | None, data: str | None, data_root: str | None,
                 meta: dict | None) -> tuple[str, dict] | None:
    """Where the images come from: ``--data`` (with the recipe's settings when it names the
    same data set), the checkpoint's data, or the ``--arch-config`` file's recipe."""
    import blocks

    recipe = (blocks.read_recipe(arch_config) or {}).get("data") if arch_config else None
    if data:
        same = recipe if recipe and recipe.get("name") == data else {}
        root = {"root": data_root} if data_root else {}
        return "--data", {**same, "name": data, **root}
    if meta and meta.get("data"):
        return "the checkpoint's data", meta["data"]
    if recipe:
        return f"the recipe of {arch_config}", recipe
    return None


def _images(source: tuple[str, dict] | None, model: nn.Module, n: int) -> tuple[torch.Tensor, str]:
    """(images, where they come from); the images at the network's size (an export's digits
    were upsampled to it, say)."""
    for what, src in [source] if source else []:
        try:
            data = load_data(DataConfig.model_validate({**src, "batch_size": n,
                                                        "image_size": model.config.image_size}),
                             torch.device("cpu"))
            x = eval_batch(data, n)
            return x, f"{len(x)} validation images of {src.get('name')} ({what})"
        except Exception as err:  # noqa: BLE001
            if what == "--data":
                raise InspectError(f"--data: {err}") from None
            print(f"note: {what} did not load ({type(err).__name__}: {err}); using noise",
                  file=sys.stderr)
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    print("note: no data (no --data, no checkpoint data, no recipe in --arch-config): measured on "
          "Gaussian noise; the counts show the structure, not trained behaviour", file=sys.stderr)
    return x, f"{n} GAUSSIAN-NOISE images, not data"


def inspect_network(*, arch_config: str | None = None, arch: str | None = None,
                    checkpoint: str | None = None, data: str | None = None, data_root: str | None = None,
                    images: int = 64, T: int | None = None, image_size: int | None = None,
                    e_ac: float = E_AC, e_mac: float = E_MAC) -> Inspection:
    """Measure the network of ``arch_config``, ``arch`` or ``checkpoint`` (an architecture
    given with a checkpoint is built and takes its weights) on ``images`` images; ``T``
    and ``image_size`` override the architecture's. Raises :class:`InspectError` (or the
    architecture's ``ConfigError``, ``KeyError`` ...) for what cannot be measured."""
    import blocks

    for flag, path in (("--arch-config", arch_config), ("--checkpoint", checkpoint)):
        if path and not Path(path).is_file():
            raise InspectError(f"{flag}: no such file: {path}")
    meta = None
    over = {k: v for k, v in (("T", T), ("image_size", image_size)) if v is not None}
    if checkpoint:
        try:
            state = read_checkpoint(checkpoint)
        except CheckpointError as err:
            raise InspectError(f"--checkpoint: {err}") from None
        meta = {k: v for k, v in state.items() if k in ("data", "arch", "epoch", "best_val_acc")}
        model = blocks.build(arch_config or arch or state["arch"], **over)
        try:
            load_weights(model, state["model"])
        except ValueError as err:
            raise InspectError(f"--checkpoint: {err}") from None
    else:
        model = blocks.build(arch_config or arch, **over)
    x, where = _images(_data_source(arch_config, data, data_root, meta), model, images)
    if x.shape[1] != model.config.in_channels:
        raise InspectError(f"--data: the {where} have {x.shape[1]} channel(s), the network "
                           f"takes {model.config.in_channels} (its in_channels)")
    if not checkpoint:
        calibrate_bn(model, x)
    m = measure(model, x, e_ac=e_ac, e_mac=e_mac)
    what = (f"checkpoint {checkpoint} (epoch {meta.get('epoch')})" if checkpoint
            else "untrained, BatchNorm calibrated on the images")
    return Inspection(m, f"{model.config.name}: {what}; {where}")
