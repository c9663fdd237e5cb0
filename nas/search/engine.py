"""The search engine: a study's Ray Tune trials, sampled by Optuna through the study's
searcher, pruned by its scheduler, stored in its Optuna storage (``python -m nas.run`` is
the command over :func:`run`; ``nas.calibrate`` runs two studies with it).

Running a study again continues it: finished trials are kept, trials of a killed driver
are re-queued, and ``trials`` is the study's total. ``fresh`` starts it over.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path

import optuna
import ray
import torch
from ray import tune
from ray.tune import Callback

import blocks
from blocks.config import one_line
from search_spaces import SpaceError
from search_spaces.design import fractional_design

from ..cache import cache_dir, remove_if_owner_gone
from ..study import SEARCH_FLAGS, Override, StudyConfig, StudyError, output_folder
from ..training.data import DataError, load_data
from ..training.trainable import remove_orphan_trial_dirs
from ..training.trial import train_trial
from . import prefilter
from .artifacts import artifact_dir
from .cluster import check_results_storage, ray_storage_path, remove_ray_results, warn_if_not_shared
from .effects_check import parameters_without_effect
from .results import config_label, print_ranking
from .runlog import run_log
from .schedulers import make_scheduler, print_summary
from .searcher import StudySearcher, enqueue_grid, recover_interrupted, retry_failed
from .storage import budget_used, open_study_storage


def open_study(cfg: StudyConfig, space, fresh: bool = False):
    """The Optuna study of ``cfg`` in its storage, created if needed; refuses a stored
    study of the same name that searched something else (another space, data, recipe,
    fidelity or objectives: Optuna would load it silently and mix the results)."""
    storage = open_study_storage(cfg)
    if fresh:
        try:
            optuna.delete_study(study_name=cfg.name, storage=storage)
        except KeyError:
            pass
        remove_ray_results(cfg)  # name is never '.', '..' or a path
    study = optuna.create_study(study_name=cfg.name, storage=storage, load_if_exists=True,
                                directions=cfg.directions)
    stored = [d.name.lower() for d in study.directions]
    if stored != cfg.directions:
        raise StudyError(f"{cfg.source}: objectives: the stored study {cfg.name!r} in "
                         f"{cfg.storage_url} has directions {stored}, the file asks for "
                         f"{cfg.directions}; use --fresh to start over or another name")
    _same_definition(cfg, study, cfg.definition(space))
    study.set_user_attr("study_config", cfg.model_dump(mode="json"))
    with warnings.catch_warnings():  # experimental in Optuna, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.metric for o in cfg.objectives])  # the dashboard's labels
    return study, storage


# a part of a study's definition -> the study field that sets it
_DEFINED_BY = {"space.base": "base", "space.parameters": "space"}


def _differences(stored, mine, path: str = "") -> list[tuple[str, object, object]]:
    """The dotted paths (to the first list or value) where two definitions differ."""
    if isinstance(stored, dict) and isinstance(mine, dict):
        return [d for k in sorted(set(stored) | set(mine), key=str)
                for d in _differences(stored.get(k), mine.get(k), f"{path}.{k}".lstrip("."))]
    return [] if stored == mine else [(path, stored, mine)]


def _same_definition(cfg: StudyConfig, study, mine: dict) -> None:
    stored = study.user_attrs.get("definition")
    if stored is None:
        study.set_user_attr("definition", mine)
        return
    differ = _differences(stored, mine)
    if differ:
        shown = [f"{p} (stored {_brief(a)}, now {_brief(b)}, from "
                 f"{cfg.set_by(next((v for k, v in _DEFINED_BY.items() if p.startswith(k)), p))})"
                 for p, a, b in differ[:3]]
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise StudyError(
            f"{cfg.source}: name: the stored study {cfg.name!r} in {cfg.storage_url} searched "
            f"something else: {'; '.join(shown)}{more}; give this study another name, or "
            "--fresh to delete the stored one")


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _init_ray(cfg: StudyConfig) -> None:
    """A local Ray for this run, or the cluster at ``ray_address``; one error line if it
    cannot be reached."""
    _ray_env()
    if ray.is_initialized():
        return
    try:
        if cfg.ray_address:
            _probe(cfg.ray_address)
            ray.init(address=cfg.ray_address, log_to_driver=False)
        elif os.environ.get(JOIN_LOCAL_RAY):
            ray.init(address=os.environ[JOIN_LOCAL_RAY], log_to_driver=False)  # never ours to stop
        else:
            start_local_ray()
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        where = f"the Ray cluster at {cfg.ray_address!r}" if cfg.ray_address else "a local Ray"
        raise StudyError(f"{cfg.source}: ray_address: cannot start or reach {where}: {one_line(err)}"
                         + ("; start one with `ray start --head`, or leave ray_address unset "
                            "for a local Ray" if cfg.ray_address else "")) from None


# A Ray already running on this machine that runs without ray_address join instead of
# starting their own (a test suite, a notebook of many studies): its address (host:port).
# They never stop it or remove its session; whoever started it does.
JOIN_LOCAL_RAY = "SPIKING_MLP_NAS_RAY"


def _ray_env() -> None:
    """Ray's settings for our runs, unless the environment has its own."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def start_local_ray(cpus: int | None = None) -> str:
    """Start a local Ray (``cpus`` CPUs; default: all this machine's) with our settings; its
    session folder is marked as this process's. Returns its address, which other processes
    can join (:data:`JOIN_LOCAL_RAY`)."""
    _ray_env()
    os.environ.setdefault("RAY_TMPDIR", "/tmp/ray")
    # Ray's memory monitor kills a worker with an error that Ray Tune (2.60) does not
    # handle: the whole run stops. Without it, a trial that runs the machine out of
    # memory is killed by the kernel (Ray makes its workers the first choice) and
    # recorded as FAIL like any dead worker, and the study goes on.
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    remove_dead_sessions(Path(os.environ["RAY_TMPDIR"]))
    ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    mark_session(_session_dir())
    return ray.get_runtime_context().gcs_address


def _probe(address: str, attempts: int = 3, timeout: float = 2.0) -> None:
    """A ``host:port`` Ray address must accept a connection within a few seconds (Ray itself
    would retry for minutes); ``auto`` is left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    for attempt in range(attempts):
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            return
        except OSError as err:
            if attempt == attempts - 1:
                raise ConnectionError(f"nothing answers at {host}:{port} ({err.strerror or err}) "
                                      f"after {attempts} attempts") from None
            time.sleep(1.0)


SESSION_MARKER = "spiking-mlp-nas.pid"  # written into the session folder of a Ray we start


def mark_session(session: str | Path) -> None:
    """Mark a local Ray's session folder as ours: the pid of the driver that started it."""
    (Path(session) / SESSION_MARKER).write_text(f"{os.getpid()}\n")


def remove_dead_sessions(tmpdir: Path) -> list[Path]:
    """Delete the session folders (logs) of local Rays that a driver of ours started
    (:func:`mark_session`) and that is gone, e.g. killed. A session without our marker
    (``ray start``, another program) is never touched, whatever its name says."""
    owners = {d: _session_owner(d) for d in sorted(tmpdir.glob("ray/session_2*"))}
    return remove_if_owner_gone({d: pid for d, pid in owners.items() if pid is not None})


def _session_dir() -> str | None:
    node = getattr(ray._private.worker, "_global_node", None)
    return node.get_session_dir_path() if node is not None else None


def stop_local_ray() -> None:
    """Shut down (or leave) Ray; delete its session folder (its logs; the trials' results
    are in the study's run folder) if this process started it (:func:`mark_session`), so
    that runs leave nothing in /tmp, and a Ray that was joined is left as it is."""
    session = _session_dir()
    ray.shutdown()
    if session and _session_owner(Path(session)) == os.getpid():
        shutil.rmtree(session, ignore_errors=True)


def _session_owner(session: Path) -> int | None:
    try:
        return int((session / SESSION_MARKER).read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def ray_session(cfg: StudyConfig):
    """Ray for one or several runs (``nas.calibrate`` trains two studies in one): started or
    joined here; a local Ray this call started is shut down, its session folder removed."""
    mine = not ray.is_initialized()
    _init_ray(cfg)
    try:
        yield
    finally:
        if mine and not cfg.ray_address:
            stop_local_ray()

        remove_orphan_trial_dirs(cache_dir("trials"))  # a paused race trial's, its worker gone


def check_resources(cfg: StudyConfig) -> None:
    """Fail before any trial when no node of the Ray cluster can hold one trial."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": cfg.resources.cpu, "GPU": cfg.resources.gpu}
    if any(all(node.get(k, 0.0) >= v for k, v in need.items() if v > 0) for node in nodes):
        return
    biggest = max(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)), default={})
    have = f"{biggest.get('CPU', 0):g} CPUs and {biggest.get('GPU', 0):g} GPUs"
    cpu_study = Path(cfg.source or ".").with_name(f"{cfg.name}_cpu.yaml")
    raise StudyError(
        f"{cfg.source}: resources: a trial asks {cfg.resources.cpu:g} CPUs and "
        f"{cfg.resources.gpu:g} GPUs, but the largest node of the Ray cluster has {have}, so "
        "no trial could start; to run here: --set resources.cpu=1 --set resources.gpu=0 "
        "(and --concurrency N), or --smoke-test for the study's tiny version"
        + (f"; {cpu_study} is this study at CPU scale" if cpu_study.is_file() else ""))


QUIET_S = 30.0  # on long runs, a trial's epoch is printed when the terminal was quiet this long


def _progress_callback(cfg: StudyConfig, space, budget: int, done_before: int, on_restart):
    full = cfg.fidelity.max_epochs
    metric = cfg.objectives[0].metric
    order = [p.name for p in space.parameters]

    class Progress(Callback):
        """One line per finished trial, with the study's count and how it ended; on long
        runs, a trial's epoch when nothing was printed for ``QUIET_S`` seconds."""

        def __init__(self) -> None:
            self.done, self.said = done_before, time.time()

        def _name(self, trial) -> str:
            return (f"trial {trial.config.get('optuna_trial')} "
                    f"{config_label(trial.config.get('params') or {}, order)} repeat {trial.config.get('repeat')}")

        def _line(self, trial, what: str) -> None:
            self.done += 1
            print(f"[{self.done}/{budget}] {self._name(trial)}: {what}", flush=True)
            self.said = time.time()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if time.time() - self.said >= QUIET_S and "epoch" in result:
                print(f"  {self._name(trial)}: epoch {int(result['epoch'])}/{full}, {metric} "
                      f"{result.get(metric, float('nan')):.4f}", flush=True)
                self.said = time.time()

        def on_trial_complete(self, iteration, trials, trial, **info):
            r = trial.last_result or {}
            epoch = int(r.get("epoch", 0))
            if "error" in r:
                what = f"FAILED after {epoch} epoch(s): {r['error']}"
            elif epoch < full:
                what = f"pruned at epoch {epoch}/{full} ({metric} {r.get(metric, float('nan')):.4f})"
            else:
                what = f"{metric} {r.get(metric, float('nan')):.4f} (full budget, {full} epoch(s))"
            self._line(trial, what)

        def on_trial_recover(self, iteration, trials, trial, **info):
            on_restart(trial.trial_id)
            print(f"trial {trial.config.get('optuna_trial')}: its worker or node died; Ray "
                  f"restarts it (worker_retries {cfg.worker_retries})", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            epoch = int((trial.last_result or {}).get("epoch", 0))
            self._line(trial, f"FAILED: its worker died after {epoch} epoch(s) (see the Ray logs)")

    return Progress()


MAX_PARAMS = 10**10  # a point of a space larger than this is a typo in a bound, not a network


def check_data_and_space(cfg: StudyConfig, space) -> tuple[tuple[int, int, int], int]:
    """Load the data once in the driver (a missing root fails here with one message, not
    in every trial, and a decode cache is written before concurrent trials want it), then
    build, on PyTorch's meta device (no memory), the space's extreme points (or all of a
    small grid) for this data: an image size the networks cannot take, or a bound that
    makes an absurd network, fails here rather than in every trial. Returns the images'
    (channels, height, width) and the number of classes."""
    try:
        data = load_data(cfg.data, "cpu")
    except DataError as err:
        raise StudyError(f"{cfg.source}: data: {err}") from None
    small = space.size is not None and space.size <= 64
    for point in space.grid() if small else space.extremes():
        try:
            with torch.device("meta"):
                model = blocks.build(space.to_config(point), num_classes=data.num_classes,
                                     in_channels=data.in_channels, image_size=data.image_size)
        except RuntimeError as err:  # a size that overflows even on the meta device
            n, why = float("inf"), one_line(err)
        except (blocks.ConfigError, ValueError) as err:
            raise StudyError(f"{cfg.source}: data.image_size: the data's {data.image_size} px "
                             f"images do not fit the space {space.name!r} (point {point}): "
                             f"{one_line(err).split(': ', 1)[-1]}") from None
        else:
            n, why = sum(p.numel() for p in model.parameters()), ""
        if n > MAX_PARAMS:
            raise StudyError(f"{cfg.source}: space {space.name!r}: the point {point} has {n:.3g} "
                             f"parameters (more than {MAX_PARAMS:.0e}{'; ' + why if why else ''}); "
                             "check the bounds of its widths")
    return (data.in_channels, data.image_size, data.image_size), data.num_classes


def check_race_budget(cfg: StudyConfig, points: int, budget: int) -> None:
    """A race tests every point of its grid with all its seeds in each round: a budget that
    leaves a point short of its repeats would stop the race mid-way."""
    need = points * cfg.repeats
    if cfg.scheduler == "race" and budget < need:
        raise StudyError(f"{cfg.source}: trials: a race trains all {points} points of its grid "
                         f"with their {cfg.repeats} seeds ({points} x {cfg.repeats} = {need} trials), "
                         f"but trials is {budget}; allowed: leave trials unset (every point) or "
                         f"at least {need}, or a smaller space")


def fixed_design(cfg: StudyConfig, space):
    """The points of a fixed design, and the factorial design itself (None for a grid),
    whose fraction, generators and aliases are printed here."""
    if cfg.sampler.name != "factorial":
        return space.grid(), None
    try:
        design = fractional_design(space, cfg.sampler.fraction or 1)
    except SpaceError as err:
        raise StudyError(f"{cfg.source}: sampler: {err}") from None
    print(design.describe(), flush=True)
    return design.points, design


def _command(module: str, cfg: StudyConfig, smoke: bool, overrides: list[Override]) -> str:
    """The command line of ``module`` on this study, with the overrides this run used (so
    that it names the same study when pasted), quoted for a POSIX shell. A command that
    reads a study has no search flags (``--trials``, ``--epochs``, ``--concurrency``): it
    gets them as ``--set FIELD=VALUE``."""
    words = ["python", "-m", module, str(cfg.source)] + (["--smoke-test"] if smoke else [])
    for o in overrides:
        flag, _, value = o.flag.partition(" ")
        if module != "nas.run" and flag in SEARCH_FLAGS:
            flag, value = "--set", f"{o.field}={o.value}"
        words += [flag, value]
    return " ".join(shlex.quote(w) for w in words)


def dashboard_command(cfg: StudyConfig) -> str:
    """optuna-dashboard on the study's storage, with its trials' artifacts (figures, YAML)."""
    return (f"optuna-dashboard {shlex.quote(cfg.storage_url)} "
            f"--artifact-dir {shlex.quote(str(artifact_dir(cfg)))}")


def print_next_steps(cfg: StudyConfig, smoke: bool, overrides: list[Override] = ()) -> None:
    over = list(overrides)
    print(f"\nThe study {cfg.name!r} lives in {cfg.storage_url}. Next:\n"
          f"  {dashboard_command(cfg)}      # watch or browse it; a trial's page shows its figures\n"
          f"  {_command('nas.export', cfg, smoke, over)}      # the best architectures as YAML\n"
          f"  {_command('nas.report', cfg, smoke, over)}      # figures and summary.md\n"
          f"  {_command('nas.run', cfg, smoke, over)} --fresh      # start it over", flush=True)


def _search(cfg: StudyConfig, space, storage, budget: int, done: int, remaining: int) -> None:
    """Ray Tune trials sampled through the study's searcher until the budget is reached."""
    check_resources(cfg)
    warn_if_not_shared(cfg)
    searcher = StudySearcher(cfg, space, storage, budget=budget)
    race = cfg.scheduler == "race"  # every trial of the race is live at once, most paused
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, study=cfg.model_dump_json()),
        {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher,
                                    scheduler=make_scheduler(cfg, remaining, searcher.set_attrs, space),
                                    num_samples=remaining,
                                    max_concurrent_trials=None if race else cfg.concurrency,
                                    reuse_actors=cfg.reuse_actors),
        run_config=tune.RunConfig(name=f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=ray_storage_path(cfg), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=cfg.worker_retries),
                                  callbacks=[_progress_callback(cfg, space, budget, done, searcher.restarted)]),
    )
    try:
        tuner.fit()
    except RuntimeError as err:
        if "low on memory" not in str(err):
            raise
        raise StudyError(  # a cluster's memory monitor killed a trial: Ray Tune stops
            f"{cfg.source}: a trial's worker was killed by Ray's memory monitor (its node "
            "ran low on memory) and Ray Tune stopped the run; nothing finished is lost: run "
            "the same command again to continue; to avoid it, fewer trials per node "
            "(--concurrency, --set resources.cpu=N) or a smaller space or batch_size") from None
    finally:
        searcher.heartbeat.stop()


def _reload(cfg: StudyConfig, storage):
    """The study as stored now: another driver's ``--fresh`` may have deleted and created it
    again while this run trained (the searcher writes by name, so the trials are there)."""
    try:
        return optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        raise StudyError(f"{cfg.source}: the study {cfg.name!r} was deleted from "
                         f"{cfg.storage_url} while this run trained (another driver's --fresh?); "
                         "run the command again to start it over") from None


def run(cfg: StudyConfig, fresh: bool = False) -> "object":
    """Run (or continue) the study, print its ranking and what its scheduler adds; returns
    the Optuna study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    output_folder(cfg.run_dir, "runs_dir", cfg.source)
    space = cfg.load_space()
    budget, design = cfg.trials, None
    if cfg.sampler.fixed:
        points, design = fixed_design(cfg, space)
        budget = budget or len(points) * cfg.repeats
        check_race_budget(cfg, len(points), budget)
    check_results_storage(cfg)
    shape = None if cfg.ray_address else check_data_and_space(cfg, space)
    study, storage = open_study(cfg, space, fresh)
    if design is not None:
        study.set_user_attr("design", design.as_attr())
    recovered = recover_interrupted(study)
    if recovered:
        print(f"re-queued {recovered} trial(s) interrupted in an earlier run", flush=True)
    retried, given_up = retry_failed(study, cfg.max_attempts)
    if retried:
        print(f"retrying {retried} failed trial(s) (at most {cfg.max_attempts} attempts each)",
              flush=True)
    if cfg.sampler.fixed:
        enqueue_grid(study, points, cfg.repeats)
    done = budget_used(study.get_trials(deepcopy=False))
    remaining = budget - done
    print(f"study {cfg.name}: {done}/{budget} trials in {cfg.storage_url}; "
          f"{max(remaining, 0)} to run", flush=True)
    if given_up:
        print(f"{given_up} trial(s) failed {cfg.max_attempts} time(s) and are not retried (their "
              "errors are in the table below and in the dashboard); fix the cause and start over "
              "with --fresh, or allow more with --set max_attempts=N", flush=True)
    if remaining > 0:

        for line in parameters_without_effect(space, *shape) if shape else []:
            print(line, file=sys.stderr, flush=True)  # before any trial: a switch that does nothing

        print(f"watch it live: {dashboard_command(cfg)}\nRay's and Optuna's logs: "
              f"{cfg.run_dir / 'run.log'}", flush=True)
        prefilter.apply(cfg, study, space, log=lambda m: print(m, flush=True))
        with run_log(cfg.run_dir / "run.log"), ray_session(cfg):
            _search(cfg, space, storage, budget, done, remaining)
        study = _reload(cfg, storage)
    print_ranking(study, cfg)
    if prefilter.funnel_line(study):
        print(prefilter.funnel_line(study), flush=True)
    print_summary(study, cfg)
    return study
