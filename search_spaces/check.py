"""Loading a space: parse the YAML mapping, check it against the base and the block
registry, then check that its points build valid architecture configs."""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from blocks import ArchConfig, ConfigError, load_config, presets, registry

from .params import Parameter, SpaceError, is_scalar, parse_parameter, same
from .space import Space, one_line
from .targets import Concrete, apply, resolve, spec_kind

TOP_KEYS = ("name", "description", "base", "fixed", "parameters")
GRID_CHECK_LIMIT = 2000  # finite spaces up to this size have every point checked at load
RANDOM_CHECKS = 100  # otherwise this many random points (seeded)


def build_space(data: Any, src: str, root: Path, default_name: str) -> Space:
    if not isinstance(data, dict):
        raise SpaceError(f"{src}: a search space must be a mapping with keys base and parameters")
    for key in data:
        if key not in TOP_KEYS:
            raise SpaceError(f"{src}: {key}: unknown top-level key; allowed: {', '.join(TOP_KEYS)}")
    for key in ("base", "parameters"):
        if key not in data:
            raise SpaceError(f"{src}: {key}: missing; allowed top-level keys: {', '.join(TOP_KEYS)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise SpaceError(f"{src}: name: must be a non-empty string; got {name!r}")
    base = _base(data["base"], data.get("fixed"), root, src)
    specs = data["parameters"]
    if not isinstance(specs, dict) or not specs:
        raise SpaceError(f"{src}: parameters: must be a non-empty mapping of name -> parameter")
    params = [parse_parameter(n, s, f"{src}: parameters.{n}") for n, s in specs.items()]
    base_dict = base.model_dump(mode="json")
    for p in params:
        _targets(p, base_dict, f"{src}: parameters.{p.name}")
    _conditions(params, src)
    _overlaps(params, src)
    space = Space(name, base, params, src, str(data.get("description", "")))
    check_points(space)
    return space


def _base(base: Any, fixed: Any, root: Path, src: str) -> ArchConfig:
    try:
        if isinstance(base, dict):
            cfg = load_config(base)
        elif isinstance(base, str) and base:
            path = root / base
            cfg = load_config(path if path.suffix in (".yaml", ".yml") or path.exists() else base)
        else:
            raise SpaceError(f"{src}: base: must be a preset name ({', '.join(presets())}), a "
                             f"path to an architecture YAML or an inline mapping; got {base!r}")
    except ConfigError as err:
        raise SpaceError(f"{src}: base: {one_line(err)}") from None
    if fixed is None:
        return cfg
    if not isinstance(fixed, dict):
        raise SpaceError(f"{src}: fixed: must be a mapping of target path -> value")
    data, writes = cfg.model_dump(mode="json"), []
    for path, value in fixed.items():
        try:
            writes += [(c, value) for c in resolve(path, data)]
        except ValueError as err:
            raise SpaceError(f"{src}: fixed.{path}: {err}") from None
    try:
        return load_config(apply(data, writes))
    except ConfigError as err:
        raise SpaceError(f"{src}: fixed: {one_line(err)}") from None


def _targets(p: Parameter, base: dict, where: str) -> None:
    """Resolve the targets; check list lengths and block names."""
    for t in p.targets:
        try:
            paths = resolve(t, base)
        except ValueError as err:
            raise SpaceError(f"{where}.target: {err}") from None
        for key, lst in p.lists.items():
            if len(lst) != len(paths):
                raise SpaceError(f"{where}.choices: {lst} has {len(lst)} values but target {t!r} "
                                 f"selects {len(paths)} fields; allowed: lists of {len(paths)} values")
        for c in paths:
            spec = spec_kind(c[:-1])
            if spec and c[-1] == spec[1]:
                _block_names(p, spec[0], where)
        p.paths.append(paths)


def _block_names(p: Parameter, kind: str, where: str) -> None:
    names = registry.available(kind)
    if p.type != "categorical":
        raise SpaceError(f"{where}.type: a {kind} block name needs a categorical parameter; "
                         f"allowed choices: {', '.join(names)}")
    for choice in p.choices:
        for v in p.lists.get(choice, [choice]):
            if v not in names:
                raise SpaceError(f"{where}.choices: unknown {kind} block {v!r}; allowed: "
                                 f"{', '.join(names)}")


def _conditions(params: list[Parameter], src: str) -> None:
    seen: dict[str, Parameter] = {}
    for p in params:
        if p.when is not None:
            where = f"{src}: parameters.{p.name}.when"
            parent, values = p.when
            if parent not in seen:
                what = "unknown parameter" if all(q.name != parent for q in params) else \
                    "a parameter must be defined above the parameters that depend on it:"
                raise SpaceError(f"{where}: {what} {parent!r}; allowed: "
                                 f"{', '.join(seen) or 'none (it is the first parameter)'}")
            par = seen[parent]
            one = not isinstance(values, list) or (par.lists and all(is_scalar(v) for v in values))
            values = [values] if one else values
            if not values:
                raise SpaceError(f"{where}.{parent}: empty; allowed: {par.describe()}")
            normal = []
            for v in values:
                try:
                    normal.append(par.normalize(v))
                except ValueError:
                    raise SpaceError(f"{where}.{parent}: {v!r} is not a value {parent!r} can "
                                     f"take; allowed: {par.describe()}") from None
            p.when = (parent, tuple(normal))
        seen[p.name] = p


def _exclusive(p: Parameter, q: Parameter) -> bool:
    return (p is not q and p.when is not None and q.when is not None and p.when[0] == q.when[0]
            and not any(same(a, b) for a in p.when[1] for b in q.when[1]))


def _overlaps(params: list[Parameter], src: str) -> None:
    owners: dict[Concrete, list[Parameter]] = {}
    for p in params:
        for path in (c for paths in p.paths for c in paths):
            for q in owners.get(path, []):
                if not _exclusive(p, q):
                    field = ".".join(map(str, path))
                    other = "this parameter twice" if q is p else f"parameter {q.name!r}"
                    raise SpaceError(
                        f"{src}: parameters.{p.name}.target: {field} is also set by {other}; "
                        "allowed: one parameter per field, unless both have a `when` on the "
                        "same parameter with values that exclude each other")
            owners.setdefault(path, []).append(p)


def check_points(space: Space) -> None:
    """Every value of every parameter on the base (with its `when` parents set), then the
    grid of a small finite space or random points; the first invalid one raises."""
    by_name = {p.name: p for p in space.parameters}
    for p in space.parameters:
        parents, q = {}, p
        while q.when is not None:
            parents[q.when[0]] = q.when[1][0]
            q = by_name[q.when[0]]
        for v in p.test_values():
            try:
                space.config_of({**parents, p.name: v})
            except ConfigError as err:
                extra = f" (with {parents})" if parents else ""
                raise SpaceError(f"{space.source}: parameters.{p.name}: value {v!r}{extra} gives "
                                 f"an invalid architecture: {one_line(err)}") from None
    size = space.size
    if size is not None and size <= GRID_CHECK_LIMIT:
        points = space.grid()
    else:
        rng = random.Random(0)
        points = [space.sample(rng) for _ in range(RANDOM_CHECKS)]
    for point in points:
        try:
            space.config_of(point)
        except ConfigError as err:
            names = _blame(space, point, str(err))
            extra = f" (with {', '.join(names[1:])})" if names[1:] else ""
            raise SpaceError(f"{space.source}: parameters.{names[0]}{extra}: the point {point} "
                             f"gives an invalid architecture: {one_line(err)}") from None


def _blame(space: Space, point: dict, message: str) -> list[str]:
    """The parameters of ``point`` whose targets the config error names (most specific
    location first), or all of them."""
    locs = []
    for line in message.splitlines():
        parts = line.split(": ")
        locs.append(parts[0])
        if len(parts) > 2 and parts[1].isidentifier():  # "stages.1.encoder: edge_12: ..."
            locs.insert(0, f"{parts[0]}.{parts[1]}")
        # "neuron: neuron 'if' has no parameter 'tau'": a quoted field of that location
        locs[:0] = [f"{parts[0]}.{q}" for q in re.findall(r"'(\w+)'", line)]
    for loc in locs:
        names = [n for n in point for paths in space._by_name[n].paths for c in paths
                 if _related(".".join(map(str, c)), loc)]
        if names:
            return list(dict.fromkeys(names))
    return list(point)


def _related(path: str, loc: str) -> bool:
    return path == loc or path.startswith(loc + ".") or loc.startswith(path + ".")
