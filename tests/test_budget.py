"""Exact budgets under many drivers: counting the budget and asking for a trial happen
under one lock on the study (nas.search.storage.budget_lock), so four drivers claiming at once
end with exactly the budget, on PostgreSQL and on SQLite."""
import shutil
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from nas.search import searcher as searcher_module
from nas.search.searcher import StudySearcher
from nas.search.storage import budget_used, make_storage
from nas.study import load_study

sys.path.insert(0, str(Path(__file__).parent))  # tests/postgres.py
import postgres  # noqa: E402

BUDGET, DRIVERS = 6, 4


@pytest.fixture(scope="module")
def pg_url():
    url, stop = postgres.start()
    yield url
    stop()


def _claim_concurrently(url: str, study_file: Path) -> tuple[int, list[int]]:
    """Four drivers (threads, each with its own storage connection and searcher) claim
    trials until the searcher says the budget is reached; each trial 'trains' 20 ms.
    Returns (trials counted toward the budget, trials each driver claimed)."""
    cfg = load_study(study_file)
    searchers = [StudySearcher(cfg, cfg.load_space(), make_storage(url), budget=BUDGET)
                 for _ in range(DRIVERS)]
    claimed = [0] * DRIVERS
    start = threading.Barrier(DRIVERS)

    def drive(i: int) -> None:
        s = searchers[i]
        start.wait()
        while s.suggest(f"d{i}-{claimed[i]}") != "FINISHED":
            time.sleep(0.02)
            s.on_trial_complete(f"d{i}-{claimed[i]}", {"epoch": 1, "val_acc": 0.5})
            claimed[i] += 1

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(DRIVERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in searchers:
        s.heartbeat.stop()
    return budget_used(searchers[0].study.get_trials()), claimed


@pytest.fixture
def fast_dir(tmp_path):
    """A folder in memory (/dev/shm) where there is one: SQLite's commits then cost no
    disk flush (most of this test's time otherwise)."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="nas-budget-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def study_file(tmp_path) -> Path:
    path = tmp_path / "s.yaml"  # the 16-point skip space
    path.write_text("name: s\nspace: skip_connections\nbase: tiny\ndata: {name: digits}\n"
                    f"fidelity: {{max_epochs: 1}}\nsampler: {{name: random}}\ntrials: {BUDGET}\n")
    return path


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_four_drivers_claim_exactly_the_budget(backend, request, fast_dir, study_file):
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{fast_dir}/o.db"
    used, claimed = _claim_concurrently(url, study_file)
    assert used == BUDGET and sum(claimed) == BUDGET, claimed
    assert sum(c > 0 for c in claimed) >= 2  # the drivers really shared the study


def test_check_then_ask_overshoots_without_the_lock(monkeypatch, fast_dir, study_file):
    """The control: the same four drivers with the lock taken away overshoot the budget."""
    monkeypatch.setattr(searcher_module, "budget_lock", lambda storage, study_id: nullcontext())
    slow_count = StudySearcher._budget_reached
    together = threading.Barrier(DRIVERS, timeout=1)

    def counted_then_late(self):  # the window between counting and asking, made visible:
        full = slow_count(self)  # every driver counts before any asks (a round at a time)
        try:
            together.wait()
        except threading.BrokenBarrierError:  # a driver has finished: the others go on
            pass
        return full

    monkeypatch.setattr(StudySearcher, "_budget_reached", counted_then_late)
    used, claimed = _claim_concurrently(f"sqlite:///{fast_dir}/o.db", study_file)
    assert used > BUDGET, claimed
