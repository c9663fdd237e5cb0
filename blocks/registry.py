"""One registry for every searchable block: register once, create by kind and name.

A block is a class (or factory) registered under a *kind* (``neuron``, ``encoder``,
``token``, ``channel``, ``head`` ...) and a *name*. Its keyword-only constructor
arguments are split in two:

* context arguments, supplied by the model builder (``dim``, ``grid``, ``neuron`` ...),
  listed per kind in :data:`CONTEXT`;
* searchable parameters, everything else, which an architecture config may set.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

# Arguments the model builder passes to blocks of each kind; not settable from configs.
CONTEXT: dict[str, frozenset[str]] = {
    "neuron": frozenset(),
    "fp_lif": frozenset(),
    "encoder": frozenset({"in_dim", "dim", "grid", "neuron", "stem"}),
    "token": frozenset({"dim", "grid", "neuron"}),
    "channel": frozenset({"dim", "grid", "neuron"}),
    "head": frozenset({"dim", "num_classes"}),
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)  # searchable name -> default
    doc: str = ""

    def check(self, **kwargs: Any) -> None:
        """Validate a config's parameters (and the builder's context) without building."""
        unknown = sorted(set(kwargs) - set(self.params) - CONTEXT[self.kind])
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"{self.kind} '{self.name}' has no parameter {', '.join(map(repr, unknown))};"
                f" allowed: {allowed}"
            )
        checker = getattr(self.factory, "check_config", None)
        if checker is not None:
            checker(**kwargs)


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in CONTEXT}


def _searchable_params(kind: str, factory: Callable[..., Any]) -> dict[str, Any]:
    sig = inspect.signature(factory)
    out = {}
    for p in sig.parameters.values():
        if p.name in CONTEXT[kind] or p.name == "self" or p.kind is p.VAR_KEYWORD:
            continue
        out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator: ``@register("token", "axial")``."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown block kind {kind!r}; allowed: {', '.join(_REGISTRY)}")

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY[kind]:
            raise ValueError(f"{kind} '{name}' is registered twice")
        doc = (inspect.getdoc(factory) or "").split("\n")[0]
        _REGISTRY[kind][name] = Entry(kind, name, factory, _searchable_params(kind, factory), doc)
        return factory

    return deco


def get(kind: str, name: str) -> Entry:
    if kind not in _REGISTRY:
        raise KeyError(f"unknown block kind {kind!r}; allowed: {', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise KeyError(
            f"unknown {kind} {name!r}; allowed: {', '.join(sorted(_REGISTRY[kind]))}"
        ) from None


def create(kind: str, name: str, **kwargs: Any) -> Any:
    """Build the block ``kind``/``name`` from context and searchable keyword arguments."""
    entry = get(kind, name)
    entry.check(**kwargs)
    return entry.factory(**kwargs)


def available(kind: str | None = None) -> dict[str, list[str]] | list[str]:
    """Registered names: of one kind, or of every kind as a dict."""
    if kind is not None:
        if kind not in _REGISTRY:
            raise KeyError(f"unknown block kind {kind!r}; allowed: {', '.join(_REGISTRY)}")
        return sorted(_REGISTRY[kind])
    return {k: sorted(v) for k, v in _REGISTRY.items()}
