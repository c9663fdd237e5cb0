"""The batched (GPU) JPEG path run on the CPU against the PIL path, on real CIFAR-10 JPEGs
upscaled to 97 x 81 (so the folder streams). Compared: decoding (libjpeg-turbo through
torchvision vs PIL: identical), the evaluation batches end to end through load_data
(resize to size/0.875 + centre crop: PIL's and torch's antialiased bilinear kernels differ
by at most 1 grey level), and the training geometry for the same crop boxes and flips
(identical). Not compared: the random boxes themselves (the two paths draw them in
another order) and nvJPEG, which needs a GPU."""
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from nas.recipe import DataConfig
from nas.training.data import IMAGENET_STD, DataError, load_data
from nas.training.jpeg_decode import RATIO, SCALE, DeviceJpegLoader, decode_batch, train_view

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
# the unpacked ../shared/data/cifar10-train-jpeg.tar.xz, beside the checkout's folder
CIFAR = Path(__file__).resolve().parents[2] / "data" / "cifar10" / "train"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    src = CIFAR
    if not src.is_dir():
        pytest.skip(f"CIFAR-10 JPEG tree not found at {src}")
    out = tmp_path_factory.mktemp("jpeg")
    for cls in ("cat", "dog"):
        (out / "train" / cls).mkdir(parents=True)
        for p in sorted((src / cls).glob("*.jpg"))[:6]:
            with Image.open(p) as im:
                im.convert("RGB").resize((97, 81), Image.BICUBIC).save(out / "train" / cls / p.name, quality=90)
    return out


def _cfg(folder, **kw) -> DataConfig:
    return DataConfig(name="imagefolder", root=str(folder), image_size=64, val_fraction=0.5,
                      batch_size=4, **kw)


def test_batched_decode_equals_pil(folder):
    from torchvision.io import read_file

    files = sorted(folder.rglob("*.jpg"))
    decoded = decode_batch([read_file(str(p)) for p in files], torch.device("cpu"))
    for p, img in zip(files, decoded):
        with Image.open(p) as im:
            assert torch.equal(img, TF.pil_to_tensor(im.convert("RGB")))


def test_evaluation_batches_match_the_pil_path(folder, monkeypatch):
    pil = load_data(_cfg(folder, decode="cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # build the gpu path on the CPU
    fast = load_data(_cfg(folder, decode="gpu"))
    assert isinstance(fast.val, DeviceJpegLoader) and not isinstance(pil.val, DeviceJpegLoader)
    (a, ya), (b, yb) = ([torch.cat(t) for t in zip(*d.val)] for d in (pil, fast))
    assert a.shape == b.shape == (6, 3, 64, 64) and torch.equal(ya, yb)
    levels = (a - b).abs() * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    assert levels.max() < 1.01 and levels.mean() < 0.01  # at most one grey level, rarely


def test_training_views_match_for_the_same_boxes(folder):
    from torchvision.io import read_file

    path = sorted(folder.rglob("*.jpg"))[0]
    (img,) = decode_batch([read_file(str(path))], torch.device("cpu"))
    with Image.open(path) as im:
        pil = im.convert("RGB")
    for seed, flip in ((0, False), (1, True)):
        torch.manual_seed(seed)
        fast = train_view(img, 64, flip)
        torch.manual_seed(seed)
        box = RandomResizedCrop.get_params(img, SCALE, RATIO)
        slow = TF.pil_to_tensor(TF.resized_crop(pil, *box, [64, 64], antialias=True))
        assert torch.equal(fast, slow.flip(-1) if flip else slow)


def test_gpu_decode_without_cuda_is_refused_by_name(folder, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataError, match="decode: gpu needs a CUDA device and there is none; allowed here: auto, cpu"):
        load_data(_cfg(folder, decode="gpu"))
    assert not isinstance(load_data(_cfg(folder)).train, DeviceJpegLoader)  # auto -> cpu
    assert DataConfig.model_fields["decode"].default == "auto"
