"""Small shared pieces: time-distributed application and stochastic depth."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

NeuronFactory = Callable[[], nn.Module]


def over_time(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample ``fn`` to a time-major ``(T, B, ...)`` tensor by merging T and B."""
    T, B = x.shape[:2]
    y = fn(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training. Input is
    time-major ``(T, B, ...)``: one draw per sample (dim 1), the same at every time step."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.empty((1, x.shape[1]) + (1,) * (x.ndim - 2), device=x.device,
                           dtype=x.dtype).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

