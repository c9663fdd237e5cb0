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
