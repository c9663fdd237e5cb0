"""Study files: what a search runs, validated at the edge.

A study names the space, the data, the fidelity, the objectives, the Optuna sampler, the
Ray Tune scheduler, the trial budget and resources, the storage, the Ray address, the
repeats, and the promotion stages. Errors name the file, the field and what is allowed.
Command-line flags override fields (:func:`apply_overrides`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blocks.config import format_errors, read_mapping

from .data import DataConfig
from .train import TrainConfig

STUDY_DIR = Path(__file__).resolve().parents[1] / "studies"

# metric -> its direction when used as an objective
METRICS = {"val_acc": "maximize", "params": "minimize", "T": "minimize",
           "energy_uj": "minimize", "sops": "minimize", "firing_rate": "minimize",
           "sparsity": "minimize", "macs": "minimize", "ann_flops": "minimize"}
SAMPLERS = ("tpe", "nsga2", "gp", "cmaes", "random", "grid")
SCHEDULERS = ("asha", "hyperband", "none")


class StudyError(ValueError):
    """A study that cannot run; ``str()`` is one readable message naming file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"] | None = None  # default: the metric's own

    @model_validator(mode="after")
    def _known(self) -> "Objective":
        if self.metric not in METRICS:
            raise ValueError(f"metric: unknown {self.metric!r}; allowed: {', '.join(METRICS)}")
        self.direction = self.direction or METRICS[self.metric]
        return self


class Fidelity(_Strict):
    max_epochs: int = Field(ge=1)  # a full-budget trial trains this many epochs
    rung_epochs: int = Field(1, ge=1)  # epochs of the first rung (ASHA grace period)
    reduction_factor: float = Field(3.0, gt=1.0)
    max_steps_per_epoch: int | None = Field(None, ge=1)  # smoke tests only


class Sampler(_Strict):
    name: Literal["tpe", "nsga2", "gp", "cmaes", "random", "grid"] = "tpe"
    seed: int | None = 0
    options: dict[str, Any] = {}  # passed to the Optuna sampler's constructor


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class PromotionStage(_Strict):
    top: int = Field(3, ge=1)
    epochs: int = Field(ge=1)
    data: dict[str, Any] = {}  # overrides of the study's data (root, subset: null, image_size)
    train: dict[str, Any] = {}  # overrides of the study's training recipe
    arch: dict[str, Any] = {}  # overrides of the architecture (image_size: 224, num_classes)
    workers: int = Field(1, ge=1)  # > 1: distributed data parallel through Ray Train
    use_gpu: bool = False
    repeats: int = Field(1, ge=1)


class Export(_Strict):
    top: int = Field(5, ge=1)
    out: str | None = None  # default: runs/<study>/export


class StudyConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    space: str  # a shipped space name or a path relative to the study file
    base: str | None = None  # replaces the space's base architecture (preset or YAML path)
    arch: dict[str, Any] = {}  # overrides of the base's top-level fields, e.g. {T: 2}
    data: DataConfig
    train: TrainConfig = TrainConfig(epochs=1)  # recipe; epochs come from fidelity
    fidelity: Fidelity
    objectives: list[Objective] = Field([Objective(metric="val_acc")], min_length=1)
    sampler: Sampler = Sampler()
    scheduler: Literal["asha", "hyperband", "none"] = "asha"
    trials: int | None = Field(None, ge=1)  # the study's total; default for grid: every point
    concurrency: int = Field(1, ge=1)
    reuse_actors: bool = True  # keep trial workers (and their imports) alive between trials
    resources: Resources = Resources()
    storage: str | None = None  # SQLAlchemy URL or journal:///path; default sqlite in runs/
    ray_address: str | None = None  # None: a local Ray for this run; 'auto' or host:port
    repeats: int = Field(1, ge=1)  # seeds per point (ablations)
    runs_dir: str = "runs"
    export: Export = Export()
    promotion: dict[str, PromotionStage] = {}
    smoke: dict[str, Any] = {}  # overrides applied by --smoke-test
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "StudyConfig":
        if self.sampler.name != "grid" and self.trials is None:
            raise ValueError("trials: required unless sampler.name is grid (then every point)")
        if len(self.objectives) > 1 and self.sampler.name == "cmaes":
            raise ValueError("sampler.name: cmaes takes one objective; allowed with several: "
                             "tpe, nsga2, gp, random, grid")
        if self.fidelity.rung_epochs > self.fidelity.max_epochs:
            raise ValueError(f"fidelity.rung_epochs: {self.fidelity.rung_epochs} exceeds "
                             f"fidelity.max_epochs {self.fidelity.max_epochs}")
        return self

    def load_space(self):
        """The study's search space, on the study's base architecture if it names one."""
        from search_spaces import SpaceError, load_space

        space = load_space(self.space)  # a problem of the space file is named as such
        if not (self.base or self.arch):
            return space
        try:
            return load_space(self.space, base=self.base, fixed=self.arch or None)
        except SpaceError as err:  # ... and one that the study's base/arch brings, as the study's
            field = "base" if self.base else "arch"
            msg = str(err).split(": ", 1)[-1]
            raise StudyError(f"{self.source}: {field} (applied to space {space.name!r}): {msg}") from None

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def run_dir(self) -> Path:
        base = Path(self.runs_dir)
        if not base.is_absolute() and self.source:
            base = Path.cwd() / base
        return (base / self.name).resolve()

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.run_dir / 'optuna.db'}"


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_study_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists() and not p.suffix and (STUDY_DIR / f"{p}.yaml").exists():
        p = STUDY_DIR / f"{p}.yaml"
    if not p.exists():
        raise StudyError(f"{path}: no such study file")
    return p


def load_study(path: str | Path, overrides: dict | None = None, smoke: bool = False) -> StudyConfig:
    """Read and validate a study; ``overrides`` (nested dict) and the file's ``smoke``
    section (when ``smoke``) are merged in first."""
    p = resolve_study_path(path)
    data = read_mapping(p, "a study file", StudyError)
    if smoke:
        data = _merge(data, data.get("smoke") or {})
    data = _merge(data, overrides or {})
    fid = data.get("fidelity")
    if isinstance(fid, dict) and "max_epochs" in (overrides or {}).get("fidelity", {}):
        fid["rung_epochs"] = min(fid.get("rung_epochs", 1), fid["max_epochs"])  # --epochs
    try:
        study = StudyConfig.model_validate({**data, "source": str(p)})
    except ValidationError as err:
        raise StudyError(format_errors(err, str(p), StudyConfig)) from None
    for field in ("space", "base"):  # paths in a study are relative to its file
        ref = getattr(study, field)
        if ref and Path(ref).suffix and not Path(ref).is_absolute():
            setattr(study, field, str((p.parent / ref).resolve()))
    return study


def apply_overrides(args: Any) -> dict:
    """Nested overrides from the common command-line flags."""
    over: dict[str, Any] = {}
    if getattr(args, "trials", None) is not None:
        over["trials"] = args.trials
    if getattr(args, "epochs", None) is not None:
        over.setdefault("fidelity", {})["max_epochs"] = args.epochs
    if getattr(args, "data_root", None) is not None:
        over.setdefault("data", {})["root"] = args.data_root
    if getattr(args, "storage", None) is not None:
        over["storage"] = args.storage
    if getattr(args, "ray_address", None) is not None:
        over["ray_address"] = args.ray_address
    if getattr(args, "concurrency", None) is not None:
        over["concurrency"] = args.concurrency
    return over


def add_common_flags(ap) -> None:
    """The flags every study command shares (run, export, promote, report)."""
    ap.add_argument("study", help="study YAML file (or the name of one in studies/)")
    ap.add_argument("--storage", help="Optuna storage URL (default: sqlite in runs/<study>/)")
    ap.add_argument("--smoke-test", action="store_true", help="apply the study's smoke settings")


def run_command(body: Callable[[], object]) -> int:
    """Exit code of a study command: 0, or 2 with one ``error: ...`` line (never a
    traceback) when the study, its space or a flag is wrong."""
    from search_spaces import SpaceError

    try:
        body()
    except (StudyError, SpaceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
