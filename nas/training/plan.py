"""What one ``nas.train`` run is, from its command-line options: the architecture (a
preset or a file, ``--T``, ``--neuron-backend``), its data and training configs (an
exported file's recipe, then the flags), its CPU threads and the checkpoint it starts
from; checked before any data loads. An error is one line that starts with the flag to
blame (:class:`PlanError`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from blocks.config import ArchConfig, one_line
from blocks.errors import NasError
from blocks.neurons import BACKENDS
from blocks.neurons.backends import why_not

from ..recipe import SOURCES, DataConfig, TrainConfig
from .loop import resolve_device

# option (argparse dest) -> config field; an option left out (None) keeps the recipe's
# setting (an exported file's: what its trial was trained with), else the config's default
DATA_FLAGS = {"data": "name", "data_root": "root", "download": "download", "image_size": "image_size",
              "subset": "subset", "val_fraction": "val_fraction", "seed": "seed", "augment": "augment",
              "batch_size": "batch_size", "num_workers": "num_workers", "decode": "decode"}
TRAIN_FLAGS = {"epochs": "epochs", "lr": "lr", "optimizer": "optimizer", "weight_decay": "weight_decay",
               "warmup_epochs": "warmup_epochs", "label_smoothing": "label_smoothing",
               "grad_clip": "grad_clip", "amp": "amp", "seed": "seed", "device": "device",
               "max_steps_per_epoch": "max_steps_per_epoch"}


class PlanError(NasError):
    """Options that do not make a run; ``str()`` is one line starting with the flag to blame."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"{flag}: {message}" if flag else message)


def flag_of(field: str) -> str:
    """The ``nas.train`` flag that sets a data or training config field."""
    return "--" + {"T": "T", "name": "data", "root": "data-root"}.get(field, field.replace("_", "-"))


def _validation_message(err: ValidationError) -> str:
    return "; ".join(f"{flag_of(str(e['loc'][0]))}: {e['msg']}" if e["loc"] else e["msg"] for e in err.errors())


@dataclass(frozen=True)
class RunPlan:
    arch: ArchConfig
    data: DataConfig
    train: TrainConfig
    threads: int | None  # torch.set_num_threads, or torch's default
    init: dict | None  # a nas.training.finetune.InitFrom: the checkpoint to start from


def plan_run(options: Mapping[str, Any]) -> RunPlan:
    """The run that ``nas.train``'s ``options`` (by their argparse names; None: not given)
    describe, or a :class:`PlanError`."""
    import blocks

    get = options.get
    flag, source = ("--arch", get("arch")) if get("arch") is not None else ("--arch-config", get("arch_config"))
    if get("arch_config") is not None and not Path(get("arch_config")).is_file():
        raise PlanError(flag, f"no such file: {get('arch_config')}")
    if get("T") is not None and get("T") < 1:
        raise PlanError("--T", f"must be >= 1, got {get('T')}")
    try:
        arch = blocks.load_config(source, **({} if get("T") is None else {"T": get("T")}))
        recipe = blocks.read_recipe(get("arch_config")) if get("arch_config") else None
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise PlanError(flag, str(err).strip("'\"")) from None
    recipe = recipe or {}
    data_over = {f: get(k) for k, f in DATA_FLAGS.items() if get(k) is not None}
    train_over = {f: get(k) for k, f in TRAIN_FLAGS.items() if get(k) is not None}
    if get("data") is not None and get("data") != recipe.get("data", {}).get("name"):
        recipe = {**recipe, "data": {}}  # another data set: none of the recipe's data settings
    data_fields = {**recipe.get("data", {}), **data_over}
    if "name" not in data_fields:
        raise PlanError("--data", "required (the architecture has no recipe); allowed: " + ", ".join(SOURCES))
    name, root = data_fields["name"], data_fields.get("root")
    if name in ("npz", "imagefolder", "imagenet"):
        if root is None:
            raise PlanError("--data-root", f"required with --data {name}")
        if not Path(root).expanduser().exists():
            raise PlanError("--data-root", f"not found: {root}")
    try:
        data = DataConfig.model_validate(data_fields)
        cfg = TrainConfig.model_validate({**recipe.get("train", {}), **train_over})
    except ValidationError as err:
        raise PlanError("", _validation_message(err)) from None
    try:
        device = resolve_device(cfg.device)
    except ValueError as err:
        raise PlanError("--device", str(err)) from None
    if data.image_size is not None:
        try:
            blocks.load_config(arch, image_size=data.image_size)
        except blocks.ConfigError as err:
            raise PlanError("--image-size" if get("image_size") else "--arch-config: recipe.data.image_size",
                            f"{data.image_size}: {one_line(err)}") from None
    if get("neuron_backend") is not None:
        arch = blocks.with_neuron_backend(arch, get("neuron_backend"))
    for field, backend in blocks.neuron_backends(arch).items():  # the flag's, or the file's
        reason = why_not(backend, device)
        if reason is not None:
            allowed = ", ".join(b for b in BACKENDS if why_not(b, device) is None)
            raise PlanError("--neuron-backend" if get("neuron_backend") is not None else f"{flag}: {field}",
                            f"{backend!r} cannot run on {device.type}: {reason.removeprefix('it ')}; "
                            f"allowed on {device.type}: {allowed}")
    threads = get("threads") if get("threads") is not None else recipe.get("threads")
    if threads is not None and threads < 1:
        raise PlanError("--threads", f"must be >= 1, got {threads}")
    if get("freeze") and not get("init_from"):
        raise PlanError("--freeze", "only with --init-from (fine-tuning)")
    init = {"checkpoint": get("init_from"), "freeze": get("freeze") or []} if get("init_from") else None
    return RunPlan(arch, data, cfg, threads, init)
