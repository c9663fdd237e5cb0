"""Where this project writes. Files it can make again go to one folder of ours, never the
user's data folder nor the system's temporary folder; an output folder is checked before
anything is written (:func:`folder_problem`).

``$SPIKING_MLP_NAS_CACHE`` if set, else ``$XDG_CACHE_HOME/spiking-mlp-nas``, else
``~/.cache/spiking-mlp-nas``. Below it: ``data/`` (decoded small image folders, keyed by the
path, size and mtime of every image; scikit-learn's digits, split, per scikit-learn version) and ``trials/`` (a paused race trial's checkpoint while
it runs; removed when the trial ends). Deleting the folder is always safe.
"""
from __future__ import annotations

import os
from pathlib import Path

from blocks.config import one_line

CACHE_ENV = "SPIKING_MLP_NAS_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a path below it); not created here."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spiking-mlp-nas"
    return Path(root).expanduser().joinpath(*parts)


def remove_if_owner_gone(folders: dict[Path, int]) -> list[Path]:
    """Delete each folder of ours whose owner process (``{folder: pid}``, this host) is
    gone; returns those deleted."""
    import shutil

    gone = []
    for folder, pid in folders.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
        except PermissionError:
            pass  # alive, someone else's
    return gone


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an output folder (a file, a symbolic-link loop, a parent that
    is a file or not writable), or None; creates nothing."""
    path = Path(os.path.abspath(path))
    try:
        real = path.resolve()
    except (RuntimeError, OSError) as err:  # a symbolic-link loop
        return f"cannot be resolved ({one_line(err)})"
    if path.is_symlink() and not real.exists():
        return "a symbolic link to nothing (or a loop)"
    probe = real
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder" if probe != real else "a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None
