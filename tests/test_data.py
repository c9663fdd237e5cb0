"""Data loading: every source, the validation split, augmentation and the folder cache."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas.cache import cache_dir
from nas.recipe import DataConfig
from nas.training.data import DataNotFoundError, load_data, split_indices

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-sample.npz"


def _all(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture
def indexed_npz(tmp_path):
    """An npz whose images encode their row: pixel (0,0) = (i % 256, i // 256, is_test)."""
    def images(n, is_test):
        x = np.zeros((n, 8, 8, 3), np.uint8)
        x[:, 0, 0, 0], x[:, 0, 0, 1], x[:, 0, 0, 2] = np.arange(n) % 256, np.arange(n) // 256, is_test
        x[:, 1:, :, :] = np.random.default_rng(0).integers(0, 256, (n, 7, 8, 3))
        return x
    path = tmp_path / "indexed.npz"
    np.savez(path, x_train=images(600, 0), y_train=np.arange(600) % 5,
             x_test=images(50, 255), y_test=np.arange(50) % 5)
    return path


def _rows(x_uint8):
    return (x_uint8[:, 0, 0, 0].long() + 256 * x_uint8[:, 1, 0, 0].long()).tolist()


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"shared CIFAR-10 sample absent: {SAMPLE}")
def test_npz_sample_shapes_and_normalisation():
    data = load_data(DataConfig(name="npz", root=str(SAMPLE), augment="none", batch_size=100))
    assert data.sizes == {"train": 3356, "val": 372, "test": 846}
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 32)
    assert data.classes[:2] == ["airplane", "automobile"]
    x, y = next(iter(data.train))
    assert x.shape == (100, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (100,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    x, _ = _all(data.train)
    assert len(x) == 3356
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-3) and torch.allclose(std, torch.ones(3), atol=1e-3)
    xt, _ = _all(data.test)  # the test split uses the train statistics
    assert len(xt) == 846 and xt.mean(dim=(0, 2, 3)).abs().max() < 0.15


def test_val_split_is_disjoint_stratified_and_from_train(indexed_npz):
    data = load_data(DataConfig(name="npz", root=str(indexed_npz), val_fraction=0.2, seed=3))
    train, val = _rows(data.train.x), _rows(data.val.x)
    assert len(val) == 120 and len(train) == 480
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(600))
    assert (data.train.x[:, 2, 0, 0] == 0).all() and (data.val.x[:, 2, 0, 0] == 0).all()  # no test rows
    assert (data.test.x[:, 2, 0, 0] == 255).all() and len(data.test.x) == 50
    assert torch.bincount(data.val.y).tolist() == [24] * 5  # stratified
    assert data.val.y.tolist() == [r % 5 for r in val]  # labels travel with their images
    other = load_data(DataConfig(name="npz", root=str(indexed_npz), val_fraction=0.2, seed=4))
    assert _rows(other.val.x) != val  # the seed picks the split
    tr, va = split_indices(np.arange(10) % 2, 0.0, 0)
    assert len(tr) == 10 and len(va) == 0


def test_subset_takes_the_first_examples(indexed_npz):
    data = load_data(DataConfig(name="npz", root=str(indexed_npz), subset=100, val_fraction=0.1))
    rows = _rows(data.train.x) + _rows(data.val.x)
    assert sorted(rows) == list(range(100))
    assert data.sizes == {"train": 90, "val": 10, "test": 50}


def test_digits_offline():
    data = load_data(DataConfig(name="digits", augment="none", val_fraction=0.1))
    assert data.sizes["test"] == 360 and data.sizes["train"] + data.sizes["val"] == 1437
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 1, 8)
    assert data.train.flip is False  # digits are not mirror-symmetric
    assert data.train.x.dtype == torch.uint8 and int(data.train.x.max()) == 255
    x, y = next(iter(data.test))
    assert x.shape == (128, 1, 8, 8) and y.dtype == torch.int64


def test_digits_come_from_our_cache_without_scikit_learn(tmp_path, monkeypatch):
    """The first load keeps the split arrays in our cache folder; a later process loads them
    from there, the same images and labels, without importing scikit-learn (over a second
    of every trial process), and a damaged cache file is made again."""
    monkeypatch.setenv("SPIKING_MLP_NAS_CACHE", str(tmp_path))
    cfg = DataConfig(name="digits", augment="none", val_fraction=0.1)
    first = load_data(cfg)
    (cache,) = (tmp_path / "data").glob("digits-sklearn-*.npz")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # importing it now fails
    again = load_data(cfg)
    for split in ("train", "val", "test"):
        a, b = getattr(first, split), getattr(again, split)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert again.train.flip is False and again.classes == first.classes
    monkeypatch.delitem(sys.modules, "sklearn.datasets")
    cache.write_bytes(b"not an npz")
    assert torch.equal(load_data(cfg).test.x, first.test.x) and cache.stat().st_size > 1000


def test_synthetic_is_learnable_by_class_means():
    cfg = DataConfig(name="synthetic", augment="none", synthetic={"num_classes": 5, "size": 12, "channels": 2})
    data = load_data(cfg)
    assert (data.num_classes, data.in_channels, data.image_size) == (5, 2, 12)
    x, y = _all(data.train)
    means = torch.stack([x[y == c].mean(0) for c in range(5)]).flatten(1)
    xt, yt = _all(data.test)
    pred = torch.cdist(xt.flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() > 0.9


@pytest.mark.parametrize("augment", ["simple", "strong"])
def test_augment_keeps_shape(augment):
    cfg = dict(name="synthetic", batch_size=32, synthetic={"num_classes": 4, "size": 16})
    plain = next(iter(load_data(DataConfig(**cfg, augment="none")).train))
    data = load_data(DataConfig(**cfg, augment=augment))
    x, y = next(iter(data.train))
    assert x.shape == plain[0].shape == (32, 3, 16, 16)
    assert not torch.equal(x, plain[0])  # same order (same seed), different pixels
    if augment == "strong":
        assert y.shape == (32, 4) and torch.allclose(y.sum(1), torch.ones(32))
        assert (y.max(1).values < 1).any()  # mixed targets
    else:
        assert torch.equal(y, plain[1])


def test_resize_and_seeded_shuffle():
    data = load_data(DataConfig(name="synthetic", image_size=24, batch_size=16, augment="simple"))
    assert data.image_size == 24
    assert next(iter(data.val))[0].shape == (16, 3, 24, 24)
    data.train.set_epoch(5)
    a = next(iter(data.train))
    data.train.set_epoch(5)
    b = next(iter(data.train))
    c = next(iter(data.train))  # epoch 6 now
    assert a[0].shape == (16, 3, 24, 24)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_cifar_offline_without_files_explains(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    msg = str(err.value)
    assert str(tmp_path) in msg and "internet" in msg and "imagefolder" in msg and "npz" in msg


def _tree(root: Path, split: str, per_class: int, size: int) -> None:
    for c, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        d = root / split / f"class_{'abc'[c]}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (size, size), tuple(v + i for v in colour)).save(d / f"img{i}.png")


def test_imagefolder_decodes_once_then_uses_the_cache(tmp_path, monkeypatch):
    _tree(tmp_path, "train", 6, 16)
    _tree(tmp_path, "val", 2, 16)
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), val_fraction=1 / 6, augment="none")
    cached = lambda: set(cache_dir("data").glob("folder-*.npz"))  # noqa: E731
    before = cached()
    first = load_data(cfg)
    assert first.classes == ["class_a", "class_b", "class_c"]
    assert first.sizes == {"train": 15, "val": 3, "test": 6}
    assert (first.in_channels, first.image_size) == (3, 16)
    # in our cache folder (tests: a temporary one, conftest.py), nothing in the data folder
    assert len(cached() - before) == 1 and not list(tmp_path.rglob(".*"))
    red = first.test.x[first.test.y == 0]
    assert (red[:, 0] > 150).all() and (red[:, 1] < 60).all()  # pixels decoded as RGB

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")
    monkeypatch.setattr(Image, "open", no_decoding)
    second = load_data(cfg)
    assert torch.equal(second.train.x, first.train.x) and torch.equal(second.test.y, first.test.y)
    assert second.classes == first.classes
    # non-numeric file names are taken round-robin over classes, so "the first N" mixes them
    few = load_data(cfg.model_copy(update={"subset": 6, "val_fraction": 0.0}))
    assert few.train.y.tolist() == [0, 1, 2, 0, 1, 2] and few.val is None
    # an image rewritten in place (same name, new size or mtime) is decoded again ...
    monkeypatch.undo()
    img = tmp_path / "train" / "class_a" / "img0.png"
    Image.new("RGB", (16, 16), (0, 0, 0)).save(img)
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    third = load_data(cfg)
    assert not torch.equal(third.train.x, first.train.x) and len(cached() - before) == 2
    # ... and so is a tree with a new file
    (tmp_path / "train" / "class_a" / "extra.png").write_bytes(b"")
    monkeypatch.setattr(Image, "open", no_decoding)
    with pytest.raises(AssertionError, match="cache should have been used"):
        load_data(cfg)


def test_imagefolder_without_val_has_no_test(tmp_path):
    _tree(tmp_path / "inner", "train", 4, 8)  # the directory an archive was extracted into
    data = load_data(DataConfig(name="imagefolder", root=str(tmp_path), val_fraction=0.25))
    assert data.test is None and data.sizes == {"train": 9, "val": 3, "test": 0}


def test_imagefolder_large_images_stream(tmp_path):
    _tree(tmp_path, "train", 4, 80)
    _tree(tmp_path, "val", 1, 80)
    data = load_data(DataConfig(name="imagenet", root=str(tmp_path), image_size=64, batch_size=4,
                                val_fraction=0.25))
    assert not list(tmp_path.glob(".spiking-mlp-nas-cache-*"))
    assert data.sizes == {"train": 9, "val": 3, "test": 3} and data.image_size == 64
    x, y = next(iter(data.train))
    assert x.shape == (4, 3, 64, 64) and y.dtype == torch.int64
    x, y = next(iter(data.test))
    assert x.shape == (3, 3, 64, 64) and sorted(y.tolist()) == [0, 1, 2]


def test_missing_roots_are_clear(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        load_data(DataConfig(name="npz", root=str(tmp_path / "nope.npz")))
    with pytest.raises(DataNotFoundError, match="no train"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path)))
    with pytest.raises(ValueError):
        DataConfig(name="mnist")
