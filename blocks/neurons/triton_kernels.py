"""The Triton kernels of the ``triton`` neuron backend (see :mod:`blocks.neurons.triton_lif`).

Imported only when that backend runs: Triton decides at import whether it compiles for the
GPU or interprets on the CPU (``TRITON_INTERPRET=1``).
"""
import triton
import triton.language as tl


@triton.jit
def surrogate_grad(u, alpha, KIND: tl.constexpr):
    if KIND == 0:  # sigmoid
        sg = 1.0 / (1.0 + tl.exp(-alpha * u))
        g = alpha * sg * (1.0 - sg)
    elif KIND == 1:  # atan
        z = 1.5707963267948966 * alpha * u
        g = (alpha / 2.0) / (1.0 + z * z)
    else:  # triangle
        g = tl.maximum(alpha - alpha * alpha * tl.abs(u), 0.0)
    return g


@triton.jit
def program_neurons(N, BLOCK: tl.constexpr):
    """This program's neuron offsets, their mask, and one time step's stride (int64:
    T x N may pass 2**31)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row = tl.zeros([BLOCK], dtype=tl.int64) + N
    return offs, offs < N, row


@triton.jit
def leak_value(leak_ptr, leak, LEAK_IN_MEMORY: tl.constexpr):
    """A learned leak (PLIF) is read from the device; a fixed one comes as an argument."""
    if LEAK_IN_MEMORY:
        k = tl.load(leak_ptr)
    else:
        k = leak
    return k


@triton.jit
def lif_forward(x_ptr, s_ptr, h_ptr, leak_ptr, leak, N, vth, v_reset,
                T: tl.constexpr, DECAY_INPUT: tl.constexpr, HARD: tl.constexpr,
                LEAK_IN_MEMORY: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, row = program_neurons(N, BLOCK)
    k = leak_value(leak_ptr, leak, LEAK_IN_MEMORY)
    vr = v_reset if HARD else 0.0
    v = tl.zeros([BLOCK], dtype=tl.float32) + vr
    for t in tl.static_range(T):
        x = tl.load(x_ptr + t * row + offs, mask=mask, other=0.0).to(tl.float32)
        if DECAY_INPUT:
            h = v + (x - (v - vr)) * k
        else:
            h = v - (v - vr) * k + x
        s = (h - vth >= 0.0).to(tl.float32)
        tl.store(s_ptr + t * row + offs, s.to(s_ptr.dtype.element_ty), mask=mask)
        tl.store(h_ptr + t * row + offs, h, mask=mask)
        if HARD:
            v = h * (1.0 - s) + vr * s
        else:
            v = h - vth * s


@triton.jit
def lif_backward(gs_ptr, h_ptr, x_ptr, gx_ptr, gleak_ptr, leak_ptr, leak, N, vth, v_reset, alpha,
                 T: tl.constexpr, DECAY_INPUT: tl.constexpr, HARD: tl.constexpr,
                 DETACH: tl.constexpr, KIND: tl.constexpr, LEAK_IN_MEMORY: tl.constexpr,
                 LEAK_GRAD: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, row = program_neurons(N, BLOCK)
    k = leak_value(leak_ptr, leak, LEAK_IN_MEMORY)
    vr = v_reset if HARD else 0.0
    grad_v = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dv_t from step t + 1
    gk = tl.zeros([BLOCK], dtype=tl.float32)
    h = tl.load(h_ptr + (T - 1) * row + offs, mask=mask, other=0.0)
    for i in tl.static_range(T):
        t = T - 1 - i
        s = (h - vth >= 0.0).to(tl.float32)
        sg = surrogate_grad(h - vth, alpha, KIND)
        if HARD:
            if DETACH:
                dv_dh = 1.0 - s
            else:
                dv_dh = (1.0 - s) + (vr - h) * sg
        else:
            if DETACH:
                dv_dh = tl.full([BLOCK], 1.0, tl.float32)
            else:
                dv_dh = 1.0 - vth * sg
        gs = tl.load(gs_ptr + t * row + offs, mask=mask, other=0.0).to(tl.float32)
        grad_h = gs * sg + grad_v * dv_dh
        if DECAY_INPUT:
            gx = grad_h * k
        else:
            gx = grad_h
        tl.store(gx_ptr + t * row + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        if t > 0:  # v_{t-1} from h_{t-1}, which the next iteration needs anyway
            h_prev = tl.load(h_ptr + (t - 1) * row + offs, mask=mask, other=0.0)
            s_prev = (h_prev - vth >= 0.0).to(tl.float32)
            if HARD:
                v_prev = h_prev * (1.0 - s_prev) + vr * s_prev
            else:
                v_prev = h_prev - vth * s_prev
        else:
            h_prev = h
            v_prev = tl.zeros([BLOCK], dtype=tl.float32) + vr
        if LEAK_GRAD:
            if DECAY_INPUT:
                x = tl.load(x_ptr + t * row + offs, mask=mask, other=0.0).to(tl.float32)
                gk += grad_h * (x - (v_prev - vr))
            else:
                gk += grad_h * (vr - v_prev)
        grad_v = grad_h * (1.0 - k)
        h = h_prev
    if LEAK_GRAD:
        tl.atomic_add(gleak_ptr, tl.sum(tl.where(mask, gk, 0.0), axis=0))
