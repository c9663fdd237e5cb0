"""Our fused multi-step LIF kernel (forward and backward) as CuPy RawKernels.

One CUDA thread owns one neuron and walks its T time steps, so the whole sequence costs
one read of ``x`` and one write of the spikes (plus ``h`` kept for the backward pass),
instead of T launches of several element-wise ops. CUDA only: without CUDA, or without
CuPy, :func:`cupy_multistep` raises a clear error naming the ``backend`` field.
"""
from __future__ import annotations

import functools

import torch

_SURROGATE_ID = {"sigmoid": 0, "atan": 1, "triangle": 2}

_SOURCE = r"""
__device__ __forceinline__ float sg_grad(float x, float a, int kind) {
    if (kind == 0) { float s = 1.f / (1.f + __expf(-a * x)); return a * s * (1.f - s); }
    if (kind == 1) { float z = 1.5707963267948966f * a * x; return 0.5f * a / (1.f + z * z); }
    float g = a - a * a * fabsf(x); return g > 0.f ? g : 0.f;
}

extern "C" __global__ void lif_forward(
    const float* x, float* spikes, float* h_seq, const float* leak_p, int T, long long N,
    int decay_input, float vth, float v_reset, int hard_reset) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float k = leak_p[0];
    float v = hard_reset ? v_reset : 0.f;
    const float vr = hard_reset ? v_reset : 0.f;
    for (int t = 0; t < T; ++t) {
        const long long j = (long long)t * N + i;
        const float xt = x[j];
        const float h = decay_input ? v + (xt - (v - vr)) * k : v - (v - vr) * k + xt;
        const float s = h >= vth ? 1.f : 0.f;
        spikes[j] = s;
        h_seq[j] = h;
        v = hard_reset ? h * (1.f - s) + vr * s : h - vth * s;
    }
}

extern "C" __global__ void lif_backward(
    const float* grad_s, const float* x, const float* h_seq, float* grad_x, float* grad_leak,
    const float* leak_p, int T, long long N, int decay_input, float vth, float v_reset,
    int hard_reset, int detach_reset, float alpha, int sg_kind) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float k = leak_p[0];
    const float vr = hard_reset ? v_reset : 0.f;
    float grad_v = 0.f;   // dL/dv_t flowing back from step t+1
    float gk = 0.f;
    for (int t = T - 1; t >= 0; --t) {
        const long long j = (long long)t * N + i;
        const float h = h_seq[j];
        const float s = h >= vth ? 1.f : 0.f;
        const float sg = sg_grad(h - vth, alpha, sg_kind);
        float dv_dh;
        if (hard_reset) dv_dh = (1.f - s) + (detach_reset ? 0.f : (vr - h) * sg);
        else dv_dh = 1.f - (detach_reset ? 0.f : vth * sg);
        const float grad_h = grad_s[j] * sg + grad_v * dv_dh;
        grad_x[j] = decay_input ? grad_h * k : grad_h;
        // v_{t-1}: recomputed from h_{t-1}, or the initial state at t = 0
        float v_prev;
        if (t == 0) v_prev = hard_reset ? v_reset : 0.f;
        else {
            const float hp = h_seq[j - N];
            const float sp = hp >= vth ? 1.f : 0.f;
            v_prev = hard_reset ? hp * (1.f - sp) + vr * sp : hp - vth * sp;
        }
        gk += grad_h * (decay_input ? (x[j] - (v_prev - vr)) : -(v_prev - vr));
        grad_v = grad_h * (1.f - k);
    }
    grad_leak[i] = gk;
}
"""


def _require_cuda(x: torch.Tensor):
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "backend 'cupy' needs CuPy (pip install 'spiking-mlp-nas[cuda]'); "
            "use backend 'torch' or 'spikingjelly' instead"
        ) from err
    if not x.is_cuda or not cupy.cuda.is_available():
        raise RuntimeError(
            "backend 'cupy' runs on CUDA tensors only (this input is on "
            f"{x.device}); allowed on CPU: 'torch', 'spikingjelly'"
        )
    return cupy


@functools.lru_cache(maxsize=None)
def _kernels(device_index: int):
    import cupy

    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=_SOURCE, options=("--fmad=false",))
        return module.get_function("lif_forward"), module.get_function("lif_backward")


def _launch(fn, n: int, args) -> None:
    import cupy

    threads = 256
    with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        fn(((n + threads - 1) // threads,), (threads,), args)


class _CupyLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, leak, decay_input, vth, v_reset, detach_reset, surrogate, alpha):
        dtype = x.dtype
        xf = x.float().contiguous()
        T, n = xf.shape[0], xf[0].numel()
        spikes, h_seq = torch.empty_like(xf), torch.empty_like(xf)
        hard = v_reset is not None
        fwd, _ = _kernels(x.device.index or 0)
        import numpy as np

        _launch(fwd, n, (xf.data_ptr(), spikes.data_ptr(), h_seq.data_ptr(), leak.data_ptr(),
                         np.int32(T), np.int64(n), np.int32(decay_input), np.float32(vth),
                         np.float32(v_reset or 0.0), np.int32(hard)))
        ctx.save_for_backward(xf, h_seq, leak)
        ctx.cfg = (decay_input, vth, v_reset, detach_reset, surrogate, alpha, dtype)
        return spikes.to(dtype)

    @staticmethod
    def backward(ctx, grad_s):
        import numpy as np

        xf, h_seq, leak = ctx.saved_tensors
        decay_input, vth, v_reset, detach_reset, surrogate, alpha, dtype = ctx.cfg
        g = grad_s.float().contiguous()
        T, n = xf.shape[0], xf[0].numel()
        grad_x = torch.empty_like(xf)
        grad_leak = torch.empty(n, device=xf.device, dtype=torch.float32)
        _, bwd = _kernels(xf.device.index or 0)
        _launch(bwd, n, (g.data_ptr(), xf.data_ptr(), h_seq.data_ptr(), grad_x.data_ptr(),
                         grad_leak.data_ptr(), leak.data_ptr(), np.int32(T), np.int64(n),
                         np.int32(decay_input), np.float32(vth), np.float32(v_reset or 0.0),
                         np.int32(v_reset is not None), np.int32(detach_reset),
                         np.float32(alpha), np.int32(_SURROGATE_ID[surrogate])))
        return grad_x.to(dtype), grad_leak.sum().reshape(leak.shape), None, None, None, None, None, None


def cupy_multistep(x, *, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha):
    """The dynamics of :mod:`blocks.neurons.base` in one fused CUDA kernel per direction."""
    _require_cuda(x)
    leak_t = leak if isinstance(leak, torch.Tensor) else torch.tensor(float(leak))
    leak_t = leak_t.reshape(1).to(device=x.device, dtype=torch.float32)
    if not leak_t.requires_grad:
        leak_t = leak_t.contiguous()
    return _CupyLIF.apply(x, leak_t, bool(decay_input), float(v_threshold), v_reset,
                          bool(detach_reset), surrogate, float(alpha))
