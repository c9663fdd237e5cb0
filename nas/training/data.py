"""Datasets for training and search: one config, one loader function.

``load_data(DataConfig(...), device)`` returns a :class:`Data` with ``train``, ``val`` and
``test`` iterables of ``(images, targets)`` batches plus metadata. Small image sets are
held whole as a uint8 tensor on ``device`` and batched by :class:`TensorLoader`, which
shuffles, augments, resizes and normalises on the device; large image folders (ImageNet)
stream through a regular ``DataLoader``. The validation split is always held out of the
training set; the test split is the official one (or ``None`` when there is none).

Targets are class indices, except with ``augment='strong'`` where training batches carry
soft targets ``(B, num_classes)`` from mixup/cutmix (``F.cross_entropy`` takes both).
"""
from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

SOURCES = ("cifar10", "cifar100", "imagenet", "imagefolder", "npz", "digits", "synthetic")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
SMALL_IMAGE_MAX_SIDE = 64  # folder images up to this size are decoded once and cached
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
OFFLINE_HINT = (
    "Offline, point the study at data you have: `--data imagefolder --data-root DIR` (DIR/"
    "train/<class>/*.png|jpg; the shipped cifar10-train-jpeg.tar.xz unpacks, with `tar -xJf "
    "cifar10-train-jpeg.tar.xz -C DIR`, to DIR/cifar10/train/<class>/*.jpg: `--data-root "
    "DIR/cifar10`), or `--data npz --data-root FILE.npz` (x_train, y_train ...); "
    "`--smoke-test` runs a study's tiny version on bundled data."
)


class DataError(ValueError):
    """Bad data configuration (unknown layout, missing root ...)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data files are not where the config says."""


class SyntheticSpec(BaseModel):
    """Shape of the synthetic data set (tests only)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    n_train: int = Field(512, ge=2)
    n_test: int = Field(128, ge=0)
    num_classes: int = Field(4, ge=2)
    channels: int = Field(3, ge=1)
    size: int = Field(16, ge=4)
    noise: float = Field(40.0, ge=0.0)  # std of the pixel noise, in 0..255 units


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Literal["cifar10", "cifar100", "imagenet", "imagefolder", "npz", "digits", "synthetic"]
    root: str | None = None
    download: bool = False
    image_size: int | None = Field(None, ge=4)  # resize target; None = native size
    subset: int | None = Field(None, ge=2)  # first N training examples (before the val split)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    augment: Literal["none", "simple", "strong"] = "simple"
    batch_size: int = Field(128, ge=1)
    num_workers: int = Field(0, ge=0)
    # large image folders (ImageNet): JPEG decoding by PIL in the workers (cpu) or batched on
    # the GPU (gpu: nas/training/jpeg_decode.py); auto: gpu when training on CUDA
    decode: Literal["auto", "cpu", "gpu"] = "auto"
    synthetic: SyntheticSpec = SyntheticSpec()


@dataclass
class Data:
    train: "TensorLoader | StreamLoader"
    val: "TensorLoader | StreamLoader | None"
    test: "TensorLoader | StreamLoader | None"
    num_classes: int
    in_channels: int
    image_size: int
    classes: list[str] | None
    sizes: dict[str, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class _Arrays:
    """A source's raw uint8 images, NHWC, and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: list[str] | None
    flip: bool = True  # horizontal flips are a valid augmentation


# ----------------------------------------------------------------------------- sources


def _cifar(cfg: DataConfig) -> _Arrays:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if cfg.name == "cifar10" else torchvision.datasets.CIFAR100
    root = Path(cfg.root or ".data").expanduser().resolve()
    folder = root / cls.base_folder
    created = [p for p in (root, *root.parents) if not p.exists()]  # what a download makes
    try:
        train = cls(str(root), train=True, download=cfg.download)
        test = cls(str(root), train=False, download=cfg.download)
    except Exception as exc:  # RuntimeError when absent, URLError & co. when offline
        for p in created:  # leave no empty folders behind (innermost first)
            try:
                p.rmdir()
            except OSError:
                break
        how = "downloading failed (it needs internet)" if cfg.download else (
            "pass --download to fetch it (needs internet)")
        raise DataNotFoundError(
            f"{cfg.name} not found in {folder} ({type(exc).__name__}: {exc}); {how}. "
            + OFFLINE_HINT) from None
    return _Arrays(train.data, np.asarray(train.targets), test.data, np.asarray(test.targets),
                   list(train.classes))


def _npz(cfg: DataConfig) -> _Arrays:
    if cfg.root is None:
        raise DataError("npz needs a root: the path of the .npz file")
    path = Path(cfg.root).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.npz"))
        if len(found) != 1:
            raise DataNotFoundError(f"expected exactly one .npz file in {path}, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise DataNotFoundError(f"npz file not found: {path}")
    with np.load(path) as f:
        missing = {"x_train", "y_train"} - set(f.files)
        if missing:
            raise DataError(f"{path} lacks {sorted(missing)}; it has {f.files}")
        get = lambda k: f[k] if k in f.files else None  # noqa: E731
        classes = get("classes")
        return _Arrays(_nhwc(f["x_train"]), f["y_train"].astype(np.int64), _nhwc(get("x_test")),
                       None if get("y_test") is None else f["y_test"].astype(np.int64),
                       None if classes is None else [str(c) for c in classes])


def _digits(cfg: DataConfig) -> _Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    # a fixed 20% test split, independent of cfg.seed, so scores stay comparable
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return _Arrays(x_tr, y_tr, x_te, y_te, [str(c) for c in d.target_names], flip=False)


def _synthetic(cfg: DataConfig) -> _Arrays:
    """Class-conditional images: a smooth per-class pattern plus pixel noise."""
    s = cfg.synthetic
    rng = np.random.default_rng(12345)  # the data set does not depend on cfg.seed
    coarse = torch.from_numpy(rng.uniform(30, 225, (s.num_classes, s.channels, 4, 4)))
    patterns = F.interpolate(coarse, size=(s.size, s.size), mode="bilinear").numpy()

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % s.num_classes
        rng.shuffle(y)
        x = patterns[y] + rng.normal(0, s.noise, (n, s.channels, s.size, s.size))
        return np.clip(x, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1), y.astype(np.int64)

    x_tr, y_tr = make(s.n_train)
    x_te, y_te = make(s.n_test) if s.n_test else (None, None)
    return _Arrays(x_tr, y_tr, x_te, y_te, [f"class{i}" for i in range(s.num_classes)])


def _nhwc(x: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return None
    if x.ndim == 3:  # grayscale N, H, W
        x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8:
        raise DataError(f"images must be uint8 (N, H, W, C); got {x.dtype} {x.shape}")
    return x


# ------------------------------------------------------------------------ image folders


def _folder_root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        raise DataError(f"{cfg.name} needs a root holding train/<class>/* (and optionally val/)")
    root = Path(cfg.root).expanduser().resolve()
    if not root.is_dir():
        raise DataNotFoundError(f"data root not found: {root}")
    if not (root / "train").is_dir():
        # accept the directory an archive was extracted into: DIR/cifar10/train
        inner = [p.parent for p in root.glob("*/train") if p.is_dir()]
        if len(inner) != 1:
            raise DataNotFoundError(f"no train/<class>/ directories under {root}")
        root = inner[0]
    return root


def _scan(split_dir: Path, classes: list[str] | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """Image files of ``split_dir/<class>/`` and their labels.

    Files are ordered by their integer stem when every stem is a unique integer (the CIFAR
    trees: the official order), else round-robin over classes, so "the first N" is mixed.
    """
    classes = classes or sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataNotFoundError(f"no class directories in {split_dir}")
    per_class = []
    for c in classes:
        d = split_dir / c
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if d.is_dir() else []
        per_class.append(files)
    pairs = [(p, i) for i, files in enumerate(per_class) for p in files]
    if not pairs:
        raise DataNotFoundError(f"no images in {split_dir}/<class>/")
    stems = [p.stem for p, _ in pairs]
    if all(s.isdigit() for s in stems) and len(set(stems)) == len(stems):
        pairs.sort(key=lambda pl: int(pl[0].stem))
    else:
        longest = max(len(f) for f in per_class)
        pairs = [(files[k], i) for k in range(longest) for i, files in enumerate(per_class) if k < len(files)]
    return [p for p, _ in pairs], np.array([label for _, label in pairs], dtype=np.int64), classes


def _decode_all(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    def one(p: Path) -> np.ndarray:
        with Image.open(p) as im:
            im = im.convert(mode)
            if im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).reshape(size[1], size[0], -1)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return np.stack(list(pool.map(one, paths, chunksize=256)))


def _cache_path(root: Path) -> Path:
    """Cache file keyed by the root path and the mtimes and sizes of its split and class dirs."""
    stamp = [str(root)]
    for split in ("train", "val"):
        d = root / split
        if d.is_dir():
            stamp += [f"{p.name}:{p.stat().st_mtime_ns}:{len(os.listdir(p))}"
                      for p in sorted([d, *d.iterdir()]) if p.is_dir()]
    key = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    name = f".spiking-mlp-nas-cache-{key}.npz"
    if os.access(root, os.W_OK):
        return root / name
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spiking-mlp-nas"
    return home / name


def _load_cache(cache: Path) -> _Arrays:
    with np.load(cache) as f:
        has_test = "x_test" in f.files
        return _Arrays(f["x_train"], f["y_train"], f["x_test"] if has_test else None,
                       f["y_test"] if has_test else None, [str(c) for c in f["classes"]])


def _folder_small(root: Path, cache: Path, paths: list[Path], y_tr: np.ndarray, classes: list[str],
                  mode: str, size: tuple[int, int]) -> _Arrays:
    arrays = dict(x_train=_decode_all(paths, mode, size), y_train=y_tr, classes=np.array(classes))
    if (root / "val").is_dir():
        paths, y_te, _ = _scan(root / "val", classes)
        arrays.update(x_test=_decode_all(paths, mode, size), y_test=y_te)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, cache)
    return _Arrays(arrays["x_train"], y_tr, arrays.get("x_test"), arrays.get("y_test"), classes)


class _FolderDataset(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], labels: np.ndarray, transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB")), int(self.labels[i])


def _folder_stream(cfg: DataConfig, root: Path, device: torch.device) -> Data:
    from torchvision.transforms import v2

    size = cfg.image_size or 224
    paths, y, classes = _scan(root / "train")
    if cfg.subset:
        paths, y = paths[: cfg.subset], y[: cfg.subset]
    tr, va = split_indices(y, cfg.val_fraction, cfg.seed)
    finish = [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train_tf = [v2.RandomResizedCrop(size, antialias=True)]
    if cfg.augment != "none":
        train_tf.append(v2.RandomHorizontalFlip())
    if cfg.augment == "strong":
        train_tf.append(v2.RandAugment())
    eval_tf = v2.Compose([v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size), *finish])
    train_tf = v2.Compose([*train_tf, *finish])

    decode = cfg.decode if cfg.decode != "auto" else ("gpu" if device.type == "cuda" else "cpu")
    if decode == "gpu" and not torch.cuda.is_available():
        raise DataError("decode: gpu needs a CUDA device and there is none; allowed here: auto, cpu")

    def stream(files, labels, tf, train: bool) -> StreamLoader:
        if decode == "gpu":
            from .jpeg_decode import DeviceJpegLoader

            return DeviceJpegLoader(files, labels, cfg, device, len(classes), train, size,
                                    IMAGENET_MEAN, IMAGENET_STD)
        return StreamLoader(_FolderDataset(files, labels, tf), cfg, device, len(classes), train=train)

    def loader(idx, tf, train: bool) -> StreamLoader:
        return stream([paths[i] for i in idx], y[idx], tf, train)

    test = None
    if (root / "val").is_dir():
        tpaths, ty, _ = _scan(root / "val", classes)
        test = stream(tpaths, ty, eval_tf, False)
    return Data(train=loader(tr, train_tf, True), val=loader(va, eval_tf, False) if len(va) else None,
                test=test, num_classes=len(classes), in_channels=3, image_size=size, classes=classes,
                sizes=dict(train=len(tr), val=len(va), test=len(test.dataset) if test else 0),
                mean=IMAGENET_MEAN, std=IMAGENET_STD)


# ----------------------------------------------------------------------------- loaders


def split_indices(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified seeded split of ``range(len(y))`` into (train, val) index arrays, sorted."""
    if fraction <= 0:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(len(idx) - 1, int(round(fraction * len(idx))))
        val.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(val)).astype(np.int64)
    return np.setdiff1d(np.arange(len(y)), val), val


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

    def __init__(self, dataset, cfg: DataConfig, device: torch.device, num_classes: int, train: bool):
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


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 ``(N, C, H, W)`` tensor, in 0..1 units."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    total_sq = torch.zeros_like(total)
    for chunk in x.split(4096):
        c = chunk.to(torch.float64) / 255.0
        total += c.sum(dim=(0, 2, 3))
        total_sq += (c * c).sum(dim=(0, 2, 3))
    count = x.numel() / x.shape[1]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(max(s, 1e-3) for s in std.tolist())


def load_data(cfg: DataConfig | dict, device: str | torch.device = "cpu") -> Data:
    """Load the data set that ``cfg`` names; batches come out on ``device``."""
    cfg = DataConfig.model_validate(cfg)
    device = torch.device(device)
    if cfg.name in ("imagefolder", "imagenet"):
        root = _folder_root(cfg)
        cache = _cache_path(root)
        if cache.is_file():  # decoded before: no image is opened
            arrays = _load_cache(cache)
        else:
            paths, y_tr, classes = _scan(root / "train")
            with Image.open(paths[0]) as im:
                mode, size = ("L" if im.mode in ("L", "1") else "RGB"), im.size
            if max(size) > SMALL_IMAGE_MAX_SIDE:
                return _folder_stream(cfg, root, device)
            arrays = _folder_small(root, cache, paths, y_tr, classes, mode, size)
    else:
        arrays = {"cifar10": _cifar, "cifar100": _cifar, "npz": _npz, "digits": _digits,
                  "synthetic": _synthetic}[cfg.name](cfg)

    x, y = arrays.x_train, arrays.y_train
    if cfg.subset:
        x, y = x[: cfg.subset], y[: cfg.subset]
    tr, va = split_indices(y, cfg.val_fraction, cfg.seed)
    labels = [y] + ([arrays.y_test] if arrays.y_test is not None else [])
    num_classes = len(arrays.classes) if arrays.classes else int(max(v.max() for v in labels)) + 1

    def tensors(xs: np.ndarray, ys: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        xt = torch.from_numpy(np.ascontiguousarray(xs)).permute(0, 3, 1, 2).contiguous()
        return xt.to(device), torch.from_numpy(np.asarray(ys, dtype=np.int64)).to(device)

    x_tr, y_tr = tensors(x[tr], y[tr])
    mean, std = _channel_stats(x_tr)
    common = dict(batch_size=cfg.batch_size, mean=mean, std=std, num_classes=num_classes,
                  image_size=cfg.image_size, seed=cfg.seed)
    train = TensorLoader(x_tr, y_tr, train=True, augment=cfg.augment, flip=arrays.flip, **common)
    val = TensorLoader(*tensors(x[va], y[va]), **common) if len(va) else None
    test = None
    if arrays.x_test is not None and len(arrays.x_test):
        test = TensorLoader(*tensors(arrays.x_test, arrays.y_test), **common)
    return Data(train=train, val=val, test=test, num_classes=num_classes, in_channels=x.shape[-1],
                image_size=cfg.image_size or x.shape[1], classes=arrays.classes,
                sizes=dict(train=len(tr), val=len(va), test=len(test.x) if test else 0),
                mean=mean, std=std)
