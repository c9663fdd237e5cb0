"""Batched JPEG decoding on the GPU for streamed image folders (ImageNet): ``decode: gpu``.

The CPU path (nas.training.loaders' ``StreamLoader``) decodes with PIL and transforms each image in
the DataLoader workers. Here the workers only read each file's bytes; the main process
decodes a whole batch with nvJPEG (``torchvision.io.decode_jpeg(device="cuda")``), then
crops, resizes, flips and normalises every image on the device. The maths is the CPU
path's: the same RandomResizedCrop boxes (scale 0.08-1, ratio 3/4-4/3, torchvision's
sampler), antialiased bilinear resizing, evaluation by a resize to size / 0.875 and a
centre crop. Files nvJPEG cannot read (a PNG named .JPEG, CMYK) are decoded on the CPU.

``decode: auto`` (the default) is ``gpu`` when the training device is CUDA, else ``cpu``.
Any device works here (the tests run it on the CPU to compare it with the PIL path).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from .loaders import StreamLoader

SCALE, RATIO, EVAL_CROP = (0.08, 1.0), (3 / 4, 4 / 3), 0.875
# torchvision 0.29 announces that TorchCodec will take over its image decoders; they are
# what this install has (torchcodec is not a dependency), so the notice is not repeated
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


class FileBytes(torch.utils.data.Dataset):
    """``(the file's bytes, label)``: all a worker does. Plain ``bytes`` travel through the
    worker's pipe; a tensor each would cost a shared-memory file descriptor each."""

    def __init__(self, paths: list[Path], labels: np.ndarray):
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return Path(self.paths[i]).read_bytes(), int(self.labels[i])


def _collate(items):
    return [b for b, _ in items], torch.tensor([label for _, label in items])


def as_tensors(data: list[bytes]) -> list[torch.Tensor]:
    return [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]


def decode_batch(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """RGB ``(3, H, W)`` uint8 images on ``device``: one batched decode, the odd file alone."""
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        out = []
        for d in data:
            try:
                out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                out.append(decode_image(d, mode=ImageReadMode.RGB).to(device))
        return out


def train_view(img: torch.Tensor, size: int, flip: bool) -> torch.Tensor:
    """A random resized crop (torchvision's box sampler, global RNG) and an optional flip."""
    top, left, h, w = RandomResizedCrop.get_params(img, SCALE, RATIO)
    out = TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)
    return out.flip(-1) if flip else out


def eval_view(img: torch.Tensor, size: int) -> torch.Tensor:
    return TF.center_crop(TF.resize(img, round(size / EVAL_CROP), antialias=True), [size, size])


class DeviceJpegLoader(StreamLoader):
    """Batches of an image folder decoded and transformed on ``device``."""

    collate = staticmethod(_collate)

    def __init__(self, paths: list[Path], labels: np.ndarray, cfg, device: torch.device,
                 num_classes: int, train: bool, size: int, mean, std):
        super().__init__(FileBytes(paths, labels), cfg, device, num_classes, train)
        self.train, self.size, self.augment = train, size, cfg.augment if train else "none"
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255
        self._randaugment = None
        if self.augment == "strong":
            from torchvision.transforms import v2
            self._randaugment = v2.RandAugment()

    def images(self, data: list[bytes]) -> torch.Tensor:
        """Decoded and transformed, before normalisation: ``(B, 3, size, size)`` uint8."""
        imgs = decode_batch(as_tensors(data), self.device)
        if not self.train:
            return torch.stack([eval_view(im, self.size) for im in imgs])
        flips = torch.rand(len(imgs)) < 0.5 if self.augment != "none" else torch.zeros(len(imgs), dtype=torch.bool)
        out = torch.stack([train_view(im, self.size, bool(f)) for im, f in zip(imgs, flips)])
        return self._randaugment(out) if self._randaugment is not None else out

    def to_device(self, data: list[bytes]) -> torch.Tensor:
        return (self.images(data).float() - self.mean) / self.std
