"""Statistics for racing ablation points (issue 11): paired tests, intervals, rank agreement.

Pure numpy/scipy; no Ray or Optuna. A point's results are a boolean array ``(seeds, images)``:
entry ``[s, i]`` says whether repeat ``s`` classified validation image ``i`` correctly.
Seeds are paired across points (repeat ``s`` of every point uses the same data order and
init seed) and every point is scored on the same images.

**The model.** For a difference ``d = other - best`` (values -1, 0, 1) the estimate is its
grand mean ``D``. Seeds and images are *crossed* random factors (every seed sees every
image), so ``Var(D) = su2/S + sv2/N + sw2/(S N)``: ``su2`` is the seed-to-seed variance of
the true difference (training luck that does not cancel by pairing), ``sv2`` the spread of
the per-image systematic difference (some images suit one point better), ``sw2`` the
residual (which images flip on which seed). With the two-way ANOVA mean squares of ``d``
(``MS_seed``, ``MS_img``, ``MS_res``), ``Var(D) * S N`` is estimated by
``MS_res + (MS_seed - MS_res)+ + (MS_img - MS_res)+`` (components clipped at zero) and the
statistic ``D / sqrt(Var)`` is referred to Student's t with Welch-Satterthwaite degrees of
freedom. Pooling images across seeds as if independent would drop ``su2``; ignoring the
pairing would add each point's own seed and image-difficulty variance. With 3 seeds the
seed term has only 2 degrees of freedom, so a race of many points pools it:
:func:`seed_interaction` estimates the point x seed interaction from all points of the
round (three-way ANOVA, ``(P-1)(S-1)`` degrees of freedom) and :func:`paired_test` uses it
instead of the pair's own 2-degree estimate (assumption: the interaction variance is the
same for every point; the image terms stay specific to the pair).

**Selection.** :func:`race_round` tests every point against the best *by the data*, which
is biased: with two identical points the loser looks worse half the time, so a one-sided
test at ``alpha`` rejects ``2 alpha`` of the time. The default correction ``"range"``
refers ``|t| sqrt(2)`` to the studentized range of all ``k`` points of the round (single
step, Tukey / Games-Howell), which bounds the chance of dropping any point tied with the
best at ``alpha``. ``"holm"`` applies Holm to two-sided p-values over the ``k-1``
comparisons: exact for two points, liberal when many points tie with the best.

Everything here is deterministic (no resampling).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping, Sequence

import numpy as np


def scipy_stats():
    """``scipy.stats``, imported on first use: a second of import that a study run without
    a race or a factorial design never pays (every ``nas.run`` imports this module)."""
    from scipy import stats

    return stats


CORRECTIONS = ("range", "holm", "none")


# ---------------------------------------------------------------- crossed ANOVA pieces

def _as_results(x, name: str = "results") -> np.ndarray:
    """``x`` as a float64 array (seeds, images), at least 2 seeds and 2 images."""
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected an array (seeds, images), got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 seeds and 2 images, got shape {a.shape}")
    return a.astype(np.float64, copy=False)


@dataclass(frozen=True)
class _MeanSquares:
    """Two-way (seeds x images, one value per cell) ANOVA of one array."""
    mean: float
    ms_seed: float
    ms_img: float
    ms_res: float
    df_seed: int
    df_img: int
    df_res: int
    seeds: int
    images: int


def _mean_squares(x: np.ndarray) -> _MeanSquares:
    """Mean squares of ``x`` (seeds, images): E[MS_seed] = N su2 + sw2,
    E[MS_img] = S sv2 + sw2, E[MS_res] = sw2."""
    s, n = x.shape
    grand = x.mean()
    by_seed = x.mean(axis=1)
    by_img = x.mean(axis=0)
    ss_seed = n * np.sum((by_seed - grand) ** 2)
    ss_img = s * np.sum((by_img - grand) ** 2)
    ss_res = np.sum((x - by_seed[:, None] - by_img[None, :] + grand) ** 2)
    df_seed, df_img, df_res = s - 1, n - 1, (s - 1) * (n - 1)
    return _MeanSquares(float(grand), ss_seed / df_seed, ss_img / df_img, ss_res / df_res,
                        df_seed, df_img, df_res, s, n)


@dataclass(frozen=True)
class SeedTerm:
    """Pooled point x seed interaction of a round (three-way ANOVA points x seeds x images).

    ``E[ms_ps] = N s_ps2 + s_psi2`` and ``E[ms_psi] = s_psi2``; the variance of the per-seed
    accuracy difference of two points beyond image flips is ``2 s_ps2``."""
    ms_ps: float
    ms_psi: float
    df_ps: int
    df_psi: int
    images: int
    scale: float = 2.0  # 2: the difference of two points; 1: one point (pooled_seed_term)

    @property
    def pair_var(self) -> float:
        """Estimated seed variance of the mean, ``scale (ms_ps - ms_psi)+ / N`` (``su2`` of a pair)."""
        return self.scale * max(self.ms_ps - self.ms_psi, 0.0) / self.images


def seed_interaction(points: Sequence[np.ndarray]) -> SeedTerm:
    """Pool the point x seed interaction over all ``points`` (each (seeds, images), same shape)."""
    x = np.stack([_as_results(p) for p in points]).astype(np.float64)
    p, s, n = x.shape
    if p < 2:
        raise ValueError("seed_interaction: need at least 2 points")
    m = x.mean()
    a_p, a_s, a_i = x.mean(axis=(1, 2)), x.mean(axis=(0, 2)), x.mean(axis=(0, 1))
    a_ps, a_pi, a_si = x.mean(axis=2), x.mean(axis=1), x.mean(axis=0)
    ss_ps = n * np.sum((a_ps - a_p[:, None] - a_s[None, :] + m) ** 2)
    resid = (x - a_ps[:, :, None] - a_pi[:, None, :] - a_si[None, :, :]
             + a_p[:, None, None] + a_s[None, :, None] + a_i[None, None, :] - m)
    df_ps, df_psi = (p - 1) * (s - 1), (p - 1) * (s - 1) * (n - 1)
    return SeedTerm(ss_ps / df_ps, float(np.sum(resid ** 2)) / df_psi, df_ps, df_psi, n)


def pooled_seed_term(points: Sequence[np.ndarray]) -> SeedTerm:
    """The seed-to-seed variance of one point's accuracy, pooled over ``points`` (each
    (seeds, images), same shape): the mean of their seed and residual mean squares, with
    ``P (S-1)`` degrees of freedom instead of one point's ``S - 1`` (1 with 2 seeds)."""
    ms = [_mean_squares(_as_results(p)) for p in points]
    s, n = ms[0].seeds, ms[0].images
    return SeedTerm(float(np.mean([m.ms_seed for m in ms])), float(np.mean([m.ms_res for m in ms])),
                    len(ms) * (s - 1), len(ms) * (s - 1) * (n - 1), n, scale=1.0)


def _variance_of_mean(ms: _MeanSquares, seed_term: SeedTerm | None = None) -> tuple[float, float]:
    """Variance of the grand mean over crossed seeds x images, and its Satterthwaite df.

    ``Var * S N = MS_res + seed part + (MS_img - MS_res)+`` where the seed part is
    ``(MS_seed - MS_res)+`` or, with a pooled ``seed_term``, ``scale (ms_ps - ms_psi)+``
    (``scale``: the sum of the squared point weights of the contrast, 2 for a pair). The
    degrees of freedom count the noise of every mean square used (conservative when a
    component is clipped)."""
    sn = ms.seeds * ms.images
    img = max(ms.ms_img - ms.ms_res, 0.0)
    noise = ms.ms_img ** 2 / ms.df_img + 2 * ms.ms_res ** 2 / ms.df_res
    if seed_term is None:
        seed = max(ms.ms_seed - ms.ms_res, 0.0)
        noise += ms.ms_seed ** 2 / ms.df_seed
    else:
        seed = seed_term.scale * max(seed_term.ms_ps - seed_term.ms_psi, 0.0)
        noise += seed_term.scale ** 2 * (seed_term.ms_ps ** 2 / seed_term.df_ps
                                         + seed_term.ms_psi ** 2 / seed_term.df_psi)
    total = ms.ms_res + seed + img
    if total <= 0.0:  # every cell identical: no variance, infinite df
        return 0.0, float("inf")
    return total / sn, total ** 2 / noise


# ---------------------------------------------------------------- the paired test

@dataclass(frozen=True)
class TestResult:
    """``diff`` = mean accuracy of other minus best; ``p_value`` one-sided for "other is
    worse" (small when ``diff`` is clearly negative); CI two-sided at ``level``."""
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    df: float
    t: float

    __test__ = False  # not a pytest class


def paired_test(best: np.ndarray, other: np.ndarray, *, level: float = 0.95,
                seed_term: SeedTerm | None = None) -> TestResult:
    """Paired t test over crossed seeds x images of H0 "other is not worse than best".

    ``best``/``other``: per-image correctness (seeds, images), paired by row and column.
    ``p_value = P(T_df <= t)`` with ``t = diff / se``; valid for a pair chosen in advance
    (see :func:`race_round` for a best chosen from the data). ``seed_term`` (from
    :func:`seed_interaction`) replaces the pair's own seed-variance estimate."""
    a, b = _as_results(best, "best"), _as_results(other, "other")
    if a.shape != b.shape:
        raise ValueError(f"best {a.shape} and other {b.shape} must have the same (seeds, images)")
    ms = _mean_squares(b - a)
    var, df = _variance_of_mean(ms, seed_term)
    se = float(np.sqrt(var))
    diff = ms.mean
    if se == 0.0:
        t = 0.0 if diff == 0 else float(np.copysign(np.inf, diff))
        return TestResult(diff, diff, diff, 1.0 if diff >= 0 else 0.0, 0.0, df, t)
    t = diff / se
    half = float(scipy_stats().t.ppf(0.5 + level / 2, df)) * se
    return TestResult(diff, diff - half, diff + half, float(scipy_stats().t.cdf(t, df)), se, df, t)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: the i-th smallest is multiplied by ``m - i``
    (i from 0), made monotone by a running maximum and capped at 1. Reject where <= alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


@dataclass(frozen=True)
class PointDecision:
    """One point of a round: its comparison with the best (None for the best itself)."""
    keep: bool
    accuracy: float
    diff: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 0.0
    p_raw: float = 1.0
    p_adjusted: float = 1.0


@dataclass(frozen=True)
class RoundResult:
    best: Hashable
    alpha: float
    correction: str
    points: dict = field(default_factory=dict)  # point -> PointDecision

    @property
    def dropped(self) -> list:
        return [k for k, d in self.points.items() if not d.keep]

    @property
    def kept(self) -> list:
        return [k for k, d in self.points.items() if d.keep]


def race_round(correct: Mapping[Hashable, np.ndarray], alpha: float = 0.05,
               correction: str = "range", *, level: float = 0.95,
               pool_seed_term: bool = True) -> RoundResult:
    """One racing round: compare every point with the best by mean accuracy, drop the worse.

    ``correct``: point -> (seeds, images) of the surviving points (same shape, paired).
    ``p_raw`` is :func:`paired_test`'s one-sided p-value with the point-x-seed variance
    pooled over the round (``pool_seed_term``); ``p_adjusted`` accounts for the best being
    picked from the data and for the ``k - 1`` comparisons (``correction``: ``"range"``
    studentized range over ``k`` points, ``"holm"`` Holm on two-sided p-values, ``"none"``
    the raw p). A point is dropped when ``p_adjusted <= alpha``. Ties in accuracy go to
    the first point in ``correct``'s order."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    names = list(correct)
    arrays = [_as_results(correct[k], str(k)) for k in names]
    acc = np.array([a.mean() for a in arrays])
    ib = int(np.argmax(acc))
    decisions = {names[ib]: PointDecision(True, float(acc[ib]))}
    others = [i for i in range(len(names)) if i != ib]
    if not others:
        return RoundResult(names[ib], alpha, correction, decisions)
    term = seed_interaction(arrays) if pool_seed_term else None
    results = [paired_test(arrays[ib], arrays[i], level=level, seed_term=term) for i in others]
    raw = np.array([r.p_value for r in results])
    if correction == "none":
        adj = raw
    elif correction == "holm":
        adj = holm(np.minimum(1.0, 2 * np.minimum(raw, 1 - raw)))
    else:
        k = len(names)
        q = np.array([abs(r.t) * np.sqrt(2) for r in results])
        dfs = np.array([min(r.df, 1e6) for r in results])
        adj = np.where(np.isinf(q), 0.0, scipy_stats().studentized_range.sf(np.minimum(q, 1e6), k, dfs)
                       if k > 2 else 2 * scipy_stats().t.sf(q / np.sqrt(2), dfs))
    for i, r, p, pa in zip(others, results, raw, adj):
        decisions[names[i]] = PointDecision(bool(pa > alpha), float(acc[i]), r.diff, r.ci_low,
                                            r.ci_high, float(p), float(pa))
    return RoundResult(names[ib], alpha, correction, {k: decisions[k] for k in names})


# ---------------------------------------------------------------- intervals for reports

def mean_ci(correct_or_accuracies, level: float = 0.95,
            seed_term: SeedTerm | None = None) -> tuple[float, float, float]:
    """A point's accuracy ``(mean, low, high)``, the interval kept inside [0, 1].

    A 2-D (seeds, images) array: seeds and images crossed random factors, variance as in
    :func:`paired_test` (here the image term is the spread of image difficulty, so the
    interval covers drawing another validation set too); ``seed_term``
    (:func:`pooled_seed_term`) replaces the point's own seed variance. A 1-D array of
    per-seed accuracies: the t interval over seeds (df = seeds - 1)."""
    x = np.asarray(correct_or_accuracies, dtype=np.float64)
    if x.ndim == 1:
        if x.size < 2:
            raise ValueError("mean_ci: need at least 2 accuracies")
        mean, var, df = float(x.mean()), float(x.var(ddof=1)) / x.size, x.size - 1
    else:
        ms = _mean_squares(_as_results(x))
        (var, df), mean = _variance_of_mean(ms, seed_term), ms.mean
    half = float(scipy_stats().t.ppf(0.5 + level / 2, df)) * float(np.sqrt(var)) if var > 0 else 0.0
    return mean, max(mean - half, 0.0), min(mean + half, 1.0)


def diff_ci(reference: np.ndarray, other: np.ndarray, level: float = 0.95,
            seed_term: SeedTerm | None = None) -> tuple[float, float, float]:
    """``(diff, low, high)`` of mean accuracy ``other - reference``, paired over seeds and
    images (the interval of :func:`paired_test`; ``seed_term``: the race's pooled one,
    :func:`seed_interaction`), kept inside [-1, 1]."""
    r = paired_test(reference, other, level=level, seed_term=seed_term)
    return r.diff, max(r.ci_low, -1.0), min(r.ci_high, 1.0)


# ---------------------------------------------------------------- rank agreement

def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get the average of the ranks they span."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise ValueError(f"need two sequences of the same length >= 2, got {x.size} and {y.size}")
    return x, y


def spearman(x, y) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (ties averaged); nan if
    either side is constant."""
    rx, ry = (_ranks(v) for v in _pair(x, y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt(np.sum(rx ** 2) * np.sum(ry ** 2))
    return float(np.sum(rx * ry) / den) if den > 0 else float("nan")


def kendall_tau(x, y) -> float:
    """Kendall's tau-b: ``sum sign(dx) sign(dy) / sqrt(pairs untied in x * pairs untied
    in y)`` over all pairs (O(n^2), n = points); nan if either side is constant."""
    x, y = _pair(x, y)
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    den = np.sqrt(np.sum(sx != 0) * np.sum(sy != 0))
    return float(np.sum(sx * sy) / den) if den > 0 else float("nan")


def top_k_overlap(x, y, k: int) -> float:
    """Fraction (0..1, higher is better) of the ``k`` largest by ``y`` (the reference, e.g.
    the expensive fidelity) that are also among the ``k`` largest by ``x`` (the cheap one).
    Ties at the boundary are broken by position (earlier first)."""
    x, y = _pair(x, y)
    if not 1 <= k <= x.size:
        raise ValueError(f"k must be in 1..{x.size}, got {k}")
    top = lambda v: set(np.argsort(-v, kind="stable")[:k].tolist())  # noqa: E731
    return len(top(x) & top(y)) / k


@dataclass(frozen=True)
class Calibration:
    epoch: int
    last_epoch: int
    n_points: int
    spearman: float
    kendall_tau: float


def curve_calibration(curves: Mapping[Hashable, Sequence[float]], epoch: int) -> Calibration:
    """Rank agreement over points between the metric after ``epoch`` (1-based:
    ``curve[epoch - 1]``) and after the last epoch. Only points whose curve reaches the
    longest length take part (shorter ones were stopped early and have no final value)."""
    if not curves:
        raise ValueError("curve_calibration: no curves")
    last = max(len(c) for c in curves.values())
    if not 1 <= epoch <= last:
        raise ValueError(f"epoch must be in 1..{last}, got {epoch}")
    full = [c for c in curves.values() if len(c) == last]
    early = [c[epoch - 1] for c in full]
    final = [c[-1] for c in full]
    if len(full) < 2:
        return Calibration(epoch, last, len(full), float("nan"), float("nan"))
    return Calibration(epoch, last, len(full), spearman(early, final), kendall_tau(early, final))
