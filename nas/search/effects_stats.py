"""What each component of an ablation contributes: main effects and two-factor interactions
with intervals, decisions and a sample-size plan, from per-image correctness.

Pure numpy/scipy, like :mod:`nas.search.racing_stats`, whose crossed seeds x images model
it reuses. A design is a list of points (dicts of factor values); every point's results
are a boolean array ``(seeds, images)``, seeds paired across points (repeat ``s`` of every
point has the same data order and initialisation) and the same validation images.

**Effects are contrasts.** A main effect of a two-level factor is the mean accuracy of the
points where it is on minus that of the points where it is off (each point weighted
equally: on a full grid or a regular fraction this is the classical factorial effect); a
factor of more levels gets one effect per level against its reference level. A two-factor
interaction is half the difference of one factor's effect between the two levels of the
other, from the four cell means (for two-level factors: ``mean(AB = +) - mean(AB = -)``).
So every effect is ``sum_p w_p acc_p`` with weights ``w`` over the points, and the contrast
array ``d = sum_p w_p x_p`` (seeds, images) has the effect as its grand mean.

**Its variance** is that of a crossed seeds x images mean (docs/ablations.md), with the
seed part pooled over the design: the point x seed interaction of all points (three-way
ANOVA, ``(P-1)(S-1)`` degrees of freedom) times ``sum w^2``, since every point's seed luck
enters the contrast with its weight; the image terms (some images suit the "on" points)
and the residual flips come from ``d``'s own two-way ANOVA. Student's t with
Satterthwaite degrees of freedom gives the interval and a two-sided p-value.

**Aliases.** Two effects whose weight vectors are equal (or opposite) cannot be told apart
by the design: in a half fraction of four two-level factors ``PT x PC`` is ``TC x CT``.
They are reported once, the first in the space's order, with the others as its aliases.

**Decisions** at level 0.95 and an equivalence margin ``m`` (accuracy, 0.01 = 1 point):
``negligible`` when the whole interval lies inside ``(-m, +m)`` (two one-sided tests at
2.5% each), else ``positive``/``negative`` when it excludes 0, else ``undecided``. With one
seed the seed-to-seed variance is unknown: estimates only, every decision ``undecided``.
Decisions are per effect, not family-wise.

**Drift.** An effect measured after ``e`` epochs is a claim about the network after ``e``
epochs; what an ablation wants is the effect at the budget, and effects move with training
(on the 8-epoch ground truth PT's grows from +0.2 points at epoch 1 to +1.7 at epoch 8).
:func:`guard_drift` widens each interval by the change of its estimate since the previous
rung, carried on at that rate to the budget, before deciding: an effect still moving is
``undecided``, a stable one keeps its decision.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .racing_stats import SeedTerm, _mean_squares, _variance_of_mean, scipy_stats, seed_interaction

DECISIONS = ("positive", "negative", "negligible", "undecided")
MAX_LEVELS = 8  # a parameter with more distinct values in a study is not a factor here


@dataclass(frozen=True)
class Contrast:
    """One estimable effect: ``weights`` over the design's points (they sum to 0)."""
    name: str
    kind: str  # "main" or "interaction"
    factors: tuple[str, ...]
    weights: np.ndarray
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Effect:
    """An effect in accuracy (0..1): estimate, interval at ``level``, two-sided p, decision."""
    name: str
    kind: str
    estimate: float
    ci_low: float
    ci_high: float
    p: float
    decision: str
    se: float
    df: float
    aliases: tuple[str, ...] = ()

    def as_dict(self, epoch: int | None = None) -> dict:
        """The JSON row: accuracy points (x100)."""
        pct = lambda v: None if v != v else round(100 * v, 4)  # noqa: E731  (nan -> None)
        row = {"effect": self.name, "kind": self.kind, "estimate": pct(self.estimate),
               "ci_low": pct(self.ci_low), "ci_high": pct(self.ci_high),
               "p": None if self.p != self.p else float(f"{self.p:.4g}"), "decision": self.decision}
        if epoch is not None:
            row["epoch"] = epoch
        if self.aliases:
            row["aliases"] = list(self.aliases)
        return row


# ---------------------------------------------------------------- factors and contrasts

def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def factor_levels(points: Sequence[Mapping[str, Any]], order: Sequence[str],
                  reference: Mapping[str, Any] | None = None) -> dict[str, list]:
    """Each factor (a parameter in ``order`` taking 2..MAX_LEVELS values over ``points``) ->
    its levels, the reference first: ``reference[name]`` if given, else ``False`` for a
    switch, else the first value in ``order``'s listing (the space's own order)."""
    out = {}
    for name in order:
        levels: list = []
        for p in points:
            if name in p and not any(_same(p[name], v) for v in levels):
                levels.append(p[name])
        if not 2 <= len(levels) <= MAX_LEVELS:
            continue
        ref = (reference or {}).get(name, False if all(isinstance(v, bool) for v in levels) else levels[0])
        levels.sort(key=lambda v: not _same(v, ref))  # stable: the reference first
        out[name] = levels
    return out


def space_factors(space) -> tuple[list[str], dict[str, Any]]:
    """A space's parameter names in its file's order, and the reference level of each
    parameter that is not a switch (its first value)."""
    order = [p.name for p in space.parameters]
    reference = {p.name: p.values()[0] for p in space.parameters if p.type != "bool" and p.finite}
    return order, reference


def _label(name: str, level: Any, levels: list) -> str:
    if len(levels) == 2 and all(isinstance(v, bool) for v in levels):
        return name
    return f"{name}={level} vs {levels[0]}"


def _indicator(points, name: str, level: Any) -> np.ndarray:
    return np.array([name in p and _same(p[name], level) for p in points], dtype=np.float64)


def _mean_of(mask: np.ndarray) -> np.ndarray | None:
    n = mask.sum()
    return mask / n if n else None


def contrasts(points: Sequence[Mapping[str, Any]], levels: Mapping[str, list],
              interactions: bool = True) -> list[Contrast]:
    """Main effects of every factor (each non-reference level against the reference), then
    the two-factor interactions, in factor order; an effect whose cells the design leaves
    empty is not estimable and left out; aliased effects are merged (see the module)."""
    found: list[Contrast] = []
    names = list(levels)
    for f in names:
        ref = _mean_of(_indicator(points, f, levels[f][0]))
        for lv in levels[f][1:]:
            on = _mean_of(_indicator(points, f, lv))
            if on is not None and ref is not None:
                found.append(Contrast(_label(f, lv, levels[f]), "main", (f,), on - ref))
    for f, g in itertools.combinations(names, 2) if interactions else ():
        for a, b in itertools.product(levels[f][1:], levels[g][1:]):
            cells = [_mean_of(_indicator(points, f, x) * _indicator(points, g, y))
                     for x, y in ((a, b), (a, levels[g][0]), (levels[f][0], b), (levels[f][0], levels[g][0]))]
            if any(c is None for c in cells):
                continue
            w = (cells[0] - cells[1] - cells[2] + cells[3]) / 2
            found.append(Contrast(f"{_label(f, a, levels[f])} x {_label(g, b, levels[g])}",
                                  "interaction", (f, g), w))
    return _merge_aliases(found)


def _merge_aliases(found: list[Contrast]) -> list[Contrast]:
    kept: list[Contrast] = []
    aliases: dict[int, list[str]] = {}
    for c in found:
        for i, k in enumerate(kept):
            if np.allclose(c.weights, k.weights, atol=1e-12):
                aliases.setdefault(i, []).append(c.name)
                break
            if np.allclose(c.weights, -k.weights, atol=1e-12):
                aliases.setdefault(i, []).append(f"-{c.name}")
                break
        else:
            kept.append(c)
    return [Contrast(k.name, k.kind, k.factors, k.weights, tuple(aliases.get(i, ())))
            for i, k in enumerate(kept)]


# ---------------------------------------------------------------- estimates

def _stack(correct: Sequence[np.ndarray]) -> np.ndarray:
    arrays = [np.asarray(c, dtype=np.float64) for c in correct]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"every point needs results of one shape (seeds, images); got {sorted(shapes)}")
    return np.stack(arrays)


def decide(low: float, high: float, margin: float) -> str:
    """The decision for an interval (accuracy units) at an equivalence ``margin``."""
    if low != low or high != high:
        return "undecided"
    if -margin < low and high < margin:
        return "negligible"
    if low > 0:
        return "positive"
    if high < 0:
        return "negative"
    return "undecided"


def estimate_effects(correct: Sequence[np.ndarray], found: Sequence[Contrast], margin: float = 0.01,
                     level: float = 0.95) -> list[Effect]:
    """Every contrast of ``found`` on ``correct`` (one (seeds, images) array per point, in the
    order the contrasts' weights use)."""
    x = _stack(correct)
    seeds = x.shape[1]
    term = seed_interaction(list(x)) if seeds >= 2 and len(x) >= 2 else None
    out = []
    for c in found:
        d = np.tensordot(c.weights, x, axes=1)
        est = float(d.mean())
        if seeds < 2:
            out.append(Effect(c.name, c.kind, est, float("nan"), float("nan"), float("nan"),
                              "undecided", float("nan"), float("nan"), c.aliases))
            continue
        scaled = None if term is None else replace(term, scale=float(np.sum(c.weights ** 2)))
        var, df = _variance_of_mean(_mean_squares(d), scaled)
        se = float(np.sqrt(var))
        if se == 0.0:
            p = 1.0 if est == 0 else 0.0
            lo = hi = est
        else:
            half = float(scipy_stats().t.ppf(0.5 + level / 2, df)) * se
            lo, hi, p = est - half, est + half, float(2 * scipy_stats().t.sf(abs(est) / se, df))
        out.append(Effect(c.name, c.kind, est, lo, hi, p, decide(lo, hi, margin), se, df, c.aliases))
    return out


def guard_drift(now: Sequence[Effect], before: Sequence[Effect] | None, epoch: int,
                epoch_before: int, budget: int, margin: float) -> list[Effect]:
    """The effects at ``epoch`` with each interval widened on both sides by its drift to
    the budget, ``|estimate - estimate before| / (epoch - epoch_before) * (budget - epoch)``,
    and decided again at ``margin``. Without an earlier rung (``before`` None) the drift is
    unknown: every effect is undecided. At the budget nothing is widened."""
    if before is None:
        return [replace(e, decision="undecided") for e in now]
    if epoch <= epoch_before:
        raise ValueError(f"the earlier rung ({epoch_before}) must come before this one ({epoch})")
    previous = {e.name: e.estimate for e in before}
    out = []
    for e in now:
        rate = abs(e.estimate - previous.get(e.name, e.estimate)) / (epoch - epoch_before)
        widen = rate * max(budget - epoch, 0)
        lo, hi = e.ci_low - widen, e.ci_high + widen
        out.append(replace(e, ci_low=lo, ci_high=hi, decision=decide(lo, hi, margin)))
    return out


def all_mains_decided(effects: Sequence[Effect]) -> bool:
    mains = [e for e in effects if e.kind == "main"]
    return bool(mains) and all(e.decision != "undecided" for e in mains)


# ---------------------------------------------------------------- planning from a pilot

@dataclass(frozen=True)
class Components:
    """Variance of an effect's estimate at ``S`` seeds and ``N`` images:
    ``seed / S + image / N + residual / (S N)`` (accuracy units squared)."""
    seed: float
    image: float
    residual: float

    def variance(self, seeds: int, images: int) -> float:
        return self.seed / seeds + self.image / images + self.residual / (seeds * images)


def components(d: np.ndarray, term: SeedTerm, weight_sq: float) -> Components:
    """The variance components of contrast array ``d`` (seeds, images) with the design's
    pooled seed term (``E[ms_ps] = N s_ps2 + s_psi2``)."""
    ms = _mean_squares(np.asarray(d, dtype=np.float64))
    s_ps2 = max(term.ms_ps - term.ms_psi, 0.0) / term.images
    return Components(weight_sq * s_ps2, max(ms.ms_img - ms.ms_res, 0.0) / ms.seeds, ms.ms_res)


def power(delta: float, comp: Components, seeds: int, images: int, df: float,
          alpha: float = 0.05) -> float:
    """Power of the two-sided t test at ``alpha`` to find an effect of size ``delta``."""
    se = float(np.sqrt(comp.variance(seeds, images)))
    if se == 0.0:
        return 1.0
    crit = float(scipy_stats().t.ppf(1 - alpha / 2, df))
    nc = delta / se
    return float(scipy_stats().nct.sf(crit, df, nc) + scipy_stats().nct.cdf(-crit, df, nc))


def seeds_needed(delta: float, comp: Components, images: int, points: int, target: float = 0.8,
                 alpha: float = 0.05, max_seeds: int = 1000) -> int | None:
    """The fewest seeds (>= 2) whose test finds ``delta`` with power ``target``, the seed
    term's degrees of freedom ``(points - 1)(seeds - 1)``; None past ``max_seeds``."""
    for s in range(2, max_seeds + 1):
        if power(delta, comp, s, images, max((points - 1) * (s - 1), 1), alpha) >= target:
            return s
    return None
