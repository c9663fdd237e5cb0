"""What one trial of our searcher costs its Optuna storage: SQL statements and latency.

    python benchmarks/storage_scaling.py                       # a private PostgreSQL (tests/postgres.py)
    python benchmarks/storage_scaling.py --storage postgresql+psycopg2://USER@HOST/DB \\
        --writers 1,8 --trials 12 --epochs 10 --prefill 0,400

Each writer is a process driving a :class:`nas.search.searcher.StudySearcher` on one shared
study exactly as Ray Tune does, without training: ``suggest`` (the budget counted and the
trial asked under the study's lock, the point checked against the study's others, the
trial claimed), ``on_trial_result`` once per epoch (Optuna's ``report``, the first also
records the node), ``on_trial_complete`` (attributes and ``tell``). Statements are counted
with an SQLAlchemy ``before_cursor_execute`` listener on the writer's engine (the driver's
own thread only: the heartbeat thread's beats are listed apart, per interval). ``--prefill``
first adds that many finished trials to the study: the ask reads the whole study (budget
and duplicate checks, TPE), so its cost grows with the study.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHASES = ("ask", "epoch", "tell")
STUDY = ("name: {name}\nspace: neurons\nbase: tiny\ndata: {{name: digits}}\n"
         "fidelity: {{max_epochs: {epochs}}}\nscheduler: none\ntrials: 1000000\n")


def _writer(args: tuple) -> dict:
    """One driver: ``trials`` trials through the searcher; per phase, statement counts and
    seconds of every call."""
    url, study_file, trials, epochs, seed, start_at = args
    import optuna
    from sqlalchemy import event

    from nas.search.searcher import StudySearcher
    from nas.search.storage import make_storage
    from nas.study import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_study(study_file)
    storage = make_storage(url)
    main = threading.current_thread()
    count = {"n": 0}

    def on_statement(*_a) -> None:
        if threading.current_thread() is main:
            count["n"] += 1

    event.listen(storage.engine, "before_cursor_execute", on_statement)
    searcher = StudySearcher(cfg, cfg.load_space(), storage, budget=10**6)
    out = {p: {"statements": [], "seconds": []} for p in PHASES}

    def timed(phase: str, fn, *a) -> None:
        count["n"], t0 = 0, time.perf_counter()
        fn(*a)
        out[phase]["seconds"].append(time.perf_counter() - t0)
        out[phase]["statements"].append(count["n"])

    while time.time() < start_at:  # every writer starts at once
        time.sleep(0.01)
    t0 = time.perf_counter()
    for i in range(trials):
        tid = f"w{seed}-{i}"
        timed("ask", searcher.suggest, tid)
        for e in range(1, epochs + 1):
            result = {"epoch": e, "val_acc": 0.1 + 0.01 * e, "node_id": "n1", "node_ip": "10.0.0.1",
                      "node_host": "h", "worker_pid": 1}
            timed("epoch", searcher.on_trial_result, tid, result)
        final = {**result, "arch_json": "{}", "params": 1000, "wall_seconds": 1.0, "T": 1}
        timed("tell", searcher.on_trial_complete, tid, final)
    out["wall"] = time.perf_counter() - t0
    searcher.heartbeat.stop()
    return out


def prefill(url: str, name: str, n: int, study_file: Path) -> None:
    """Add ``n`` finished trials (a sampler's points) to the study."""
    import optuna

    from nas.search.engine import open_study
    from nas.study import load_study

    if n <= 0:
        return
    cfg = load_study(study_file)
    study, _ = open_study(cfg, cfg.load_space())
    space = cfg.load_space()
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))  # in memory
    for _ in range(n):
        t = scratch.ask()
        space.define_by_run(t)
        scratch.tell(t, 0.5)
    study.add_trials([optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                value=0.5, user_attrs={"repeat": 0, "epochs": 1})
                      for t in scratch.get_trials()])


def run(url: str, writers: int, trials: int, epochs: int, prefilled: int, tmp: Path) -> dict:
    name = f"scaling-w{writers}-p{prefilled}-{int(time.time())}"
    study_file = tmp / f"{name}.yaml"
    study_file.write_text(STUDY.format(name=name, epochs=epochs))
    prefill(url, name, prefilled, study_file)
    start_at = time.time() + 8.0  # after every writer's imports
    with mp.get_context("spawn").Pool(writers) as pool:
        outs = pool.map(_writer, [(url, study_file, trials, epochs, w, start_at) for w in range(writers)])
    row = {"writers": writers, "prefill": prefilled, "trials": writers * trials,
           "trials_per_s": writers * trials / max(o["wall"] for o in outs)}
    for p in PHASES:
        st = [s for o in outs for s in o[p]["statements"]]
        sec = sorted(s for o in outs for s in o[p]["seconds"])
        row[p] = {"statements": statistics.mean(st), "p50_ms": 1000 * sec[len(sec) // 2],
                  "p95_ms": 1000 * sec[min(len(sec) - 1, int(0.95 * len(sec)))]}
    row["per_trial_statements"] = row["ask"]["statements"] + epochs * row["epoch"]["statements"] + \
        row["tell"]["statements"]
    row["per_trial_ms"] = row["ask"]["p50_ms"] + epochs * row["epoch"]["p50_ms"] + row["tell"]["p50_ms"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storage", help="an SQLAlchemy URL (default: a private PostgreSQL server)")
    ap.add_argument("--writers", default="1,8", help="concurrent drivers (processes), comma-separated")
    ap.add_argument("--trials", type=int, default=12, help="trials per writer")
    ap.add_argument("--epochs", type=int, default=10, help="results (epochs) per trial")
    ap.add_argument("--prefill", default="0", help="finished trials in the study first, comma-separated")
    args = ap.parse_args()
    import shutil
    import tempfile

    stop = None
    url = args.storage
    if url is None:
        sys.path.insert(0, str(ROOT / "tests"))
        import postgres

        url, stop = postgres.start(durable=True)  # fsync on, as a real server
    tmp = Path(tempfile.mkdtemp(prefix="nas-scaling-"))
    try:
        rows = [run(url, int(w), args.trials, args.epochs, int(p), tmp)
                for p in args.prefill.split(",") for w in args.writers.split(",")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if stop:
            stop()
    from nas.search.storage import HEARTBEAT_S

    print(f"storage: {url.split('://')[0]}; {args.trials} trials per writer, {args.epochs} epochs each; "
          "statements per call (mean), latency p50 / p95 ms")
    print(f"{'writers':>7} {'prefill':>7} | {'ask st':>6} {'p50':>7} {'p95':>7} | {'epoch st':>8} {'p50':>6} "
          f"{'p95':>6} | {'tell st':>7} {'p50':>6} {'p95':>6} | {'st/trial':>8} {'ms/trial':>8} {'trials/s':>8}")
    for r in rows:
        a, e, t = r["ask"], r["epoch"], r["tell"]
        print(f"{r['writers']:>7} {r['prefill']:>7} | {a['statements']:>6.1f} {a['p50_ms']:>7.1f} "
              f"{a['p95_ms']:>7.1f} | {e['statements']:>8.1f} {e['p50_ms']:>6.1f} {e['p95_ms']:>6.1f} | "
              f"{t['statements']:>7.1f} {t['p50_ms']:>6.1f} {t['p95_ms']:>6.1f} | "
              f"{r['per_trial_statements']:>8.0f} {r['per_trial_ms']:>8.0f} {r['trials_per_s']:>8.1f}")
    print(f"heartbeat (a thread per driver): 1 write per driver + 1 per running trial every {HEARTBEAT_S:g} s")


if __name__ == "__main__":
    main()
