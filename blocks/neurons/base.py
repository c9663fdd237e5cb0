"""The state contract of every spiking neuron in this project.

A neuron is a *multi-step, stateless* module:

* input: membrane input currents, time-major ``(T, ...)`` (any trailing shape);
* output: spikes of the same shape and dtype, every value exactly 0 or 1;
* state: the membrane potential lives only inside one ``forward`` call. It starts at
  ``v_reset`` (0 for soft reset) at t = 0, so no ``reset_net`` is ever needed between
  batches and a module can be called on differently shaped inputs.

Dynamics (``h`` before firing, ``v`` after reset, ``k`` the leak):
``h_t = v_{t-1} + k (x_t - (v_{t-1} - v_reset))``  (decay_input)
``h_t = v_{t-1} - k (v_{t-1} - v_reset) + x_t``    (not decay_input; IF is k = 0)
``s_t = H(h_t - V_th)``; hard reset ``v_t = h_t (1 - s_t) + v_reset s_t``;
soft reset (v_reset None) ``v_t = h_t - V_th s_t``.

The membrane arithmetic is fp32 for fp32, bf16 and fp16 inputs (fp64 stays fp64), also
under autocast; the spikes come back in the input's dtype. Backends compute exactly this;
:func:`blocks.neurons.reference.reference_multistep` is the reference that every other backend
is tested against. ``backend: auto`` (the default) picks one per call from the input's
device and dtype: :func:`blocks.neurons.backends.resolve`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import backends
from .surrogate import DEFAULT_ALPHA, SURROGATES

BACKENDS = ("auto", "torch", "spikingjelly", "cupy", "triton")
CUDA_BACKENDS = ("cupy", "triton")  # our fused kernels: CUDA tensors only


def real(field: str, value, allowed: str, ok=lambda v: True) -> float:
    """``value`` as a float, or a ValueError ``field: value; allowed: ...`` when it is not a
    finite number (booleans and strings refused) or ``ok`` refuses it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not ok(float(value)):
        raise ValueError(f"{field}: {value!r}; allowed: {allowed}")
    return float(value)


class SpikingNeuron(nn.Module):
    """Base class: validated common parameters and the backend dispatch."""

    def __init__(
        self,
        *,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = True,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate: unknown {surrogate!r}; allowed: {', '.join(SURROGATES)}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: unknown {backend!r}; allowed: {', '.join(BACKENDS)}")
        self.v_threshold = real("v_threshold", v_threshold, "a finite number > 0", lambda v: v > 0)
        self.v_reset = None if v_reset is None else real(
            "v_reset", v_reset, f"a finite number below v_threshold {self.v_threshold}, or null "
            "(soft reset)", lambda v: v < self.v_threshold)
        if not isinstance(detach_reset, bool):
            raise ValueError(f"detach_reset: {detach_reset!r}; allowed: true, false")
        self.detach_reset = detach_reset
        self.surrogate = surrogate
        self.alpha = DEFAULT_ALPHA[surrogate] if alpha is None else real(
            "alpha", alpha, "a finite number > 0", lambda v: v > 0)
        self.backend = backend

    def leak(self) -> torch.Tensor | float:
        """The leak ``k`` of the charge equation (0 for IF)."""
        raise NotImplementedError

    decay_input: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return backends.run(self, x)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard to {self.v_reset}"
        return (
            f"v_threshold={self.v_threshold}, reset={reset}, surrogate={self.surrogate}"
            f"(alpha={self.alpha}), backend={self.backend}"
        )
