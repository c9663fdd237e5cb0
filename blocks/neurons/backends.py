"""Backend dispatch for spiking neurons: ``torch`` (our reference, any device),
``spikingjelly`` (spikingjelly 2.0's multi-step kernels: torch on CPU, CUDA/Triton on a
GPU), ``cupy`` (our fused CUDA kernel, :mod:`blocks.neurons.cupy_lif`), ``triton`` (our
fused Triton kernel, :mod:`blocks.neurons.triton_lif`) and ``auto`` (the default).

:func:`resolve` is the one place that decides which backend computes a call; ``auto``:

* CPU (any non-CUDA device): ``torch``, the reference (spikingjelly's CPU path is the
  same maths and no faster);
* CUDA, fp32/bf16/fp16 inputs, LIF/PLIF/IF: ``triton`` if Triton imports (it ships with
  CUDA builds of torch), else ``cupy`` if CuPy sees the GPU, else ``torch``;
* CUDA, any other dtype (fp64) or a neuron our kernels do not know: ``torch``.

``auto`` never picks ``spikingjelly``: which kernel it runs is its own choice at run time,
so its speed on a given machine is not ours to promise. A backend asked for by name that
cannot serve a call (no CUDA tensor, package missing, dtype) is replaced by ``auto``'s
choice with one warning line (:class:`BackendFallbackWarning`) naming both: a run never
crashes on it and never falls back silently.
"""
from __future__ import annotations

import functools
import os
import warnings

import torch
from torch import nn

from .cupy_lif import cupy_multistep
from .reference import reference_multistep
from .triton_lif import triton_multistep

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # our fused kernels


class BackendFallbackWarning(UserWarning):
    """A neuron backend asked for by name cannot serve a call; another one computes it."""


@functools.lru_cache(maxsize=None)
def _imports(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # ImportError, or a broken install raising something else
        return False
    return True


@functools.lru_cache(maxsize=None)
def _cupy_sees_gpu() -> bool:
    if not _imports("cupy"):
        return False
    import cupy

    try:
        return bool(cupy.cuda.is_available())
    except Exception:
        return False


def why_not(backend: str, device: torch.device, dtype: torch.dtype | None = None,
            neuron: type | None = None) -> str | None:
    """Why ``backend`` cannot compute a call on ``device`` (input ``dtype``, neuron class
    ``neuron``; either may be None to check the device only), or None if it can."""
    device = torch.device(device)
    if backend in ("auto", "torch"):
        return None
    if neuron is not None and not getattr(neuron, "fused", False):  # LIF, PLIF, IF
        return f"it does not compute {neuron.__name__}"
    if backend == "spikingjelly":
        return None if _imports("spikingjelly") else "spikingjelly is not installed"
    if backend not in ("triton", "cupy"):
        raise ValueError(f"backend: unknown {backend!r}")
    interpreted = backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"
    if device.type != "cuda" and not interpreted:
        return f"it runs on CUDA only, not on {device.type}"
    if dtype is not None and dtype not in KERNEL_DTYPES:
        return f"its kernel takes fp32, bf16 or fp16 inputs, not {str(dtype).removeprefix('torch.')}"
    if backend == "triton" and not _imports("triton"):
        return "Triton is not installed (it ships with CUDA builds of torch)"
    if backend == "cupy" and not _cupy_sees_gpu():
        return ("CuPy is not installed (pip install 'spiking-mlp-nas[cuda]')" if not _imports("cupy")
                else "CuPy sees no GPU")
    return None


def resolve(backend: str, device: torch.device, dtype: torch.dtype | None = None,
            neuron: type | None = None) -> tuple[str, str | None]:
    """The backend that computes a call, and why the one asked for cannot (None if it can).

    ``auto``: ``torch`` off CUDA; on CUDA the first of ``triton``, ``cupy`` that can serve
    the dtype and neuron, else ``torch``. A named backend that cannot serve: ``auto``'s choice.
    """
    reason = why_not(backend, device, dtype, neuron)
    if backend != "auto" and reason is None:
        return backend, None
    if torch.device(device).type == "cuda":
        for fast in ("triton", "cupy"):
            if why_not(fast, device, dtype, neuron) is None:
                return fast, reason
    return "torch", reason


def run(n: nn.Module, x: torch.Tensor) -> torch.Tensor:
    backend, reason = resolve(n.backend, x.device, x.dtype, type(n))
    if reason is not None:
        warnings.warn(f"neuron backend {n.backend!r} cannot run this {type(n).__name__} call: "
                      f"{reason}; using {backend!r}", BackendFallbackWarning, stacklevel=3)
    if backend == "torch":
        return reference_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    if backend == "spikingjelly":
        return _spikingjelly(n, x)
    if backend == "cupy":
        return cupy_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    if backend == "triton":
        return triton_multistep(x, leak=n.leak(), decay_input=n.decay_input, **_params(n))
    raise ValueError(f"backend: unknown {backend!r}")


def _params(n: nn.Module) -> dict:
    return dict(v_threshold=n.v_threshold, v_reset=n.v_reset, detach_reset=n.detach_reset,
                surrogate=n.surrogate, alpha=n.alpha)


_SJ_SURROGATE = {"sigmoid": "Sigmoid", "atan": "ATan", "triangle": "PiecewiseQuadratic"}


def _spikingjelly(n: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run spikingjelly's own multi-step node; built lazily and cached on the neuron.

    Half-precision inputs are computed in fp32 (cast in, spikes cast back): spikingjelly
    2.0 runs its slow torch path for an fp16/bf16 membrane, and fp32 is our model's."""
    node = getattr(n, "_sj_node", None)
    if node is None:
        from spikingjelly.activation_based import neuron, surrogate

        common = dict(v_threshold=n.v_threshold, v_reset=n.v_reset, detach_reset=n.detach_reset,
                      surrogate_function=getattr(surrogate, _SJ_SURROGATE[n.surrogate])(alpha=n.alpha),
                      step_mode="m")
        if not hasattr(n, "spikingjelly_node"):
            raise ValueError(f"backend 'spikingjelly' does not support {type(n).__name__}")
        node = n.spikingjelly_node(neuron, common)
        object.__setattr__(n, "_sj_node", node)  # not a submodule: no duplicate state_dict keys
    dtype = x.dtype
    node.reset()
    out = node(x.to(torch.promote_types(dtype, torch.float32)))
    node.reset()
    return out.to(dtype)
