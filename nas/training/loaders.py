"""Batches that land on the training device: :class:`TensorLoader` over an in-memory uint8
tensor (small data sets, augmented on the device), :class:`StreamLoader` over image files
decoded in DataLoader workers (large folders; nas/training/jpeg_decode.py decodes on the
GPU instead), and mixup/cutmix for the ``strong`` augmentation."""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F


def _mix(x: torch.Tensor, y: torch.Tensor, num_classes: int, g: torch.Generator,
         cpu_g: torch.Generator, cutmix: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix with alpha 1 (lambda ~ Beta(1, 1) = U(0, 1)); returns soft targets."""
    lam = float(torch.rand((), generator=cpu_g))
    perm = torch.randperm(len(x), generator=g, device=x.device)
    if cutmix:
        h, w = x.shape[-2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(0, h, (), generator=cpu_g)), int(torch.randint(0, w, (), generator=cpu_g))
        y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * x[perm]
    one_hot = F.one_hot(y, num_classes).float()
    return x, lam * one_hot + (1 - lam) * one_hot[perm]


class TensorLoader:
    """Batches of an in-memory uint8 image tensor ``(N, C, H, W)`` living on its device.

    Training loaders reshuffle every epoch with a generator seeded by ``(seed, epoch)``
    (call :meth:`set_epoch` to pick the epoch, e.g. when resuming) and augment on the
    device; evaluation loaders keep the order and do not augment.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, mean, std,
                 num_classes: int, train: bool = False, augment: str = "none", flip: bool = True,
                 image_size: int | None = None, seed: int = 0):
        self.x, self.y = x, y
        self.batch_size, self.num_classes, self.train = batch_size, num_classes, train
        self.augment = augment if train else "none"
        self.flip, self.seed, self.epoch = flip, seed, 0
        self.image_size = image_size if image_size and image_size != x.shape[-1] else None
        self.pad = max(1, x.shape[-1] // 8)
        dev = x.device
        std_t = torch.tensor(std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1) / std_t
        self._randaugment = None
        if self.augment == "strong":
            from torchvision.transforms import v2
            self._randaugment = v2.RandAugment()

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b + (n % b > (1 if self.train else 0))  # training drops a last batch of 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, rank: int, world: int) -> None:
        """Keep this data-parallel worker's disjoint share of the examples."""
        self.x, self.y = self.x[rank::world], self.y[rank::world]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dev, n = self.x.device, len(self.x)
        g = torch.Generator(device=dev).manual_seed(self.seed * 100_003 + self.epoch)
        cpu_g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=g, device=dev) if self.train else None
        if self.train:
            self.epoch += 1  # a fresh shuffle next time unless set_epoch says otherwise
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[sl] if order is not None else sl
            x, y = self.x[idx], self.y[idx]
            if self.train and self.augment != "none":
                x, y = self._augment(x, y, g, cpu_g, i)
            else:
                x = self._finish(x.float())
            yield x, y

    def _augment(self, x, y, g, cpu_g, i):
        if self._randaugment is not None:  # one op per chunk of 32 images
            x = torch.cat([self._randaugment(c) for c in x.split(32)])
        x = x.float()
        b, c, h, w = x.shape
        p = self.pad
        padded = F.pad(x, (p, p, p, p))
        oy, ox = torch.randint(0, 2 * p + 1, (2, b, 1), generator=g, device=x.device)
        rows = (oy + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox + torch.arange(w, device=x.device))[:, None, None, :]
        x = padded[torch.arange(b, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
        if self.flip:
            flip = torch.rand(b, generator=g, device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        x = self._finish(x)
        if self._randaugment is not None:
            x, y = _mix(x, y, self.num_classes, g, cpu_g, cutmix=bool(i % 2))
        return x, y

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        """Resize (if asked) and normalise a float batch in 0..255."""
        if self.image_size:
            s = self.image_size
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                              antialias=s < x.shape[-1])
        return x * self._scale - self._shift


class StreamLoader:
    """A ``DataLoader`` over image files whose batches land on ``device`` (a subclass
    changes what the workers return, ``collate``, and how a batch becomes images,
    ``to_device``: nas/training/jpeg_decode.py)."""

    collate = None  # the DataLoader's default

    def __init__(self, dataset, cfg, device: torch.device, num_classes: int, train: bool):
        """``cfg``: the data's :class:`nas.recipe.DataConfig`."""
        self.dataset, self.device, self.num_classes, self.seed = dataset, device, num_classes, cfg.seed
        self.mix = train and cfg.augment == "strong"
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=cfg.batch_size, shuffle=train, drop_last=train and len(dataset) > cfg.batch_size,
            num_workers=cfg.num_workers, pin_memory=device.type == "cuda", generator=self.generator,
            persistent_workers=cfg.num_workers > 0, collate_fn=type(self).collate)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed * 100_003 + self.epoch)
        cpu_g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 1)
        g = torch.Generator(device=self.device).manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        for i, (x, y) in enumerate(self.loader):
            x, y = self.to_device(x), y.to(self.device, non_blocking=True)
            if self.mix:
                x, y = _mix(x, y, self.num_classes, g, cpu_g, cutmix=bool(i % 2))
            yield x, y


    def to_device(self, x) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)
