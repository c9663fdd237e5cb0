"""Backend dispatch for spiking neurons: ``torch`` (our reference, any device),
``spikingjelly`` (spikingjelly 2.0's multi-step kernels: torch on CPU, CUDA/Triton on a
GPU), ``cupy`` (our fused CUDA kernel, :mod:`blocks.neurons.cupy_lif`) and ``triton``
(our fused Triton kernel, :mod:`blocks.neurons.triton_lif`)."""
from __future__ import annotations

import torch

from .base import SpikingNeuron
from .lif import IF, LIF, PLIF, reference_multistep


def _params(n: SpikingNeuron) -> dict:
    return dict(v_threshold=n.v_threshold, v_reset=n.v_reset, detach_reset=n.detach_reset,
                surrogate=n.surrogate, alpha=n.alpha)


def run(n: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    if n.backend == "torch":
        return reference_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    if n.backend == "spikingjelly":
        return _spikingjelly(n, x)
    if n.backend == "cupy":
        from .cupy_lif import cupy_multistep

        return cupy_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    if n.backend == "triton":
        from .triton_lif import triton_multistep

        return triton_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    raise ValueError(f"backend: unknown {n.backend!r}")


_SJ_SURROGATE = {"sigmoid": "Sigmoid", "atan": "ATan", "triangle": "PiecewiseQuadratic"}


def _spikingjelly(n: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    """Run spikingjelly's own multi-step node; built lazily and cached on the neuron."""
    node = getattr(n, "_sj_node", None)
    if node is None:
        from spikingjelly.activation_based import neuron, surrogate

        common = dict(v_threshold=n.v_threshold, v_reset=n.v_reset, detach_reset=n.detach_reset,
                      surrogate_function=getattr(surrogate, _SJ_SURROGATE[n.surrogate])(alpha=n.alpha),
                      step_mode="m")
        if isinstance(n, PLIF):
            node = neuron.ParametricLIFNode(init_tau=2.0, decay_input=n.decay_input, **common)
            node.w = n.w  # share our parameter: one source of truth for tau
        elif isinstance(n, LIF):
            node = neuron.LIFNode(tau=n.tau, decay_input=n.decay_input, **common)
        elif isinstance(n, IF):
            node = neuron.IFNode(**common)
        else:
            raise ValueError(f"backend 'spikingjelly' does not support {type(n).__name__}")
        object.__setattr__(n, "_sj_node", node)  # not a submodule: no duplicate state_dict keys
    node.reset()
    out = node(x)
    node.reset()
    return out
