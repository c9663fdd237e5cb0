"""Compile our LIF kernels ahead of time for a GPU architecture, with no GPU present.

* :func:`compile_triton`: one variant of the ``triton`` backend's kernels through
  ``triton.compile`` for ``GPUTarget("cuda", sm, 32)`` (PTX and a cubin from the ptxas
  bundled with Triton);
* :func:`compile_cupy`: the ``cupy`` backend's source through NVRTC (``cuda.bindings``,
  installed with torch's CUDA build), as CuPy compiles it on the user's machine.

Used by tests/test_gpu_compile.py (sm_80, sm_90) and by ``python -m nas.doctor`` (the
GPU it runs on). Each raises :class:`CompilerMissing` where its compiler is absent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .cupy_lif import NVRTC_OPTIONS, source
from .triton_lif import NUM_WARPS, block_size


class CompilerMissing(RuntimeError):
    """Triton or NVRTC (or Triton's CUDA backend) is not installed here."""


@dataclass(frozen=True)
class Variant:
    """One compiled form of a Triton kernel: direction, input dtype, neuron, T."""

    direction: str  # "forward" | "backward"
    dtype: torch.dtype
    neuron: str  # "lif" (fixed leak, by value) | "plif" (learned leak, read and differentiated)
    T: int

    def __str__(self) -> str:
        return f"{self.direction}-{str(self.dtype).removeprefix('torch.')}-{self.neuron}-T{self.T}"


# every axis in a handful: fwd/bwd, fp32/bf16/fp16, LIF/PLIF, T 1/4/8
REPRESENTATIVE = (
    Variant("forward", torch.float32, "lif", 4), Variant("forward", torch.bfloat16, "plif", 8),
    Variant("forward", torch.float16, "lif", 1), Variant("backward", torch.float32, "plif", 4),
    Variant("backward", torch.bfloat16, "lif", 1), Variant("backward", torch.bfloat16, "plif", 8),
)
_TRITON_TYPE = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_ACCESS = re.compile(r"\b(ld|st)\.global(?:\.[a-z]+)*?(\.v[248])?\.([bfsu]\d+)\b")  # op, vector, width


@dataclass
class Compiled:
    ptx: str
    cubin: bytes

    def global_accesses(self) -> dict[str, int]:
        """Counts of global loads and stores by width: ``{"ld.v4": 3, "st.b16": 1, ...}``."""
        counts: dict[str, int] = {}
        for op, vec, width in _ACCESS.findall(self.ptx):
            key = f"{op}{vec or ''}.{width}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def widest_access_bits(self) -> int:
        widths = [int(vec[2:] or 1) * int(w[1:]) for _, vec, w in _ACCESS.findall(self.ptx)]
        return max(widths, default=0)


def compile_triton(variant: Variant, sm: int, n_multiple_of_16: bool = True) -> Compiled:
    """``variant`` for ``sm`` (80, 90 ...) as ``triton_lif`` launches it; with
    ``n_multiple_of_16`` the neuron count carries Triton's divisibility hint (the JIT adds
    it when N % 16 == 0, and pointers from torch are 16-byte aligned)."""
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as err:
        raise CompilerMissing(f"Triton is not installed ({err})") from None
    from . import triton_kernels as tk  # needs triton: an optional dependency

    x = "*" + _TRITON_TYPE[variant.dtype]
    plif = variant.neuron == "plif"
    common = {"N": "i32", "vth": "fp32", "v_reset": "fp32", "leak": "fp32", "leak_ptr": "*fp32"}
    consts = dict(T=variant.T, DECAY_INPUT=True, HARD=True, LEAK_IN_MEMORY=plif,
                  BLOCK=block_size(variant.dtype))
    if variant.direction == "forward":
        fn, types = tk.lif_forward, {"x_ptr": x, "s_ptr": x, "h_ptr": "*fp32", **common}
    else:
        fn = tk.lif_backward
        types = {"gs_ptr": x, "h_ptr": "*fp32", "x_ptr": x if plif else "*fp32", "gx_ptr": x,
                 "gleak_ptr": "*fp32", "alpha": "fp32", **common}
        consts.update(DETACH=True, KIND=0, LEAK_GRAD=plif)
    signature = {name: types.get(name, "constexpr") for name in fn.arg_names}
    aligned = [i for i, name in enumerate(fn.arg_names)
               if signature[name].startswith("*") or (name == "N" and n_multiple_of_16)]
    attrs = {(i,): [["tt.divisibility", 16]] for i in aligned}
    try:
        kernel = triton.compile(ASTSource(fn, signature, constexprs=consts, attrs=attrs),
                                target=GPUTarget("cuda", sm, 32),
                                options={"enable_fp_fusion": False, "num_warps": NUM_WARPS})
    except Exception as err:
        if "ptxas" in str(err).lower() or "nvidia" in str(err).lower() and "backend" in str(err).lower():
            raise CompilerMissing(f"Triton's CUDA backend cannot compile here: {err}") from None
        raise
    return Compiled(kernel.asm["ptx"], kernel.asm["cubin"])


def compile_cupy(sm: int) -> Compiled:
    """The ``cupy`` backend's source through NVRTC for ``sm``, with the backend's options."""
    try:
        from cuda.bindings import nvrtc
    except ImportError as err:
        raise CompilerMissing(f"NVRTC (cuda-bindings) is not installed ({err})") from None

    def check(result, *values):
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC: {result}")
        return values[0] if len(values) == 1 else values

    prog = check(*nvrtc.nvrtcCreateProgram(source().encode(), b"cupy_lif.cu", 0, [], []))
    try:
        opts = [f"--gpu-architecture=sm_{sm}".encode(), *(o.encode() for o in NVRTC_OPTIONS)]
        (status,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = check(*nvrtc.nvrtcGetProgramLogSize(prog))
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError(f"NVRTC could not compile cupy_lif for sm_{sm}: "
                               + log.decode(errors="replace").strip().splitlines()[0])
        ptx = b" " * check(*nvrtc.nvrtcGetPTXSize(prog))
        nvrtc.nvrtcGetPTX(prog, ptx)
        cubin = b" " * check(*nvrtc.nvrtcGetCUBINSize(prog))
        nvrtc.nvrtcGetCUBIN(prog, cubin)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return Compiled(ptx.decode().rstrip("\x00 "), bytes(cubin))


def ptx_function(ptx: str, name: str) -> str:
    """The body of one ``.entry`` of a PTX module."""
    match = re.search(rf"\.entry {re.escape(name)}\((.*?)\n}}", ptx, re.S)
    if match is None:
        raise KeyError(f"no entry {name!r} in the PTX")
    return match.group(1)
