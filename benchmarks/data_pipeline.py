"""Images/s of the ImageNet input pipeline (the training transform at 224) per path.

    python benchmarks/data_pipeline.py                    # CPU path, 1 and 2 workers (< 1 min)
    python benchmarks/data_pipeline.py --images 512 --workers 1,2,4,8 --json out.json

A temporary image folder of ``--images`` JPEGs at ImageNet's typical size (500 x 375,
quality 95, grain added so that files are about 100 KB like ImageNet's; made from the
CIFAR-10 JPEG tree upscaled, or smooth random images when it is absent) is read through ``nas.training.data.load_data(imagefolder, image_size=224)``'s training
loader: RandomResizedCrop + flip + normalise. Rows:

- ``cpu``: PIL decode and transform in the DataLoader workers (``decode: cpu``), per worker
  count; per core = images/s / workers (the main process only collates);
- ``batched-cpu``: the ``decode: gpu`` code (nas/training/jpeg_decode.py) run on the CPU: workers read
  bytes, the main process decodes and transforms the batch (one core does the work);
- ``gpu``: the same on CUDA with nvJPEG, when there is a GPU.

Each row iterates one epoch to warm up (worker start, caches) and times the next.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import Results, sync  # noqa: E402
from nas.recipe import DataConfig  # noqa: E402
from nas.training.data import load_data  # noqa: E402

CIFAR = Path(__file__).resolve().parents[2] / "data" / "cifar10" / "train"
SIZE = (500, 375)
GRAIN = 8.0  # std of the added noise, grey levels


def make_folder(root: Path, n: int, source: Path) -> str:
    """``n`` JPEGs in ``root/train/<class>/``, 500 x 375; returns where they came from."""
    files = sorted(source.rglob("*.jpg"))[:: max(1, 50_000 // max(n, 1))][:n] if source.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / "train" / f"c{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        if i < len(files):
            with Image.open(files[i]) as im:
                img = im.convert("RGB").resize(SIZE, Image.BICUBIC)
        else:
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize(SIZE, Image.BICUBIC)
        # grain, so that a file is about as large (as slow to decode) as an ImageNet photo's
        grain = np.asarray(img, dtype=np.float32) + rng.normal(0, GRAIN, (SIZE[1], SIZE[0], 3))
        Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).save(d / f"{i}.jpg", quality=95)
    kb = sum(p.stat().st_size for p in root.rglob("*.jpg")) / n / 1024
    return (f"{len(files)} CIFAR-10 JPEGs upscaled" if files else "smooth random images") + \
        f" with grain, quality 95, {kb:.0f} KB each on average"


def rate(root: Path, decode: str, workers: int, batch: int, device: str) -> tuple[float, int]:
    cfg = DataConfig(name="imagefolder", root=str(root), image_size=224, val_fraction=0.0,
                     batch_size=batch, num_workers=workers, decode=decode)
    loader = load_data(cfg, device).train
    for _ in loader:  # warm-up epoch
        pass
    sync(torch.device(device))
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += len(x)
    sync(torch.device(device))
    return seen / (time.perf_counter() - start), seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--workers", default="1,2", help="DataLoader worker counts of the cpu rows")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--source", default=str(CIFAR), help="a JPEG tree to take images from")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the main process: collate / the batched path's one core
    results = Results("data_pipeline", torch.device("cpu"), images=args.images, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        made = make_folder(Path(tmp), args.images, Path(args.source))
        print(f"{args.images} JPEGs {SIZE[0]}x{SIZE[1]} ({made}); training transform at 224, "
              f"batch {args.batch_size}")
        print(f"{'path':<13}{'device':<8}{'workers':>8}{'images/s':>10}{'per core':>10}")
        rows = [("cpu", "cpu", int(w)) for w in args.workers.split(",")] + [("batched-cpu", "cpu", 1)]
        if torch.cuda.is_available():
            rows.append(("gpu", "cuda", 1))
        for path, device, workers in rows:
            decode = "cpu" if path == "cpu" else "gpu"
            has_cuda = torch.cuda.is_available
            if path == "batched-cpu":  # the gpu path's code on the CPU: build it as on a GPU machine
                torch.cuda.is_available = lambda: True  # noqa: E731
            try:
                ips, _ = rate(Path(tmp), decode, workers, args.batch_size, device)
            finally:
                torch.cuda.is_available = has_cuda
            cores = workers if path == "cpu" else 1
            print(f"{path:<13}{device:<8}{workers:>8}{ips:>10.1f}{ips / cores:>10.1f}")
            results.add(path=path, device=device, workers=workers, images_per_s=ips,
                        images_per_s_per_core=ips / cores)
    results.write(args.json)


if __name__ == "__main__":
    main()
