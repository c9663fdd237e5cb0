"""Run a study: ``python -m nas.run studies/skip_connections.yaml``.

Trials are Ray Tune trials sampled by Optuna (through Ray Tune's OptunaSearch on a real
Optuna storage), pruned by the study's scheduler on validation accuracy per epoch.
Running the same command again continues the study: finished trials are kept, trials of
a killed driver are re-queued, and ``trials`` is the study's total. ``--fresh`` restarts.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from .study import StudyConfig, StudyError, add_common_flags, apply_overrides, load_study, run_command


def make_sampler(cfg: StudyConfig):
    import optuna

    s = cfg.sampler
    opts = dict(s.options)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, **opts)
    if s.name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=s.seed, **opts)
    if s.name == "gp":
        return optuna.samplers.GPSampler(seed=s.seed, **opts)
    if s.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=s.seed, **opts)
    return optuna.samplers.RandomSampler(seed=s.seed)  # random, and grid (all points queued)


def make_scheduler(cfg: StudyConfig):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    metric, mode = cfg.objectives[0].metric, "max" if cfg.directions[0] == "maximize" else "min"
    f = cfg.fidelity
    if cfg.scheduler == "asha":
        return ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=f.max_epochs,
                             grace_period=f.rung_epochs, reduction_factor=f.reduction_factor)
    if cfg.scheduler == "hyperband":
        return HyperBandScheduler(time_attr="epoch", metric=metric, mode=mode,
                                  max_t=f.max_epochs, reduction_factor=f.reduction_factor)
    return FIFOScheduler()


def open_study(cfg: StudyConfig, fresh: bool = False):
    """The Optuna study of ``cfg`` in its storage, created if needed; refuses a stored
    study whose directions differ (Optuna would load it silently)."""
    import optuna

    from .storage import make_storage

    storage = make_storage(cfg.storage_url)
    if fresh:
        try:
            optuna.delete_study(study_name=cfg.name, storage=storage)
        except KeyError:
            pass
        shutil.rmtree(cfg.run_dir / "ray", ignore_errors=True)
    study = optuna.create_study(study_name=cfg.name, storage=storage, load_if_exists=True,
                                directions=cfg.directions)
    stored = [d.name.lower() for d in study.directions]
    if stored != cfg.directions:
        raise StudyError(f"{cfg.source}: objectives: the stored study {cfg.name!r} in "
                         f"{cfg.storage_url} has directions {stored}, the file asks for "
                         f"{cfg.directions}; use --fresh to start over or another name")
    study.set_user_attr("study_config", cfg.model_dump(mode="json"))
    return study, storage


def _init_ray(cfg: StudyConfig) -> None:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if ray.is_initialized():
        return
    if cfg.ray_address:
        ray.init(address=cfg.ray_address, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_TMPDIR", "/tmp/ray")
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=False)


def _progress_callback(budget: int, done_before: int):
    from ray.tune import Callback

    class Progress(Callback):
        """One line per finished trial, with the study's count."""

        def __init__(self) -> None:
            self.done = done_before

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            r = trial.last_result or {}
            what = (f"error {r['error']}" if "error" in r else
                    f"val_acc {r.get('val_acc', float('nan')):.4f} after {r.get('epoch', 0)} epochs")
            print(f"[{self.done}/{budget}] trial {trial.config.get('optuna_trial')} "
                  f"{trial.config.get('params')} repeat {trial.config.get('repeat')}: {what}",
                  flush=True)

        on_trial_error = on_trial_complete

    return Progress()


def _check_data(cfg: StudyConfig) -> None:
    """Load the data once in the driver: a missing root fails here with one message, not
    in every trial, and a decode cache is written before concurrent trials want it."""
    from .data import DataError, load_data

    try:
        load_data(cfg.data, "cpu")
    except DataError as err:
        raise StudyError(f"{cfg.source}: data: {err}") from None


def run(cfg: StudyConfig, fresh: bool = False) -> "object":
    """Run (or continue) the study; returns the Optuna study."""
    from ray import tune

    from .results import print_ranking
    from .searcher import StudySearcher, enqueue_grid, recover_interrupted
    from .storage import counts_toward_budget
    from .trainable import run_trial

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = cfg.load_space()
    if not cfg.ray_address:
        _check_data(cfg)
    study, storage = open_study(cfg, fresh)
    budget = cfg.trials
    if cfg.sampler.name == "grid":
        points = space.grid()
        budget = budget or len(points) * cfg.repeats
    recovered = recover_interrupted(study)
    if recovered:
        print(f"re-queued {recovered} trial(s) interrupted in an earlier run", flush=True)
    if cfg.sampler.name == "grid":
        enqueue_grid(study, points, cfg.repeats)
    done = sum(counts_toward_budget(t, 1e18) for t in study.get_trials(deepcopy=False))
    remaining = budget - done
    print(f"study {cfg.name}: {done}/{budget} trials in {cfg.storage_url}; "
          f"{max(remaining, 0)} to run", flush=True)
    if remaining > 0:
        _init_ray(cfg)
        searcher = StudySearcher(cfg, space, storage, make_sampler(cfg), budget)
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, study=cfg.model_dump_json()),
            {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=make_scheduler(cfg),
                                        num_samples=remaining,
                                        max_concurrent_trials=cfg.concurrency,
                                        reuse_actors=cfg.reuse_actors),
            run_config=tune.RunConfig(name=f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str(cfg.run_dir / "ray"), verbose=0,
                                      callbacks=[_progress_callback(budget, done)]),
        )
        tuner.fit()
    print_ranking(study, cfg)
    return study


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.run", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    ap.add_argument("--trials", type=int, help="the study's total number of trials")
    ap.add_argument("--epochs", type=int, help="fidelity.max_epochs")
    ap.add_argument("--data-root", help="data.root")
    ap.add_argument("--ray-address", help="'auto' or host:port of a running Ray cluster")
    ap.add_argument("--concurrency", type=int, help="trials at once")
    ap.add_argument("--fresh", action="store_true", help="delete the stored study and start over")
    args = ap.parse_args(argv)
    return run_command(lambda: run(load_study(args.study, apply_overrides(args), smoke=args.smoke_test),
                                   fresh=args.fresh))


if __name__ == "__main__":
    sys.exit(main())
