"""Throughput of a whole search: several trials sharing one GPU against one trial alone.

    python benchmarks/trial_packing.py                         # CUDA: 1, 2, 4, 8 trials per GPU
    python benchmarks/trial_packing.py --device cpu --arch tiny --packings 1,2 --steps 5

Starts a local Ray and runs K concurrent Ray tasks, each holding 1/K of the GPU (Ray's
fractional ``num_gpus``, exactly what a study's ``resources: {gpu: 1/K}`` asks for), each
training its own model for the same number of SGD steps on device-resident data. The
table gives the total images/s across the K trials, the per-trial images/s and the ratio
to one trial alone; the best total is the packing to use for models of that size.
"""
from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import ray
import torch

import blocks
from timing import Results, device_name


def train_steps(arch: str, T: int, backend: str, batch: int, steps: int, warmup: int,
                device: str, start_at: float) -> tuple[float, float, float]:
    """One trial's SGD steps (in a Ray worker); returns (start, end, images) of the timed part."""
    from nas.training.data import TensorLoader
    from timing import sgd_step, sync

    dev = torch.device(device)
    cfg = blocks.with_neuron_backend(blocks.load_config(arch, T=T), backend)
    model = blocks.build(cfg).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randint(0, 256, (batch * 8, cfg.in_channels, cfg.image_size, cfg.image_size),
                      dtype=torch.uint8, device=dev)
    y = torch.randint(0, cfg.num_classes, (len(x),), device=dev)
    loader = TensorLoader(x, y, batch_size=batch, mean=(128.0,) * 3, std=(64.0,) * 3,
                          num_classes=cfg.num_classes, train=True, augment="simple")
    step = sgd_step(model, opt, itertools.chain.from_iterable(itertools.repeat(loader)), dev)
    for _ in range(warmup):
        step()
    sync(dev)
    time.sleep(max(0.0, start_at - time.time()))  # every trial starts timing together
    start = time.time()
    for _ in range(steps):
        step()
    sync(dev)
    return start, time.time(), float(batch * steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="cifar_ablation_c60")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--backend", default=None, help="neuron backend (default: triton on CUDA, torch on CPU)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--packings", default="1,2,4,8", help="trials per device to try")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="seconds allowed for every trial to build and warm up before timing")
    args = ap.parse_args()
    device = torch.device(args.device)
    backend = args.backend or ("triton" if device.type == "cuda" else "torch")
    cpus = max(1, (torch.get_num_threads() if device.type == "cpu" else 1))
    here = Path(__file__).resolve().parent  # workers import blocks, nas and timing like this script
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=max(8, cpus), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    print(f"{args.arch}, T={args.T}, batch {args.batch_size}, backend {backend}, {device_name(device)}")
    print(f"{'trials':>7}{'total images/s':>16}{'per trial':>11}{'vs 1 trial':>12}")
    results = Results("trial_packing", device, arch=args.arch, T=args.T, batch=args.batch_size,
                      backend=backend)
    alone = None
    for k in (int(p) for p in args.packings.split(",")):
        res = {"num_gpus": 1.0 / k} if device.type == "cuda" else {"num_cpus": cpus / k}
        task = ray.remote(**res)(train_steps)
        start_at = time.time() + args.settle
        runs = ray.get([task.remote(args.arch, args.T, backend, args.batch_size, args.steps,
                                    args.warmup, args.device, start_at) for _ in range(k)])
        span = max(e for _, e, _ in runs) - min(s for s, _, _ in runs)
        total = sum(n for _, _, n in runs) / span
        alone = alone or (total if k == 1 else None)
        ratio = f"{total / alone:>11.2f}x" if alone else f"{'':>12}"
        print(f"{k:>7}{total:>16.1f}{total / k:>11.1f}{ratio}")
        results.add(trials=k, images_per_s=total, per_trial=total / k,
                    vs_one=total / alone if alone else None)
    ray.shutdown()
    results.write(args.json)


if __name__ == "__main__":
    main()
