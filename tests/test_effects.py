"""Component effects (nas/search/effects_stats.py) on synthetic results with known effects,
the factorial designs (search_spaces/design.py), the race that stops once the effects are
known, and the plan from a pilot."""
import itertools
import json

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from nas.search.effects_stats import (Components, Effect, all_mains_decided, contrasts, decide,
                                      estimate_effects, factor_levels, guard_drift, power,
                                      seeds_needed)
from nas.trial_record import pack_correct
from nas.search.schedulers import EffectsAnswered, RaceScheduler
from search_spaces import SpaceError, load_space
from search_spaces.design import factorial_design, fractional_design, parse_fraction

FACTORS = ["A", "B", "C"]
TRUE = {"A": 0.05, "B": 0.0, "C": -0.03, "A x B": 0.02, "A x C": 0.0, "B x C": 0.0}


def full_grid(names=FACTORS) -> list[dict]:
    return [dict(zip(names, v)) for v in itertools.product([False, True], repeat=len(names))]


def draw(points, rng, seeds=3, images=400, effects=TRUE, luck=0.05) -> list[np.ndarray]:
    """Per-image correctness whose expected accuracy has exactly ``effects``: no clipping
    (probabilities stay in 0.03..0.97), seeds and images crossed random factors."""
    x = lambda p, f: 1.0 if p[f] else -1.0  # noqa: E731
    image = rng.uniform(-0.3, 0.3, images)  # image difficulty, shared by all points
    out = []
    for p in points:
        m = 0.5 + sum(effects[f] / 2 * x(p, f) for f in FACTORS)
        m += sum(effects[f"{a} x {b}"] / 2 * x(p, a) * x(p, b) for a, b in itertools.combinations(FACTORS, 2))
        seed_luck = rng.uniform(-luck, luck, (seeds, 1))  # point x seed
        suits = rng.uniform(-0.05, 0.05, images)  # point x image
        prob = m + seed_luck + image + suits
        out.append(rng.random((seeds, images)) < prob)
    return out


def test_estimates_recover_known_effects_and_name_them_in_order():
    points = full_grid()
    found = contrasts(points, factor_levels(points, FACTORS))
    assert [c.name for c in found] == ["A", "B", "C", "A x B", "A x C", "B x C"]
    effects = estimate_effects(draw(points, np.random.default_rng(0), seeds=4, images=4000), found, 0.01)
    for e in effects:
        assert e.estimate == pytest.approx(TRUE[e.name], abs=3 * e.se), e
        assert e.ci_low < e.estimate < e.ci_high and 0 <= e.p <= 1


def test_intervals_cover_the_true_effects_95_percent_of_the_time():
    """200 independent draws (new seeds and new images each time), 6 effects each: the
    coverage of the 95% intervals lies within binomial bounds around 0.95."""
    rng = np.random.default_rng(1)
    points = full_grid()
    found = contrasts(points, factor_levels(points, FACTORS))
    hits = total = 0
    for _ in range(200):
        for e in estimate_effects(draw(points, rng), found):
            hits += e.ci_low <= TRUE[e.name] <= e.ci_high
            total += 1
    sd = np.sqrt(0.95 * 0.05 / total)
    assert 0.95 - 3.5 * sd <= hits / total <= 0.95 + 3.5 * sd, hits / total


def test_decisions_positive_negative_and_negligible_by_equivalence():
    points = full_grid()
    found = contrasts(points, factor_levels(points, FACTORS))
    effects = {e.name: e for e in estimate_effects(
        draw(points, np.random.default_rng(2), seeds=4, images=20000, luck=0.01), found, margin=0.01)}
    assert effects["A"].decision == "positive" and effects["C"].decision == "negative"
    assert effects["B"].decision == "negligible"  # 0 within +-1 point, the interval inside
    assert -0.01 < effects["B"].ci_low and effects["B"].ci_high < 0.01
    assert decide(-0.02, 0.005, 0.01) == "undecided" and decide(0.001, 0.02, 0.01) == "positive"
    assert decide(0.001, 0.009, 0.01) == "negligible"  # small and certain: negligible first
    assert all_mains_decided(list(effects.values()))


def test_one_seed_gives_estimates_without_decisions():
    points = full_grid()
    effects = estimate_effects(draw(points, np.random.default_rng(3), seeds=1),
                               contrasts(points, factor_levels(points, FACTORS)))
    assert all(e.decision == "undecided" and e.ci_low != e.ci_low for e in effects)
    assert effects[0].estimate == pytest.approx(0.05, abs=0.06)
    assert not all_mains_decided(effects)


def test_levels_of_a_categorical_factor_are_contrasts_against_the_reference():
    points = [{"T": t, "PC": pc} for t in (1, 2, 4) for pc in (False, True)]
    levels = factor_levels(points, ["T", "PC"], {"T": 2})
    assert levels == {"T": [2, 1, 4], "PC": [False, True]}
    names = [c.name for c in contrasts(points, levels)]
    assert names == ["T=1 vs 2", "T=4 vs 2", "PC", "T=1 vs 2 x PC", "T=4 vs 2 x PC"]


def test_a_half_fraction_aliases_two_factor_interactions_in_pairs():
    space = load_space("skip_connections")
    design = fractional_design(space, "1/2")
    assert len(design.points) == 8 and len({json.dumps(p, sort_keys=True) for p in design.points}) == 8
    assert design.resolution == 4 and design.generators == ["CT = PT x PC x TC"]
    assert "PT x PC = TC x CT" in design.aliases
    assert "aliases" in design.describe() and "resolution IV" in design.describe()
    found = contrasts(design.points, factor_levels(design.points, design.factors))
    assert [c.name for c in found] == ["PT", "PC", "TC", "CT", "PT x PC", "PT x TC", "PT x CT"]
    assert found[4].aliases == ("TC x CT",) and found[0].aliases == ()
    full = fractional_design(space, 1)
    assert len(full.points) == 16 and full.resolution is None


@pytest.mark.parametrize("fraction, message", [
    ("1/4", "allowed: 1, 1/2"), ("1/3", "one over a power of 2"), ("0", "allowed: 1, 1/2, 1/4"),
])
def test_fractions_that_cannot_work_are_refused_with_what_is_allowed(fraction, message):
    with pytest.raises(SpaceError, match=message):
        fractional_design(load_space("skip_connections"), fraction)


def test_a_fraction_keeps_resolution_iv_where_it_can():
    six = [(f"F{i}", [False, True]) for i in range(6)]
    assert factorial_design(six, "1/4").resolution == 4 and len(factorial_design(six, "1/4").points) == 16
    with pytest.raises(SpaceError, match="resolution III"):
        factorial_design(six, "1/8")
    assert parse_fraction("1/2") == 1 and parse_fraction(1) == 0


def test_a_factorial_design_takes_two_level_parameters_only():
    with pytest.raises(SpaceError, match="'T' .*exactly two values"):
        fractional_design(load_space({"name": "x", "base": "tiny", "parameters": {
            "T": {"type": "int", "low": 1, "high": 3, "target": "T"}}}), "1")


def test_the_plan_finds_the_fewest_seeds_with_the_power_asked():
    comp = Components(seed=2e-5, image=1e-4, residual=0.2)
    s = seeds_needed(0.01, comp, images=5000, points=16)
    assert s is not None and s >= 2
    assert power(0.01, comp, s, 5000, 15 * (s - 1)) >= 0.8
    if s > 2:
        assert power(0.01, comp, s - 1, 5000, 15 * (s - 2)) < 0.8
    assert seeds_needed(0.03, comp, 5000, 16) <= s  # a larger effect needs no more seeds


def _fake_trials(points, seeds):
    from tests.test_race_scheduler import FakeTrial

    return [FakeTrial(f"t{i}", p, r, i) for i, (p, r) in enumerate(
        (p, r) for p in points for r in range(seeds))]


def test_a_race_for_the_effects_stops_every_trial_once_they_are_decided():
    from tests.test_race_scheduler import FakeController

    points = full_grid(["A", "B"])
    trials = _fake_trials(points, 2)
    ctl, stopped = FakeController(trials), []
    race = RaceScheduler([1, 3], size=len(trials), on_drop=lambda n, a: stopped.append((n, a)),
                         answered=EffectsAnswered(["A", "B"], {}, margin=0.05, drift_guard=False))
    for t in trials:
        race.on_trial_add(ctl, t)
    rng = np.random.default_rng(4)
    actions = []
    for t in trials:  # A: +40 points; B: none (negligible at a 5-point margin with 6000 images)
        acc = 0.8 if t.config["params"]["A"] else 0.4
        actions.append(race.on_trial_result(ctl, t, {"epoch": 1, "val_correct": pack_correct(rng.random(6000) < acc)}))
        t.status = "PAUSED"
    assert actions[:-1] == [TrialScheduler.PAUSE] * (len(trials) - 1) and actions[-1] == TrialScheduler.STOP
    assert sorted(ctl.stopped) == sorted(t.trial_id for t in trials[:-1])  # the paused ones stop too
    assert sorted(n for n, _ in stopped) == list(range(len(trials)))
    assert stopped[0][1]["race_answered"] == {"rung": 1, "main_effects": {"A": "positive", "B": "negligible"}}
    assert race.choose_trial_to_run(ctl) is None


def test_a_race_for_the_effects_goes_on_while_one_is_undecided():
    from tests.test_race_scheduler import FakeController

    points = full_grid(["A", "B"])
    trials = _fake_trials(points, 2)
    ctl = FakeController(trials)
    race = RaceScheduler([1, 3], size=len(trials),
                         answered=EffectsAnswered(["A", "B"], {}, margin=0.001, drift_guard=False))
    for t in trials:
        race.on_trial_add(ctl, t)
    rng = np.random.default_rng(5)
    actions = []
    for t in trials:
        actions.append(race.on_trial_result(ctl, t, {"epoch": 1, "val_correct": pack_correct(rng.random(300) < 0.5)}))
        t.status = "PAUSED"
    assert actions[-1] == TrialScheduler.CONTINUE  # the last to arrive goes on at once
    assert ctl.stopped == [] and race.round == 1  # nothing dropped: every point carries every effect
    resumed = {race.choose_trial_to_run(ctl).trial_id for _ in trials[:-1]}
    assert resumed == {t.trial_id for t in trials[:-1]}


def _effect(name, estimate, half=0.005):
    return Effect(name, "main", estimate, estimate - half, estimate + half, 0.0, "", half / 2, 10.0)


def test_the_drift_guard_widens_each_interval_by_its_drift_carried_to_the_budget():
    before = [_effect("A", 0.001), _effect("B", 0.100)]
    now = [_effect("A", 0.004), _effect("B", 0.101)]  # A moved 0.3 points in 2 epochs
    # epoch 4 of 8, margin 1 point: A's drift 0.0015/epoch x 4 epochs widens by 0.6 points
    a, b = guard_drift(now, before, epoch=4, epoch_before=2, budget=8, margin=0.01)
    assert a.ci_low == pytest.approx(0.004 - 0.005 - 0.006) and a.ci_high == pytest.approx(0.015)
    assert a.decision == "undecided"  # (-0.7, +1.5) points: it may leave the margin by epoch 8
    assert b.decision == "positive" and b.ci_low == pytest.approx(0.101 - 0.005 - 0.002)
    # without it, A's own interval (-0.1, +0.9) is inside the margin
    assert decide(now[0].ci_low, now[0].ci_high, 0.01) == "negligible"
    # at the budget nothing is widened; the first rung decides nothing
    assert guard_drift(now, before, 8, 4, 8, 0.01)[0].decision == "negligible"
    assert [e.decision for e in guard_drift(now, None, 1, 0, 8, 0.01)] == ["undecided"] * 2


def _rung(race, trials, ctl, epoch, acc_of, rng, images=6000):
    actions = []
    for t in trials:
        acc = acc_of(t.config["params"])
        actions.append(race.on_trial_result(ctl, t, {"epoch": epoch, "val_correct": pack_correct(rng.random(images) < acc)}))
        t.status = "PAUSED"
    return actions


def _guarded_race(rungs):
    """A race for the effects of A and B (2 seeds each, margin 5 points) with the drift guard."""
    from tests.test_race_scheduler import FakeController

    trials = _fake_trials(full_grid(["A", "B"]), 2)
    ctl, stopped = FakeController(trials), []
    race = RaceScheduler(rungs, size=len(trials), on_drop=lambda n, a: stopped.append((n, a)),
                         answered=EffectsAnswered(["A", "B"], {}, margin=0.05, budget=rungs[-1]))
    for t in trials:
        race.on_trial_add(ctl, t)
    return race, trials, ctl, stopped


def test_with_the_drift_guard_the_race_stops_at_the_second_stable_rung_not_the_first():
    race, trials, ctl, stopped = _guarded_race([1, 2, 3])
    rng = np.random.default_rng(4)
    acc = lambda p: 0.8 if p["A"] else 0.4  # noqa: E731  A: +40 points at every rung; B: none
    assert _rung(race, trials, ctl, 1, acc, rng)[-1] == TrialScheduler.CONTINUE  # decided, but no drift known
    assert stopped == []
    for t in trials[:-1]:
        race.choose_trial_to_run(ctl)
    assert _rung(race, trials, ctl, 2, acc, rng)[-1] == TrialScheduler.STOP
    assert stopped[0][1]["race_answered"] == {"rung": 2, "main_effects": {"A": "positive", "B": "negligible"}}


def test_with_the_drift_guard_an_effect_still_growing_keeps_the_race_going():
    race, trials, ctl, stopped = _guarded_race([1, 2, 8])
    rng = np.random.default_rng(4)
    # B: +0 points at epoch 1, +2 at epoch 2; negligible at a 5-point margin at either rung
    # alone, but growing 2 points an epoch it may reach 14 by epoch 8
    _rung(race, trials, ctl, 1, lambda p: 0.4 + 0.4 * p["A"], rng)
    for t in trials[:-1]:
        race.choose_trial_to_run(ctl)
    assert _rung(race, trials, ctl, 2, lambda p: 0.4 + 0.4 * p["A"] + 0.02 * p["B"], rng)[-1] \
        == TrialScheduler.CONTINUE
    assert stopped == [] and race.round == 2
