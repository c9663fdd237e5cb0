"""Search-space parameters: parsed from YAML, sampled, suggested to Optuna, listed."""
from __future__ import annotations

import json
import math
import numbers
import random
from dataclasses import dataclass, field
from typing import Any

from blocks.errors import NasError

from .targets import Concrete


class SpaceError(NasError):
    """A search space that does not load, or a point that does not fit its space.
    ``str()`` is one message: the file, the key path in the YAML and what is allowed."""


TYPES = ("categorical", "int", "float", "bool")
COMMON_KEYS = ("type", "target", "when", "per_stage", "doc")
TYPE_KEYS = {"categorical": ("choices",), "int": ("low", "high", "step", "log"),
             "float": ("low", "high", "step", "log"), "bool": ()}
PER_STAGE = ("double",)
MAX_TEST_VALUES = 64  # finite parameters up to this many values are checked value by value


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or type(v).__name__ in ("bool", "bool_")  # numpy bools too


def same(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` and ``1`` apart."""
    return _is_bool(a) == _is_bool(b) and bool(a == b)


def list_key(v: list) -> str:
    """The Optuna choice standing for a list-valued choice: its compact JSON, ``[2,2,6,2]``."""
    return json.dumps(v, separators=(",", ":"))


@dataclass
class Parameter:
    """One searchable parameter. ``choices`` (categorical, bool) are what Optuna sees: a
    list-valued choice appears as its :func:`list_key` string, decoded by :meth:`assign`."""

    name: str
    type: str
    targets: tuple[str, ...]
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    per_stage: str | None = None
    when: tuple[str, tuple] | None = None  # (parameter, values under which this one is active)
    doc: str = ""
    lists: dict[str, list] = field(default_factory=dict)  # list key -> the list
    paths: list[list[Concrete]] = field(default_factory=list)  # per target, filled by the space

    @property
    def finite(self) -> bool:
        return self.type != "float" or self.step is not None

    def count(self) -> int | None:
        """How many values (None for a continuous float)."""
        if self.type in ("categorical", "bool"):
            return len(self.choices)
        return round((self.high - self.low) / (self.step or 1)) + 1 if self.finite else None

    def _at(self, i: int) -> Any:
        v = self.low + i * (self.step or 1)
        return v if self.type == "int" else round(v, 12)

    def values(self) -> list:
        """Every value, in order (finite parameters only)."""
        if self.type in ("categorical", "bool"):
            return list(self.choices)
        if not self.finite:
            raise ValueError(f"parameter {self.name!r} is a continuous float")
        return [self._at(i) for i in range(self.count())]

    def test_values(self) -> list:
        """Values checked one by one at load: all of them, or the bounds and the middle."""
        if self.finite and self.count() <= MAX_TEST_VALUES:
            return self.values()
        mid = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        if self.finite:
            mid = self._at(round((mid - self.low) / (self.step or 1)))
        return [self.low, mid, self.high]

    def sample(self, rng: random.Random) -> Any:
        if self.type in ("categorical", "bool"):
            return self.choices[rng.randrange(len(self.choices))]
        if not self.log and self.finite:
            return self._at(rng.randrange(self.count()))
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            v = rng.uniform(self.low, self.high)
        v = round(v) if self.type == "int" else v
        return min(self.high, max(self.low, v))

    def suggest(self, trial: Any) -> Any:
        if self.type in ("categorical", "bool"):
            return trial.suggest_categorical(self.name, list(self.choices))
        kw = {"log": self.log} if self.log else {"step": self.step}
        if self.type == "int":
            return trial.suggest_int(self.name, self.low, self.high, **kw)
        return trial.suggest_float(self.name, self.low, self.high, **kw)

    def normalize(self, v: Any) -> Any:
        """The value as this parameter knows it; ValueError says what is allowed."""
        if self.type in ("categorical", "bool"):
            if isinstance(v, (list, tuple)) and self.lists:
                v = list_key(list(v))
            for c in self.choices:
                if same(c, v):
                    return c
            raise ValueError(f"{v!r} is not a choice; allowed: {', '.join(map(repr, self.choices))}")
        kind = numbers.Integral if self.type == "int" else numbers.Real
        ok = isinstance(v, kind) and not _is_bool(v) and self.low <= v <= self.high
        k = (v - self.low) / self.step if ok and self.step is not None else None
        if not ok or k is not None and abs(k - round(k)) > 1e-6:
            raise ValueError(f"{v!r} is not allowed; allowed: {self.describe()}")
        if k is not None:  # snap to the grid: 2.5000000000000004 -> 2.5
            return self._at(round(k))
        return int(v) if self.type == "int" else float(v)

    def describe(self) -> str:
        if self.type in ("categorical", "bool"):
            return ", ".join(map(repr, self.choices))
        extra = ", log" if self.log else (f", step {self.step}" if self.step else "")
        return f"{self.type}s in [{self.low}, {self.high}]{extra}"

    def assign(self, v: Any) -> list[tuple[Concrete, Any]]:
        """The (concrete path, value) writes for value ``v``."""
        v = self.lists.get(v, v) if isinstance(v, str) else v
        out = []
        for paths in self.paths:
            for k, path in enumerate(paths):
                if self.lists:
                    out.append((path, v[k]))
                else:
                    out.append((path, v * 2 ** k if self.per_stage == "double" else v))
        return out


def parse_parameter(name: Any, spec: Any, where: str) -> Parameter:
    """A :class:`Parameter` from its YAML mapping; ``where`` prefixes every message."""
    def fail(key: str, msg: str) -> SpaceError:
        return SpaceError(f"{where}.{key}: {msg}" if key else f"{where}: {msg}")

    if not isinstance(name, str) or not name or "/" in name:
        raise fail("", "a parameter name must be a non-empty string without '/' (Ray Tune "
                       "splits names on '/')")
    if not isinstance(spec, dict):
        raise fail("", f"must be a mapping with type and target; got {spec!r}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise fail("type", f"{'missing' if kind is None else f'unknown {kind!r}'}; "
                           f"allowed: {', '.join(TYPES)}")
    allowed = COMMON_KEYS + TYPE_KEYS[kind]
    for key in spec:
        if key not in allowed:
            raise fail(str(key), f"unknown key for a {kind} parameter; allowed: {', '.join(allowed)}")
    targets = spec.get("target")
    targets = [targets] if isinstance(targets, str) else targets
    if not targets or not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise fail("target", "missing or not a path; allowed: a dotted path into the "
                             "architecture (e.g. stages.*.skips.PT) or a list of them")
    p = Parameter(name, kind, tuple(targets), doc=str(spec.get("doc", "")))
    if kind == "bool":
        p.choices = (False, True)
    elif kind == "categorical":
        _choices(p, spec.get("choices"), fail)
    else:
        _bounds(p, spec, fail)
    per_stage = spec.get("per_stage")
    if per_stage is not None:
        if per_stage not in PER_STAGE:
            raise fail("per_stage", f"unknown {per_stage!r}; allowed: {', '.join(PER_STAGE)}")
        numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices)
        if kind == "bool" or p.lists or not numeric:
            raise fail("per_stage", "needs a numeric parameter (int, float or numeric choices); "
                                    "list choices are per stage already")
        p.per_stage = per_stage
    when = spec.get("when")
    if when is not None:
        if not isinstance(when, dict) or len(when) != 1:
            raise fail("when", "must be a mapping of one parameter to a value or a list of "
                               "values, e.g. {token: [axial, full]}")
        (parent, values), = when.items()
        p.when = (parent, values)  # checked against the parent by the space
    return p


def _choices(p: Parameter, choices: Any, fail) -> None:
    if not isinstance(choices, list) or not choices:
        raise fail("choices", "missing or empty; allowed: a non-empty list of values "
                              "(null, bool, int, float, str) or of per-stage lists")
    lists = [isinstance(c, list) for c in choices]
    if any(lists):
        if not all(lists) or not all(c and all(is_scalar(x) for x in c) for c in choices):
            raise fail("choices", "mixes lists and values, or has an empty or nested list; "
                                  "allowed: all values or all lists of values (one per stage)")
        p.lists = {list_key(c): c for c in choices}
        choices = list(p.lists)
    elif not all(is_scalar(c) for c in choices):
        raise fail("choices", f"has a value Optuna cannot store: {choices!r}; allowed: null, "
                              "bool, int, float, str, or lists of them")
    for i, c in enumerate(choices):
        if any(same(c, d) for d in choices[:i]):
            raise fail("choices", f"{c!r} appears twice")
    p.choices = tuple(choices)


def _bounds(p: Parameter, spec: dict, fail) -> None:
    kind = p.type
    num = (lambda v: isinstance(v, int)) if kind == "int" else (lambda v: isinstance(v, (int, float)))
    for key in ("low", "high"):
        if not num(spec.get(key)) or isinstance(spec.get(key), bool):
            raise fail(key, f"missing or not a number; allowed: {'an int' if kind == 'int' else 'a number'}")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if low >= high:
        raise fail("high", f"must be greater than low ({low}); got {high}")
    if not isinstance(log, bool):
        raise fail("log", f"must be true or false; got {log!r}")
    if log and low <= 0:
        raise fail("low", f"must be > 0 on a log scale; got {low}")
    if step is not None:
        if log:
            raise fail("step", "cannot be combined with log: true (Optuna samples one or the other)")
        if not num(step) or isinstance(step, bool) or step <= 0:
            raise fail("step", f"must be a positive {'int' if kind == 'int' else 'number'}; got {step!r}")
        k = (high - low) / step
        if abs(k - round(k)) > 1e-9:
            raise fail("high", f"high - low ({high} - {low}) must be a multiple of step {step}")
    elif kind == "int":
        step = None if log else 1
    p.low, p.high, p.log = (low, high, log) if kind == "int" else (float(low), float(high), log)
    p.step = step if kind == "int" or step is None else float(step)
