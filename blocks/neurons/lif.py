"""Leaky integrate-and-fire neurons: ``lif``, ``plif`` (learnable tau) and ``if``.

Each class says how spikingjelly 2.0 builds the same neuron (``spikingjelly_node``), for
the ``spikingjelly`` backend; ``fused`` marks what our fused kernels compute."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from .base import SpikingNeuron, real


class _Leaky(SpikingNeuron):
    """Common parameters of the leaky neurons; subclasses keep tau fixed or learn it."""

    fused = True

    def __init__(self, *, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = True,
                 surrogate: str = "sigmoid", alpha: float | None = None,
                 backend: str = "auto") -> None:
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset,
                         surrogate=surrogate, alpha=alpha, backend=backend)
        real("tau", tau, "a finite number > 1", lambda v: v > 1.0)
        if not isinstance(decay_input, bool):
            raise ValueError(f"decay_input: {decay_input!r}; allowed: true, false")
        self.decay_input = decay_input
        self._set_tau(float(tau))

    def _set_tau(self, tau: float) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()


@register("neuron", "lif")
class LIF(_Leaky):
    """Leaky integrate-and-fire (paper eqs. 1-4): fixed tau, decay_input, hard reset."""

    def _set_tau(self, tau: float) -> None:
        self.tau = tau

    def leak(self) -> float:
        return 1.0 / self.tau

    def spikingjelly_node(self, neuron, common: dict):
        return neuron.LIFNode(tau=self.tau, decay_input=self.decay_input, **common)


@register("neuron", "plif")
class PLIF(_Leaky):
    """Parametric LIF: the leak ``k = sigmoid(w)`` is learned per layer (``tau = 1/k``;
    ``tau`` sets its initial value)."""

    def _set_tau(self, tau: float) -> None:
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))

    @property
    def tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def leak(self) -> torch.Tensor:
        return torch.sigmoid(self.w)

    def spikingjelly_node(self, neuron, common: dict):
        node = neuron.ParametricLIFNode(init_tau=2.0, decay_input=self.decay_input, **common)
        node.w = self.w  # share our parameter: one source of truth for tau
        return node


@register("neuron", "if")
class IF(SpikingNeuron):
    """Integrate-and-fire: no leak, ``h_t = v_{t-1} + x_t``."""

    fused = True

    def __init__(self, *, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 detach_reset: bool = True, surrogate: str = "sigmoid",
                 alpha: float | None = None, backend: str = "auto") -> None:
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset,
                         surrogate=surrogate, alpha=alpha, backend=backend)

    def leak(self) -> float:
        return 0.0

    def spikingjelly_node(self, neuron, common: dict):
        return neuron.IFNode(**common)
