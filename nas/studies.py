"""The studies in a storage: list them, delete one, watch one run.

    python -m nas.studies --storage sqlite:///runs/quickstart/optuna.db     # or a study file
    python -m nas.studies studies/quickstart.yaml --delete quickstart [--yes]
    python -m nas.studies studies/quickstart.yaml --watch quickstart [--every 10]

The list gives each study's trials by state (as the end table, summary.md and the
dashboard count them), its best value, its last activity and the drivers running it.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from .search.results import trial_counts
from .search.storage import live_drivers, make_storage, open_study_storage
from .study import StudyError, load_study, run_command


def _storage(args):
    if args.storage:
        return args.storage, make_storage(args.storage)
    if args.study:
        cfg = load_study(args.study)
        return cfg.storage_url, open_study_storage(cfg, create=False)
    raise StudyError("--storage: give a storage URL (sqlite:///runs/NAME/optuna.db, ...) or a study file")


def describe(study) -> dict:
    """One study's line: name, trials by state, best, last activity, live drivers."""
    trials = study.get_trials(deepcopy=False)
    times = [t for t in (x.datetime_complete or x.datetime_start for x in trials) if t]
    best = [t for t in trials if t.state.name == "COMPLETE"]
    if len(study.directions) == 1 and best:
        value = f"{study.best_value:.4g} (trial {study.best_trial.number})"
    else:
        value = f"{len(study.best_trials)} on the Pareto front" if best else "–"
    return {"name": study.study_name, "trials": trial_counts(study), "best": value,
            "last": max(times).strftime("%Y-%m-%d %H:%M:%S") if times else "–",
            "drivers": ", ".join(live_drivers(study._storage, study._study_id)) or "none"}


def list_studies(url: str, storage) -> list[dict]:
    import optuna
    from rich.console import Console
    from rich.table import Table

    rows = [describe(optuna.load_study(study_name=s.study_name, storage=storage))
            for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    table = Table(title=f"studies in {url}", title_justify="left", min_width=len(url) + 11)
    for col in ("name", "trials", "best", "last activity", "running drivers"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["trials"], r["best"], r["last"], r["drivers"])
    Console(width=200).print(table)
    return rows


def _load(name: str, url: str, storage, flag: str):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise StudyError(f"{flag} {name}: no such study in {url}; allowed: "
                         f"{', '.join(names) or 'none (the storage is empty)'}") from None


def delete(name: str, url: str, storage, yes: bool) -> bool:
    import optuna

    study = _load(name, url, storage, "--delete")
    line = describe(study)["trials"]
    if not yes and input(f"delete study {name!r} ({line}) from {url}? [y/N] ").strip().lower() != "y":
        print("kept")
        return False
    optuna.delete_study(study_name=name, storage=storage)
    print(f"deleted study {name!r} ({line})")
    return True


def watch(name: str, url: str, storage, every: float) -> None:
    """A line of progress every ``every`` seconds while a driver runs the study (once if none)."""
    while True:
        d = describe(_load(name, url, storage, "--watch"))
        print(f"{datetime.now():%H:%M:%S} {name}: {d['trials']}; best {d['best']}; "
              f"drivers: {d['drivers']}", flush=True)
        if d["drivers"] == "none":
            print("no driver runs it: done watching")
            return
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.studies", description=__doc__.split("\n")[0])
    ap.add_argument("study", nargs="?", help="a study file: its storage (else --storage)")
    ap.add_argument("--storage", help="an Optuna storage URL")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--delete", metavar="NAME", help="delete this study (asks first unless --yes)")
    what.add_argument("--watch", metavar="NAME", help="print this study's progress while it runs")
    ap.add_argument("--yes", action="store_true", help="with --delete: do not ask")
    ap.add_argument("--every", type=float, default=10.0, help="with --watch: seconds between lines (10)")
    args = ap.parse_args(argv)

    def body() -> None:
        url, storage = _storage(args)
        if args.delete:
            delete(args.delete, url, storage, args.yes)
        elif args.watch:
            watch(args.watch, url, storage, args.every)
        else:
            list_studies(url, storage)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
