"""Per-trial overhead of a study: Ray start-up and worker start/imports versus training.

    python benchmarks/trial_overhead.py studies/quickstart.yaml --trials 6

Runs the study twice in a scratch folder, with and without reusing trial workers
(``reuse_actors``), and prints per run: the driver's wall time, the time until Ray was up,
and per trial the span Optuna saw (ask to tell) against the trial's own training time
(data, model build and epochs, measured inside the worker). Overhead = span - training.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna


def one_run(study: str, trials: int, reuse: bool, epochs: int | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nas-overhead-"))
    url = f"sqlite:///{tmp / 'optuna.db'}"
    over = tmp / "study.yaml"
    import yaml

    data = yaml.safe_load(Path(study).read_text())
    data.update(trials=trials, reuse_actors=reuse, scheduler="none", concurrency=1)
    if epochs:
        data.setdefault("fidelity", {})["max_epochs"] = epochs
        data["fidelity"]["rung_epochs"] = 1
    for key in ("space", "base"):  # paths stay relative to the original study
        ref = data.get(key)
        if isinstance(ref, str) and Path(ref).suffix and not Path(ref).is_absolute():
            data[key] = str((Path(study).parent / ref).resolve())
    over.write_text(yaml.safe_dump(data))
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "nas.run", str(over), "--storage", url],
                          cwd=tmp, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    s = optuna.load_study(study_name=data["name"], storage=url)
    spans, trains = [], []
    for t in s.get_trials():
        spans.append((t.datetime_complete - t.datetime_start).total_seconds())
        trains.append(t.user_attrs["wall_seconds"])
    first = min(t.datetime_start for t in s.get_trials()).timestamp()
    return {"reuse": reuse, "wall": wall, "to_first_trial": first - start, "spans": spans,
            "trains": trains}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [one_run(args.study, args.trials, reuse, args.epochs) for reuse in (True, False)]
    print(f"{'reuse_actors':<13}{'driver s':>9}{'to 1st trial s':>15}{'train s/trial':>14}"
          f"{'span s/trial':>13}{'overhead s/trial (median, first, rest)':>40}")
    for r in rows:
        over = [s - t for s, t in zip(r["spans"], r["trains"])]
        rest = statistics.median(over[1:]) if len(over) > 1 else float("nan")
        print(f"{str(r['reuse']):<13}{r['wall']:>9.1f}{r['to_first_trial']:>15.1f}"
              f"{statistics.median(r['trains']):>14.2f}{statistics.median(r['spans']):>13.2f}"
              f"{statistics.median(over):>16.2f}{over[0]:>12.2f}{rest:>12.2f}")


if __name__ == "__main__":
    main()
