"""Hostile and broken inputs for every surface that is not a study or space file: data
files and folders, labels, checkpoints, architecture files, storages, output folders.

Each case is made on the fly in a temporary folder (no binary junk in the repository) by a
builder that returns the command line; ``CASES[name] = Case(module, build, expect)``.
``expect`` is the text the one error line must hold (tests/test_hostile_inputs.py).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

STUDY = """name: h
space: two_skips.yaml
data: {name: synthetic, batch_size: 16, synthetic: {n_train: 64, n_test: 16, num_classes: 4, size: 16}}
fidelity: {max_epochs: 1}
sampler: {name: random}
trials: 2
"""
SPACE = """base: tiny
fixed: {T: 1}
parameters:
  PT: {type: bool, target: "stages.*.skips.PT"}
"""


@dataclass(frozen=True)
class Case:
    module: str  # nas.train, nas.export ...
    build: Callable[[Path], list[str]]  # makes the inputs in a folder, returns the arguments
    expect: str  # what the one error line says
    read_only: bool = False  # the command must write nothing at all


CASES: dict[str, Case] = {}


def case(name: str, module: str, expect: str, read_only: bool = False):
    def register(build: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        assert name not in CASES, name
        CASES[name] = Case(module, build, expect, read_only)
        return build
    return register


def study(tmp: Path, extra: str = "") -> str:
    (tmp / "two_skips.yaml").write_text(SPACE)
    (tmp / "study.yaml").write_text(STUDY + extra)
    return str(tmp / "study.yaml")


# ---- storages: never created, never written in a file that is not ours --------------

def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _other_app(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    db.close()


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(8192))


def _truncated_journal(path: Path) -> None:
    whole = json.dumps({"op_code": 0, "worker_id": "w", "study_name": "h", "directions": [1]})
    path.write_text(whole + "\n" + whole[:20])


def _not_journal(path: Path) -> None:
    path.write_text("hello\nworld\n")


STORAGE_FILES = {
    "sqlite_empty": ("sqlite:///", "x.db", _empty, "the file is empty, not an Optuna storage"),
    "sqlite_other_app": ("sqlite:///", "x.db", _other_app, "without Optuna's tables (it has: notes)"),
    "sqlite_random": ("sqlite:///", "x.db", _random_bytes, "not an SQLite database"),
    "journal_truncated": ("journal://", "x.log", _truncated_journal, "the journal ends mid-record at byte 71"),
    "journal_text": ("journal://", "x.log", _not_journal, "line 1 (byte 0) is not a record of Optuna's journal"),
}
STORAGE_COMMANDS = {"nas.export": [], "nas.report": [], "nas.zero_cost": ["--candidates", "2"],
                    "nas.run": [], "nas.promote": ["--stage", "longer"]}


def _storage_case(kind: str, module: str) -> None:
    scheme, name, make, expect = STORAGE_FILES[kind]

    def build(tmp: Path) -> list[str]:
        make(tmp / name)
        extra = "promotion: {longer: {top: 1, epochs: 1}}\n" if module == "nas.promote" else ""
        return [study(tmp, extra), "--storage", f"{scheme}{tmp / name}", *STORAGE_COMMANDS[module]]

    read_only = module in ("nas.export", "nas.report")
    case(f"storage_{kind}_{module.removeprefix('nas.')}", module, expect, read_only)(build)


for _kind in STORAGE_FILES:
    for _module in STORAGE_COMMANDS:
        _storage_case(_kind, _module)


@case("storage_folder", "nas.export", "is not a regular file", read_only=True)
def _storage_folder(tmp: Path) -> list[str]:
    (tmp / "x.db").mkdir()
    return [study(tmp), "--storage", f"sqlite:///{tmp / 'x.db'}"]


# ---- nas.train: data files ------------------------------------------------------------

def train(tmp: Path, *args: str) -> list[str]:
    return ["--arch", "tiny", "--T", "1", "--device", "cpu", "--epochs", "1", "--max-steps-per-epoch",
            "1", "--no-progress", "--out", str(tmp / "run"), *args]


def npz(tmp: Path, name: str = "d.npz", **arrays) -> list[str]:
    rng = np.random.default_rng(0)
    full = {"x_train": rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8), "y_train": np.arange(20) % 2}
    full.update(arrays)
    with open(tmp / name, "wb") as f:
        np.savez(f, **{k: v for k, v in full.items() if v is not None})
    return train(tmp, "--data", "npz", "--data-root", str(tmp / name))


def raw(tmp: Path, content: bytes, name: str = "d.npz") -> list[str]:
    (tmp / name).write_bytes(content)
    return train(tmp, "--data", "npz", "--data-root", str(tmp / name))


Y = np.arange(20) % 2
NPZ = {
    "labels_too_large": (dict(y_train=np.arange(20) % 3, classes=np.array(["a", "b"])),
                         "y_train: labels from 0 to 2; allowed: 0 to 1 (the 2 names in classes)"),
    "labels_negative": (dict(y_train=Y - 1), "y_train: labels from -1 to 0; allowed: 0 to"),
    "labels_one_hot": (dict(y_train=np.eye(2, dtype=np.int64)[Y]), "(one-hot? store the class indices"),
    "labels_float": (dict(y_train=Y.astype(np.float32)), "y_train: labels of float32 (20,)"),
    "labels_bool": (dict(y_train=Y.astype(bool)), "y_train: labels of bool (20,)"),
    "labels_fewer": (dict(y_train=Y[:19]), "y_train: 19 labels for 20 images"),
    "labels_one_class": (dict(y_train=Y * 0), "y_train: every label is 0: one class cannot be learned"),
    "single_image": (dict(x_train=np.zeros((1, 8, 8, 3), np.uint8), y_train=np.array([0])),
                     "every label is 0"),
    "no_image": (dict(x_train=np.zeros((0, 8, 8, 3), np.uint8), y_train=np.zeros(0, np.int64)),
                 "x_train: no image"),
    "images_float": (dict(x_train=np.zeros((20, 8, 8, 3), np.float32)), "x_train: images of float32"),
    "images_channels_first": (dict(x_train=np.zeros((20, 3, 8, 8), np.uint8)), "(channels first?"),
    "images_flat": (dict(x_train=np.zeros((20, 192), np.uint8)), "x_train: images of uint8 (20, 192)"),
    "unknown_array": (dict(meta=np.zeros(3)), "unknown arrays ['meta']"),
    "no_labels": (dict(y_train=None), "lacks ['y_train']"),
    "test_without_labels": (dict(x_test=np.zeros((4, 8, 8, 3), np.uint8)), "y_test: missing"),
    "test_labels_out_of_range": (dict(x_test=np.zeros((4, 8, 8, 3), np.uint8), y_test=np.array([0, 1, 2, 5]),
                                      classes=np.array(["a", "b"])), "y_test: labels from 0 to 5"),
    "test_other_shape": (dict(x_test=np.zeros((4, 9, 9, 3), np.uint8), y_test=np.array([0, 1, 0, 1])),
                         "x_test: images of (9, 9, 3), x_train's are (8, 8, 3)"),
}
for _name, (_arrays, _expect) in NPZ.items():
    case(f"npz_{_name}", "nas.train", _expect)(lambda tmp, a=_arrays: npz(tmp, **a))


@case("npz_text_file", "nas.train", "d.npz: not an .npz of arrays")
def _npz_text(tmp: Path) -> list[str]:
    return raw(tmp, b"x_train,y_train\n1,2\n")


@case("npz_pickle", "nas.train", "d.npz: not an .npz of arrays")
def _npz_pickle(tmp: Path) -> list[str]:
    import pickle

    return raw(tmp, pickle.dumps({"x_train": [1, 2], "y_train": [0, 1]}))


@case("npz_single_npy", "nas.train", "not an .npz of arrays (a single ndarray")
def _npz_single(tmp: Path) -> list[str]:
    with open(tmp / "d.npz", "wb") as f:
        np.save(f, np.zeros((4, 8, 8, 3), np.uint8))
    return train(tmp, "--data", "npz", "--data-root", str(tmp / "d.npz"))


@case("npz_object_labels", "nas.train", "not an .npz of arrays (y_train: ")
def _npz_object(tmp: Path) -> list[str]:
    return npz(tmp, y_train=np.array([0, "a"] * 10, dtype=object))


@case("npz_truncated", "nas.train", "d.npz: not an .npz of arrays")
def _npz_truncated(tmp: Path) -> list[str]:
    npz(tmp, name="whole.npz")
    return raw(tmp, (tmp / "whole.npz").read_bytes()[:700])


@case("npz_empty_file", "nas.train", "d.npz: not an .npz of arrays")
def _npz_empty(tmp: Path) -> list[str]:
    return raw(tmp, b"")


# ---- nas.train: image folders -----------------------------------------------------------

def folder(tmp: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 3) -> Path:
    from PIL import Image

    root = tmp / "images"
    for c, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (40 + 100 * c, i, 0)).save(root / "train" / name / f"{name}{i}.png")
    return root


def folder_args(tmp: Path, root: Path) -> list[str]:
    return train(tmp, "--data", "imagefolder", "--data-root", str(root))


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _bad_image(content: bytes):
    def build(tmp: Path) -> list[str]:
        root = folder(tmp)
        (root / "train" / "b" / "b9.png").write_bytes(content)
        return folder_args(tmp, root)
    return build


case("folder_corrupt_image", "nas.train", "b9.png: not a readable image")(_bad_image(b"\x89PNG junk" * 20))
case("folder_zero_byte_image", "nas.train", "b9.png: not a readable image")(_bad_image(b""))
case("folder_decompression_bomb", "nas.train", "b9.png: 10000 x 10000 pixels (a decompression bomb?)")(
    _bad_image(_png_claiming(10_000, 10_000)))
case("folder_decompression_bomb_huge", "nas.train", "b9.png: Image size (10000000000 pixels) exceeds")(
    _bad_image(_png_claiming(100_000, 100_000)))
case("folder_text_as_jpg", "nas.train", "b9.png: not a readable image")(_bad_image(b"hello world\n"))


@case("folder_truncated_image", "nas.train", "b9.png: not a readable image")
def _truncated_image(tmp: Path) -> list[str]:
    from PIL import Image

    root = folder(tmp)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp / "whole.png")
    (root / "train" / "b" / "b9.png").write_bytes((tmp / "whole.png").read_bytes()[:40])
    return folder_args(tmp, root)


@case("folder_empty_class", "nas.train", "train/c: a class folder without image files")
def _empty_class(tmp: Path) -> list[str]:
    root = folder(tmp)
    (root / "train" / "c").mkdir()
    return folder_args(tmp, root)


@case("folder_one_class", "nas.train", "one class cannot be learned")
def _one_class(tmp: Path) -> list[str]:
    return folder_args(tmp, folder(tmp, classes=("a",)))


@case("folder_root_is_file", "nas.train", "notes.txt: a file, not a folder")
def _root_file(tmp: Path) -> list[str]:
    (tmp / "notes.txt").write_text("hello\n")
    return folder_args(tmp, tmp / "notes.txt")


@case("folder_root_is_npz", "nas.train", "d.npz: an .npz file (use --data npz), not a folder")
def _root_npz(tmp: Path) -> list[str]:
    npz(tmp)
    return folder_args(tmp, tmp / "d.npz")


# ---- checkpoints ----------------------------------------------------------------------

def _tiny_state(**arch) -> dict:
    import blocks

    model = blocks.build(blocks.load_config("tiny", **{"T": 1, **arch}), num_classes=2, image_size=8)
    return {"model": model.state_dict(), "arch": model.config.model_dump(mode="json")}


def _save(path: Path, obj) -> Path:
    import torch

    torch.save(obj, path)
    return path


CHECKPOINTS = {
    "truncated": (lambda p: p.write_bytes(_save(p, _tiny_state()).read_bytes()[:300]),
                  "not a readable checkpoint (cut short, or another format"),
    "text": (lambda p: p.write_text("not weights\n"), "not a readable checkpoint"),
    "pickle": (lambda p: _save(p, {"model": {}, "arch": {}, "hook": Path("/")}),
               "refused: it holds Python objects other than tensors"),
    "not_ours": (lambda p: _save(p, {"weights": np.arange(3).tolist()}), "not a nas.train checkpoint"),
}


def _checkpoint_case(kind: str, module: str) -> None:
    make, expect = CHECKPOINTS[kind]

    def build(tmp: Path) -> list[str]:
        make(tmp / "c.pt")
        if module == "nas.inspect":
            return ["--checkpoint", str(tmp / "c.pt")]
        return npz(tmp) + ["--init-from", str(tmp / "c.pt")]
    case(f"checkpoint_{kind}_{module.removeprefix('nas.')}", module, expect)(build)


for _kind in CHECKPOINTS:
    for _module in ("nas.train", "nas.inspect"):
        _checkpoint_case(_kind, _module)


@case("checkpoint_other_architecture", "nas.train", "--init-from: the checkpoint does not fit the architecture")
def _other_arch(tmp: Path) -> list[str]:
    state = _tiny_state()
    state["model"] = {k.replace("stages.0", "stages.9"): v for k, v in state["model"].items()}
    _save(tmp / "c.pt", state)
    return npz(tmp) + ["--init-from", str(tmp / "c.pt")]


@case("resume_truncated_last", "nas.train", "last.pt: not a readable checkpoint")
def _resume_truncated(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "last.pt").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    return npz(tmp)


@case("resume_without_state", "nas.train", "last.pt: not a nas.train checkpoint to resume from")
def _resume_stateless(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    _save(tmp / "run" / "last.pt", _tiny_state())
    return npz(tmp)


@case("resume_other_architecture", "nas.train", "last.pt: holds another architecture ('tiny')")
def _resume_other(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    state = _tiny_state(T=3)
    state.update(optimizers=[], schedulers=[], scaler={}, rng={})
    _save(tmp / "run" / "last.pt", state)
    return npz(tmp)


# ---- architecture files ----------------------------------------------------------------

def arch_file(tmp: Path, text: str) -> list[str]:
    (tmp / "a.yaml").write_text(text)
    args = npz(tmp)
    args[args.index("--arch"):args.index("--arch") + 2] = ["--arch-config", str(tmp / "a.yaml")]
    return args


def tiny_with(**fields) -> str:
    import yaml

    import blocks

    data = blocks.load_config("tiny").model_dump(mode="json")
    for dotted, value in fields.items():
        *path, last = dotted.split("__")
        node = data
        for part in path:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return yaml.safe_dump(data)


ARCH = {
    "v_threshold_negative": (dict(neuron__v_threshold=-1), "neuron: v_threshold: -1; allowed: a finite number > 0"),
    "v_threshold_inf": (dict(neuron__v_threshold=float("inf")), "neuron: v_threshold: inf; allowed"),
    "tau_nan": (dict(neuron__tau=float("nan")), "neuron: tau: nan; allowed: a finite number > 1"),
    "tau_one": (dict(neuron__tau=1.0), "neuron: tau: 1.0; allowed: a finite number > 1"),
    "alpha_zero": (dict(neuron__alpha=0), "neuron: alpha: 0; allowed: a finite number > 0"),
    "v_reset_above": (dict(neuron__v_reset=2.0), "neuron: v_reset: 2.0; allowed: a finite number below"),
    "decay_input_text": (dict(neuron__decay_input="maybe"), "neuron: decay_input: 'maybe'; allowed: true, false"),
    "patch_size_zero": (dict(stages__0__encoder={"name": "patch", "patch_size": 0}),
                        "stages.0.encoder.patch_size: 0; allowed: a whole number >= 1"),
    "patch_size_float": (dict(stages__0__encoder={"name": "patch", "patch_size": 2.5}),
                         "stages.0.encoder.patch_size: 2.5; allowed"),
    "dim_zero": (dict(stages__0__dim=0), "stages.0.dim: Input should be greater than or equal to 1"),
}
for _name, (_fields, _expect) in ARCH.items():
    case(f"arch_{_name}", "nas.train", _expect)(lambda tmp, f=_fields: arch_file(tmp, tiny_with(**f)))

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi")) + "name: *i\n"
case("arch_yaml_bomb", "nas.train", "expands to more than 100,000 nodes")(lambda tmp: arch_file(tmp, BOMB))
case("arch_recipe_list", "nas.train", "recipe: must be a mapping")(
    lambda tmp: arch_file(tmp, tiny_with() + "recipe: [1, 2]\n"))
case("arch_not_mapping", "nas.train", "an architecture file must be a mapping")(
    lambda tmp: arch_file(tmp, "- tiny\n"))


@case("arch_image_size_misfit", "nas.train", "--image-size: 30: ")
def _image_size(tmp: Path) -> list[str]:
    return npz(tmp) + ["--image-size", "30"]


# ---- output folders ----------------------------------------------------------------------

def _loop(tmp: Path) -> Path:
    (tmp / "loop").symlink_to(tmp / "loop")
    return tmp / "loop"


@case("train_out_is_file", "nas.train", "--out: ")
def _out_file(tmp: Path) -> list[str]:
    args = npz(tmp)
    (tmp / "run").write_text("a file\n")
    return args


@case("train_out_symlink_loop", "nas.train", "loop")
def _out_loop(tmp: Path) -> list[str]:
    return npz(tmp) + ["--out", str(_loop(tmp) / "run")]


@case("train_out_under_a_file", "nas.train", "is a file, not a folder")
def _out_under_file(tmp: Path) -> list[str]:
    (tmp / "f").write_text("x")
    return npz(tmp) + ["--out", str(tmp / "f" / "run")]


for _module in ("nas.export", "nas.report"):
    case(f"{_module[4:]}_out_is_file", _module, "--out: ")(
        lambda tmp: [study(tmp), "--out", str(tmp / "study.yaml")])
    case(f"{_module[4:]}_out_symlink_loop", _module, "loop")(
        lambda tmp: [study(tmp), "--out", str(_loop(tmp) / "x")])

case("export_top_zero", "nas.export", "--top: 0; allowed: a whole number >= 1", read_only=True)(
    lambda tmp: [study(tmp), "--top", "0"])
case("export_top_negative", "nas.export", "--top: -1; allowed", read_only=True)(
    lambda tmp: [study(tmp), "--top", "-1"])
case("run_runs_dir_symlink_loop", "nas.run", "runs_dir: ")(
    lambda tmp: [study(tmp, f"runs_dir: {_loop(tmp)}\n")])


@case("study_yaml_bomb", "nas.export", "expands to more than 100,000 nodes", read_only=True)
def _bomb_study(tmp: Path) -> list[str]:
    (tmp / "bomb.yaml").write_text(BOMB)
    return [str(tmp / "bomb.yaml")]


case("set_yaml_bomb", "nas.export", "the value is not valid YAML: the document expands", read_only=True)(
    lambda tmp: [study(tmp), "--set", "name=" + BOMB])
