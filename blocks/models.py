"""Networks built from an :class:`~blocks.config.ArchConfig`.

* ``spiking_mlp`` (seed 002): per stage, a patch encoder gives ``h``; each block is
  ``t = Token(x)``, ``x = LIF(t [+h if PT or first block] [+c_prev if CT])``,
  ``c = Channel(x)``, ``x = LIF(c [+h if PC] [+t if TC])``; a spiking head. The skip from
  the patch encoding into a stage's first token block is always on (seed 002: "set as
  default"); PT switches it for the later blocks.
* ``snn_mlp`` (seed 000): pre-norm residual blocks ``x += DropPath(Token(GN(x)))``,
  ``x += DropPath(Channel(GN(x)))`` with SNN-MLP's full-precision LIF token mixer.

Both take images ``(B, C, H, W)`` (direct encoding: the stem runs once and its output is
repeated over T) or time-major inputs ``(T, B, C, H, W)``, and return logits averaged over T.
"""
from __future__ import annotations

import torch
from torch import nn

from . import registry
from .common import DropPath
from .config import ArchConfig, NeuronSpec, StageConfig


def _neuron_factory(spec: NeuronSpec):
    return lambda: registry.create("neuron", spec.kind, **spec.params)


class _Net(nn.Module):
    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        self.T = config.T

    def _time_major(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if x.ndim == 4:
            return x.unsqueeze(0), True
        if x.ndim == 5:
            return x, False
        raise ValueError(f"expected images (B, C, H, W) or (T, B, C, H, W), got shape {tuple(x.shape)}")

    def _stem(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x, static = self._time_major(x)
        h = encoder(x)
        return h.expand(self.T, *h.shape[1:]) if static else h


class SpikingBlock(nn.Module):
    """One token + channel block of a spiking stage, with its two LIF layers. A stage's
    ``first`` block always adds the patch state ``h`` to its token LIF input."""

    def __init__(self, st: StageConfig, grid: int, neuron, first: bool = False) -> None:
        super().__init__()
        self.skips, self.first = st.skips, first
        ctx = dict(dim=st.dim, grid=grid, neuron=neuron)
        self.token = registry.create("token", st.token.name, **ctx, **st.token.params)
        self.token_lif = neuron()
        self.channel = registry.create("channel", st.channel.name, **ctx, **st.channel.params)
        self.channel_lif = neuron()

    def forward(self, x, h, c_prev):
        sk = self.skips
        t = self.token(x)
        u = t
        if sk.PT or self.first:
            u = u + h
        if sk.CT and c_prev is not None:
            u = u + c_prev
        x = self.token_lif(u)
        c = self.channel(x)
        m = c
        if sk.PC:
            m = m + h
        if sk.TC:
            m = m + t
        return self.channel_lif(m), c


class SpikingStage(nn.Module):
    def __init__(self, st: StageConfig, index: int, grid: int, in_dim: int, neuron) -> None:
        super().__init__()
        self.encoder = registry.create("encoder", st.encoder.name, in_dim=in_dim, dim=st.dim,
                                       grid=grid, neuron=neuron, stem=index == 0,
                                       **st.encoder.params)
        self.encoder_lif = neuron()
        self.blocks = nn.ModuleList(SpikingBlock(st, grid, neuron, first=j == 0)
                                    for j in range(st.depth))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x, c = self.encoder_lif(h), None
        for block in self.blocks:
            x, c = block(x, h, c)
        return x


class SpikingMLP(_Net):
    """The multi-stage spiking MLP of seed 002 (every FC reads binary spikes)."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__(config)
        self.stages = nn.ModuleList()
        for i, st, grid, in_dim in config.walk():
            neuron = _neuron_factory(st.neuron or config.neuron)
            self.stages.append(SpikingStage(st, i, grid, in_dim, neuron))
        self.head = registry.create("head", config.head.name, dim=config.stages[-1].dim,
                                    num_classes=config.num_classes, **config.head.params)
        self.stages[0].encoder.mfi_exempt = "stem: reads the real-valued image"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = None
        for i, stage in enumerate(self.stages):
            h = self._stem(stage.encoder, images) if i == 0 else stage.encoder(x)
            x = stage(h)
        return self.head(x)


class _ResidualBlock(nn.Module):
    """SNN-MLP block: ``x += DropPath(Token(GN(x))); x += DropPath(Channel(GN(x)))``."""

    def __init__(self, st: StageConfig, grid: int, neuron, drop_path: float) -> None:
        super().__init__()
        ctx = dict(dim=st.dim, grid=grid, neuron=neuron)
        self.norm1 = nn.GroupNorm(1, st.dim)
        self.token = registry.create("token", st.token.name, **ctx, **st.token.params)
        self.norm2 = nn.GroupNorm(1, st.dim)
        self.channel = registry.create("channel", st.channel.name, **ctx, **st.channel.params)
        self.drop = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, B, C, H, W)
        T, B = x.shape[:2]
        flat = lambda z: z.reshape(T * B, *z.shape[2:])  # noqa: E731
        back = lambda z: z.reshape(T, B, *z.shape[1:])  # noqa: E731
        x = x + self.drop(self.token(back(self.norm1(flat(x)))))  # one mask per sample, all t
        return x + self.drop(self.channel(back(self.norm2(flat(x)))))


class SNNMLP(_Net):
    """SNN-MLP (seed 000): full-precision LIF token mixing in a pre-norm residual MLP."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__(config)
        depths = [st.depth for st in config.stages]
        rates = torch.linspace(0, config.drop_path, sum(depths)).tolist()
        self.encoders, self.stages = nn.ModuleList(), nn.ModuleList()
        k = 0
        for i, st, grid, in_dim in config.walk():
            neuron = _neuron_factory(st.neuron or config.neuron)
            self.encoders.append(registry.create("encoder", st.encoder.name, in_dim=in_dim,
                                                 dim=st.dim, grid=grid, neuron=neuron,
                                                 stem=i == 0, **st.encoder.params))
            self.stages.append(nn.Sequential(*(
                _ResidualBlock(st, grid, neuron, rates[k + j]) for j in range(st.depth))))
            k += st.depth
        self.head = registry.create("head", config.head.name, dim=config.stages[-1].dim,
                                    num_classes=config.num_classes, **config.head.params)
        self.encoders[0].mfi_exempt = "stem: reads the real-valued image"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = None
        for i, (enc, stage) in enumerate(zip(self.encoders, self.stages)):
            x = stage(self._stem(enc, images) if i == 0 else enc(x))
        return self.head(x)


FAMILIES = {"spiking_mlp": SpikingMLP, "snn_mlp": SNNMLP}
