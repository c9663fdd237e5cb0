"""Leaky integrate-and-fire neurons: ``lif``, ``plif`` (learnable tau) and ``if``."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from .base import SpikingNeuron, real
from .surrogate import spike


def reference_multistep(
    x: torch.Tensor,
    *,
    leak: torch.Tensor | float,
    decay_input: bool,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: str,
    alpha: float,
) -> torch.Tensor:
    """The reference dynamics of :mod:`blocks.neurons.base`, one time step at a time.

    The membrane is computed in fp32 for half-precision inputs (also under autocast: only
    element-wise ops run here, which autocast leaves alone), as our fused kernels do; the
    spikes are cast back to the input's dtype, so the input's gradient is rounded once."""
    dtype = x.dtype
    x = x.to(torch.promote_types(dtype, torch.float32))
    v = torch.full_like(x[0], 0.0 if v_reset is None else v_reset)
    vr = 0.0 if v_reset is None else v_reset
    out = []
    for x_t in x:
        if decay_input:
            h = v + (x_t - (v - vr)) * leak
        else:
            h = v - (v - vr) * leak + x_t
        s = spike(h - v_threshold, surrogate, alpha)
        s_r = s.detach() if detach_reset else s
        v = h * (1.0 - s_r) + vr * s_r if v_reset is not None else h - v_threshold * s_r
        out.append(s)
    return torch.stack(out).to(dtype)


class _Leaky(SpikingNeuron):
    """Common parameters of the leaky neurons; subclasses keep tau fixed or learn it."""

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


@register("neuron", "if")
class IF(SpikingNeuron):
    """Integrate-and-fire: no leak, ``h_t = v_{t-1} + x_t``."""

    def __init__(self, *, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 detach_reset: bool = True, surrogate: str = "sigmoid",
                 alpha: float | None = None, backend: str = "auto") -> None:
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset,
                         surrogate=surrogate, alpha=alpha, backend=backend)

    def leak(self) -> float:
        return 0.0
