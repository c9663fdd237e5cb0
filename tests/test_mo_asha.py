"""Multi-objective successive halving: non-dominated sorting, and the scheduler's rule."""
from types import SimpleNamespace

import numpy as np
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from nas.search.pareto import crowding, front_ranks, pareto_order
from nas.search.schedulers import MultiObjectiveASHA, make_scheduler
from nas.study import load_study


def test_fronts_and_crowding_on_a_known_set():
    # maximise both: a, b, c on the front; d behind b; e behind everything
    v = np.array([[1.0, 5.0], [3.0, 3.0], [5.0, 1.0], [2.0, 2.5], [0.5, 0.5]])
    assert front_ranks(v).tolist() == [0, 0, 0, 1, 2]
    assert crowding(v[:3]).tolist() == [np.inf, 2.0, np.inf]  # (5-1)/4 + (5-1)/4
    assert pareto_order(v).tolist() == [0, 2, 1, 3, 4]  # ends of the front first, then b
    assert front_ranks([[np.nan, 9.0], [0.0, 0.0]]).tolist() == [0, 0]  # NaN: worst, not better


def trial(i: int):
    return SimpleNamespace(trial_id=f"t{i}", config={"optuna_trial": i})


def result(acc: float, energy: float, epoch: int = 1) -> dict:
    return {"epoch": epoch, "val_acc": acc, "energy_uj": energy}


def test_a_dominated_point_is_pruned_and_a_pareto_point_is_not():
    dropped = {}
    s = MultiObjectiveASHA(["val_acc", "energy_uj"], ["maximize", "minimize"], max_t=4, grace=1,
                           rf=4, on_drop=lambda n, attrs: dropped.update({n: attrs}))
    assert s.rungs == [1]
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert s.on_trial_result(None, trial(0), result(0.50, 10.0)) == go  # first at the rung
    assert s.on_trial_result(None, trial(1), result(0.60, 20.0)) == go  # better acc, more energy
    assert s.on_trial_result(None, trial(2), result(0.40, 30.0)) == stop  # worse in both
    assert s.on_trial_result(None, trial(3), result(0.30, 5.0)) == go  # cheapest: on the front
    assert list(dropped) == [2]
    assert dropped[2] == {"pruned_at_rung": 1, "rung_rank": 3, "rung_trials": 3, "rung_keeps": 1}
    # past the rung nothing is decided again; a later epoch of a kept trial goes on
    assert s.on_trial_result(None, trial(0), result(0.1, 99.0, epoch=2)) == go
    # single-objective ASHA would have kept only the most accurate: trial 3 is MO's doing


def test_ranks_behind_the_front_keep_the_top_share():
    s = MultiObjectiveASHA(["a", "b"], ["maximize", "maximize"], max_t=9, grace=1, rf=3)
    assert s.rungs == [1, 3]
    decisions = [s.on_trial_result(None, trial(i), {"epoch": 1, "a": a, "b": b})
                 for i, (a, b) in enumerate([(9, 9), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)])]
    # (9, 9) dominates all; the k-th arrival goes on while in the top ceil(k / 3)
    assert decisions == ["CONTINUE", "STOP", "STOP", "CONTINUE", "CONTINUE", "CONTINUE"]
    assert s.on_trial_result(None, trial(0), {"epoch": 3, "a": 9, "b": 9}) == "CONTINUE"


def test_asha_with_several_objectives_is_multi_objective(studies):
    cfg = load_study(studies / "pareto.yaml")
    assert isinstance(make_scheduler(cfg.model_copy(update={"scheduler": "asha"})), MultiObjectiveASHA)
    one = cfg.model_copy(update={"scheduler": "asha", "objectives": cfg.objectives[:1]})
    assert isinstance(make_scheduler(one), ASHAScheduler)
