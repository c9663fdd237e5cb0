"""Architectures as validated configs: one :class:`ArchConfig` describes a whole network.

Configs round-trip through YAML without loss. Every error names the field and the
allowed values; :func:`load_config` adds the file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import registry
from .errors import NasError

PRESET_DIR = Path(__file__).parent / "configs"


class BlockSpec(BaseModel):
    """A registered block by name, plus its searchable parameters (``{name: axial, bias: false}``
    or just ``axial``)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NeuronSpec(BaseModel):
    """A registered neuron kind plus its parameters (``{kind: lif, tau: 2.0}``)."""

    model_config = ConfigDict(extra="allow")
    kind: str = "lif"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"kind": v} if isinstance(v, str) else v

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _known(self) -> "NeuronSpec":
        try:
            registry.get("neuron", self.kind).check(**self.params)
            registry.create("neuron", self.kind, **self.params)  # value checks (tau > 1 ...)
        except (KeyError, ValueError) as err:
            raise ValueError(str(err).strip('"')) from None
        return self


class Skips(BaseModel):
    """Skip connections of seed 002 (Fig. 3), each a switch. Reference wiring: PT+PC+TC.

    The skip from the patch encoding into a stage's *first* token block is not a switch:
    it is always on ("the skip connection from the patch block to the first token block is
    set as default", seed 002), so PT only concerns the stage's later blocks."""

    model_config = ConfigDict(extra="forbid")
    PT: bool = True  # patch encoding -> token LIF input of blocks 2.. (block 1: always)
    PC: bool = True  # patch encoding -> channel LIF input
    TC: bool = True  # token output -> channel LIF input
    CT: bool = False  # channel output -> next block's token LIF input


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dim: int = Field(ge=1)
    depth: int = Field(ge=1)
    encoder: BlockSpec
    token: BlockSpec = BlockSpec(name="axial")
    channel: BlockSpec = BlockSpec(name="mlp")
    skips: Skips = Skips()
    neuron: NeuronSpec | None = None  # overrides the architecture's neuron in this stage


class ArchConfig(BaseModel):
    """A whole network: input, classes, time steps, neurons, and its stages."""

    model_config = ConfigDict(extra="forbid")
    name: str = "custom"
    family: Literal["spiking_mlp", "snn_mlp"] = "spiking_mlp"
    image_size: int = Field(32, ge=1)
    in_channels: int = Field(3, ge=1)
    num_classes: int = Field(10, ge=1)
    T: int = Field(4, ge=1)
    neuron: NeuronSpec = NeuronSpec()
    stages: list[StageConfig] = Field(min_length=1)
    head: BlockSpec = BlockSpec(name="spiking")
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("stages", mode="before")
    @classmethod
    def _stages_list(cls, v: Any) -> Any:
        if not isinstance(v, list):
            raise ValueError("must be a list of stages")
        return v

    @model_validator(mode="after")
    def _blocks_fit(self) -> "ArchConfig":
        for i, st, grid, in_dim in self.walk():
            for kind in ("encoder", "token", "channel"):
                spec: BlockSpec = getattr(st, kind)
                where = f"stages.{i}.{kind}"
                try:
                    entry = registry.get(kind, spec.name)
                    ctx = {"dim": st.dim, "grid": grid}
                    if kind == "encoder":
                        ctx.update(in_dim=in_dim, stem=i == 0)
                    entry.check(**ctx, **spec.params)
                except KeyError as err:
                    raise ValueError(f"{where}.name: {str(err).strip(chr(34))}") from None
                except ValueError as err:
                    raise ValueError(_locate(str(err), f"stages.{i}", kind)) from None
        try:
            registry.get("head", self.head.name).check(**self.head.params)
        except (KeyError, ValueError) as err:
            raise ValueError(f"head: {str(err).strip(chr(34))}") from None
        return self

    def walk(self):
        """Yield ``(index, stage, output grid, input dim)`` for every stage; checks that
        each encoder's stride divides the grid it receives."""
        grid, in_dim = self.image_size, self.in_channels
        for i, st in enumerate(self.stages):
            try:
                stride = registry.get("encoder", st.encoder.name).factory.stride(**st.encoder.params)
            except KeyError as err:
                raise ValueError(f"stages.{i}.encoder.name: {str(err).strip(chr(34))}") from None
            except (TypeError, ValueError) as err:
                raise ValueError(f"stages.{i}.encoder.{str(err).strip(chr(34))}") from None
            if grid % stride:
                raise ValueError(
                    f"stages.{i}.encoder: a grid of {grid} does not divide by its stride "
                    f"{stride} (image_size {self.image_size}); allowed: image sizes divisible "
                    f"by {self._total_stride()}")
            grid //= stride
            yield i, st, grid, in_dim
            in_dim = st.dim

    def _total_stride(self) -> int:
        total = 1
        for st in self.stages:
            try:
                total *= registry.get("encoder", st.encoder.name).factory.stride(**st.encoder.params)
            except (KeyError, TypeError, ValueError):
                pass
        return total

    def grids(self) -> list[int]:
        return [g for _, _, g, _ in self.walk()]


def _locate(msg: str, stage: str, kind: str) -> str:
    """Prefix a block's message with its place: ``stages.1.dim: ...`` for the stage's own
    fields, ``stages.1.encoder.edge_12: ...`` for a block parameter."""
    field = msg.split(":", 1)[0]
    if field == "dim":
        return f"{stage}.{msg}"
    if field.isidentifier():
        return f"{stage}.{kind}.{msg}"
    return f"{stage}.{kind}: {msg}"


def one_line(err: Exception) -> str:
    """An error's text on one line (YAML errors: line, column and the problem)."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


class StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a duplicate key instead of keeping its last value."""


def _mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


MAX_YAML_NODES = 100_000  # a document that expands past this through aliases is refused


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` becomes once its aliases are expanded (shared nodes counted
    each time they are used, as construction would copy them into the data)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = MAX_YAML_NODES + 1  # a node that contains itself never ends
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
    total = 1
    for child in children:
        total += _expanded(child, sizes)
        if total > MAX_YAML_NODES:
            break
    sizes[id(node)] = total
    return total


def load_yaml_text(text: str) -> Any:
    """Safe, strict YAML (no duplicate key) whose aliases expand to at most
    ``MAX_YAML_NODES`` nodes, checked before any object is built (an alias bomb of a few
    hundred bytes would otherwise fill the memory)."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size = _expanded(node, {})
        except RecursionError:
            size = MAX_YAML_NODES + 1
        if size > MAX_YAML_NODES:
            raise yaml.YAMLError(f"the document expands to more than {MAX_YAML_NODES:,} nodes "
                                 "through its aliases (&anchor / *alias); allowed: a plain "
                                 "document, aliases that stay small")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """A YAML file's content (UTF-8, a BOM allowed, no duplicate keys); ``error`` with one
    line naming the file if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except OSError as err:
        raise error(f"{path}: cannot be read: {err.strerror or err}") from None
    try:
        return load_yaml_text(text)
    except (yaml.YAMLError, RecursionError) as err:
        raise error(f"{path}: not valid YAML: {one_line(err)}") from None


def read_mapping(path: Path, what: str, error: type[Exception]) -> dict:
    """A YAML file that must hold a mapping; ``error`` (one line naming the file) if not."""
    data = read_yaml(path, error)
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a mapping of fields")
    return data


class ConfigError(NasError):
    """A config that does not validate; ``str()`` is one readable message per problem."""


def format_errors(err: ValidationError, source: str | None = None,
                  root: type[BaseModel] | None = None) -> str:
    """One line per problem of a pydantic error: ``source: field.path: message``; an unknown
    field lists the fields allowed there (looked up from ``root``, default :class:`ArchConfig`)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
            allowed = _allowed_fields(root or ArchConfig, e["loc"])
            if allowed:
                msg += f"; allowed: {', '.join(allowed)}"
        text = f"{loc}: {msg}" if loc else msg
        lines.append(f"{source}: {text}" if source else text)
    return "\n".join(lines)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc[:-1]:
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index or a dict key: stay on the item's model
        sub = _model_in(model.model_fields[part].annotation)
        if sub is None:
            return []
        model = sub
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]  # not internal ones


def load_config(x: "str | Path | ArchConfig | dict", **overrides: Any) -> ArchConfig:
    """An :class:`ArchConfig` from a preset name, a YAML path, a dict or a config."""
    source = None
    if isinstance(x, ArchConfig):
        data = x.model_dump(mode="json")
    elif isinstance(x, dict):
        data = dict(x)
    else:
        path = Path(x)
        if not path.suffix and not path.exists():
            path = PRESET_DIR / f"{x}.yaml"
            if not path.exists():
                raise ConfigError(f"unknown architecture {str(x)!r}; presets: {', '.join(presets())}"
                                  " (or give a path to an architecture YAML)")
        elif not path.exists():
            raise ConfigError(f"{path}: no such architecture file")
        source = str(path)
        data = read_mapping(path, "an architecture file", ConfigError)
    data.pop(RECIPE_KEY, None)  # how it was trained: read by nas.train (read_recipe), not a block
    data.update(overrides)
    try:
        return ArchConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, source)) from None


RECIPE_KEY = "recipe"  # an exported architecture file's training settings (data, train)


def read_recipe(path: "str | Path") -> dict[str, Any] | None:
    """The ``recipe`` section of an architecture file (what it was trained with), if any."""
    recipe = read_mapping(Path(path), "an architecture file", ConfigError).get(RECIPE_KEY)
    if recipe is not None and not isinstance(recipe, dict):
        raise ConfigError(f"{path}: {RECIPE_KEY}: must be a mapping (data, train)")
    return recipe


def with_neuron_backend(x: "str | Path | ArchConfig | dict", backend: str) -> ArchConfig:
    """The same architecture with every spiking neuron (the default and each stage's own)
    computed by ``backend``; the maths and the parameters do not change."""
    data = load_config(x).model_dump(mode="json")
    for part in [data, *data["stages"]]:
        if part.get("neuron"):
            part["neuron"]["backend"] = backend
    return load_config(data)


def neuron_backends(cfg: ArchConfig) -> dict[str, str]:
    """Every neuron backend the config sets, by field (``neuron.backend``,
    ``stages.1.neuron.backend``); a neuron without one uses the default, ``auto``."""
    found = {"neuron.backend": cfg.neuron.params.get("backend", "auto")}
    for i, st in enumerate(cfg.stages):
        if st.neuron is not None:
            found[f"stages.{i}.neuron.backend"] = st.neuron.params.get("backend", "auto")
    return found


def dump_config(cfg: ArchConfig, path: "str | Path | None" = None) -> str:
    """The config as YAML text; also written to ``path`` if given."""
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
