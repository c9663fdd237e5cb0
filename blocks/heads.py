"""Classification heads (kind ``head``): ``(T, B, C, H, W)`` in, logits ``(B, classes)`` out."""
from __future__ import annotations

import torch
from torch import nn

from .common import over_time
from .registry import register


@register("head", "spiking")
class SpikingHead(nn.Module):
    """BN on the last spikes -> mean over H, W -> Linear -> mean over T. The BN and the
    mean are linear, so they fold into the Linear: the head reads spike counts."""

    mfi_exempt = "classifier: reads spatial means of BN(spikes), which fold into its weights"

    def __init__(self, *, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.fc = nn.Linear(dim, num_classes)
        self.fc.mfi_exempt = self.mfi_exempt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = over_time(lambda z: self.norm(z).mean(dim=(2, 3)), x)  # (T, B, C)
        return self.fc(feats).mean(0)


@register("head", "gn_pool")
class GNPoolHead(nn.Module):
    """SNN-MLP head: GroupNorm -> global average pool -> Linear (then mean over T). The
    Linear starts as in SNN-MLP's code: truncated normal weights (std 0.02), zero bias."""

    def __init__(self, *, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(over_time(lambda z: self.norm(z).mean(dim=(2, 3)), x)).mean(0)
