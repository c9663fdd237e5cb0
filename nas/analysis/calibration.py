"""Does a cheap setting rank architectures like the expensive one (``nas.calibrate``)?

Paired fidelities: K points of a study's space (seeded) are trained at both settings, as
two studies of their own (``<name>-cal-low`` and ``<name>-cal-high``, same storage, the
same engine), and their rankings compared: Spearman rho, Kendall tau, top-k overlap, and a
scatter figure. The free version compares, over the points of the stored study, the
accuracy after epoch e with the final one. Both results are stored in the study (user
attrs ``calibration`` and ``calibration_free``); the end table of a study and
``nas.report`` show them, and warn when Kendall tau is below ``CALIBRATION_WARN``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..search.results import CALIBRATION_WARN, load_existing_study
from ..study import Override, StudyConfig, StudyError, load_study
from ..trial_record import is_proposal_only, point_key, trial_point


def _train_at(path: str, base: list[Override], extra: list[Override], suffix: str,
              points: list[dict], smoke: bool) -> dict[str, float]:
    """Train ``points`` under ``extra`` overrides as the study ``<name>-cal-<suffix>``;
    their final objective values by point."""
    from optuna.trial import TrialState

    from ..search.engine import open_study, run

    probe = load_study(path, base, smoke=smoke)
    name = f"{probe.name}-cal-{suffix}"
    cfg = load_study(path, [*base, *extra, Override("name", name, f"calibration {suffix}"),
                            Override("trials", len(points), "--k"),
                            Override("scheduler", "none", "calibration"),
                            Override("sampler", {"name": "random", "seed": 0}, "calibration"),
                            Override("repeats", 1, "calibration"),
                            Override("prefilter", None, "calibration")], smoke=smoke)
    study, _ = open_study(cfg, cfg.load_space())
    queued = {point_key(trial_point(t))
              for t in study.get_trials(deepcopy=False)}
    for p in points:
        if point_key(p) not in queued:
            study.enqueue_trial(p, user_attrs={"repeat": 0})
    run(cfg)
    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if not is_proposal_only(t):
            out[point_key(t.params)] = t.values[0]
    return out


def calibrate(path: str, base: list[Override], low: list[Override], high: list[Override],
              k: int, smoke: bool = False) -> dict:
    from ..search.engine import ray_session
    from ..search.racing_stats import kendall_tau, spearman, top_k_overlap

    cfg = load_study(path, base, smoke=smoke)
    points = cfg.load_space().distinct_points(k)
    with ray_session(cfg):  # one Ray for both studies
        cheap = _train_at(path, base, low, "low", points, smoke)
        dear = _train_at(path, base, high, "high", points, smoke)
    both = [p for p in cheap if p in dear]
    if len(both) < 3:
        raise StudyError(f"{cfg.source}: calibration needs at least 3 points trained at both "
                         f"settings; got {len(both)} (see the failures in the two studies)")
    x, y = [cheap[p] for p in both], [dear[p] for p in both]
    top = min(3, len(both))
    result = {"low": [f"{o.field}={o.value}" for o in low], "high": [f"{o.field}={o.value}" for o in high],
              "k": len(both),
              "spearman": spearman(x, y), "kendall_tau": kendall_tau(x, y),
              f"top{top}_overlap": top_k_overlap(x, y, top),
              "points": [{"point": json.loads(p), "low": cheap[p], "high": dear[p]} for p in both]}
    _store(cfg, "calibration", result)
    figure = _scatter(result, cfg.run_dir / "calibration.png")
    print(f"calibration of {cfg.name} over {len(both)} points: low {result['low']} vs high "
          f"{result['high']}: Spearman {result['spearman']:.3f}, Kendall tau "
          f"{result['kendall_tau']:.3f}, top-{top} overlap {result[f'top{top}_overlap']:.2f}; "
          f"figure {figure}")
    return result


def free_calibration(cfg: StudyConfig) -> dict:
    """Epoch e against the final epoch, over the points of the stored study (mean over
    their repeats of the learning curves of full-budget trials)."""
    import numpy as np
    from optuna.trial import TrialState

    from ..search.racing_stats import curve_calibration

    study = load_existing_study(cfg)
    curves: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        curve = t.user_attrs.get("curve") or []
        if len(curve) == cfg.fidelity.max_epochs:
            curves.setdefault(point_key(t.params), []).append(curve)
    means = {p: list(np.mean(cs, axis=0)) for p, cs in curves.items()}
    if len(means) < 3:
        raise StudyError(f"{cfg.source}: the free calibration needs at least 3 points trained to "
                         f"the full budget; the study has {len(means)}")
    rows = []
    for e in range(1, cfg.fidelity.max_epochs):
        c = curve_calibration(means, e)
        rows.append({"epoch": e, "of": c.last_epoch, "points": c.n_points,
                     "spearman": c.spearman, "kendall_tau": c.kendall_tau})
        print(f"epoch {e} vs {c.last_epoch}: Spearman {c.spearman:.3f}, Kendall tau "
              f"{c.kendall_tau:.3f} ({c.n_points} points)")
    _store(cfg, "calibration_free", rows)
    return {"epochs": rows}


def calibration_markdown(study) -> str:
    """The study's stored calibrations as markdown ('' if none)."""
    cal, free = study.user_attrs.get("calibration"), study.user_attrs.get("calibration_free")
    lines = []
    if cal:
        warn = "" if cal["kendall_tau"] >= CALIBRATION_WARN else f" (below {CALIBRATION_WARN}: not to be trusted)"
        lines += [f"## Calibration: {' '.join(cal['low'])} vs {' '.join(cal['high'])}", "",
                  f"{cal['k']} points trained at both: Spearman {cal['spearman']:.3f}, Kendall tau "
                  f"{cal['kendall_tau']:.3f}{warn}.", ""]
    if free:
        lines += ["## Free calibration: epoch e vs the last, from the stored curves", "",
                  "| epoch | points | Spearman | Kendall tau |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['epoch']} of {r['of']} | {r['points']} | {r['spearman']:.3f} | {r['kendall_tau']:.3f} |"
                  for r in free]
        lines.append("")
    return "\n".join(lines)


def _store(cfg: StudyConfig, key: str, value) -> None:
    from ..search.engine import open_study

    study, _ = open_study(cfg, cfg.load_space())  # created if the study has not run yet
    study.set_user_attr(key, value)


def _scatter(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    order = sorted(range(len(pts)), key=lambda i: -pts[i]["high"])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter([p["low"] for p in pts], [p["high"] for p in pts])
    for rank, i in enumerate(order, 1):
        ax.annotate(str(rank), (pts[i]["low"], pts[i]["high"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("cheap: " + " ".join(result["low"]))
    ax.set_ylabel("expensive: " + " ".join(result["high"]))
    ax.set_title(f"Kendall tau {result['kendall_tau']:.2f}, Spearman {result['spearman']:.2f} "
                 f"(labels: rank at the expensive setting)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
