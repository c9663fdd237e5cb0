"""Target paths: where a parameter's value goes in an architecture config.

A path is dotted: field names, list indices and stage selectors, e.g. ``T``,
``neuron.tau``, ``stages.*.skips.PT`` (every stage), ``stages.1:.encoder.edge_12``
(stages 1 onward; any Python slice ``a:b`` works) or ``stages.2.depth``. It is resolved
against the base config (a ``model_dump`` dict) into concrete paths, tuples of keys.
"""
from __future__ import annotations

import copy
from typing import Any

from blocks import registry

Key = str | int
Concrete = tuple[Key, ...]

# block spec locations: which registry kind they name, and their name key
_SPEC_FIELDS = {"encoder": "encoder", "token": "token", "channel": "channel", "neuron": "neuron"}


def spec_kind(loc: Concrete) -> tuple[str, str] | None:
    """``(kind, name key)`` when ``loc`` is a block spec in the config, else None."""
    if loc in (("neuron",), ("head",)):
        return loc[0], "kind" if loc[0] == "neuron" else "name"
    if len(loc) == 3 and loc[0] == "stages" and loc[2] in _SPEC_FIELDS:
        return loc[2], "kind" if loc[2] == "neuron" else "name"
    return None


def block_params(kind: str) -> set[str]:
    """Every parameter any registered block of ``kind`` accepts."""
    return {p for name in registry.available(kind) for p in registry.get(kind, name).params}


def _segment(part: str) -> Key | slice:
    if part == "*":
        return slice(None)
    if part.isdigit():
        return int(part)
    if ":" in part:
        bounds = part.split(":")
        if len(bounds) == 2 and all(b == "" or b.lstrip("-").isdigit() for b in bounds):
            return slice(*(int(b) if b else None for b in bounds))
    elif part.isidentifier():
        return part
    raise ValueError(f"bad path segment {part!r}; allowed: a field name, an index, '*' or a "
                     "slice such as '1:'")


def resolve(path: str, data: dict) -> list[Concrete]:
    """The concrete paths ``path`` names in ``data``; ValueError says what does not exist."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a target must be a dotted path string, got {path!r}")
    segs = [_segment(p) for p in path.split(".")]
    found: list[Concrete] = [()]
    for depth, seg in enumerate(segs):
        last = depth == len(segs) - 1
        found = [c + (k,) for c in found for k in _step(data, c, seg, last, path)]
        if not found:
            raise ValueError(f"{path!r} selects no stage (the base has {len(data['stages'])})")
    return found


def _step(data: dict, loc: Concrete, seg: Key | slice, last: bool, path: str) -> list[Key]:
    node = get(data, loc)
    where = ".".join(map(str, loc)) or "the config"
    if isinstance(node, list):
        if isinstance(seg, str):
            raise ValueError(f"{path!r}: {where} is a list; use an index, '*' or a slice")
        if isinstance(seg, slice):
            return list(range(len(node)))[seg]
        if not -len(node) <= seg < len(node):
            raise ValueError(f"{path!r}: {where} has {len(node)} entries; allowed indices "
                             f"0..{len(node) - 1}")
        return [seg % len(node)]
    if not isinstance(node, dict):
        what = "null in the base" if node is None else "a value, not a mapping"
        raise ValueError(f"{path!r}: {where} is {what}")
    if not isinstance(seg, str):
        raise ValueError(f"{path!r}: {where} is a mapping, not a list")
    allowed = set(node)
    spec = spec_kind(loc)
    if spec and last:
        allowed |= block_params(spec[0])
    if seg not in allowed:
        raise ValueError(f"{path!r}: {where} has no field {seg!r}; allowed: "
                         f"{', '.join(sorted(allowed))}")
    return [seg]


def get(data: Any, loc: Concrete) -> Any:
    for k in loc:
        data = data[k]
    return data


def apply(base: dict, assignments: list[tuple[Concrete, Any]]) -> dict:
    """A copy of ``base`` with the assignments made. A block whose name (or neuron kind) is
    assigned drops the base parameters its new block does not accept (``lif`` -> ``if``
    drops ``tau``); parameters assigned explicitly are kept, so the config check sees them."""
    data = copy.deepcopy(base)
    explicit: dict[Concrete, set] = {}
    for path, _ in assignments:
        explicit.setdefault(path[:-1], set()).add(path[-1])
    renamed, rest = [], []
    for path, value in assignments:
        spec = spec_kind(path[:-1])
        (renamed if spec and spec[1] == path[-1] else rest).append((path, value))
    for path, value in renamed:
        get(data, path[:-1])[path[-1]] = value
    for path, value in renamed:
        kind, key = spec_kind(path[:-1])
        spec = get(data, path[:-1])
        if value in registry.available(kind):
            keep = set(registry.get(kind, value).params) | {key} | explicit[path[:-1]]
            for k in [k for k in spec if k not in keep]:
                del spec[k]
    for path, value in rest:
        get(data, path[:-1])[path[-1]] = value
    return data
