"""Ray Tune schedulers for a study: ASHA (one objective: Ray's; several: ours,
:class:`MultiObjectiveASHA`), HyperBand, FIFO, and the race.

``scheduler: race`` (:class:`RaceScheduler`) is for ablations whose points are fixed in
advance (a grid, ``repeats`` >= 2, seeds paired across points). Every trial pauses at each
rung epoch; once every surviving trial has reached the rung, :func:`nas.search.racing_stats.
race_round` compares the surviving points with the best on their per-image validation
correctness (seeds x images, paired) and the points worse at ``race.alpha`` are stopped:
PRUNED in the study, with the rung, the p-value and the point they lost to. The others
resume from their checkpoints. Resumed after a kill, a race keeps its dropped points (they
are PRUNED in the storage) and races the others again from their first rung.
"""
from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    TrialScheduler,
)

from ..registry import Registry
from ..study import StudyConfig
from ..trial_record import PRUNED_AT_RUNG, RACE_ANSWERED, RACE_RUNG, point_key, unpack_correct
from .effects_stats import (
    all_mains_decided,
    contrasts,
    estimate_effects,
    factor_levels,
    guard_drift,
    space_factors,
)
from .pareto import front_ranks, pareto_order
from .racing import print_race
from .racing_stats import race_round


class SchedulerKind(ABC):
    """One value of a study's ``scheduler``: how a run builds its Ray Tune scheduler, and
    what it adds to the end of the run. A new one is a subclass with a ``name``, decorated
    with :func:`register_scheduler` (and the name added to ``StudyConfig.scheduler``)."""

    name: str

    @abstractmethod
    def build(self, cfg: StudyConfig, size: int, on_drop: Callable[[int, dict], None] | None,
              space) -> TrialScheduler:
        """``size``: the trials of this run; ``on_drop(optuna trial number, attrs)``: records a
        scheduler's decision on a trial; ``space``: the study's search space."""

    def end_of_run(self, study, cfg: StudyConfig) -> None:
        """Printed after the ranking at the end of a run (nothing by default)."""


SCHEDULER_KINDS: Registry = Registry("scheduler")  # name -> SchedulerKind
register_scheduler = SCHEDULER_KINDS.register


def _metric_mode(cfg: StudyConfig) -> tuple[str, str]:
    return cfg.objectives[0].metric, "max" if cfg.directions[0] == "maximize" else "min"


@register_scheduler
class Asha(SchedulerKind):
    """Successive halving, asynchronous: Ray's for one objective; with several, ours
    (:class:`MultiObjectiveASHA`)."""
    name = "asha"

    def build(self, cfg, size, on_drop, space):
        f = cfg.fidelity
        if cfg.multi_objective:
            return MultiObjectiveASHA([o.metric for o in cfg.objectives], cfg.directions,
                                      f.max_epochs, f.rung_epochs, f.reduction_factor, on_drop)
        metric, mode = _metric_mode(cfg)
        return ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=f.max_epochs,
                             grace_period=f.rung_epochs, reduction_factor=f.reduction_factor)


@register_scheduler
class HyperBand(SchedulerKind):
    name = "hyperband"

    def build(self, cfg, size, on_drop, space):
        metric, mode = _metric_mode(cfg)
        return HyperBandScheduler(time_attr="epoch", metric=metric, mode=mode,
                                  max_t=cfg.fidelity.max_epochs,
                                  reduction_factor=cfg.fidelity.reduction_factor)


@register_scheduler
class Race(SchedulerKind):
    """Points fixed in advance, paired seeds: drop the worse (``race.answer: best``) or stop
    once every main effect is decided (``answer: effects``); see :class:`RaceScheduler`."""
    name = "race"

    def build(self, cfg, size, on_drop, space):
        answered = None
        if cfg.race.answer == "effects":
            answered = EffectsAnswered(*space_factors(space), cfg.race.margin / 100,
                                       budget=cfg.race_rungs[-1], drift_guard=cfg.race.drift_guard)
        return RaceScheduler(cfg.race_rungs, size, cfg.race.alpha, cfg.race.correction, on_drop,
                             answered)

    def end_of_run(self, study, cfg):
        print_race(study, cfg)


@register_scheduler
class NoScheduler(SchedulerKind):
    """Every trial to the full budget (a ground truth)."""
    name = "none"

    def build(self, cfg, size, on_drop, space):
        return FIFOScheduler()


def make_scheduler(cfg: StudyConfig, size: int = 0, on_drop: Callable[[int, dict], None] | None = None,
                   space=None) -> TrialScheduler:
    """The study's scheduler (:data:`SCHEDULER_KINDS` by ``cfg.scheduler``)."""
    return SCHEDULER_KINDS[cfg.scheduler].build(cfg, size, on_drop, space)


def print_summary(study, cfg: StudyConfig) -> None:
    """What the study's scheduler adds to the end of a run (the race: its table)."""
    SCHEDULER_KINDS[cfg.scheduler].end_of_run(study, cfg)


class EffectsAnswered:
    """``race.answer: effects``: the race stops once every main effect of the points is
    decided (:mod:`nas.search.effects_stats`); no point is dropped before, since in a
    factorial design every point enters every effect. With ``drift_guard`` (the default)
    an effect counts as decided only if it still is with its interval widened by its drift
    since the previous rung carried on to ``budget`` (:func:`guard_drift`): the first rung
    never stops a study, and neither does an effect still growing."""

    def __init__(self, order: list[str], reference: dict, margin: float, budget: int = 0,
                 drift_guard: bool = True) -> None:
        self.order, self.reference, self.margin = order, reference, margin
        self.budget, self.drift_guard = budget, drift_guard
        self.previous: tuple[int, list] | None = None  # (rung, main effects there)

    def __call__(self, correct: dict[str, np.ndarray], rung: int = 0) -> dict | None:
        """``correct``: point key -> (seeds, images) at epoch ``rung``. The decisions if all
        are made, else None."""
        points = [json.loads(k) for k in correct]
        found = contrasts(points, factor_levels(points, self.order, self.reference), interactions=False)
        effects = estimate_effects(list(correct.values()), found, self.margin)
        decided = effects
        if self.drift_guard:
            rung_before, before = self.previous or (0, None)
            decided = guard_drift(effects, before, rung, rung_before, self.budget, self.margin)
            self.previous = (rung, effects)
        if not all_mains_decided(decided):
            return None
        return {e.name: e.decision for e in decided}


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving on several objectives (after MO-ASHA, Schmucker et
    al. 2021): at each rung (``grace * rf^k`` epochs below ``max_t``) a trial is compared
    with every trial that has reached that rung so far, ranked by non-dominated sorting
    and then crowding distance (:func:`nas.search.pareto.pareto_order`). It goes on if it is on
    the rung's Pareto front, or among the best ``ceil(n / rf)`` of the ``n`` there; it is
    stopped otherwise (``on_drop(optuna trial number, attrs)`` records why). The first
    trial at a rung always goes on, as in ASHA. Every objective must be in every result:
    the trainable measures cost metrics (energy, SOPs ...) each epoch for this."""

    def __init__(self, metrics: list[str], directions: list[str], max_t: int, grace: int,
                 rf: int, on_drop: Callable[[int, dict], None] | None = None) -> None:
        super().__init__()
        self.metrics = list(metrics)
        self.signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
        self.rf = rf
        self.rungs: list[int] = []
        t = grace
        while t < max_t:
            self.rungs.append(t)
            t *= rf
        self.recorded: dict[int, dict[str, np.ndarray]] = {r: {} for r in self.rungs}
        self.on_drop = on_drop or (lambda number, attrs: None)

    def _vector(self, result: dict) -> np.ndarray:
        return np.array([float(result.get(m, np.nan)) for m in self.metrics]) * self.signs

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        epoch = int(result.get("epoch", 0))
        for rung in self.rungs:
            seen = self.recorded[rung]
            if epoch < rung or trial.trial_id in seen:
                continue
            seen[trial.trial_id] = self._vector(result)
            if not self.goes_on(rung, trial.trial_id):
                ids = list(seen)
                order = list(pareto_order(np.stack(list(seen.values()))))
                self.on_drop(trial.config.get("optuna_trial"), {
                    PRUNED_AT_RUNG: rung, "rung_rank": order.index(ids.index(trial.trial_id)) + 1,
                    "rung_trials": len(ids), "rung_keeps": math.ceil(len(ids) / self.rf)})
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def goes_on(self, rung: int, trial_id: str) -> bool:
        """The rule for a trial already recorded at ``rung`` (see the class)."""
        seen = self.recorded[rung]
        ids = list(seen)
        values = np.stack(list(seen.values()))
        me = ids.index(trial_id)
        if front_ranks(values)[me] == 0:
            return True
        position = list(pareto_order(values)).index(me)
        return position < math.ceil(len(ids) / self.rf)

    def debug_string(self) -> str:
        counts = ", ".join(f"{r}: {len(self.recorded[r])}" for r in self.rungs)
        return f"MultiObjectiveASHA on {self.metrics}; trials per rung {{{counts}}}"


class RaceScheduler(FIFOScheduler):
    """Rounds at ``rungs`` over the ``size`` trials of this run (see the module)."""

    def __init__(self, rungs: list[int], size: int, alpha: float = 0.05, correction: str = "range",
                 on_drop: Callable[[int, dict], None] | None = None,
                 answered: Callable[[dict[str, np.ndarray], int], dict | None] | None = None) -> None:
        super().__init__()
        self.rungs, self.size, self.alpha, self.correction = list(rungs), size, alpha, correction
        self.answered = answered  # answer: effects (else drop the points worse than the best)
        self.on_drop = on_drop or (lambda number, attrs: None)
        self.round = 0  # index of the rung the race is at
        self.trials: dict[str, Trial] = {}
        self.correct: dict[str, dict[int, np.ndarray]] = {}  # trial id -> rung -> correctness
        self.out: set[str] = set()  # points dropped, or with a failed trial
        self.released: set[str] = set()  # paused trials that may resume

    def _point(self, trial: Trial) -> str:
        return point_key(trial.config.get("params", {}))

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        self.trials[trial.trial_id] = trial

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        if self._point(trial) in self.out:
            return TrialScheduler.STOP
        epoch = int(result.get("epoch", 0))
        if self.round >= len(self.rungs) - 1 or epoch != self.rungs[self.round]:
            return TrialScheduler.CONTINUE
        if "val_correct" in result:
            self.correct.setdefault(trial.trial_id, {})[epoch] = unpack_correct(result["val_correct"])
        if not self._round_complete():
            return TrialScheduler.PAUSE
        return self._decide(tune_controller, trial)

    def _racing(self) -> list[Trial]:
        return [t for t in self.trials.values() if self._point(t) not in self.out]

    def _round_complete(self) -> bool:
        rung = self.rungs[self.round]
        return len(self.trials) >= self.size and all(
            rung in self.correct.get(t.trial_id, {}) for t in self._racing())

    def _decide(self, tune_controller, current: Trial) -> str:
        rung = self.rungs[self.round]
        by_point: dict[str, list[Trial]] = {}
        for t in self._racing():
            by_point.setdefault(self._point(t), []).append(t)
        self.round += 1
        dropped: set[str] = set()
        correct = {p: np.stack([self.correct[t.trial_id][rung]
                                for t in sorted(ts, key=lambda t: t.config.get("repeat", 0))])
                   for p, ts in by_point.items()} if len(by_point) > 1 else {}
        if self.answered is not None:
            decisions = self.answered(correct, rung) if correct else None
            if decisions is not None:  # the answer is known: every trial stops here
                attrs = {RACE_ANSWERED: {"rung": rung, "main_effects": decisions}}
                for ts in by_point.values():
                    for t in ts:
                        self.on_drop(t.config.get("optuna_trial"), attrs)
                dropped = set(by_point)
                self.out |= dropped
        elif correct:
            result = race_round(correct, self.alpha, self.correction)
            for p in result.dropped:
                d = result.points[p]
                attrs = {RACE_RUNG: rung, "race_round": self.round, "race_p_value": d.p_adjusted,
                         "race_lost_to": json.loads(result.best), "race_diff": d.diff,
                         "race_diff_ci": [d.ci_low, d.ci_high]}
                for t in by_point[p]:
                    self.on_drop(t.config.get("optuna_trial"), attrs)
                dropped.add(p)
            self.out |= dropped
        action = TrialScheduler.CONTINUE
        for ts in by_point.values():
            for t in ts:
                if t is current:
                    action = TrialScheduler.STOP if self._point(t) in dropped else TrialScheduler.CONTINUE
                elif t.status == Trial.PAUSED or t.is_saving:
                    if self._point(t) in dropped:
                        tune_controller.stop_trial(t)
                    else:
                        self.released.add(t.trial_id)
        return action

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self._gone(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._gone(tune_controller, trial, {})

    def _gone(self, tune_controller, trial: Trial, result: dict) -> None:
        """A trial that ends before the last rung (it failed) takes its point out of the
        race (its seeds can no longer be paired); the round may then be complete."""
        point = self._point(trial)
        if int((result or trial.last_result or {}).get("epoch", 0)) >= self.rungs[-1] or point in self.out:
            return
        self.out.add(point)
        for t in self.trials.values():  # its other seeds, waiting at a rung, stop too
            if t is not trial and self._point(t) == point and (t.status == Trial.PAUSED or t.is_saving):
                tune_controller.stop_trial(t)
        if self.round < len(self.rungs) - 1 and self._racing() and self._round_complete():
            self._decide(tune_controller, None)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        for t in tune_controller.get_trials():
            if t.status == Trial.PENDING:
                return t
        for t in tune_controller.get_trials():
            if t.status == Trial.PAUSED and t.trial_id in self.released:
                self.released.discard(t.trial_id)
                return t
        return None

    def debug_string(self) -> str:
        return f"Race at rung {self.rungs[min(self.round, len(self.rungs) - 1)]}; {len(self.out)} points out"
