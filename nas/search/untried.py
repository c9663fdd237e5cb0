"""Untried points first: the study's Optuna sampler, steered so that on a finite space it
never proposes a point the study already has while some point of the space is untried.

Samplers repeat points (TPE in small spaces, drivers that share a seed). Rather than
asking again and storing each discarded proposal, :class:`UntriedFirst` corrects the
proposal while Optuna samples it, parameter by parameter: a value that leaves no untried
point to complete the trial is replaced by one that does (chosen reproducibly per trial).
Nothing extra is stored, so a run of N trials adds N records. Once every point is in the
study the sampler is left alone: only then is a point trained again.
"""
from __future__ import annotations

import random
from typing import Any

from optuna.samplers import BaseSampler

from ..trial_record import DUPLICATE_OF, INTERRUPTED, point_key, trial_point

STEER_LIMIT = 100_000  # finite spaces up to this many points are steered (their grid is listed)


def steerable(space) -> bool:
    """Whether :class:`UntriedFirst` can list the space's points."""
    size = getattr(space, "size", None)
    return size is not None and size <= STEER_LIMIT and hasattr(space, "grid")


def tried_keys(trials, but: int | None = None) -> set[str]:
    """The points a study holds (queued, running or finished; first repeats), apart from
    trial number ``but``; an interrupted trial's point is held by its re-queued copy."""
    keys = set()
    for t in trials:
        a = t.user_attrs
        if t.number == but or a.get(INTERRUPTED) or DUPLICATE_OF in a or a.get("repeat", 0) != 0:
            continue
        if trial_point(t):
            keys.add(point_key(trial_point(t)))
    return keys


def _fits(point: dict, given: dict) -> bool:
    return all(k in point and point_key({k: point[k]}) == point_key({k: v}) for k, v in given.items())


class UntriedFirst(BaseSampler):
    """``inner`` (any Optuna sampler) whose proposals are untried points of ``space``."""

    def __init__(self, inner: BaseSampler, space, seed: int | None = 0) -> None:
        self.inner, self.seed = inner, seed
        self._grid = space.grid()
        self._relative: dict[int, dict] = {}  # per trial: the values sample_relative fixed
        self._untried: dict[int, list[dict]] = {}  # per trial: the untried points when it began

    def __str__(self) -> str:
        return f"UntriedFirst({self.inner})"

    def _left(self, study, trial) -> list[dict]:
        if trial.number not in self._untried:
            have = tried_keys(study.get_trials(deepcopy=False), but=trial.number)
            self._untried = {trial.number: [p for p in self._grid if point_key(p) not in have]}
        return self._untried[trial.number]

    def _pick(self, trial, points: list[dict]) -> dict:
        return random.Random(f"{self.seed}:{trial.number}").choice(points)

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        proposal = self.inner.sample_relative(study, trial, search_space)
        left = self._left(study, trial)
        if proposal and left and not any(_fits(p, proposal) for p in left):
            chosen = self._pick(trial, left)
            proposal = {k: chosen[k] for k in proposal if k in chosen}
        self._relative = {trial.number: dict(proposal)}
        return proposal

    def sample_independent(self, study, trial, name: str, distribution) -> Any:
        value = self.inner.sample_independent(study, trial, name, distribution)
        left = self._left(study, trial)
        if not left:
            return value  # every point is in the study: the sampler's choice stands
        given = {**trial.params, **self._relative.get(trial.number, {})}
        fits = [p for p in left if _fits(p, given)]
        if not fits or any(_fits(p, {name: value}) for p in fits):
            return value
        return self._pick(trial, fits).get(name, value)

    def before_trial(self, study, trial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
