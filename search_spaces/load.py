"""Loading a space: a shipped name, a YAML path or a mapping, built and checked by
:func:`search_spaces.check.build_space`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from blocks import ArchConfig
from blocks.config import read_yaml

from .check import build_space
from .params import SpaceError
from .space import SPACE_DIR, Space


def available_spaces() -> list[str]:
    """Names of the spaces shipped in this package."""
    return sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def load_space(x: "str | Path | Mapping", *, base: Any = None,
               fixed: Mapping[str, Any] | None = None) -> Space:
    """A validated :class:`Space` from a shipped name, a YAML path or a mapping.

    ``base`` replaces the space's base architecture (a preset, a path, a mapping or an
    ArchConfig) and ``fixed`` adds to its ``fixed`` section: a study can run a shipped
    space on another network (``base: tiny``, ``fixed: {T: 2}``)."""
    if isinstance(x, Mapping):
        data, src, root, default = dict(x), "<mapping>", Path.cwd(), "custom"
    else:
        path = Path(x)
        if not path.exists() and not path.suffix:
            path = SPACE_DIR / f"{x}.yaml"
            if not path.exists():
                raise SpaceError(f"unknown search space {str(x)!r}; shipped: "
                                 f"{', '.join(available_spaces())} (or give a path to a space YAML)")
        elif not path.is_file():
            raise SpaceError(f"{path}: no such search-space file")
        data = read_yaml(path, SpaceError)
        src, root, default = str(path), path.parent, path.stem
    if isinstance(data, dict) and base is not None:
        data["base"] = base.model_dump(mode="json") if isinstance(base, ArchConfig) else (
            str(Path(base).resolve()) if isinstance(base, (str, Path)) and Path(base).suffix else base)
    if isinstance(data, dict) and fixed:
        data["fixed"] = {**(data.get("fixed") or {}), **dict(fixed)}
    return build_space(data, src, root, default)
