"""Multi-step LIF forward + backward: time and memory bandwidth per neuron backend.

    python benchmarks/lif_kernel.py                      # CUDA: T 4 and 8, fp32 and bf16
    python benchmarks/lif_kernel.py --device cpu --neurons 1000000 --reps 3

Bytes a fused kernel must move, per neuron and time step, with ``b`` the input's bytes
per element (4 fp32, 2 bf16) and the membrane ``h`` kept in fp32 for the backward pass:

    forward   read x (b)  + write spikes (b) + write h (4)        = 2b + 4
    backward  read dL/ds (b) + read h (4) + write dL/dx (b)       = 2b + 4

so ``T x N x (4b + 8)`` bytes for one forward and backward (fp32: 24 B, bf16: 16 B per
neuron-step). The table divides those bytes by the measured time, whatever the backend
really moves (an unfused backend moves more, so its figure is an effective bandwidth),
and gives the share of the device's peak (``--peak-gbs``, or a known GPU's datasheet).

``spikingjelly`` rows with 16-bit inputs include a cast to fp32 and back: our backend
feeds spikingjelly fp32 (its own fp16/bf16 path is its slow torch one, with a 16-bit
membrane). A backend that cannot run here prints ``n/a`` and why. ``--json PATH`` also
writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import time

import torch

from blocks.neurons import LIF
from timing import Results, device_name, sync, unavailable

# datasheet peak memory bandwidth, GB/s
PEAK_GBS = {"H100 SXM": 3350.0, "H100 NVL": 3900.0, "H100 PCIe": 2000.0, "H100": 3350.0,
            "H200": 4800.0, "A100-SXM4-80GB": 2039.0, "A100": 1555.0}


def peak_bandwidth(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, gbs in PEAK_GBS.items():  # most specific first
        if key in name:
            return gbs
    return None


def bytes_moved(T: int, n: int, dtype: torch.dtype) -> int:
    b = torch.tensor([], dtype=dtype).element_size()
    return T * n * (4 * b + 8)


def time_fwd_bwd(backend: str, T: int, n: int, dtype: torch.dtype, device: torch.device,
                 reps: int, warmup: int) -> float:
    """Median seconds of one forward + backward over ``reps``."""
    neuron = LIF(backend=backend)
    x = (torch.randn(T, n, device=device) * 1.5).to(dtype).requires_grad_()
    g = torch.randn(T, n, device=device).to(dtype)
    times = []
    for i in range(warmup + reps):
        sync(device)
        start = time.perf_counter()
        neuron(x).backward(g)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        x.grad = None
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--neurons", type=int, default=128 * 60 * 32 * 32,
                    help="neurons per time step (default: a C=60 32x32 layer at batch 128)")
    ap.add_argument("--T", default="4,8")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--backends", default="torch,spikingjelly,cupy,triton")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-gbs", type=float, help="the device's peak memory bandwidth, GB/s")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    device = torch.device(args.device)
    peak = args.peak_gbs or peak_bandwidth(device)
    name = device_name(device)
    print(f"multi-step LIF forward+backward, {args.neurons:,} neurons/step, {name}"
          f"{f', peak {peak:.0f} GB/s' if peak else ''}")
    results = Results("lif_kernel", device, neurons=args.neurons, peak_gbs=peak)
    print(f"{'backend':<14}{'T':>3}{'dtype':>10}{'ms':>10}{'GB/s':>9}{'% peak':>8}{'vs torch':>10}")
    for T in (int(t) for t in args.T.split(",")):
        for dtype in (getattr(torch, d) for d in args.dtypes.split(",")):
            base = None
            for backend in args.backends.split(","):
                dtype_name = str(dtype).removeprefix('torch.')
                label = f"{backend:<14}{T:>3}{dtype_name:>10}"
                row = dict(backend=backend, T=T, dtype=dtype_name)
                why = unavailable(backend, device, dtype)
                try:
                    if why:
                        raise RuntimeError(why)
                    sec = time_fwd_bwd(backend, T, args.neurons, dtype, device, args.reps, args.warmup)
                except RuntimeError as err:
                    print(f"{label}{'n/a':>10}  ({str(err).splitlines()[0][:60]})")
                    results.add(**row, ms=None, why_not=str(err).splitlines()[0])
                    continue
                gbs = bytes_moved(T, args.neurons, dtype) / sec / 1e9
                base = base or (sec if backend == "torch" else None)
                share = f"{100 * gbs / peak:>7.0f}%" if peak else f"{'':>8}"
                ratio = f"{base / sec:>9.1f}x" if base else f"{'':>10}"
                print(f"{label}{sec * 1e3:>10.2f}{gbs:>9.1f}{share}{ratio}")
                results.add(**row, ms=sec * 1e3, gbs=gbs, peak_share=gbs / peak if peak else None,
                            vs_torch=base / sec if base else None)
    if "spikingjelly" in args.backends and any(d != "float32" for d in args.dtypes.split(",")):
        print("spikingjelly with 16-bit inputs: cast to fp32 for its kernel, spikes cast back")
    results.write(args.json)


if __name__ == "__main__":
    main()
