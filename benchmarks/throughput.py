"""Training throughput (images/s) of one architecture per neuron backend.

    python benchmarks/throughput.py --arch cifar_ablation_c60 --batch-size 128 --T 4
    python benchmarks/throughput.py --arch tiny --device cpu --steps 5

Times full SGD steps (forward, loss on the time-averaged logits, backward, update) on
random images after warm-up steps, and prints one row per backend.
"""
from __future__ import annotations

import argparse
import itertools

import torch

import blocks
from timing import Results, device_name, items_per_second, sgd_step, unavailable


def measure(cfg, device, batch, steps, warmup, amp) -> float:
    model = blocks.build(cfg).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=device)
    y = torch.randint(0, cfg.num_classes, (batch,), device=device)
    amp_dtype = (torch.bfloat16 if device.type == "cpu" else torch.float16) if amp else None
    step = sgd_step(model, opt, itertools.repeat((x, y)), device, amp_dtype)
    return items_per_second(step, batch, steps, warmup, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="cifar_ablation_c60")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--backends", default="torch,spikingjelly,cupy,triton")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", action="store_true", help="autocast (fp16 on CUDA, bf16 on CPU)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    device = torch.device(args.device)
    over = {"T": args.T} | ({"image_size": args.image_size} if args.image_size else {})
    cfg = blocks.load_config(args.arch, **over)
    params = blocks.count_parameters(blocks.build(cfg)) / 1e6
    name = device_name(device)
    print(f"{cfg.name}: {params:.2f}M params, T={cfg.T}, {cfg.image_size}x{cfg.image_size}, "
          f"batch {args.batch_size}, {'AMP' if args.amp else 'fp32'}, {name}")
    print(f"{'backend':<14}{'images/s':>12}{'ms/step':>10}")
    results = Results("throughput", device, arch=cfg.name, T=cfg.T, batch=args.batch_size, amp=args.amp)
    for backend in args.backends.split(","):
        try:
            if unavailable(backend, device):
                raise RuntimeError(unavailable(backend, device))
            ips = measure(blocks.with_neuron_backend(cfg, backend), device, args.batch_size, args.steps,
                          args.warmup, args.amp)
            print(f"{backend:<14}{ips:>12.1f}{1000 * args.batch_size / ips:>10.1f}")
            results.add(backend=backend, images_per_s=ips)
        except RuntimeError as err:
            print(f"{backend:<14}{'n/a':>12}  ({str(err).splitlines()[0][:70]})")
            results.add(backend=backend, images_per_s=None, why_not=str(err).splitlines()[0])
    results.write(args.json)


if __name__ == "__main__":
    main()
