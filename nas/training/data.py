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
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from blocks.config import one_line
from blocks.errors import NasError

from ..cache import cache_dir
from ..recipe import DataConfig
from .loaders import StreamLoader, TensorLoader

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
SMALL_IMAGE_MAX_SIDE = 64  # folder images up to this size are decoded once and cached
MAX_IMAGE_PIXELS = 50_000_000  # a larger image in a data folder is refused (a decompression bomb)
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "classes")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
OFFLINE_HINT = (
    "Offline, point the study at data you have: `--data imagefolder --data-root DIR` (DIR/"
    "train/<class>/*.png|jpg; the shipped cifar10-train-jpeg.tar.xz unpacks, with `tar -xJf "
    "cifar10-train-jpeg.tar.xz -C DIR`, to DIR/cifar10/train/<class>/*.jpg: `--data-root "
    "DIR/cifar10`), or `--data npz --data-root FILE.npz` (x_train, y_train ...); "
    "`--smoke-test` runs a study's tiny version on bundled data."
)


class DataError(NasError):
    """Bad data configuration (unknown layout, missing root ...)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data files are not where the config says."""


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
    f = _read_npz(path)
    missing = {"x_train", "y_train"} - set(f)
    if missing:
        raise DataError(f"{path}: lacks {sorted(missing)}; it has {sorted(f)}; allowed: "
                        f"{', '.join(NPZ_ARRAYS)} (x_train and y_train required)")
    classes = f.get("classes")
    return _Arrays(f["x_train"], f["y_train"], f.get("x_test"), f.get("y_test"),
                   None if classes is None else [str(c) for c in np.ravel(classes)])


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (no pickled objects); one DataError line if it is not one."""
    def refuse(why: str) -> DataError:
        return DataError(f"{path}: not an .npz of arrays ({why}); allowed: a file written by "
                         f"numpy.savez holding {', '.join(NPZ_ARRAYS)} (x_train and y_train required)")

    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise refuse(one_line(err)) from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise refuse(f"a single {type(f).__name__}, not named arrays")
    with f:
        unknown = sorted(set(f.files) - set(NPZ_ARRAYS))
        if unknown:
            raise DataError(f"{path}: unknown arrays {unknown}; allowed: {', '.join(NPZ_ARRAYS)}")
        out = {}
        for key in f.files:
            try:
                out[key] = f[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
                raise refuse(f"{key}: {one_line(err)}") from None
    return out


def _digits(cfg: DataConfig) -> _Arrays:
    """scikit-learn's bundled digits with a fixed 20% test split. Its arrays are kept in our
    cache folder per scikit-learn version: importing scikit-learn takes over a second of
    every trial process that loads them."""
    cache = cache_dir("data") / f"digits-sklearn-{metadata.version('scikit-learn')}.npz"
    cached = _load_cache(cache) if cache.is_file() else None
    if cached is not None:
        cached.flip = False
        return cached
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    # a fixed 20% test split, independent of cfg.seed, so scores stay comparable
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    arrays = _Arrays(x_tr, y_tr, x_te, y_te, [str(c) for c in d.target_names], flip=False)
    try:
        _save_cache(cache, arrays)
    except OSError:  # no cache folder to write: the next process imports scikit-learn again
        pass
    return arrays


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


def _images(x: np.ndarray, where: str, field: str) -> np.ndarray:
    """``x`` as uint8 (N, H, W, C) (grayscale (N, H, W) gets its C); channels first, e.g.
    (N, 3, 32, 32), is refused rather than read as 32-channel images of 3 x 32."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    first = x.ndim == 4 and x.shape[1] in (1, 3, 4) and x.shape[-1] > 4
    if x.ndim != 4 or x.dtype != np.uint8 or 0 in x.shape[1:] or first:
        hint = " (channels first? transpose to (N, H, W, C))" if first else ""
        raise DataError(f"{where}: {field}: images of {x.dtype} {x.shape}{hint}; allowed: uint8 "
                        "(N, H, W, C) or (N, H, W)")
    return x


def _labels(y: np.ndarray, count: int, where: str, field: str) -> np.ndarray:
    """``y`` as int64 class indices, one per image."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        hint = " (one-hot? store the class indices, e.g. argmax)" if y.ndim == 2 else ""
        raise DataError(f"{where}: {field}: labels of {y.dtype} {y.shape}{hint}; allowed: integer "
                        "class indices, shape (N,)")
    if len(y) != count:
        raise DataError(f"{where}: {field}: {len(y)} labels for {count} images; allowed: one label "
                        "per image")
    return y.astype(np.int64)


def _checked(a: _Arrays, where: str) -> _Arrays:
    """A source's arrays, refused (one DataError line) where they would train silently
    wrong: shapes, dtypes, one label per image, labels in range, at least two classes."""
    x_train = _images(a.x_train, where, "x_train")
    y_train = _labels(a.y_train, len(x_train), where, "y_train")
    if (a.x_test is None) != (a.y_test is None):
        raise DataError(f"{where}: {'y_test' if a.x_test is not None else 'x_test'}: missing; "
                        "allowed: x_test with y_test, or neither")
    x_test = y_test = None
    if a.x_test is not None:
        x_test = _images(a.x_test, where, "x_test")
        y_test = _labels(a.y_test, len(x_test), where, "y_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(f"{where}: x_test: images of {x_test.shape[1:]}, x_train's are "
                            f"{x_train.shape[1:]}; allowed: the same (H, W, C)")
    if len(x_train) == 0:
        raise DataError(f"{where}: x_train: no image; allowed: at least 2")
    count = len(a.classes) if a.classes else int(y_train.max()) + 1
    for field, y in (("y_train", y_train), ("y_test", y_test)):
        if y is not None and len(y) and (y.min() < 0 or y.max() >= count):
            named = f" (the {count} names in classes)" if a.classes else ""
            raise DataError(f"{where}: {field}: labels from {y.min()} to {y.max()}; allowed: 0 to "
                            f"{count - 1}{named}")
    if len(np.unique(y_train)) < 2:
        raise DataError(f"{where}: y_train: every label is {y_train[0]}: one class cannot be "
                        "learned; allowed: labels of at least 2 classes")
    return _Arrays(x_train, y_train, x_test, y_test, a.classes, a.flip)


# ------------------------------------------------------------------------ image folders


def _folder_root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        raise DataError(f"{cfg.name} needs a root holding train/<class>/* (and optionally val/)")
    root = Path(cfg.root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        what = "an .npz file (use --data npz)" if root.suffix == ".npz" else "a file"
        raise DataError(f"{root}: {what}, not a folder; allowed: a folder holding train/<class>/*")
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
    found = classes is None
    classes = classes or sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataNotFoundError(f"no class directories in {split_dir}")
    per_class = []
    for c in classes:
        d = split_dir / c
        # regular files only: a FIFO or a device would be read forever
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                       and p.is_file()) if d.is_dir() else []
        if found and not files:
            raise DataError(f"{d}: a class folder without image files; allowed: image files "
                            f"({', '.join(sorted(IMAGE_EXTENSIONS))}) in every class folder "
                            "(remove the empty one: it would be a class of its own)")
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


def _open_image(p: Path) -> Image.Image:
    """An image file opened (header read, pixels not yet), or one DataError line naming it."""
    try:
        im = Image.open(p)
    except Image.DecompressionBombError as err:
        raise DataError(f"{p}: {one_line(err).rstrip('.')} (a decompression bomb?); allowed: up "
                        f"to {MAX_IMAGE_PIXELS:,} pixels") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{p}: not a readable image ({one_line(err)}); allowed: image files "
                        "that PIL opens (remove or replace this one)") from None
    if im.width * im.height > MAX_IMAGE_PIXELS:
        im.close()
        raise DataError(f"{p}: {im.width} x {im.height} pixels (a decompression bomb?); allowed: "
                        f"up to {MAX_IMAGE_PIXELS:,} pixels")
    return im


def _decoded(p: Path, mode: str) -> Image.Image:
    """The pixels of an image file in ``mode``, or one DataError line naming the file."""
    with _open_image(p) as im:
        try:
            return im.convert(mode)
        except (OSError, ValueError, SyntaxError) as err:
            raise DataError(f"{p}: not a readable image ({one_line(err)}); allowed: image files "
                            "that PIL decodes (remove or replace this one)") from None


def _decode_all(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    def one(p: Path) -> np.ndarray:
        im = _decoded(p, mode)
        if im.size != size:
            im = im.resize(size, Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).reshape(size[1], size[0], -1)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return np.stack(list(pool.map(one, paths, chunksize=256)))


def _cache_path(files: list[Path]) -> Path:
    """The decoded arrays of an image folder in our cache folder (never the data folder),
    keyed by the path, size and mtime of every image (train, then val): a file added,
    removed or rewritten in place is a new key."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return cache_dir("data") / f"folder-{h.hexdigest()[:24]}.npz"


def _load_cache(cache: Path) -> _Arrays | None:
    """The cached arrays, or None when the file is unreadable (decoded again)."""
    try:
        with np.load(cache, allow_pickle=False) as f:
            has_test = "x_test" in f.files
            return _Arrays(f["x_train"], f["y_train"], f["x_test"] if has_test else None,
                           f["y_test"] if has_test else None, [str(c) for c in f["classes"]])
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        return None


def _save_cache(cache: Path, arrays: _Arrays) -> None:
    """Write ``arrays`` for :func:`_load_cache`, atomically (a reader never sees half)."""
    fields = dict(x_train=arrays.x_train, y_train=arrays.y_train, classes=np.array(arrays.classes))
    if arrays.x_test is not None:
        fields.update(x_test=arrays.x_test, y_test=arrays.y_test)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **fields)
    os.replace(tmp, cache)


def _folder_small(cache: Path, train: tuple, val: tuple | None, mode: str,
                  size: tuple[int, int]) -> _Arrays:
    paths, y_tr, classes = train
    arrays = _Arrays(_decode_all(paths, mode, size), y_tr, None, None, classes)
    if val is not None:
        arrays.x_test, arrays.y_test = _decode_all(val[0], mode, size), val[1]
    _save_cache(cache, arrays)
    return arrays


class _FolderDataset(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], labels: np.ndarray, transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(_decoded(self.paths[i], "RGB")), int(self.labels[i])


def _folder_stream(cfg: DataConfig, root: Path, device: torch.device) -> Data:
    from torchvision.transforms import v2

    size = cfg.image_size or 224
    paths, y, classes = _scan(root / "train")
    if cfg.subset:
        paths, y = paths[: cfg.subset], y[: cfg.subset]
    tr, va = split_indices(y, cfg.val_fraction, cfg.seed)
    _enough(len(tr), str(root))
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
        raise DataError("decode: gpu needs a CUDA device and there is none; allowed here: auto, cpu",
                        field="decode", flag="--decode")

    def stream(files, labels, tf, train: bool) -> StreamLoader:
        if decode == "gpu":
            # imported here: torchvision costs ~1.2 s of start-up, paid by every trial worker
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


def _enough(train_images: int, where: str) -> None:
    """At least one training batch: a training loader drops a last batch of one image."""
    if train_images < 2:
        raise DataError(f"{where}: {train_images} training image(s) after the subset and the "
                        "validation split, so not one training step; allowed: at least 2 (more "
                        "images, a larger subset or a smaller val_fraction)")


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
        train = _scan(root / "train")
        val = _scan(root / "val", train[2]) if (root / "val").is_dir() else None
        cache = _cache_path(train[0] + (val[0] if val else []))
        arrays = _load_cache(cache) if cache.is_file() else None  # decoded before: no image opened
        if arrays is None:
            with _open_image(train[0][0]) as im:
                mode, size = ("L" if im.mode in ("L", "1") else "RGB"), im.size
            if max(size) > SMALL_IMAGE_MAX_SIDE:
                return _folder_stream(cfg, root, device)
            arrays = _folder_small(cache, train, val, mode, size)
        where = str(root)
    else:
        arrays = {"cifar10": _cifar, "cifar100": _cifar, "npz": _npz, "digits": _digits,
                  "synthetic": _synthetic}[cfg.name](cfg)
        where = str(Path(cfg.root).expanduser()) if cfg.name == "npz" else cfg.name
    arrays = _checked(arrays, where)

    x, y = arrays.x_train, arrays.y_train
    if cfg.subset:
        x, y = x[: cfg.subset], y[: cfg.subset]
    tr, va = split_indices(y, cfg.val_fraction, cfg.seed)
    _enough(len(tr), where)
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
