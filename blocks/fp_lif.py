"""SNN-MLP's full-precision LIF along one spatial axis, with groups of ``s`` positions.

Within each group of ``s`` consecutive positions along H (``axis='h'``) or W (``'w'``),
for j = 0..s-1: ``u_j = tau * o_j + x_j`` (``o_0 = 0``); ``fired = u_j > V_th``;
output ``u_j`` if fired else ``V_th``; hard reset ``o_{j+1} = 0`` if fired else ``u_j``.
Positions of an incomplete last group pass through unchanged. ``tau`` and ``V_th`` are
learnable scalars; autograd through these expressions gives exactly the reference
gradient (gated by ``fired``, through the recurrence by ``(1 - fired) * tau``).
Works on any device: the loop is over the s positions of a group, vectorised over groups.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register

# parameters trained by their own optimizer (SNN-MLP: AdamW, lr 1e-4, no weight decay)
OWN_OPTIMIZER = {"lr": 1e-4, "weight_decay": 0.0}


def fp_lif(x: torch.Tensor, tau: torch.Tensor, v_threshold: torch.Tensor, dim: int,
           group: int) -> torch.Tensor:
    """Full-precision group LIF of ``x`` along dimension ``dim``."""
    size = x.shape[dim]
    full = size // group * group
    if full == 0:
        return x
    xm = x.movedim(dim, -1)
    head, tail = xm[..., :full], xm[..., full:]
    g = head.reshape(*head.shape[:-1], full // group, group)
    o = torch.zeros_like(g[..., 0])
    outs = []
    for j in range(group):
        u = tau * o + g[..., j]
        fired = u > v_threshold
        outs.append(torch.where(fired, u, v_threshold.expand_as(u)))
        o = torch.where(fired, torch.zeros_like(u), u)
    y = torch.stack(outs, dim=-1).reshape(head.shape)
    return torch.cat([y, tail], dim=-1).movedim(-1, dim)


@register("fp_lif", "fp_lif")
class FullPrecisionLIF(nn.Module):
    """SNN-MLP's horizontal/vertical group LIF (full precision, not spikes). Its own
    parameters (tau, V_th) are trained by the optimizer that ``own_optimizer`` declares; a
    class attribute, so copies of the model (``copy.deepcopy``) keep the routing."""

    own_optimizer = OWN_OPTIMIZER

    def __init__(self, *, axis: str = "h", group: int = 4, tau: float = 0.25,
                 v_threshold: float = 0.1, learnable: bool = True) -> None:
        super().__init__()
        if axis not in ("h", "w"):
            raise ValueError(f"axis: unknown {axis!r}; allowed: h, w")
        if int(group) < 1:
            raise ValueError(f"group: must be >= 1, got {group!r}")
        self.axis, self.group = axis, int(group)
        self.tau = nn.Parameter(torch.tensor(float(tau)), requires_grad=learnable)
        self.v_threshold = nn.Parameter(torch.tensor(float(v_threshold)), requires_grad=learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., C, H, W)``."""
        return fp_lif(x, self.tau, self.v_threshold, -2 if self.axis == "h" else -1, self.group)

    def extra_repr(self) -> str:
        return f"axis={self.axis}, group={self.group}"
