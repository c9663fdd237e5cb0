"""Declarative search spaces: a base architecture plus parameters that override parts of it.

A space is a YAML file (shipped ones: ``available_spaces()``)::

    name: mixer                     # optional; default: the file name
    description: token and channel mixing, widths and depths   # optional
    base: cifar_ablation_c60        # a preset name, a path relative to this file, or an
                                    # inline architecture mapping (see blocks/configs/)
    fixed: {T: 2}                   # optional: target -> value, applied to the base
    parameters:                     # ordered; a name is what Optuna records
      token:  {type: categorical, choices: [axial, full, identity], target: "stages.*.token.name"}
      bias:   {type: bool, target: "stages.*.token.bias", when: {token: [axial, full]}}
      ratio:  {type: float, low: 1.0, high: 4.0, step: 0.5, target: "stages.*.channel.ratio"}
      tau:    {type: float, low: 1.5, high: 4.0, log: true, target: neuron.tau}
      width:  {type: int, low: 36, high: 96, step: 12, target: "stages.*.dim", per_stage: double}
      depths: {type: categorical, choices: [[2, 2, 6, 2], [2, 8, 14, 2]], target: "stages.*.depth"}

Parameter keys (no others are accepted):

* ``type``: ``categorical`` (``choices``: null/bool/int/float/str values, or lists of them),
  ``int`` (``low``, ``high``, optional ``step`` (default 1) or ``log``), ``float`` (``low``,
  ``high``, optional ``step`` (then the space is finite) or ``log``), ``bool``. Bounds are
  inclusive. Use an int ``step`` for multiples: ``low: 36, step: 12`` keeps a width
  divisible by 3, as the ``spe`` encoder needs. Every type is finite (has a grid) except
  a float without ``step``.
* ``target``: a dotted path into the architecture config, or a list of paths, each set to
  the value. ``*`` selects every stage, ``1:`` (any slice) a range, ``2`` one stage:
  ``T``, ``neuron.tau``, ``stages.*.skips.PT``, ``"stages.1:.encoder.edge_12"``. A path must
  exist in the base config, or be a parameter some registered block of that kind accepts
  (``stages.*.token.bias``). Setting a block name (``stages.*.token.name``, ``neuron.kind``)
  drops the base's parameters the new block does not accept (``if`` has no ``tau``).
* ``per_stage: double``: the k-th stage selected by the target gets ``value * 2**k``.
  Categorical choices that are lists give the k-th element to the k-th stage (each list as
  long as the target's selection); Optuna sees them as JSON strings (``"[2,2,6,2]"``), and
  :meth:`Space.to_config` takes those strings (or the lists).
* ``when: {parent: value}`` or ``{parent: [values]}``: the parameter is active only when
  the parameter ``parent`` (defined above it, itself active) takes one of those values
  (for a parent with list choices, one list or a list of lists). Inactive parameters are
  not suggested and are absent from a point.
* ``doc``: free text.

Two parameters may write the same field only when their ``when`` on the same parameter
exclude each other. Loading checks everything and raises :class:`SpaceError` naming the file,
the key path and what is allowed. It also applies points to the base and validates the
configs, so that invalid combinations are rejected at load, not found by a crashing trial:
every tested value of every parameter alone (all values, or bounds and middle; only its
``when`` parents set), then every point of a finite space up to ``GRID_CHECK_LIMIT``
points (exhaustive), else ``RANDOM_CHECKS`` seeded random points. Models are never built.
"""
from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any


from blocks import ArchConfig, ConfigError, load_config
from blocks.config import one_line

from .params import Parameter, SpaceError, same
from .targets import apply

SPACE_DIR = Path(__file__).parent
GRID_LIMIT = 1_000_000  # grid() refuses to list more points than this


class Space:
    """A loaded, validated search space (see the module docstring for the format)."""

    def __init__(self, name: str, base: ArchConfig, parameters: list[Parameter], source: str,
                 description: str = "") -> None:
        self.name, self.base, self.parameters = name, base, parameters
        self.source, self.description = source, description
        self._base = base.model_dump(mode="json")
        self._by_name = {p.name: p for p in parameters}

    def __repr__(self) -> str:
        return (f"Space({self.name!r}, base={self.base.name!r}, "
                f"parameters={[p.name for p in self.parameters]}, size={self.size})")

    def active(self, p: Parameter, point: Mapping[str, Any]) -> bool:
        """Whether ``p`` is active given the values of the parameters before it."""
        if p.when is None:
            return True
        parent, values = p.when
        return parent in point and any(same(point[parent], v) for v in values)

    def define_by_run(self, trial: Any) -> None:
        """Suggest every active parameter on an Optuna trial, in order."""
        point: dict[str, Any] = {}
        for p in self.parameters:
            if self.active(p, point):
                point[p.name] = p.suggest(trial)

    def sample(self, rng: Any = None) -> dict[str, Any]:
        """A random point: ``rng`` is a ``random.Random``, a numpy Generator, a seed or None."""
        rng = _rng(rng)
        point: dict[str, Any] = {}
        for p in self.parameters:
            if self.active(p, point):
                point[p.name] = p.sample(rng)
        return point

    def to_config(self, params: Mapping[str, Any]) -> ArchConfig:
        """The base with a point applied (names -> values, inactive ones absent), validated."""
        point = self._check_point(params)
        try:
            return self.config_of(point)
        except ConfigError as err:
            raise SpaceError(f"space {self.name!r} ({self.source}): the point {point} gives an "
                             f"invalid architecture: {one_line(err)}") from None

    def config_of(self, point: Mapping[str, Any]) -> ArchConfig:
        """Apply a point without checking it against the space (a partial point is applied
        as given); raises :class:`blocks.ConfigError` for an invalid architecture."""
        writes = [w for name, v in point.items() for w in self._by_name[name].assign(v)]
        return load_config(apply(self._base, writes))

    def distinct_points(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` different points (fewer if the space has fewer): a seeded shuffle of the
        grid for a finite space of up to 10,000 points, else distinct seeded samples."""
        if self.size is not None and self.size <= 10_000:
            points = self.grid()
            random.Random(seed).shuffle(points)
            return points[:n]
        rng, out, seen = random.Random(seed), [], set()
        for _ in range(100 * n):
            if len(out) == n:
                break
            p = self.sample(rng)
            key = json.dumps(p, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(p)
        return out

    def extremes(self) -> list[dict[str, Any]]:
        """Two points: every active parameter at its lower end (first value, lower bound),
        and every one at its upper end; the largest networks of a space are among them."""
        out = []
        for end in (0, -1):
            point: dict[str, Any] = {}
            for p in self.parameters:
                if self.active(p, point):
                    if p.type in ("int", "float"):
                        bound = p.low if end == 0 else p.high
                        point[p.name] = int(bound) if p.type == "int" else bound
                    else:
                        point[p.name] = list(p.values())[end]
            out.append(point)
        return out

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a finite space, conditionals expanded, in parameter order."""
        size = self.size
        if size is None:
            cont = [p.name for p in self.parameters if not p.finite]
            raise SpaceError(f"space {self.name!r} has no grid: {', '.join(cont)} "
                             "continuous (float without step)")
        if size > GRID_LIMIT:
            raise SpaceError(f"space {self.name!r} has {size} points; grid() lists at most {GRID_LIMIT}")
        out: list[dict[str, Any]] = []
        self._expand(0, {}, out)
        return out

    def _expand(self, i: int, point: dict, out: list) -> None:
        if i == len(self.parameters):
            out.append(dict(point))
            return
        p = self.parameters[i]
        if not self.active(p, point):
            self._expand(i + 1, point, out)
            return
        for v in p.values():
            point[p.name] = v
            self._expand(i + 1, point, out)
        del point[p.name]

    @property
    def size(self) -> int | None:
        """The number of grid points (conditionals counted), None if infinite."""
        if not all(p.finite for p in self.parameters):
            return None
        children: dict[str, list[Parameter]] = {p.name: [] for p in self.parameters}
        for p in self.parameters:
            if p.when:
                children[p.when[0]].append(p)

        def count(p: Parameter) -> int:
            if not children[p.name]:
                return p.count()
            return sum(math.prod(count(c) for c in children[p.name]
                                 if any(same(v, w) for w in c.when[1])) for v in p.values())

        return math.prod(count(p) for p in self.parameters if p.when is None)

    def _check_point(self, params: Mapping[str, Any]) -> dict[str, Any]:
        who = f"space {self.name!r}"
        if not isinstance(params, Mapping):
            raise SpaceError(f"{who}: a point must be a mapping of parameter names to values")
        unknown = [k for k in params if k not in self._by_name]
        if unknown:
            raise SpaceError(f"{who}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(self._by_name)}")
        point: dict[str, Any] = {}
        for p in self.parameters:
            on = self.active(p, point)
            if p.name in params and not on:
                raise SpaceError(f"{who}: parameter {p.name!r} is inactive in this point (active "
                                 f"when {p.when[0]} is one of {list(p.when[1])}); leave it out")
            if p.name in params:
                try:
                    point[p.name] = p.normalize(params[p.name])
                except ValueError as err:
                    raise SpaceError(f"{who}: parameter {p.name!r}: {err}") from None
            elif on:
                raise SpaceError(f"{who}: parameter {p.name!r} is missing; allowed: {p.describe()}")
        return point


def _rng(rng: Any) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    if rng is None or isinstance(rng, int):
        return random.Random(rng)
    if hasattr(rng, "integers"):  # numpy Generator
        return random.Random(int(rng.integers(2**62)))
    raise TypeError(f"rng must be a random.Random, a numpy Generator, an int seed or None; got {rng!r}")
