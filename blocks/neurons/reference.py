"""The reference multi-step dynamics of every neuron (:mod:`blocks.neurons.base`), one
time step at a time in plain torch: the ``torch`` backend, and what the fused kernels are
tested against."""
from __future__ import annotations

import torch

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
