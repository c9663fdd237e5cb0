"""Training images/s: the naive implementation against our levers, one at a time.

    python benchmarks/train_step.py                          # CUDA, cifar_ablation_c60, T 4
    python benchmarks/train_step.py --batch-sizes 128,512 --variants naive,data,triton,compile
    python benchmarks/train_step.py --device cpu --arch tiny --steps 3 --batch-sizes 32

``naive`` is the way the paper's code trains: spikingjelly 2.0 neurons in eager PyTorch,
fp32, images in host memory augmented per sample (pad-4 crop + flip) by a standard
``DataLoader`` with worker processes and copied to the device each step. Each further
variant adds one lever on top of the previous one:

    data     the whole training set as a uint8 tensor on the device, crop/flip per batch there
             (nas.training.data.TensorLoader, what nas.train uses)
    triton   our fused multi-step LIF kernel (backend ``triton``; on CPU ``torch``)
    compile  torch.compile of the model
    bf16     bf16 autocast

Every variant runs the same SGD step (loss on the time-averaged logits) on the same random
uint8 images; the table gives images/s and the ratio to ``naive`` in the same run.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import blocks
from nas.training.data import TensorLoader
from timing import Results, device_name, items_per_second, sgd_step

LEVERS = ("naive", "data", "triton", "compile", "bf16")
MEAN, STD = (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)


class HostImages(Dataset):
    """uint8 images in host memory, augmented one at a time (the standard pipeline)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self.mean = torch.tensor(MEAN).view(-1, 1, 1)
        self.std = torch.tensor(STD).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = F.pad(self.x[i].float(), (4, 4, 4, 4))
        oy, ox = torch.randint(0, 9, (2,)).tolist()
        img = img[:, oy:oy + self.x.shape[-2], ox:ox + self.x.shape[-1]]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        return (img - self.mean) / self.std, self.y[i]


def batches(variant_levers: set[str], x, y, batch: int, device: torch.device, workers: int):
    """An endless stream of (images, labels) on ``device`` for the variant's pipeline."""
    if "data" in variant_levers:
        loader = TensorLoader(x.to(device), y.to(device), batch_size=batch, mean=MEAN, std=STD,
                              num_classes=10, train=True, augment="simple")
    else:
        loader = DataLoader(HostImages(x, y), batch_size=batch, shuffle=True, drop_last=True,
                            num_workers=workers, pin_memory=device.type == "cuda",
                            persistent_workers=workers > 0)
    while True:
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def measure(levers: set[str], cfg, device, batch, steps, warmup, workers, images) -> float:
    fast = "triton" if device.type == "cuda" else "torch"
    cfg = blocks.with_neuron_backend(cfg, fast if "triton" in levers else "spikingjelly")
    torch.manual_seed(0)
    model = blocks.build(cfg).to(device)
    step_model = torch.compile(model) if "compile" in levers else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randint(0, 256, (max(images, batch * 2), cfg.in_channels, cfg.image_size, cfg.image_size),
                      dtype=torch.uint8)
    y = torch.randint(0, cfg.num_classes, (len(x),))
    stream = batches(levers, x, y, batch, device, workers)
    step = sgd_step(step_model, opt, stream, device, torch.bfloat16 if "bf16" in levers else None)
    return items_per_second(step, batch, steps, warmup, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="cifar_ablation_c60")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--batch-sizes", default="128,512")
    ap.add_argument("--variants", default=",".join(LEVERS),
                    help=f"cumulative levers, in order; allowed: {', '.join(LEVERS)}")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps (compilation happens here)")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the naive pipeline")
    ap.add_argument("--images", type=int, default=10_000, help="size of the random uint8 dataset")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in LEVERS]
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(LEVERS)}")
    device = torch.device(args.device)
    cfg = blocks.load_config(args.arch, T=args.T)
    params = blocks.count_parameters(blocks.build(cfg)) / 1e6
    name = device_name(device)
    print(f"{cfg.name}: {params:.2f}M params, T={cfg.T}, {cfg.image_size}x{cfg.image_size}, {name}")
    print(f"{'variant':<34}{'batch':>6}{'images/s':>11}{'vs naive':>10}")
    results = Results("train_step", device, arch=cfg.name, T=cfg.T)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        base = None
        for variant in variants:
            levers = set(LEVERS[1: LEVERS.index(variant) + 1])  # cumulative, naive adds none
            label = "+".join(lv for lv in LEVERS if lv in levers) or "naive"
            if device.type != "cuda":
                label = label.replace("triton", "torch")  # the fused kernel needs CUDA
            try:
                ips = measure(levers, cfg, device, batch, args.steps, args.warmup, args.workers, args.images)
            except RuntimeError as err:
                print(f"{label:<34}{batch:>6}{'n/a':>11}  ({str(err).splitlines()[0][:60]})")
                results.add(variant=label, batch=batch, images_per_s=None, why_not=str(err).splitlines()[0])
                continue
            base = base or (ips if variant == "naive" else None)
            ratio = f"{ips / base:>9.2f}x" if base else f"{'':>10}"
            print(f"{label:<34}{batch:>6}{ips:>11.1f}{ratio}")
            results.add(variant=label, batch=batch, images_per_s=ips, vs_naive=ips / base if base else None)
    results.write(args.json)


if __name__ == "__main__":
    main()
