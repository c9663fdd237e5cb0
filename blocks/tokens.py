"""Token-mixing blocks (kind ``token``): spikes ``(T, B, C, H, W)`` in, membrane input out.

Spiking blocks (``axial``, ``full``, ``identity``) only multiply real weights by binary
spikes, with BN after every FC. ``lif_mixer`` is SNN-MLP's full-precision LIF module.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import NeuronFactory, over_time
from .fp_lif import FullPrecisionLIF
from .registry import register


class _AxisFC(nn.Module):
    """FC over the positions of one axis (weights shared over channels and the other axis),
    then BN over those positions, then LIF."""

    def __init__(self, size: int, axis: int, neuron: NeuronFactory, bias: bool) -> None:
        super().__init__()
        self.axis = axis  # -1 for W, -2 for H
        self.fc = nn.Linear(size, size, bias=bias)
        self.norm = nn.BatchNorm2d(size)
        self.lif = neuron()

    def _mix(self, z: torch.Tensor) -> torch.Tensor:  # z: (N, C, H, W)
        z = z.movedim(self.axis, -1)                     # positions of the axis last
        z = self.fc(z)
        z = self.norm(z.movedim(-1, 1))                    # BN with positions as channels
        return z.movedim(1, -1).movedim(-1, self.axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(over_time(self._mix, x))


@register("token", "axial")
class AxialToken(nn.Module):
    """Seed 002 token block: H- and W-branch FCs on spikes, fused with the identity by an
    FC 3C -> C and BN: ``t = BN(FC(concat(x, x_h, x_w)))``."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory,
                 identity: str = "spikes", bias: bool = True) -> None:
        super().__init__()
        self.check_config(identity=identity)
        self.mix_h = _AxisFC(grid, -2, neuron, bias)
        self.mix_w = _AxisFC(grid, -1, neuron, bias)
        # MLP-S identity branch: LIF(BN(x)) instead of x itself
        self.identity_norm = nn.BatchNorm2d(dim) if identity == "bn_lif" else None
        self.identity_lif = neuron() if identity == "bn_lif" else None
        self.fuse = nn.Conv2d(3 * dim, dim, 1, bias=False)
        self.fuse_norm = nn.BatchNorm2d(dim)

    @staticmethod
    def check_config(identity: str = "spikes", **_) -> None:
        if identity not in ("spikes", "bn_lif"):
            raise ValueError(f"identity: unknown {identity!r}; allowed: spikes, bn_lif")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ident = x
        if self.identity_norm is not None:
            ident = self.identity_lif(over_time(self.identity_norm, x))
        cat = torch.cat((ident, self.mix_h(x), self.mix_w(x)), dim=2)
        return over_time(lambda z: self.fuse_norm(self.fuse(z)), cat)


@register("token", "full")
class FullToken(nn.Module):
    """Spiking MLP-Mixer token mixing over all H*W positions: FC over positions, then BN
    per position."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory, bias: bool = True) -> None:
        super().__init__()
        n = grid * grid
        self.fc = nn.Linear(n, n, bias=bias)
        self.norm = nn.BatchNorm1d(n)

    def _mix(self, z: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        y = self.fc(z.flatten(2))                    # (N, C, HW)
        return self.norm(y.transpose(1, 2)).transpose(1, 2).reshape(z.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(self._mix, x)


@register("token", "identity")
class IdentityToken(nn.Module):
    """No token mixing: the spikes themselves are the token output."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@register("token", "lif_mixer")
class LIFMixerToken(nn.Module):
    """SNN-MLP's LIFModule: 1x1 conv -> GN -> GELU -> dw 3x3 -> GN -> GELU ->
    [LIF_H -> 1x1 -> GELU] + [LIF_W -> 1x1 -> GELU] -> GN -> 1x1 (full precision)."""

    def __init__(self, *, dim: int, grid: int, neuron: NeuronFactory, group: int = 4,
                 tau: float = 0.25, v_threshold: float = 0.1, bias: bool = True) -> None:
        super().__init__()
        gn = lambda: nn.GroupNorm(1, dim)  # noqa: E731
        self.conv1, self.norm1 = nn.Conv2d(dim, dim, 1, bias=bias), gn()
        self.dw, self.norm2 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim, bias=bias), gn()
        self.lif_h = FullPrecisionLIF(axis="h", group=group, tau=tau, v_threshold=v_threshold)
        self.lif_w = FullPrecisionLIF(axis="w", group=group, tau=tau, v_threshold=v_threshold)
        self.conv_h = nn.Conv2d(dim, dim, 1, bias=bias)
        self.conv_w = nn.Conv2d(dim, dim, 1, bias=bias)
        self.norm3, self.conv3 = gn(), nn.Conv2d(dim, dim, 1, bias=bias)
        self.act = nn.GELU()

    def mix(self, z: torch.Tensor) -> torch.Tensor:
        """The module on one ``(N, C, H, W)`` tensor."""
        z = self.act(self.norm1(self.conv1(z)))
        z = self.act(self.norm2(self.dw(z)))
        z = self.act(self.conv_h(self.lif_h(z))) + self.act(self.conv_w(self.lif_w(z)))
        return self.conv3(self.norm3(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(self.mix, x)
