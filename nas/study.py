"""Study files: what a search runs, validated at the edge.

A study names the space, the data, the fidelity, the objectives, the Optuna sampler, the
Ray Tune scheduler, the trial budget and resources, the storage, the Ray address, the
repeats, where results live and the promotion stages. Errors name the file, the field and what is allowed.
Command-line flags override fields (:func:`apply_overrides`).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from blocks.config import format_errors, load_yaml_text, one_line, read_mapping
from blocks.errors import NasError
from search_spaces import SpaceError, load_space
from search_spaces.design import parse_fraction

from .cache import folder_problem
from .objectives import METRIC_KINDS
from .recipe import DataConfig, TrainConfig
from .samplers import SAMPLER_KINDS, SAMPLERS, SamplerKind
from .scoring import available_scorers

STUDY_DIR = Path(__file__).resolve().parents[1] / "studies"

SCHEDULERS = ("asha", "hyperband", "race", "none")


URI_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "file")  # results_storage


def check_stages(parents: dict[str, str | None]) -> None:
    """``{stage: its from}``: every ``from`` names a stage, and no chain loops (ValueError)."""
    for name, parent in parents.items():
        if parent is not None and parent not in parents:
            others = [n for n in parents if n != name]
            raise ValueError(f"promotion.{name}.from: unknown stage {parent!r}; allowed: "
                             f"{', '.join(others) or 'no other stage is defined'}")
    for name in parents:
        seen, cur = [name], parents[name]
        while cur is not None:
            if cur in seen:
                loop = seen[seen.index(cur):] + [cur]
                raise ValueError(f"promotion.{name}.from: the stages form a cycle: "
                                 + " from ".join(loop))
            seen.append(cur)
            cur = parents[cur]


class StudyError(NasError):
    """A study that cannot run; ``str()`` is one readable message naming file and field."""


class _Strict(BaseModel):
    # no unknown keys, and no silent coercion: `trials: true` or `trials: 1e26` is refused
    model_config = ConfigDict(extra="forbid", strict=True)


class Objective(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"] | None = None  # default: the metric's own

    @model_validator(mode="after")
    def _known(self) -> "Objective":
        if self.metric not in METRIC_KINDS:
            raise ValueError(f"metric: unknown {self.metric!r}; allowed: {', '.join(METRIC_KINDS)}")
        self.direction = self.direction or METRIC_KINDS[self.metric].direction
        return self


class Fidelity(_Strict):
    max_epochs: int = Field(ge=1)  # a full-budget trial trains this many epochs
    rung_epochs: int = Field(1, ge=1)  # epochs of the first rung (ASHA grace period)
    reduction_factor: float = Field(3.0, gt=1.0)
    max_steps_per_epoch: int | None = Field(None, ge=1)  # smoke tests only


class Sampler(_Strict):
    name: Literal[SAMPLERS] = "tpe"
    seed: int | None = 0
    options: dict[str, Any] = {}  # passed to the Optuna sampler's constructor
    # factorial: the share of the 2^k points of the space's two-level parameters, a regular
    # fraction of resolution IV or more (search_spaces/design.py): 1, 1/2, 1/4, ...
    fraction: str | int | None = None

    @property
    def kind(self) -> SamplerKind:
        return SAMPLER_KINDS[self.name]

    @property
    def fixed(self) -> bool:
        """Every point is known before any trial (grid, factorial): they are queued."""
        return self.kind.fixed

    def build(self, seed: int | None):
        """The Optuna sampler (nas/samplers.py)."""
        return self.kind.build(seed, self.options)

    @model_validator(mode="after")
    def _builds(self) -> "Sampler":
        if self.options and not self.kind.takes_options:
            raise ValueError(f"options: the {self.name} sampler takes none")
        if self.fraction is not None:
            if self.name != "factorial":
                raise ValueError("fraction: only with name: factorial")

            parse_fraction(self.fraction)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.build(self.seed)
        except (TypeError, ValueError) as err:
            raise ValueError(f"options: {one_line(err)}") from None
        return self


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class Race(_Strict):
    """``scheduler: race``: rounds at ``rungs`` (epochs; default from the fidelity: the first
    rung, then x reduction_factor, then max_epochs); after each, a point worse than the best
    at ``alpha`` (paired over seeds and validation images, ``correction`` for the number of
    comparisons, see docs/ablations.md) is stopped. ``reference``: the point the end table
    gives differences to, e.g. {PT: true, PC: true, TC: true, CT: false}."""

    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["range", "holm", "none"] = "range"
    rungs: list[int] | None = None
    reference: dict[str, Any] | None = None
    # best: drop the points worse than the best; effects: stop the study once every main
    # effect is decided (positive, negative, or negligible: inside +-margin accuracy points)
    answer: Literal["best", "effects"] = "best"
    margin: float = Field(1.0, gt=0, lt=100)  # accuracy points; also nas.effects' default
    # answer: effects: an effect still moving (its change since the previous rung, carried
    # on to the budget, could take it out of its decision) is not decided yet
    drift_guard: bool = True


class PromotionStage(_Strict):
    """Train the top K of the search (or, with ``from``, of another stage) at a larger
    budget. ``from: <stage>``: start each from that stage's checkpoint (a chain: search ->
    imagenet -> tit -> cifar10_ft); ``init_from``: a checkpoint file every architecture
    starts from instead; ``freeze``: parameter prefixes kept fixed (nas/training/finetune.py). The
    fine-tuning lr and warm-up are the recipe's own (``train: {lr, warmup_epochs}``)."""

    # `from` is a Python keyword: the field is `parent`, written and dumped as `from`
    model_config = ConfigDict(extra="forbid", strict=True, serialize_by_alias=True)

    top: int = Field(3, ge=1)
    epochs: int = Field(ge=1)
    data: dict[str, Any] = {}  # overrides of the study's data (root, subset: null, image_size)
    train: dict[str, Any] = {}  # overrides of the study's training recipe
    arch: dict[str, Any] = {}  # overrides of the architecture (image_size: 224, T: 6)
    workers: int = Field(1, ge=1)  # > 1: distributed data parallel through Ray Train
    use_gpu: bool = False
    repeats: int = Field(1, ge=1)
    parent: str | None = Field(None, alias="from")  # the stage this one fine-tunes
    init_from: str | None = None  # a checkpoint (relative: to the study file)
    freeze: list[str] = []

    @model_validator(mode="after")
    def _one_start(self) -> "PromotionStage":
        if self.parent is not None and self.init_from is not None:
            raise ValueError("init_from: a stage with `from` starts from its parent's "
                             "checkpoints; give one of from, init_from")
        if self.freeze and self.parent is None and self.init_from is None:
            raise ValueError("freeze: only when the stage starts from weights (from or init_from)")
        return self


class Prefilter(_Strict):
    """``prefilter:`` score ``candidates`` points of the space without training
    (:mod:`nas.zero_cost`) and start the search from the ``keep`` best, queued into the
    Optuna study before its sampler takes over."""

    score: str  # a registered scorer (nas.zero_cost)
    candidates: int = Field(ge=1, le=1_000_000)
    keep: int = Field(ge=1)
    batch: int = Field(16, ge=2)  # validation images per forward
    seed: int = 0
    T: int | None = Field(None, ge=1)  # None: each point's own T

    @field_validator("score")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in available_scorers():
            raise ValueError(f"unknown scorer {v!r}; allowed: {', '.join(available_scorers())}")
        return v

    @model_validator(mode="after")
    def _keep_fits(self) -> "Prefilter":
        if self.keep > self.candidates:
            raise ValueError(f"keep {self.keep} is more than its {self.candidates} candidates; "
                             f"allowed: 1 to {self.candidates}")
        return self


class Export(_Strict):
    top: int = Field(5, ge=1)
    out: str | None = None  # default: runs/<study>/export


class StudyConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # never '.', '..' or a path
    space: str  # a shipped space name or a path relative to the study file
    base: str | None = None  # replaces the space's base architecture (preset or YAML path)
    arch: dict[str, Any] = {}  # overrides of the base's top-level fields, e.g. {T: 2}
    data: DataConfig
    train: TrainConfig = TrainConfig(epochs=1)  # recipe; epochs come from fidelity
    fidelity: Fidelity
    objectives: list[Objective] = Field([Objective(metric="val_acc")], min_length=1)
    sampler: Sampler = Sampler()
    scheduler: Literal[SCHEDULERS] = "asha"  # nas.search.schedulers.SCHEDULER_KINDS
    race: Race = Race()
    trials: int | None = Field(None, ge=1, le=1_000_000)  # the study's total; grid: every point
    concurrency: int = Field(1, ge=1, le=100_000)
    reuse_actors: bool = True  # keep trial workers (and their imports) alive between trials
    resources: Resources = Resources()
    storage: str | None = None  # SQLAlchemy URL or journal:///path; default sqlite in runs/
    ray_address: str | None = None  # None: a local Ray for this run; 'auto' or host:port
    # where Ray Tune keeps trial checkpoints and experiment state, and promotion its
    # checkpoints, under <results_storage>/<name>/: a folder every node reaches (NFS ...)
    # or a pyarrow URI (s3://bucket/path, gs://, hdfs://, abfs://); default: the run folder
    results_storage: str | None = None
    worker_retries: int = Field(1, ge=0, le=10)  # Ray restarts a trial whose worker/node died
    repeats: int = Field(1, ge=1)  # seeds per point (ablations)
    max_attempts: int = Field(2, ge=1)  # a failed trial is retried by later runs up to this
    # store every trial's per-image correctness on the validation split each epoch (paired
    # tests between points: racing, calibration); on for scheduler: race
    record_predictions: bool = False
    trial_figures: bool = True  # each trial's learning curve and firing rates as dashboard PNGs
    runs_dir: str = "runs"  # relative: to the study file (absolute once loaded)
    export: Export = Export()
    prefilter: Prefilter | None = None  # start from the best training-free scores
    promotion: dict[str, PromotionStage] = {}
    smoke: dict[str, Any] = {}  # overrides applied by --smoke-test
    source: str | None = Field(None, exclude=True)
    _flags: dict[str, str] = PrivateAttr(default_factory=dict)  # study field -> the flag that set it

    def set_by(self, field: str) -> str:
        """What set a (dotted) field: the command-line flag that set it or a field above
        it, else the study file."""
        hits = [flag for f, flag in self._flags.items() if field == f or field.startswith(f + ".")
                or f.startswith(field + ".")]
        return hits[-1] if hits else f"the file {self.source}"

    @model_validator(mode="after")
    def _consistent(self) -> "StudyConfig":
        if not self.sampler.fixed and self.trials is None:
            raise ValueError("trials: required unless sampler.name is grid or factorial "
                             "(then every point of the design)")
        if len(self.objectives) > 1 and not self.sampler.kind.multi_objective:
            several = [n for n, k in SAMPLER_KINDS.items() if k.multi_objective]
            raise ValueError(f"sampler.name: {self.sampler.name} takes one objective; allowed with "
                             f"several: {', '.join(several)}")
        if self.prefilter is not None and self.sampler.fixed:
            free = [n for n, k in SAMPLER_KINDS.items() if not k.fixed]
            raise ValueError(f"prefilter: a {self.sampler.name} design trains every point; "
                             f"allowed with the samplers {', '.join(free)}")
        if len(self.objectives) > 1 and self.scheduler == "hyperband":
            raise ValueError("scheduler: hyperband prunes on one objective; allowed with several "
                             "objectives: asha (multi-objective successive halving), none")
        if self.fidelity.rung_epochs > self.fidelity.max_epochs:
            raise ValueError(f"fidelity.rung_epochs: {self.fidelity.rung_epochs} exceeds "
                             f"fidelity.max_epochs {self.fidelity.max_epochs}")
        if self.scheduler == "race":
            if not self.sampler.fixed or self.repeats < 2:
                raise ValueError("scheduler: race needs its points fixed in advance and paired "
                                 "seeds: sampler.name grid or factorial and repeats >= 2 "
                                 "(allowed otherwise: asha, hyperband, none)")
            rungs = self.race_rungs
            if rungs[0] < 1 or rungs != sorted(set(rungs)) or rungs[-1] != self.fidelity.max_epochs:
                raise ValueError(f"race.rungs: {self.race.rungs} must rise, from 1 epoch, to "
                                 f"fidelity.max_epochs {self.fidelity.max_epochs}")
            self.record_predictions = True  # the paired test reads them
        check_stages({k: st.parent for k, st in self.promotion.items()})
        return self

    @model_validator(mode="after")
    def _results_storage(self) -> "StudyConfig":
        scheme, sep, rest = (self.results_storage or "").partition("://")
        if sep and (scheme not in URI_SCHEMES or not rest.strip("/")):
            raise ValueError(f"results_storage: {self.results_storage}: allowed: a folder, or a URI "
                             f"such as s3://BUCKET/PATH with a scheme of {', '.join(URI_SCHEMES)}")
        return self

    @property
    def results_uri(self) -> str:
        """This study's results: ``<results_storage>/<name>`` (a folder or a URI), default
        the run folder. Ray Tune's experiments are in ``ray/`` below it."""
        if self.results_storage is None:
            return str(self.run_dir)
        return f"{self.results_storage.rstrip('/')}/{self.name}"

    @property
    def race_rungs(self) -> list[int]:
        """The epochs after which a race tests (the last: the full budget, no test)."""
        f = self.fidelity
        if self.race.rungs is not None:
            return list(self.race.rungs)
        rungs, r = [], float(f.rung_epochs)
        while round(r) < f.max_epochs:
            if not rungs or round(r) > rungs[-1]:
                rungs.append(round(r))
            r *= f.reduction_factor
        return rungs + [f.max_epochs]

    def load_space(self):
        """The study's search space, on the study's base architecture if it names one."""
        try:
            space = load_space(self.space)  # a problem inside the space file is named as such
        except SpaceError as err:
            text = str(err)
            if "no such search-space file" in text or "unknown search space" in text:
                raise StudyError(f"{self.source}: space: {text}") from None  # ... a wrong name, here
            raise
        if not (self.base or self.arch):
            return space
        try:
            return load_space(self.space, base=self.base, fixed=self.arch or None)
        except SpaceError as err:  # ... and one that the study's base/arch brings, as the study's
            msg = str(err).split(": ", 1)[-1]
            field = "arch" if msg.startswith("fixed") else "base"  # the space's words for arch
            msg = msg.removeprefix("fixed.").removeprefix("fixed: ")
            raise StudyError(f"{self.source}: {field} (applied to space {space.name!r}): {msg}") from None

    def definition(self, space) -> dict[str, Any]:
        """What makes the study's results comparable: the space (its base and parameters),
        the architecture overrides, the data (not where it lives), the training recipe, the
        fidelity, the objectives and the repeats. Budget, resources, sampler, storage and
        promotion may change between runs of one study; these may not."""
        params = [{"name": p.name, "type": p.type, "targets": list(p.targets),
                   "choices": [str(c) for c in p.choices], "low": p.low, "high": p.high,
                   "step": p.step, "log": p.log, "per_stage": p.per_stage,
                   "when": None if p.when is None else [p.when[0], [str(v) for v in p.when[1]]]}
                  for p in space.parameters]
        data = self.data.model_dump(mode="json", exclude={"root", "download", "num_workers", "decode"})
        return {"space": {"base": space.base.model_dump(mode="json"), "parameters": params},
                "data": data, "train": self.train.model_dump(mode="json"),
                "fidelity": self.fidelity.model_dump(mode="json"),
                "objectives": [o.model_dump(mode="json") for o in self.objectives],
                "repeats": self.repeats}

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
        return _resolved(base / self.name)

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


# ---- paths: relative ones are resolved once, at load --------------------------------
# In a study file, relative to the file's folder; given on the command line, relative to
# the working folder. Trials (other processes, other hosts) only ever see absolute paths.

def _absolute_url(url: str, base: Path) -> str:
    for scheme in ("sqlite:///", "journal://"):  # then the path: relative unless it starts with /
        if url.startswith(scheme):
            rest = url.removeprefix(scheme)
            if rest and not rest.startswith("/") and rest != ":memory:":
                return scheme + str((base / rest).resolve())
    return url


def _resolved(p: Path) -> Path:
    """``p`` resolved; a symbolic-link loop is left as it is, reported where it is used
    (:func:`output_folder`)."""
    try:
        return p.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(p))


def _absolute(path: Any, base: Path) -> Any:
    if not isinstance(path, str) or not path:
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else _resolved(base / p))


def _stage_paths(stage: Any, base: Path) -> Any:
    if not isinstance(stage, dict):
        return stage
    out = dict(stage)
    if isinstance(out.get("data"), dict):
        out["data"] = resolve_paths({"data": out["data"]}, base)["data"]
    if "init_from" in out:
        out["init_from"] = _absolute(out["init_from"], base)
    return out


def resolve_paths(data: dict, base: Path) -> dict:
    """``data`` (a study mapping, or part of one) with its path fields made absolute."""
    out = dict(data)
    for key in ("runs_dir", "results_storage"):
        if key in out and "://" not in str(out[key]):  # a URI is left as it is
            out[key] = _absolute(out[key], base)
    if isinstance(out.get("storage"), str):
        out["storage"] = _absolute_url(out["storage"], base)
    for key in ("data", "export"):
        sub = out.get(key)
        field = "root" if key == "data" else "out"
        if isinstance(sub, dict) and field in sub:
            out[key] = {**sub, field: _absolute(sub[field], base)}
    stages = out.get("promotion")
    if isinstance(stages, dict):
        out["promotion"] = {name: _stage_paths(st, base) for name, st in stages.items()}
    for field in ("space", "base"):  # a path (with a suffix), else a shipped name
        ref = out.get(field)
        if isinstance(ref, str) and Path(ref).suffix:
            out[field] = _absolute(ref, base)
    return out


# ---- command-line overrides ----------------------------------------------------------

# flag (argparse dest) -> the study field it sets
FLAG_FIELDS = {"trials": "trials", "epochs": "fidelity.max_epochs", "data": "data.name",
               "data_root": "data.root", "storage": "storage", "ray_address": "ray_address",
               "concurrency": "concurrency"}
SEARCH_FLAGS = ("--trials", "--epochs", "--concurrency")  # only the commands that train a search take them


class Override(NamedTuple):
    """One command-line override: the dotted study field, its value, the flag that set it."""

    field: str
    value: Any
    flag: str


def _nested(field: str, value: Any) -> dict:
    out: Any = value
    for part in reversed(field.split(".")):
        out = {part: out}
    return out


def parse_set(text: str) -> Override:
    """``--set data.root=DIR``: a dotted study field and a YAML value."""
    field, sep, raw = text.partition("=")
    field = field.strip()
    shown = text if len(text) <= 100 and "\n" not in text else repr(text[:60])[1:-1] + " ..."
    if not sep or not field or any(not p for p in field.split(".")):
        raise StudyError(f"--set {shown}: expected FIELD=VALUE with a dotted field, "
                         "e.g. --set data.root=DIR or --set resources.gpu=0")
    try:
        value = load_yaml_text(raw) if raw.strip() else None
    except (yaml.YAMLError, RecursionError) as err:
        raise StudyError(f"--set {shown}: the value is not valid YAML: {one_line(err)}") from None
    return Override(field, value, f"--set {text}")


def overrides_from_args(args: Any) -> list[Override]:
    """The common flags and every ``--set``, in that order (a later one wins)."""
    out = []
    for dest, field in FLAG_FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(Override(field, value, f"--{dest.replace('_', '-')} {value}"))
    out += [parse_set(s) for s in getattr(args, "set", None) or []]
    return out


def _blame(message: str, source: str, overrides: list[Override]) -> str:
    """Name the flag instead of the file for a problem with a field a flag set."""
    lines = []
    for line in message.splitlines():
        text = line.removeprefix(f"{source}: ")
        hit = [o for o in overrides if text == o.field or text.startswith((o.field + ":", o.field + "."))
               or (o.field.startswith(text.split(":")[0] + ".") and ":" in text)]
        lines.append(f"{hit[-1].flag}: {text}" if hit else line)
    return "\n".join(lines)


def load_study(path: str | Path, overrides: list[Override] | None = None,
               smoke: bool = False) -> StudyConfig:
    """Read and validate a study. With ``smoke``, the file's ``smoke`` section is merged in
    and the study becomes ``<name>-smoke`` (its own storage and run folder); ``overrides``
    (from the command line) come last. Relative paths are made absolute here."""
    p = resolve_study_path(path)
    data = read_mapping(p, "a study file", StudyError)
    if smoke:
        if not isinstance(data.get("smoke"), dict) or not data["smoke"]:
            raise StudyError(f"{p}: smoke: the study has no smoke section, so --smoke-test "
                             "cannot shrink it")
        data = _merge(data, data["smoke"])
        if isinstance(data.get("name"), str):
            data["name"] = f"{data['name']}-smoke"
    data.setdefault("runs_dir", "runs")  # the default, too, lives beside the study file
    data = resolve_paths(data, p.parent.resolve())
    overrides = overrides or []
    cwd = Path.cwd()
    for o in overrides:
        data = _merge(data, resolve_paths(_nested(o.field, o.value), cwd))
    fid = data.get("fidelity")
    if isinstance(fid, dict) and any(o.field == "fidelity.max_epochs" for o in overrides) \
            and not any(o.field == "fidelity.rung_epochs" for o in overrides):
        if isinstance(fid.get("max_epochs"), int) and fid["max_epochs"] >= 1:
            fid["rung_epochs"] = min(fid.get("rung_epochs", 1), fid["max_epochs"])  # --epochs
    try:
        study = StudyConfig.model_validate({**data, "source": str(p)})
    except ValidationError as err:
        raise StudyError(_blame(format_errors(err, str(p), StudyConfig), str(p), overrides)) from None
    study._flags = {o.field: o.flag for o in overrides}
    return study


def load_study_from_args(args: Any) -> StudyConfig:
    """The study a command line names, with its flags and ``--set`` applied."""
    return load_study(args.study, overrides_from_args(args), smoke=args.smoke_test)


def add_common_flags(ap, search: bool = True) -> None:
    """The flags every study command shares (run, export, promote, report, ...); the budget
    flags (--trials, --epochs, --concurrency) only where the command trains a search
    (``search``): a command that reads a study has no use for them."""
    ap.add_argument("study", help="study YAML file (or the name of one in studies/)")
    ap.add_argument("--smoke-test", action="store_true",
                    help="the study's smoke settings: tiny, on a CPU, as the study '<name>-smoke'")
    ap.add_argument("--set", action="append", metavar="FIELD=VALUE",
                    help="override any study field (repeatable; VALUE is YAML), e.g. "
                         "--set data.name=npz --set data.root=FILE --set resources.gpu=0")
    ap.add_argument("--data", help="data.name (cifar10, imagefolder, npz, digits, ...)")
    ap.add_argument("--data-root", help="data.root (a folder or .npz file)")
    ap.add_argument("--storage", help="storage: an Optuna storage URL "
                                      "(default: sqlite in the study's run folder)")
    ap.add_argument("--ray-address", help="ray_address: 'auto' or host:port of a Ray cluster")
    if search:  # SEARCH_FLAGS
        ap.add_argument("--trials", type=int, help="trials: the study's total number of trials")
        ap.add_argument("--epochs", type=int, help="fidelity.max_epochs")
        ap.add_argument("--concurrency", type=int, help="concurrency: trials at once")


def output_folder(path: Path, field: str, source: str | None) -> Path:
    """``path`` if a command may write its outputs there, else a StudyError naming the
    field or flag (a file, a symbolic-link loop, a parent not writable); creates nothing."""
    why = folder_problem(path)
    if why:
        where = f"{source}: {field}" if source and not field.startswith("--") else field
        raise StudyError(f"{where}: {path}: {why}; allowed: a folder that can be created and written")
    return path


def run_command(body: Callable[[], object]) -> int:
    """Exit code of a study command: 0, or 2 with one ``error: ...`` line (never a
    traceback) for any :class:`NasError`: the study, its space, a flag, the data, the
    storage or the Ray cluster is wrong."""
    try:
        body()
    except NasError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0
