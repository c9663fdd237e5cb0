"""Pareto dominance for several objectives: non-dominated sorting and crowding distance.

Every function takes a ``(points, objectives)`` array in which higher is better in every
column (negate a column that is minimised); NaN counts as the worst value.
"""
from __future__ import annotations

import numpy as np


def _clean(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"expected (points, objectives), got shape {v.shape}")
    return np.where(np.isnan(v), -np.inf, v)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    return bool(np.all(a >= b) and np.any(a > b))


def front_ranks(values) -> np.ndarray:
    """The non-dominated front of every point: 0 for the Pareto front, 1 for the front
    of what is left, and so on (NSGA-II's sorting; quadratic, fine for rungs of trials)."""
    v = _clean(values)
    n = len(v)
    ranks = np.full(n, -1)
    left = set(range(n))
    front = 0
    while left:
        current = [i for i in left if not any(dominates(v[j], v[i]) for j in left if j != i)]
        ranks[current] = front
        left -= set(current)
        front += 1
    return ranks


def crowding(values) -> np.ndarray:
    """NSGA-II's crowding distance within one set of points (boundary points: inf)."""
    v = _clean(values)
    n, m = v.shape
    out = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(v[:, k], kind="stable")
        col = v[order, k]
        out[order[0]] = out[order[-1]] = np.inf
        span = col[-1] - col[0]
        if not np.isfinite(span) or span == 0:
            continue
        out[order[1:-1]] += (col[2:] - col[:-2]) / span
    return out


def pareto_order(values) -> np.ndarray:
    """Indices from best to worst: by front, then by crowding distance (wider first)."""
    v = _clean(values)
    ranks = front_ranks(v)
    dist = np.zeros(len(v))
    for f in np.unique(ranks):
        members = np.flatnonzero(ranks == f)
        dist[members] = crowding(v[members])
    return np.lexsort((-dist, ranks))
