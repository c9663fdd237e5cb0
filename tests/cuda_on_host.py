"""The ``cupy`` backend's CUDA source, compiled by the host's C++ compiler and run on CPU
tensors, one emulated thread after another (used by tests/test_cupy_lif.py).

A prelude maps the few CUDA names the source uses (``__global__``, ``blockIdx`` ...,
``__float_as_uint``, fp16 conversions through the F16C instructions) to host C++; each
kernel gets a host launcher that loops over the threads of its grid. The kernel text is
the very one NVRTC compiles; only the fp16 conversion (PTX ``cvt`` on the GPU) differs.
"""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from blocks.neurons import backends, cupy_lif

PRELUDE = r"""
#include <math.h>
#include <string.h>
#include <immintrin.h>
struct HostIndex { unsigned int x; };
static HostIndex blockIdx, threadIdx, blockDim;
#define __global__
#define __device__
#define __forceinline__ inline
static inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
static inline float f16_bits_to_f32(unsigned short b) { return _cvtsh_ss(b); }
static inline unsigned short f32_to_f16_bits(float f) { return _cvtss_sh(f, 0); }  // nearest even
"""
C_TYPES = {"float": ctypes.c_float, "int": ctypes.c_int, "long long": ctypes.c_longlong}


def compiler() -> str | None:
    return shutil.which("g++") or shutil.which("clang++")


def _launcher(name: str, params) -> str:
    """``host_<name>(threads, n, params...)``: the kernel once per thread of the grid."""
    decl = ", ".join(f"{'void*' if kind.endswith('*') else kind} {p}" for p, kind in params)
    call = ", ".join(f"({kind.replace('S', _storage(name), 1)}){p}" if kind.endswith("*") else p
                     for p, kind in params)
    return (f'extern "C" void host_{name}(int threads, long long n, {decl}) {{\n'
            f"  blockDim.x = threads;\n"
            f"  for (long long i = 0; i < (n + threads - 1) / threads * threads; ++i) {{\n"
            f"    blockIdx.x = (unsigned)(i / threads); threadIdx.x = (unsigned)(i % threads);\n"
            f"    {name}({call});\n  }}\n}}\n")


def _storage(name: str) -> str:
    suffix = name.rsplit("_", 1)[1]
    return {s: storage for s, storage in cupy_lif.STORAGE.values()}[suffix]


def _kernels():
    for dtype in cupy_lif.STORAGE:
        yield cupy_lif.kernel_name("forward", dtype), cupy_lif.FORWARD_PARAMS
        yield cupy_lif.kernel_name("backward", dtype), cupy_lif.BACKWARD_PARAMS


def build(source: str, workdir: Path | None = None) -> ctypes.CDLL:
    """Compile ``source`` (the CUDA text) with the prelude and the launchers; no FMA
    contraction, like NVRTC's ``--fmad=false``."""
    text = PRELUDE + source + "".join(_launcher(n, p) for n, p in _kernels())
    workdir = Path(workdir or tempfile.mkdtemp(prefix="cuda_on_host_"))
    lib = workdir / f"lif_{hashlib.sha1(text.encode()).hexdigest()[:12]}.so"
    if not lib.exists():
        cpp = lib.with_suffix(".cpp")
        cpp.write_text(text)
        subprocess.run([compiler(), "-std=c++17", "-O1", "-ffp-contract=off", "-mf16c", "-shared",
                        "-fPIC", str(cpp), "-o", str(lib)], check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(lib))
    for name, params in _kernels():
        fn = getattr(so, f"host_{name}")
        fn.argtypes = [ctypes.c_int, ctypes.c_longlong] + [
            ctypes.c_void_p if kind.endswith("*") else C_TYPES[kind] for _, kind in params]
        fn.restype = None
    return so


def install(monkeypatch, so: ctypes.CDLL) -> None:
    """Make :func:`cupy_multistep` run ``so``'s kernels on CPU tensors: the same arguments,
    by the same parameter tables, as the CuPy launch."""

    def launch(name, n, args, x):
        params = cupy_lif.FORWARD_PARAMS if "forward" in name else cupy_lif.BACKWARD_PARAMS
        values = [args[p] or None if kind.endswith("*") else args[p] for p, kind in params]
        getattr(so, f"host_{name}")(cupy_lif.THREADS, n, *values)

    def require(x: torch.Tensor):
        assert x.device.type == "cpu"

    resolve = backends.resolve  # the dispatch would not send a CPU tensor to "cupy"

    monkeypatch.setattr(backends, "resolve", lambda backend, *a: ("cupy", None) if backend == "cupy"
                        else resolve(backend, *a))
    monkeypatch.setattr(cupy_lif, "_launch", launch)
    monkeypatch.setattr(cupy_lif, "_require_cuda", require)
