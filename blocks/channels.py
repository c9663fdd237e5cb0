"""Channel-mixing blocks (kind ``channel``): spikes in, membrane input out."""
from __future__ import annotations

import torch
from torch import nn

from .common import NeuronFactory, over_time
from .registry import register

NORMS = ("token", "channel")


class _PositionNorm(nn.Module):
    """BatchNorm per token position (the reference code's ``BatchNorm1d(N^2)``)."""

    def __init__(self, positions: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(positions)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        return self.bn(z.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(z.shape)


@register("channel", "mlp")
class SpikingChannelMLP(nn.Module):
    """FC C -> ratio*C -> BN -> LIF -> FC ratio*C -> C -> BN, both FCs on spikes.

    ``norm='token'`` normalises per token position (reference code), ``'channel'`` per
    channel."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory, ratio: float = 3,
                 norm: str = "token", bias: bool = True) -> None:
        super().__init__()
        self.check_config(ratio=ratio, norm=norm)
        hidden = int(round(dim * ratio))
        make_norm = (lambda c: _PositionNorm(grid * grid)) if norm == "token" else nn.BatchNorm2d
        self.fc1, self.norm1 = nn.Conv2d(dim, hidden, 1, bias=bias), make_norm(hidden)
        self.lif = neuron()
        self.fc2, self.norm2 = nn.Conv2d(hidden, dim, 1, bias=bias), make_norm(dim)

    @staticmethod
    def check_config(ratio: float = 3, norm: str = "token", **_) -> None:
        if not float(ratio) > 0:
            raise ValueError(f"ratio: must be > 0, got {ratio}")
        if norm not in NORMS:
            raise ValueError(f"norm: unknown {norm!r}; allowed: {', '.join(NORMS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.lif(over_time(lambda z: self.norm1(self.fc1(z)), x))
        return over_time(lambda z: self.norm2(self.fc2(z)), hidden)


@register("channel", "gelu_mlp")
class GELUChannelMLP(nn.Module):
    """SNN-MLP's (non-spiking) MLP: 1x1 conv C -> ratio*C -> GELU -> 1x1 conv -> C."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory, ratio: float = 4) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.act, self.fc2 = nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(lambda z: self.fc2(self.act(self.fc1(z))), x)
