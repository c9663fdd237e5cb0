"""Patch encoders (kind ``encoder``): map a stage's input to its membrane input ``h``.

Input is time-major ``(T, B, C_in, H, W)`` (images with T = 1 at the stem, spikes
elsewhere); output ``(T, B, dim, H / stride, W / stride)``, real-valued (a BN output).
Each encoder says how much it downsamples through ``stride(**params)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import NeuronFactory, over_time
from .registry import register

EDGE_OPS = ("none", "identity", "conv1x1", "conv3x3")


@register("encoder", "patch")
class PatchEncoder(nn.Module):
    """Non-overlapping patches: Conv k = stride = patch_size, then BN (or GroupNorm)."""

    def __init__(self, *, in_dim: int, dim: int, grid: int, neuron: NeuronFactory, stem: bool,
                 patch_size: int = 4, norm: str = "bn", bias: bool = False) -> None:
        super().__init__()
        self.check_config(patch_size=patch_size, norm=norm)
        self.conv = nn.Conv2d(in_dim, dim, patch_size, patch_size, bias=bias)
        self.norm = nn.BatchNorm2d(dim) if norm == "bn" else nn.GroupNorm(1, dim)

    @staticmethod
    def stride(patch_size: int = 4, **_) -> int:
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"patch_size: {patch_size!r}; allowed: a whole number >= 1")
        return patch_size

    @staticmethod
    def check_config(patch_size: int = 4, norm: str = "bn", **_) -> None:
        PatchEncoder.stride(patch_size)
        if norm not in ("bn", "gn"):
            raise ValueError(f"norm: unknown {norm!r}; allowed: bn, gn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(lambda z: self.norm(self.conv(z)), x)


@register("encoder", "merge")
class MergeEncoder(nn.Module):
    """MLP-S downsampling: Conv 2x2 stride 2 on spikes (no bias by default, as in the
    reference code: the BN after it has one), then BN."""

    def __init__(self, *, in_dim: int, dim: int, grid: int, neuron: NeuronFactory, stem: bool,
                 bias: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, dim, 2, 2, bias=bias)
        self.norm = nn.BatchNorm2d(dim)

    @staticmethod
    def stride(**_) -> int:
        return 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(lambda z: self.norm(self.conv(z)), x)


@register("encoder", "phase_merge")
class PhaseMergeEncoder(nn.Module):
    """SNN-MLP downsampling: stack the 2x2 pixel phases (4 C_in) -> GroupNorm -> 1x1 conv."""

    def __init__(self, *, in_dim: int, dim: int, grid: int, neuron: NeuronFactory,
                 stem: bool) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, 4 * in_dim)
        self.reduce = nn.Conv2d(4 * in_dim, dim, 1, bias=False)

    @staticmethod
    def stride(**_) -> int:
        return 2

    def _merge(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.cat([z[..., 0::2, 0::2], z[..., 1::2, 0::2], z[..., 0::2, 1::2],
                       z[..., 1::2, 1::2]], dim=1)
        return self.reduce(self.norm(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(self._merge, x)


class _Edge(nn.Module):
    """One DAG edge between SPE nodes: on the membrane input (identity) or on its spikes."""

    def __init__(self, op: str, dim: int) -> None:
        super().__init__()
        self.op = op
        if op in ("conv1x1", "conv3x3"):
            k = 1 if op == "conv1x1" else 3
            self.conv = nn.Conv2d(dim, dim, k, 1, k // 2, bias=False)
            self.norm = nn.BatchNorm2d(dim)

    def forward(self, membrane: torch.Tensor, spikes: torch.Tensor | None) -> torch.Tensor | None:
        if self.op == "none":
            return None
        if self.op == "identity":
            return membrane
        return over_time(lambda z: self.norm(self.conv(z)), spikes)


@register("encoder", "spe")
class SPECell(nn.Module):
    """Spiking patch encoding: a 3-node DAG cell that halves the grid (seed 002).

    ``n_i = BN(Conv3x3 s2(x))``; ``n2 += edge_12(n1)``; ``n3 += edge_13(n1) + edge_23(n2)``;
    ``h = concat(n1, n2, n3)``. Conv edges read the LIF spikes of their source node;
    an identity edge adds the source's membrane input. Defaults are the paper's cell.
    """

    def __init__(self, *, in_dim: int, dim: int, grid: int, neuron: NeuronFactory, stem: bool,
                 edge_12: str = "conv3x3", edge_13: str = "identity",
                 edge_23: str = "conv3x3") -> None:
        super().__init__()
        self.check_config(dim=dim, edge_12=edge_12, edge_13=edge_13, edge_23=edge_23)
        node = dim // 3
        # the three input convolutions as one (same weights as three separate ones)
        self.inputs = nn.Conv2d(in_dim, dim, 3, 2, 1, bias=False)
        self.inputs_norm = nn.BatchNorm2d(dim)
        self.e12, self.e13, self.e23 = (_Edge(op, node) for op in (edge_12, edge_13, edge_23))
        spiking = lambda *ops: any(o in ("conv1x1", "conv3x3") for o in ops)  # noqa: E731
        self.lif1 = neuron() if spiking(edge_12, edge_13) else None
        self.lif2 = neuron() if spiking(edge_23) else None

    @staticmethod
    def stride(**_) -> int:
        return 2

    @staticmethod
    def check_config(dim: int | None = None, **params) -> None:
        for key in ("edge_12", "edge_13", "edge_23"):
            if key in params and params[key] not in EDGE_OPS:
                raise ValueError(f"{key}: unknown op {params[key]!r}; allowed: {', '.join(EDGE_OPS)}")
        if dim is not None and dim % 3:
            lo, hi = dim - dim % 3, dim - dim % 3 + 3
            raise ValueError(f"dim: the spe encoder splits dim into 3 nodes, so dim must be "
                             f"divisible by 3; got {dim} (nearest allowed: {lo} or {hi})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n1, n2, n3 = over_time(lambda z: self.inputs_norm(self.inputs(z)), x).chunk(3, dim=2)
        s1 = self.lif1(n1) if self.lif1 is not None else None
        e = self.e12(n1, s1)
        n2 = n2 if e is None else n2 + e
        s2 = self.lif2(n2) if self.lif2 is not None else None
        for e in (self.e13(n1, s1), self.e23(n2, s2)):
            n3 = n3 if e is None else n3 + e
        return torch.cat((n1, n2, n3), dim=2)
