"""The race's scheduler decisions, with stand-ins for Ray's trials and controller."""
import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from nas.trial_record import pack_correct
from nas.search.schedulers import RaceScheduler


class FakeTrial:
    def __init__(self, tid: str, point: dict, repeat: int, number: int):
        self.trial_id, self.status, self.is_saving = tid, Trial.RUNNING, False
        self.config = {"params": point, "repeat": repeat, "optuna_trial": number}
        self.last_result = {}


class FakeController:
    def __init__(self, trials):
        self.trials, self.stopped = trials, []

    def get_trials(self):
        return self.trials

    def stop_trial(self, t):
        self.stopped.append(t.trial_id)
        t.status = Trial.TERMINATED


def result(epoch: int, p_correct: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"epoch": epoch, "val_correct": pack_correct(rng.random(2000) < p_correct)}


def test_the_round_waits_for_every_trial_then_drops_the_worse_point():
    good, bad = {"PC": True}, {"PC": False}
    trials = [FakeTrial(f"t{i}", p, r, i) for i, (p, r) in enumerate([(good, 0), (good, 1), (bad, 0), (bad, 1)])]
    ctl, drops = FakeController(trials), []
    race = RaceScheduler([1, 3], size=4, on_drop=lambda n, attrs: drops.append((n, attrs)))
    for t in trials:
        race.on_trial_add(ctl, t)
    for t in trials[:3]:  # the first three reach the rung: they wait
        acc = 0.8 if t.config["params"] == good else 0.4
        assert race.on_trial_result(ctl, t, result(1, acc, hash(t.trial_id) % 100)) == TrialScheduler.PAUSE
        t.status = Trial.PAUSED
    assert race.choose_trial_to_run(ctl) is None  # nobody resumes before the round is decided
    last = trials[3]  # a bad one arrives: the round is decided, and it is stopped at once
    assert race.on_trial_result(ctl, last, result(1, 0.4, 9)) == TrialScheduler.STOP
    assert ctl.stopped == ["t2"]  # the other bad one, paused, is stopped
    assert sorted(n for n, _ in drops) == [2, 3]
    assert all(a["race_rung"] == 1 and a["race_p_value"] <= 0.05 and a["race_lost_to"] == good
               for _, a in drops)
    resumed = {race.choose_trial_to_run(ctl).trial_id, race.choose_trial_to_run(ctl).trial_id}
    assert resumed == {"t0", "t1"}  # the good ones resume
    assert race.on_trial_result(ctl, trials[0], result(2, 0.8, 1)) == TrialScheduler.CONTINUE


def test_a_failed_trial_takes_its_point_out_and_completes_the_round():
    a, b, c = {"P": 1}, {"P": 2}, {"P": 3}
    trials = [FakeTrial(f"t{i}", p, r, i) for i, (p, r) in enumerate([(a, 0), (a, 1), (b, 0), (b, 1), (c, 0), (c, 1)])]
    ctl = FakeController(trials)
    race = RaceScheduler([1, 2], size=6)
    for t in trials:
        race.on_trial_add(ctl, t)
    for t in trials[:4]:
        assert race.on_trial_result(ctl, t, result(1, 0.7, int(t.trial_id[1:]))) == TrialScheduler.PAUSE
        t.status = Trial.PAUSED
    race.on_trial_result(ctl, trials[4], result(1, 0.7, 4))
    trials[4].status = Trial.PAUSED
    trials[5].status = Trial.ERROR
    race.on_trial_error(ctl, trials[5])  # point c lost a seed: out, and the round can go on
    assert race.round == 1 and '{"P": 3}' in race.out and ctl.stopped == ["t4"]  # its paused seed stops
    assert {race.choose_trial_to_run(ctl).trial_id for _ in range(4)} == {"t0", "t1", "t2", "t3"}


def test_every_registered_scheduler_builds_for_a_study(studies):
    """Each value of a study's ``scheduler`` is one registered class, and builds."""
    from ray.tune.schedulers import TrialScheduler as Base

    from nas.search.schedulers import SCHEDULER_KINDS, make_scheduler
    from nas.study import SCHEDULERS, Override, load_study

    assert sorted(SCHEDULER_KINDS) == sorted(SCHEDULERS)
    for name in SCHEDULERS:
        cfg = load_study(studies / "race.yaml", [Override("scheduler", name, "--set")])
        built = make_scheduler(cfg, 8, None, cfg.load_space())
        assert isinstance(built, Base), name
    assert type(make_scheduler(load_study(studies / "race.yaml"), 8, None, None)).__name__ == "RaceScheduler"
