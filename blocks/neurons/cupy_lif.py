"""Our fused multi-step LIF kernel (forward and backward) as CuPy RawKernels: ``cupy``.

One CUDA thread owns one neuron and walks its T time steps, so the whole sequence costs
one read of ``x`` and one write of the spikes (plus ``h``, fp32, kept for the backward
pass), instead of T launches of several element-wise ops. Like the Triton kernel:

* fp32, bf16 or fp16 inputs are read and written in their own dtype (no fp32 copies);
  the membrane arithmetic is fp32, in the order of the reference, compiled with
  ``--fmad=false``, so the spikes are bit-identical to it;
* a fixed leak is passed by value (nothing is copied to the device per call); PLIF's
  learned leak is read on the device, and only PLIF computes a leak gradient (per neuron,
  summed by torch) and keeps ``x`` for it;
* launches run on the input's device and its current torch stream.

The source needs no CUDA header (NVRTC compiles it as is; 16-bit values are handled as
raw bits), so ``tests/test_cupy_lif.py`` also compiles it with the host's C++ compiler
and checks its logic on the CPU against the reference, and ``tests/test_gpu_compile.py``
compiles it for sm_80/sm_90 with NVRTC. CUDA only: without CUDA or CuPy,
:func:`cupy_multistep` raises a clear error naming the ``backend`` field.
"""
from __future__ import annotations

import functools

import torch

_SURROGATE_ID = {"sigmoid": 0, "atan": 1, "triangle": 2}
THREADS = 256
NVRTC_OPTIONS = ("--fmad=false", "-std=c++17")

# the kernels' parameters, in order: (name, type); "S" is the input's storage type
FORWARD_PARAMS = (("x", "const S*"), ("spikes", "S*"), ("h_seq", "float*"),
                  ("leak_p", "const float*"), ("leak", "float"), ("T", "int"), ("N", "long long"),
                  ("decay_input", "int"), ("vth", "float"), ("v_reset", "float"), ("hard", "int"))
BACKWARD_PARAMS = (("grad_s", "const S*"), ("x", "const S*"), ("h_seq", "const float*"),
                   ("grad_x", "S*"), ("grad_leak", "float*"), ("leak_p", "const float*"),
                   ("leak", "float"), ("T", "int"), ("N", "long long"), ("decay_input", "int"),
                   ("vth", "float"), ("v_reset", "float"), ("hard", "int"), ("detach", "int"),
                   ("alpha", "float"), ("sg_kind", "int"))
STORAGE = {torch.float32: ("f32", "float"), torch.bfloat16: ("bf16", "bf16_t"),
           torch.float16: ("f16", "f16_t")}

_BODY = r"""
// 16-bit values as raw bits: NVRTC compiles this without cuda_fp16.h / cuda_bf16.h
struct bf16_t { unsigned short bits; };
struct f16_t { unsigned short bits; };

#ifdef __CUDA_ARCH__
__device__ __forceinline__ float f16_bits_to_f32(unsigned short b) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(b)); return f;
}
__device__ __forceinline__ unsigned short f32_to_f16_bits(float f) {
    unsigned short b; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(b) : "f"(f)); return b;
}
#endif

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(bf16_t v) { return __uint_as_float((unsigned int)v.bits << 16); }
__device__ __forceinline__ float to_f32(f16_t v) { return f16_bits_to_f32(v.bits); }
__device__ __forceinline__ void put(float* p, float v) { *p = v; }
__device__ __forceinline__ void put(f16_t* p, float v) { p->bits = f32_to_f16_bits(v); }
__device__ __forceinline__ void put(bf16_t* p, float v) {  // round to nearest even; NaN stays NaN
    const unsigned int u = __float_as_uint(v);
    p->bits = (u & 0x7fffffffu) > 0x7f800000u ? (unsigned short)((u >> 16) | 0x40u)
                                               : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float sg_grad(float x, float a, int kind) {
    if (kind == 0) { const float s = 1.f / (1.f + expf(-a * x)); return a * s * (1.f - s); }
    if (kind == 1) { const float z = 1.5707963267948966f * a * x; return 0.5f * a / (1.f + z * z); }
    const float g = a - a * a * fabsf(x); return g > 0.f ? g : 0.f;
}

__device__ __forceinline__ float v_after(float h, float s, float vth, float vr, int hard) {
    return hard ? h * (1.f - s) + vr * s : h - vth * s;
}

template <typename S>
__device__ __forceinline__ void lif_forward(FORWARD_PARAMS) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float k = leak_p ? leak_p[0] : leak;
    const float vr = hard ? v_reset : 0.f;
    float v = vr;
    for (int t = 0; t < T; ++t) {
        const long long j = (long long)t * N + i;
        const float xt = to_f32(x[j]);
        const float h = decay_input ? v + (xt - (v - vr)) * k : v - (v - vr) * k + xt;
        const float s = h - vth >= 0.f ? 1.f : 0.f;
        put(spikes + j, s);
        h_seq[j] = h;
        v = v_after(h, s, vth, vr, hard);
    }
}

template <typename S>
__device__ __forceinline__ void lif_backward(BACKWARD_PARAMS) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float k = leak_p ? leak_p[0] : leak;
    const float vr = hard ? v_reset : 0.f;
    float grad_v = 0.f;  // dL/dv_t flowing back from step t + 1
    float gk = 0.f;
    for (int t = T - 1; t >= 0; --t) {
        const long long j = (long long)t * N + i;
        const float h = h_seq[j];
        const float s = h - vth >= 0.f ? 1.f : 0.f;
        const float sg = sg_grad(h - vth, alpha, sg_kind);
        float dv_dh;
        if (hard) dv_dh = detach ? 1.f - s : (1.f - s) + (vr - h) * sg;
        else dv_dh = detach ? 1.f : 1.f - vth * sg;
        const float grad_h = to_f32(grad_s[j]) * sg + grad_v * dv_dh;
        put(grad_x + j, decay_input ? grad_h * k : grad_h);
        if (grad_leak) {  // PLIF only: v_{t-1} from h_{t-1}, or the initial state at t = 0
            float v_prev = vr;
            if (t > 0) {
                const float hp = h_seq[j - N];
                v_prev = v_after(hp, hp - vth >= 0.f ? 1.f : 0.f, vth, vr, hard);
            }
            gk += grad_h * (decay_input ? (to_f32(x[j]) - (v_prev - vr)) : (vr - v_prev));
        }
        grad_v = grad_h * (1.f - k);
    }
    if (grad_leak) grad_leak[i] = gk;
}
"""


def _declare(params, storage: str) -> str:
    return ", ".join(f"{kind.replace('S', storage, 1) if 'S' in kind else kind} {name}"
                     for name, kind in params)


def kernel_name(direction: str, dtype: torch.dtype) -> str:
    return f"lif_{direction}_{STORAGE[dtype][0]}"


def source() -> str:
    """The CUDA C++ source: the templates and one ``extern "C"`` kernel per direction and
    storage type (``lif_forward_f32``, ``lif_backward_bf16`` ...)."""
    text = (_BODY.replace("FORWARD_PARAMS", _declare(FORWARD_PARAMS, "S"))
            .replace("BACKWARD_PARAMS", _declare(BACKWARD_PARAMS, "S")))
    for dtype, (suffix, storage) in STORAGE.items():
        for direction, params in (("forward", FORWARD_PARAMS), ("backward", BACKWARD_PARAMS)):
            names = ", ".join(name for name, _ in params)
            text += (f'\nextern "C" __global__ void {kernel_name(direction, dtype)}('
                     f"{_declare(params, storage)}) {{ lif_{direction}<{storage}>({names}); }}\n")
    return text


def _require_cuda(x: torch.Tensor):
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "backend 'cupy' needs CuPy (pip install 'spiking-mlp-nas[cuda]'); "
            "use backend 'auto', 'triton', 'torch' or 'spikingjelly' instead"
        ) from err
    if not x.is_cuda or not cupy.cuda.is_available():
        raise RuntimeError(
            "backend 'cupy' runs on CUDA tensors only (this input is on "
            f"{x.device}); allowed on CPU: 'auto', 'torch', 'spikingjelly'"
        )
    if x.dtype not in STORAGE:
        raise RuntimeError(f"backend 'cupy' takes fp32, bf16 or fp16 inputs, not {x.dtype}")
    return cupy


@functools.lru_cache(maxsize=None)
def _module(device_index: int):
    import cupy

    with cupy.cuda.Device(device_index):
        return cupy.RawModule(code=source(), options=NVRTC_OPTIONS)


def _launch(name: str, n: int, args: dict, x: torch.Tensor) -> None:
    """Run kernel ``name`` over ``n`` neurons on ``x``'s device and current stream; ``args``
    by parameter name (pointers as ints, 0 for none)."""
    import cupy
    import numpy as np

    params = FORWARD_PARAMS if "forward" in name else BACKWARD_PARAMS
    scalar = {"float": np.float32, "int": np.int32, "long long": np.int64}
    values = tuple(np.uint64(args[p]) if kind.endswith("*") else scalar[kind](args[p])
                   for p, kind in params)
    index = x.device.index
    with torch.cuda.device(index), cupy.cuda.Device(index):
        fn = _module(index).get_function(name)
        with cupy.cuda.ExternalStream(torch.cuda.current_stream(index).cuda_stream):
            fn(((n + THREADS - 1) // THREADS,), (THREADS,), values)


def _ptr(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


class _CupyLIF(torch.autograd.Function):
    """``leak``: a float (fixed tau: passed by value) or a one-element fp32 device tensor
    (PLIF: read by the kernel, and differentiated)."""

    @staticmethod
    def forward(ctx, x, leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha):
        x = x.contiguous()
        T, n = x.shape[0], x[0].numel()
        spikes = torch.empty_like(x)
        h_seq = torch.empty(x.shape, device=x.device, dtype=torch.float32)
        leak_t = leak if isinstance(leak, torch.Tensor) else None
        _launch(kernel_name("forward", x.dtype), n, dict(
            x=_ptr(x), spikes=_ptr(spikes), h_seq=_ptr(h_seq), leak_p=_ptr(leak_t),
            leak=0.0 if leak_t is not None else leak, T=T, N=n, decay_input=decay_input, vth=vth,
            v_reset=v_reset or 0.0, hard=v_reset is not None), x)
        leak_grad = ctx.needs_input_grad[1]
        ctx.save_for_backward(h_seq, leak_t, x if leak_grad else None)
        ctx.cfg = (None if leak_t is not None else leak, decay_input, vth, v_reset, detach_reset,
                   surrogate, alpha)
        return spikes

    @staticmethod
    def backward(ctx, grad_s):
        h_seq, leak_t, x = ctx.saved_tensors
        leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha = ctx.cfg
        grad_s = grad_s.contiguous()
        T, n = h_seq.shape[0], h_seq[0].numel()
        grad_x = torch.empty_like(grad_s)
        grad_leak = None if x is None else torch.empty(n, device=h_seq.device, dtype=torch.float32)
        _launch(kernel_name("backward", grad_s.dtype), n, dict(
            grad_s=_ptr(grad_s), x=_ptr(x), h_seq=_ptr(h_seq), grad_x=_ptr(grad_x),
            grad_leak=_ptr(grad_leak), leak_p=_ptr(leak_t), leak=leak or 0.0, T=T, N=n,
            decay_input=decay_input, vth=vth, v_reset=v_reset or 0.0, hard=v_reset is not None,
            detach=detach_reset, alpha=alpha, sg_kind=_SURROGATE_ID[surrogate]), grad_s)
        return (grad_x, None if grad_leak is None else grad_leak.sum().reshape(leak_t.shape),
                None, None, None, None, None, None)


def cupy_multistep(x, *, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha):
    """The dynamics of :mod:`blocks.neurons.base` in one fused CUDA kernel per direction."""
    _require_cuda(x)
    if isinstance(leak, torch.Tensor):  # learned (PLIF): stays on the device
        leak = leak.reshape(1).to(device=x.device, dtype=torch.float32)
    else:
        leak = float(leak)
    return _CupyLIF.apply(x, leak, bool(decay_input), float(v_threshold), v_reset,
                          bool(detach_reset), surrogate, float(alpha))

