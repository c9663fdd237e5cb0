"""Storage helpers and the searcher's bookkeeping, without Ray trials."""
import json
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.searcher import StudySearcher, enqueue_grid, recover_interrupted
from nas.search.storage import StorageError, counts_toward_budget, is_stale, make_storage
from nas.study import Override, load_study
from pathlib import Path

optuna.logging.set_verbosity(optuna.logging.WARNING)
STUDIES = Path(__file__).parent / "studies"


def _study(name, tmp_path):
    """A study file, its run folder (the trials' artifacts) in ``tmp_path``, not the checkout."""
    return load_study(STUDIES / name, [Override("runs_dir", str(tmp_path / "runs"), "--set")])


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_storages_from_urls(tmp_path, scheme):
    url = f"sqlite:///{tmp_path / 'a' / 'o.db'}" if scheme == "sqlite" else f"journal://{tmp_path / 'b' / 'o.log'}"
    with pytest.raises(StorageError, match="does not exist"):  # a mistyped path creates nothing
        make_storage(url)
    study = optuna.create_study(study_name="s", storage=make_storage(url, create_folder=True))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="s", storage=make_storage(url))
    assert len(again.trials) == 3


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_trials_of_a_dead_driver_are_stale_and_requeued(tmp_path):
    import socket

    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 'o.db'}"))
    live, dead = study.ask(), study.ask()
    for t in (live, dead):
        t.suggest_categorical("PT", [True, False])
        t.set_user_attr("repeat", 1)
    study._storage.set_trial_system_attr(live._trial_id, "nas:driver", f"{socket.gethostname()}:{1}")
    study._storage.set_trial_system_attr(dead._trial_id, "nas:driver",
                                         f"{socket.gethostname()}:{_dead_pid()}")
    for t in (live, dead):
        study._storage.set_trial_system_attr(t._trial_id, "nas:heartbeat", time.time())
    frozen = {t.number: t for t in study.get_trials()}
    assert not is_stale(frozen[live.number], 60) and is_stale(frozen[dead.number], 60)
    assert is_stale(frozen[live.number], 60, now=time.time() + 120)  # silent too long
    assert recover_interrupted(study, stale_after=60) == 1
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL and trials[dead.number].user_attrs["interrupted"]
    assert not counts_toward_budget(trials[dead.number], 60)
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["repeat"] == 1
    assert waiting[0].system_attrs["fixed_params"] == trials[dead.number].params


def test_a_trial_its_scheduler_dropped_stays_dropped_when_its_driver_died(tmp_path):
    """kill -9 of the driver between the race's decision (stored on the trial) and Optuna's
    PRUNED: the resumed run records the decision, it does not train the point again."""
    import socket

    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 'o.db'}"))
    for vth in (1000.0, 1.0):
        study.enqueue_trial({"VTH": vth})
    dropped, running = study.ask(), study.ask()
    for t in (dropped, running):
        vth = t.suggest_categorical("VTH", [1.0, 1000.0])
        t.report(0.1 if vth > 1 else 0.4, step=2)
        study._storage.set_trial_system_attr(t._trial_id, "nas:driver", f"{socket.gethostname()}:{_dead_pid()}")
    dropped.set_user_attr("race_rung", 2)
    assert recover_interrupted(study, stale_after=60) == 1  # the other one only
    trials = study.get_trials()
    assert trials[dropped.number].state == TrialState.PRUNED and trials[dropped.number].value == 0.1
    assert trials[running.number].state == TrialState.FAIL and trials[running.number].user_attrs["interrupted"]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"VTH": 1.0}]


def test_grid_points_are_queued_once(tmp_path):
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 'o.db'}"))
    points = [{"PT": a} for a in (True, False)]
    assert enqueue_grid(study, points, repeats=2) == 4
    assert enqueue_grid(study, points, repeats=2) == 0
    assert enqueue_grid(study, points, repeats=3) == 2


class _Space:
    def define_by_run(self, trial):
        trial.suggest_categorical("PT", [True, False])
        trial.suggest_categorical("PC", [True, False])

    size = 4

    def grid(self):
        return [{"PT": a, "PC": b} for a in (True, False) for b in (True, False)]


class _UnlistedSpace(_Space):
    size = None  # as a space too large to list: proposals are checked after the ask


def test_searcher_tells_pruned_failed_and_complete_honestly(tmp_path):
    cfg = _study("asha.yaml", tmp_path)  # max_epochs 3
    storage = make_storage(f"sqlite:///{tmp_path / 'o.db'}")
    searcher = StudySearcher(cfg, _Space(), storage, optuna.samplers.RandomSampler(seed=0), budget=3)
    for tid in ("full", "stopped", "broken"):
        assert searcher.suggest(tid)["repeat"] == 0
    assert searcher.suggest("over budget") == "FINISHED"
    for epoch in (1, 2, 3):
        searcher.on_trial_result("full", {"epoch": epoch, "val_acc": 0.1 * epoch})
    searcher.on_trial_complete("full", {"epoch": 3, "val_acc": 0.3, "arch_json": "{}", "params": 5})
    searcher.on_trial_result("stopped", {"epoch": 1, "val_acc": 0.05})
    searcher.on_trial_complete("stopped", {"epoch": 1, "val_acc": 0.05})
    searcher.on_trial_complete("broken", {"epoch": 0, "val_acc": -1e30, "error": "OutOfMemoryError: x"})
    full, stopped, broken = [t for t in searcher.study.get_trials() if "duplicate_of" not in t.user_attrs]
    assert full.state == TrialState.COMPLETE and full.value == pytest.approx(0.3)
    assert full.user_attrs["curve"] == pytest.approx([0.1, 0.2, 0.3]) and full.user_attrs["params"] == 5
    # PRUNED, with Optuna's convention for its value: the last intermediate value
    assert stopped.state == TrialState.PRUNED and stopped.value == pytest.approx(0.05)
    assert stopped.intermediate_values == {1: 0.05} and stopped.user_attrs["epochs"] == 1
    assert broken.state == TrialState.FAIL and broken.user_attrs["error"].startswith("OutOfMemoryError")


def test_a_trial_asked_but_not_claimed_is_stale_once_no_driver_lives(tmp_path):
    """The race of a kill -9 between Optuna's ask and our claim: the trial has no driver
    yet. It is stale at once when every registered driver is gone, never while one lives."""
    import socket

    from nas.search.storage import Heartbeat, drivers

    storage = make_storage(f"sqlite:///{tmp_path / 'o.db'}")
    study = optuna.create_study(storage=storage)
    orphan = study.ask()
    orphan.suggest_categorical("PT", [True, False])
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    study._storage.set_study_system_attr(study._study_id, f"nas:driver:{dead}", time.time())
    (frozen,) = study.get_trials()
    assert is_stale(frozen, registered=drivers(storage, study._study_id))  # now, not after 60 s
    assert not is_stale(frozen)  # without the registry: only after a minute
    assert recover_interrupted(study) == 1 and study.get_trials()[0].state == TrialState.FAIL
    beat = Heartbeat(storage, study._study_id, interval=0.05)  # a live driver of this study
    try:
        _unclaimed, claimed = study.ask(), study.ask()
        beat.claim(claimed._trial_id)
        assert recover_interrupted(study) == 0  # its driver lives: neither is taken
        first = study.get_trials()[-1].system_attrs["nas:heartbeat"]
        time.sleep(0.3)
        assert study.get_trials()[-1].system_attrs["nas:heartbeat"] > first  # beats from its thread
    finally:
        beat.stop()


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0),
                                     optuna.samplers.TPESampler(seed=0, n_startup_trials=1)],
                         ids=["random", "tpe"])
def test_the_searcher_never_proposes_a_point_the_study_has(tmp_path, sampler):
    """Samplers repeat points (TPE in small spaces; drivers with one seed): on a finite
    space the proposal is steered to an untried point, with no record of a discarded one."""
    cfg = _study("asha.yaml", tmp_path)
    storage = make_storage(f"sqlite:///{tmp_path / 'o.db'}")
    searcher = StudySearcher(cfg, _Space(), storage, sampler, budget=5)
    points = [json.dumps(searcher.suggest(f"t{i}")["params"], sort_keys=True) for i in range(4)]
    assert len(set(points)) == 4 and len(searcher.study.get_trials()) == 4  # every point once
    searcher.suggest("t4")  # the space is exhausted: the fifth is trained again
    assert len(searcher.study.get_trials()) == 5
    searcher.heartbeat.stop()


def test_on_a_space_too_large_to_list_a_repeat_is_asked_again_and_counted_nowhere(tmp_path):
    cfg = _study("asha.yaml", tmp_path)
    searcher = StudySearcher(cfg, _UnlistedSpace(), make_storage(f"sqlite:///{tmp_path / 'o.db'}"),
                             optuna.samplers.RandomSampler(seed=0), budget=5)
    points = [json.dumps(searcher.suggest(f"t{i}")["params"], sort_keys=True) for i in range(4)]
    assert len(set(points)) == 4
    skipped = [t for t in searcher.study.get_trials() if "duplicate_of" in t.user_attrs]
    assert skipped and all(t.state == TrialState.FAIL and not counts_toward_budget(t) for t in skipped)
    searcher.heartbeat.stop()


def test_quickstart_budget_of_14_stores_14_distinct_points_and_no_failure(tmp_path):
    """Issue #20: the quickstart's sampler (TPE, seed 0) on its 16-point space."""
    cfg = _study(Path(__file__).parents[1] / "studies" / "quickstart.yaml", tmp_path)
    searcher = StudySearcher(cfg, cfg.load_space(), make_storage(f"sqlite:///{tmp_path / 'o.db'}"),
                             budget=14)
    for i in range(15):
        if searcher.suggest(f"t{i}") == "FINISHED":
            break
        searcher.on_trial_complete(f"t{i}", {"epoch": cfg.fidelity.max_epochs, "val_acc": 0.5 + i % 3 / 10})
    trials = searcher.study.get_trials()
    assert len(trials) == 14 and len({json.dumps(t.params, sort_keys=True) for t in trials}) == 14
    assert all(t.state == TrialState.COMPLETE for t in trials)
    searcher.heartbeat.stop()


def _driver(study: str, url: str, trials: int) -> None:
    """One driver process: its own searcher (driver id host:pid) on the shared storage."""
    cfg = load_study(study)
    searcher = StudySearcher(cfg, cfg.load_space(), make_storage(url), budget=100)
    for i in range(trials):
        searcher.suggest(f"t{i}")
        time.sleep(0.2)
        searcher.on_trial_complete(f"t{i}", {"epoch": 1, "val_acc": 0.5})
    searcher.heartbeat.stop()


def _drivers(study: Path, url: str, n: int, trials_each: int) -> None:
    """``n`` driver processes at once, forked from this one (its imports already made)."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    procs = [fork.Process(target=_driver, args=(str(study), url, trials_each)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0, f"a driver exited with {p.exitcode}"


def test_drivers_and_resumed_drivers_with_one_seed_propose_distinct_points(tmp_path):
    study = tmp_path / "s.yaml"  # the 16-point skip space, the default sampler (TPE, seed 0)
    study.write_text("name: s\nspace: skip_connections\nbase: tiny\ndata: {name: digits}\n"
                     "fidelity: {max_epochs: 1}\ntrials: 12\n")
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _drivers(study, url, n=4, trials_each=2)  # four drivers at once
    _drivers(study, url, n=1, trials_each=2)  # then one more, as a resumed driver would
    trials = [t for t in optuna.load_study(study_name="s", storage=url).get_trials()
              if "duplicate_of" not in t.user_attrs]
    points = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(points) == 10 and len(set(points)) == 10, points


def test_a_worker_killed_by_the_system_is_a_failure_with_its_epochs(tmp_path):
    cfg = _study("asha.yaml", tmp_path)
    searcher = StudySearcher(cfg, _Space(), make_storage(f"sqlite:///{tmp_path / 'o.db'}"),
                             optuna.samplers.RandomSampler(seed=0), budget=1)
    searcher.suggest("w")
    for epoch in (1, 2):
        searcher.on_trial_result("w", {"epoch": epoch, "val_acc": 0.4})
    searcher.on_trial_complete("w", None, error=True)  # what Ray reports for an OOM kill
    (t,) = searcher.study.get_trials()
    assert t.state == TrialState.FAIL and t.user_attrs["epochs"] == 2 and len(t.user_attrs["curve"]) == 2
    assert "worker process died" in t.user_attrs["error"] and "after 2 epoch(s)" in t.user_attrs["error"]
    searcher.heartbeat.stop()


def test_a_silent_driver_on_another_host_is_dead_after_a_few_missed_beats(tmp_path):
    from nas.search.storage import MISSED_BEATS, STALE_AFTER_S

    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 'o.db'}"))
    t = study.ask()
    beat = time.time()
    study._storage.set_trial_system_attr(t._trial_id, "nas:driver", "another-host:4242")
    study._storage.set_trial_system_attr(t._trial_id, "nas:heartbeat", beat)
    (frozen,) = study.get_trials()
    assert STALE_AFTER_S <= 60 and MISSED_BEATS >= 2  # seconds, not the 30 minutes of old
    assert not is_stale(frozen, now=beat + STALE_AFTER_S - 1)
    assert is_stale(frozen, now=beat + STALE_AFTER_S + 1)


def test_another_drivers_fresh_during_a_run_leaves_a_clean_end_table(tmp_path, studies, monkeypatch, capsys):
    """Two ``nas.run --fresh`` at once: the second deletes and creates the study again while
    the first trains; the first reads the study back by name for its end table (no KeyError,
    exit 0), with the trials the searcher wrote into the new study."""
    import contextlib

    import nas.search.engine as run_module
    from nas.study import Override, load_study

    url = f"journal:///{tmp_path / 'j.log'}"
    cfg = load_study(studies / "two_drivers.yaml", [Override("storage", url, "--storage")])

    def other_driver_fresh(cfg, space, storage, budget, done, remaining):
        optuna.delete_study(study_name=cfg.name, storage=storage)
        again = optuna.create_study(study_name=cfg.name, storage=storage, directions=cfg.directions)
        again.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5,
                                                  user_attrs={"repeat": 0, "curve": [0.5]}))

    monkeypatch.setattr(run_module, "ray_session", lambda cfg: contextlib.nullcontext())
    monkeypatch.setattr(run_module, "_search", other_driver_fresh)
    study = run_module.run(cfg, fresh=True)
    assert len(study.get_trials()) == 1 and "trials: COMPLETE 1" in capsys.readouterr().out
