"""The block registry and the architectures built from it.

>>> import blocks
>>> model = blocks.build("cifar_ablation_c60", T=2)
>>> blocks.available("token")
['axial', 'full', 'identity', 'lif_mixer']
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

# importing the block modules registers them
from . import channels, encoders, fp_lif, heads, neurons, tokens  # noqa: F401
from .config import (ArchConfig, ConfigError, dump_config, load_config, neuron_backends, presets,
                     read_recipe, with_neuron_backend)
from .models import FAMILIES
from .registry import available, create, get, register


def build(x: "str | Path | ArchConfig | dict", **overrides: Any) -> nn.Module:
    """The model for a preset name, an architecture YAML path, a dict or an ArchConfig;
    ``overrides`` replace top-level fields (``T=2``, ``num_classes=100`` ...)."""
    cfg = load_config(x, **overrides)
    return FAMILIES[cfg.family](cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ArchConfig", "ConfigError", "available", "build", "count_parameters", "create",
           "dump_config", "get", "load_config", "neuron_backends", "presets", "read_recipe", "register",
           "with_neuron_backend"]
