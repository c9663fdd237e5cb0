"""A race over points fixed in advance (a grid x repeats), played on recorded results.

``race(correct, rungs)`` takes every point's per-image correctness at each rung epoch,
``(seeds, images)`` paired across points (same seeds, same validation images), and plays
the rounds: after each rung, :func:`nas.racing_stats.race_round` compares the surviving
points with the current best and drops those worse at ``alpha``. It returns which round
dropped each point, with its p-value and the point it lost to, and the epochs the race
trained against the full grid's. The same rounds decide a live race; played on a full
grid's stored results it tells what a race would have cost and kept (benchmarks/
ablation_cost.py).
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .racing_stats import race_round


@dataclass(frozen=True)
class Drop:
    rung: int  # the epoch after which the point was stopped
    p_adjusted: float
    lost_to: Hashable
    accuracy: float  # its mean accuracy at that rung


@dataclass
class RaceOutcome:
    rungs: list[int]
    survivors: list  # points trained to the last rung, best first
    dropped: dict = field(default_factory=dict)  # point -> Drop
    epochs_used: int = 0  # trial-epochs trained (points x seeds x epochs)
    epochs_full: int = 0  # the full grid's

    @property
    def cost(self) -> float:
        return self.epochs_used / self.epochs_full

    def ranking(self, final: Mapping[Hashable, float]) -> list:
        """Survivors by their final accuracy, then the dropped points, later rounds first
        (by their accuracy when dropped)."""
        late = sorted(self.dropped, key=lambda p: (-self.dropped[p].rung, -self.dropped[p].accuracy))
        return sorted(self.survivors, key=lambda p: -final[p]) + late


def race(correct: Mapping[Hashable, Mapping[int, np.ndarray]], rungs: Sequence[int],
         alpha: float = 0.05, correction: str = "range") -> RaceOutcome:
    """Play a race: ``correct[point][epoch]`` is ``(seeds, images)``; ``rungs`` the rung
    epochs, the last one the full budget (no test after it: the survivors are the answer)."""
    rungs = sorted(rungs)
    alive = list(correct)
    seeds = {p: np.asarray(next(iter(correct[p].values()))).shape[0] for p in alive}
    out = RaceOutcome(rungs, [], epochs_full=sum(seeds.values()) * rungs[-1])
    for rung in rungs[:-1]:
        result = race_round({p: correct[p][rung] for p in alive}, alpha, correction)
        for p in result.dropped:
            d = result.points[p]
            out.dropped[p] = Drop(rung, d.p_adjusted, result.best, d.accuracy)
            out.epochs_used += seeds[p] * rung
        alive = result.kept
    out.epochs_used += sum(seeds[p] for p in alive) * rungs[-1]
    last = race_round({p: correct[p][rungs[-1]] for p in alive}, alpha, correction) if len(alive) > 1 else None
    acc = {p: float(np.mean(correct[p][rungs[-1]])) for p in alive}
    out.survivors = sorted(alive, key=lambda p: -acc[p])
    out.final_round = last
    return out
