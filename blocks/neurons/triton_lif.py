"""Our fused multi-step LIF kernel (forward and backward) in Triton: the ``triton`` backend.

One program owns ``BLOCK`` neurons and walks their T time steps in registers, so a layer
costs one kernel per direction and moves only the bytes it must (per neuron and step):

* forward: read ``x`` (its dtype), write the spikes (the same dtype) and ``h`` (fp32, the
  membrane before firing, kept for the backward pass);
* backward: read the spike gradient (its dtype) and ``h`` (``h_{t-1}`` is the value read
  one step later, so it is read once), write the input gradient (the input's dtype); a
  learnable leak (PLIF) also reads ``x`` and adds one atomic per program. A fixed leak is
  passed by value (nothing is copied to the device per call); PLIF's is read on the device.

Launch shape: 4 warps (128 threads), each thread owning 16 bytes of every input row, so
``BLOCK`` is 512 neurons for fp32 inputs and 1024 for bf16/fp16 and each access of ``x``,
the spikes and the gradients is one 128-bit load or store (``h``, fp32, two of them for
16-bit inputs) when ``N`` is a multiple of 16, as Triton then proves the alignment
(``tests/test_gpu_compile.py`` reads the widths in the PTX). T is a compile-time constant:
the time loop is unrolled and each new T compiles once (about a second).
Launches run on the input's device (a device guard), on its current stream.

fp32 or bf16/fp16 inputs; the membrane arithmetic is fp32 in the order of
:func:`blocks.neurons.reference.reference_multistep`, without fused multiply-adds, so the spikes
are bit-identical to the reference. CUDA tensors compile for the GPU; CPU tensors run in
Triton's interpreter when the process starts with ``TRITON_INTERPRET=1`` (slow: tests
only), and otherwise fail with a message that names the ``backend`` field.
"""
from __future__ import annotations

import contextlib
import os

import torch

_SURROGATE_ID = {"sigmoid": 0, "atan": 1, "triangle": 2}
NUM_WARPS = 4
ACCESS_BYTES = 16  # one 128-bit access per thread and row


def block_size(dtype: torch.dtype) -> int:
    """Neurons per program: 32 x NUM_WARPS threads, each ACCESS_BYTES of the input's dtype."""
    return 32 * NUM_WARPS * ACCESS_BYTES // torch.empty((), dtype=dtype).element_size()


def device_guard(x: torch.Tensor):
    """Launch on ``x``'s GPU, not the current one (Triton takes the current device's stream)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _require(x: torch.Tensor) -> None:
    try:
        import triton  # noqa: F401
    except ImportError as err:
        raise RuntimeError("backend 'triton' needs Triton (it ships with CUDA builds of torch); "
                           "allowed without it: 'auto', 'torch', 'spikingjelly'") from err
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(f"backend 'triton' runs on CUDA tensors (this input is on {x.device}); "
                           "allowed on CPU: 'auto', 'torch', 'spikingjelly' (or start the process with "
                           "TRITON_INTERPRET=1 to interpret the kernel, for tests)")


def _grid(n: int, block: int):
    return ((n + block - 1) // block,)


class _TritonLIF(torch.autograd.Function):
    """``leak``: a float (fixed tau: passed to the kernel by value, no copy to the device)
    or a one-element fp32 device tensor (PLIF: read by the kernel, and differentiated)."""

    @staticmethod
    def forward(ctx, x, leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha):
        x = x.contiguous()
        T, n = x.shape[0], x[0].numel()
        spikes = torch.empty_like(x)
        h_seq = torch.empty(x.shape, device=x.device, dtype=torch.float32)
        in_memory = isinstance(leak, torch.Tensor)
        from .triton_kernels import lif_forward

        block = block_size(x.dtype)
        with device_guard(x):
            lif_forward[_grid(n, block)](x, spikes, h_seq, leak if in_memory else x,
                                         0.0 if in_memory else leak, n, vth, v_reset or 0.0, T=T,
                                         DECAY_INPUT=decay_input, HARD=v_reset is not None,
                                         LEAK_IN_MEMORY=in_memory, BLOCK=block, num_warps=NUM_WARPS,
                                         enable_fp_fusion=False)
        leak_grad = ctx.needs_input_grad[1]
        ctx.save_for_backward(h_seq, leak if in_memory else None, x if leak_grad else None)
        ctx.cfg = (None if in_memory else leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha)
        return spikes

    @staticmethod
    def backward(ctx, grad_s):
        h_seq, leak_t, x = ctx.saved_tensors
        leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha = ctx.cfg
        grad_s = grad_s.contiguous()
        T, n = h_seq.shape[0], h_seq[0].numel()
        grad_x = torch.empty_like(grad_s)
        leak_grad = x is not None
        grad_leak = torch.zeros(1, device=h_seq.device, dtype=torch.float32) if leak_grad else h_seq
        from .triton_kernels import lif_backward

        block = block_size(grad_s.dtype)
        with device_guard(grad_s):
            lif_backward[_grid(n, block)](grad_s, h_seq, x if leak_grad else h_seq, grad_x, grad_leak,
                                          h_seq if leak_t is None else leak_t, leak or 0.0, n, vth,
                                          v_reset or 0.0, alpha, T=T, DECAY_INPUT=decay_input,
                                          HARD=v_reset is not None, DETACH=detach_reset,
                                          KIND=_SURROGATE_ID[surrogate],
                                          LEAK_IN_MEMORY=leak_t is not None, LEAK_GRAD=leak_grad,
                                          BLOCK=block, num_warps=NUM_WARPS, enable_fp_fusion=False)
        return (grad_x, grad_leak.reshape(leak_t.shape) if leak_grad else None,
                None, None, None, None, None, None)


def triton_multistep(x, *, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha):
    """The dynamics of :mod:`blocks.neurons.base` in one fused Triton kernel per direction."""
    _require(x)
    if isinstance(leak, torch.Tensor):  # learned (PLIF): stays on the device
        leak = leak.reshape(1).to(device=x.device, dtype=torch.float32)
    else:
        leak = float(leak)
    return _TritonLIF.apply(x, leak, bool(decay_input), float(v_threshold), v_reset,
                            bool(detach_reset), surrogate, float(alpha))
