"""The prefilter: start a search from the points with the best training-free scores.

A study with ``prefilter: {score: snn_hamming, candidates: 2000, keep: 32}`` scores 2,000
distinct points of its space once (:func:`nas.search.scores.score_study`, stored in the study
as the user attr ``zero_cost``), queues the 32 best into the Optuna study (each with the
user attrs ``prefilter_rank`` and ``prefilter_score``) and records the funnel in the
study's user attr ``prefilter``. The queued points are trained first; then the sampler
proposes, having seen their results. A resumed or re-run study does not score or queue
again while the settings are the same.
"""
from __future__ import annotations

import math

from ..trial_record import is_proposal_only, trial_point

ATTR = "prefilter"  # the Optuna study's user attr: settings and the funnel's counts


def settings_of(cfg) -> dict:
    return cfg.prefilter.model_dump(mode="json")


def apply(cfg, study, space, log=print) -> int:
    """Score and queue (once per settings); the number of points queued by this call."""
    from .searcher import trial_key
    from ..scoring import get_scorers
    from .scores import score_study

    p = cfg.prefilter
    if p is None:
        return 0
    done = study.user_attrs.get(ATTR)
    if done and done.get("settings") == settings_of(cfg):
        return 0
    rows = score_study(cfg, study, space, space.distinct_points(p.candidates, p.seed),
                       get_scorers([p.score]), batch=p.batch, seed=p.seed, T=p.T, log=log)
    scored = [(r["scores"][p.score], r["point"]) for r in rows if math.isfinite(r["scores"][p.score])]
    scored.sort(key=lambda sp: -sp[0])
    have = {trial_key(trial_point(t)) for t in study.get_trials(deepcopy=False)}
    queued = 0
    for rank, (score, point) in enumerate(scored[:p.keep], 1):
        if trial_key(point) in have:
            continue
        study.enqueue_trial(point, user_attrs={"prefilter_rank": rank, "prefilter_score": score})
        queued += 1
    study.set_user_attr(ATTR, {"settings": settings_of(cfg), "scored": len(rows),
                               "finite": len(scored), "queued": queued})
    log(f"prefilter: {len(rows)} points scored with {p.score} ({len(rows) - len(scored)} "
        f"without a finite score); the best {queued} queued for training first")
    return queued


def funnel(study) -> dict | None:
    """The funnel's counts: scored, queued, and of the queued points how many were trained
    (COMPLETE or PRUNED) and completed; None for a study without a prefilter."""
    from optuna.trial import TrialState

    info = study.user_attrs.get(ATTR)
    if not info:
        return None
    mine = [t for t in study.get_trials(deepcopy=False) if "prefilter_rank" in t.user_attrs
            and not is_proposal_only(t)]
    return {**info, "trained": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in mine),
            "complete": sum(t.state == TrialState.COMPLETE for t in mine),
            "sampled": sum(1 for t in study.get_trials(deepcopy=False)
                           if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                           and "prefilter_rank" not in t.user_attrs)}


def funnel_line(study) -> str | None:
    f = funnel(study)
    if f is None:
        return None
    s = f["settings"]
    return (f"prefilter ({s['score']}): {f['scored']} points scored -> {f['queued']} queued -> "
            f"{f['trained']} trained ({f['complete']} to the full budget); then "
            f"{f['sampled']} trained from the sampler")
