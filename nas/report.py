"""Figures and a markdown summary of a study, from what its storage holds.

    python -m nas.report studies/skip_connections.yaml [--storage URL] --out DIR \\
        [--checkpoint runs/train/.../best.pt]

Writes PNG and PDF per figure, and ``summary.md``:

* ``ablation``: one bar per configuration (mean, sd and the repeats), the paper's Table 3
  (also as a table in ``summary.md``); needs >= 2 configurations at the full budget;
* ``effects``: a forest plot of the main effects and two-factor interactions of the
  space's parameters with 95% intervals and decisions (``nas.effects``; also a table in
  ``summary.md``); needs per-image correctness of >= 2 points;
* ``accuracy_energy``: accuracy against energy per image, the Pareto front highlighted;
* ``accuracy_params``: accuracy against parameters;
* ``firing_rates``: per-layer firing rates of the best architecture coloured by stage (the
  paper's Fig. 4): measured on ``--checkpoint`` if given, else as stored by the best trial;
* ``token_mixing``: the H x H and W x W token-mixing FC weights per stage of the
  ``--checkpoint`` model (the paper's Fig. 5); trials keep no weights, so it needs one;
* ``learning_curves``: the first objective per epoch of every trial, pruned ones visible;
* ``zero_cost``: training-free score against trained accuracy of the points that were
  both scored (``nas.zero_cost``, the prefilter) and trained, with Kendall's tau;
* ``lineage`` (a study with promotion stages): validation accuracy of each promoted
  architecture at the search and along its chain of stages, also as a table.

A figure whose data does not exist is skipped, and the command says why.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .plotting import fig_firing_rates, pyplot, save_figure
from .search.results import config_label, space_order, trial_counts
from .trial_record import is_proposal_only, point_key
from .study import (StudyConfig, StudyError, add_common_flags, load_study_from_args, output_folder,
                    run_command)

FIGURES = ("ablation", "intervals", "effects", "accuracy_energy", "accuracy_params", "firing_rates",
           "token_mixing", "learning_curves", "zero_cost")
METRIC_LABELS = {"val_acc": "validation accuracy (%)", "energy_uj": "energy per image (µJ)",
                 "sops": "synaptic operations per image", "firing_rate": "mean firing rate",
                 "sparsity": "sparsity (spikes / neuron / step)", "params": "parameters",
                 "macs": "MACs per image", "ann_flops": "ANN FLOPs per image", "T": "time steps"}
_VALUE_KEYS = ("val_acc", "energy_uj", "sops", "firing_rate", "sparsity", "macs", "ann_flops",
               "params", "T")


# ------------------------------------------------------------------------------ data


def _scale(metric: str, value: Any) -> float:
    if value is None:
        return math.nan
    v = float(value)
    return 100.0 * v if metric == "val_acc" else v


def trial_rows(study, cfg: StudyConfig) -> pd.DataFrame:
    """One row per trial (not waiting): number, state, point, label, repeat, epochs,
    curve, and the measured values (objectives, else the stored user attributes)."""
    from optuna.trial import TrialState

    names = [o.metric for o in cfg.objectives]
    rows, order = [], space_order(study)
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING or is_proposal_only(t):
            continue  # queued, or a discarded proposal (never trained)
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name, "point": point_key(t.params),
            "label": config_label(t.params, order), "repeat": t.user_attrs.get("repeat", 0),
            "epochs": t.user_attrs.get("epochs", 0), "curve": list(t.user_attrs.get("curve") or []),
            "layer_rates": t.user_attrs.get("layer_rates"), "arch": t.user_attrs.get("arch")}
        complete = t.state == TrialState.COMPLETE
        for key in _VALUE_KEYS:
            value = t.user_attrs.get(key) if complete or key in ("params", "T") else None
            if complete and key in names:
                value = t.values[names.index(key)]
            row[key] = math.nan if value is None else float(value)
        rows.append(row)
    cols = ["number", "state", "point", "label", "repeat", "epochs", "curve", "layer_rates",
            "arch", *_VALUE_KEYS]
    return pd.DataFrame(rows, columns=cols)


def configurations(df: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials grouped by point: n, mean and sd of every value, best accuracy first."""
    done = df[df["state"] == "COMPLETE"]
    if not len(done):
        return pd.DataFrame()
    g = done.groupby("point", sort=False)
    out = pd.DataFrame({"label": g["label"].first(), "n": g.size()})
    for key in _VALUE_KEYS:
        out[f"{key}_mean"] = g[key].mean()
        out[f"{key}_std"] = g[key].std(ddof=1)
    sort = "val_acc_mean" if out["val_acc_mean"].notna().any() else out.columns[2]
    return out.sort_values(sort, ascending=False).reset_index()


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points not dominated when minimising ``x`` and maximising ``y``."""
    from .search.pareto import front_ranks

    return front_ranks(np.column_stack([-np.asarray(x, float), np.asarray(y, float)])) == 0


def best_trial(df: pd.DataFrame, cfg: StudyConfig) -> pd.Series | None:
    """The COMPLETE trial best on the first objective (accuracy if several)."""
    done = df[df["state"] == "COMPLETE"]
    first = cfg.objectives[0]
    key = first.metric if first.metric in done else "val_acc"
    done = done[done[key].notna()]
    if not len(done):
        return None
    asc = first.direction == "minimize" and key == first.metric
    return done.sort_values([key, "number"], ascending=[asc, True]).iloc[0]


# --------------------------------------------------------------------------- figures


def fig_ablation(df: pd.DataFrame, cfg: StudyConfig, out: Path):
    conf = configurations(df)
    metric = "val_acc" if len(conf) and conf["val_acc_mean"].notna().any() else cfg.objectives[0].metric
    if len(conf) < 2:
        return f"needs >= 2 configurations at the full budget, the study has {len(conf)}"
    plt, sns = pyplot()
    done = df[df["state"] == "COMPLETE"].copy()
    done["value"] = [_scale(metric, v) for v in done[metric]]
    order = list(conf["label"])
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.42 * len(order)))
    sns.barplot(data=done, y="label", x="value", order=order, errorbar="sd", capsize=0.25,
                color=sns.color_palette()[0], alpha=0.85, err_kws={"linewidth": 1.2}, ax=ax)
    sns.stripplot(data=done, y="label", x="value", order=order, color="black", size=4,
                  jitter=0.15, ax=ax)
    means = done.groupby("label")["value"].mean()
    sds = done.groupby("label")["value"].std(ddof=1).fillna(0.0)
    ns = done.groupby("label").size()
    right = (means + sds).max()
    span = max(right - min(0.0, done["value"].min()), 1e-9)
    for i, lab in enumerate(order):
        text = f"{means[lab]:.2f}" + (f" ± {sds[lab]:.2f}" if ns[lab] > 1 else "") + f"  (n={ns[lab]})"
        ax.text(right + 0.03 * span, i, text, va="center", fontsize=9)
    ax.set_xlim(right=right + 0.45 * span)
    ax.set_xlabel(METRIC_LABELS.get(metric, metric))
    ax.set_ylabel("configuration")
    reps = sorted(set(ns))
    spread = ("one trial each (repeats: 1, no spread)" if reps == [1] else "mean ± sd over "
              f"{reps[0] if len(reps) == 1 else f'{reps[0]}-{reps[-1]}'} repeat(s)")
    ax.set_title(f"{cfg.name}: {len(order)} configurations, {spread}")
    return save_figure(fig, out, "ablation")


def fig_intervals(study, cfg: StudyConfig, out: Path):
    """Each point's validation accuracy at the budget it reached with its 95% interval over
    seeds x images (from the per-image correctness trials record), a race's dropped points
    in red; the race table goes to summary.md."""
    from .search.racing import race_rows

    rows, used, full = race_rows(study, cfg)
    rows = [r for r in rows if r["acc"] is not None]
    if len(rows) < 2:
        return ("needs per-image correctness (record_predictions: true, or scheduler: race) "
                f"for >= 2 configurations; the study has {len(rows)}")
    plt, _ = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.42 * len(rows)))
    for i, r in enumerate(rows):
        m, lo, hi = (100 * v for v in r["acc"])
        lo, hi = (m, m) if math.isnan(lo) else (lo, hi)  # 2 seeds, nothing to pool: no interval
        color = "tab:red" if r["dropped"] else "tab:blue"
        ax.errorbar(m, i, xerr=[[m - lo], [hi - m]], fmt="o", color=color, capsize=3)
        ax.text(hi, i, f"  {r['epochs']} ep" + (f", dropped (p {r['p']:.2g})" if r["dropped"] else ""),
                va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r["point"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(left=max(ax.get_xlim()[0], 0.0), right=min(ax.get_xlim()[1], 100.0))
    ax.set_xlabel("validation accuracy (%), mean and 95% CI over seeds x images, at the budget reached")
    ax.set_title(f"{cfg.name}: {used} of {full} trial-epochs of the full grid"
                 + (" (red: dropped by the race)" if any(r["dropped"] for r in rows) else ""), fontsize=10)
    return save_figure(fig, out, "intervals")


def _acc_scatter(df: pd.DataFrame, xkey: str, out: Path, name: str, cfg: StudyConfig,
                 xlabel: str, scale: float = 1.0):
    done = df[(df["state"] == "COMPLETE") & df[xkey].notna() & df["val_acc"].notna()]
    done = done[np.isfinite(done[xkey]) & (done[xkey] < 1e29)]
    if not len(done):
        return f"no full-budget trial with both val_acc and {xkey} stored"
    plt, sns = pyplot()
    from matplotlib.ticker import MaxNLocator

    x = done[xkey].to_numpy(float) / scale
    if x.max() == x.min():
        return (f"every full-budget trial has the same {xkey} ({x[0] * scale:.6g}): accuracy "
                f"against it would carry no information")
    y = done["val_acc"].to_numpy(float) * 100
    labels = list(done["label"])
    front = pareto_mask(x, y)
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    configs = list(dict.fromkeys(labels))
    if len(configs) <= 8:  # few configurations: one colour each
        colours = dict(zip(configs, sns.color_palette("tab10", len(configs))))
        for c in configs:
            sel = np.array([lab == c for lab in labels])
            ax.scatter(x[sel], y[sel], s=40, color=colours[c], alpha=0.9, label=c, zorder=2)
    else:
        ax.scatter(x, y, s=36, color="0.55", alpha=0.8, label="trials", zorder=2)
    order = np.argsort(x[front])
    fx, fy = x[front][order], y[front][order]
    ax.step(fx, fy, where="post", color="C3", linewidth=1.5, zorder=3)
    ax.scatter(fx, fy, s=130, facecolor="none", edgecolor="C3", linewidth=1.8, zorder=4,
               label=f"Pareto front ({len(fx)} trial{'s' if len(fx) > 1 else ''})")
    if len(x) > 1 and x.min() > 0 and x.max() / x.min() > 20:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(METRIC_LABELS["val_acc"])
    ax.set_title(f"{cfg.name}: {len(x)} full-budget trials")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=True, fontsize=8,
              title="configuration" if len(configs) <= 8 else None, title_fontsize=8)
    return save_figure(fig, out, name)


def fig_accuracy_energy(df, cfg, out):
    return _acc_scatter(df, "energy_uj", out, "accuracy_energy", cfg, METRIC_LABELS["energy_uj"])


def fig_accuracy_params(df, cfg, out):
    top = df["params"].max() if len(df) and df["params"].notna().any() else 0
    scale, unit = (1e6, "M") if top >= 1e6 else ((1e3, "thousands") if top >= 1e3 else (1.0, ""))
    return _acc_scatter(df, "params", out, "accuracy_params", cfg,
                        f"parameters ({unit})" if unit else "parameters", scale)


def token_mixing_weights(model, block: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``[(stage, W_h, W_w)]``: the axial token-mixing FC weights of one block per stage."""
    from blocks.tokens import AxialToken

    out = []
    for i, stage in enumerate(getattr(model, "stages", [])):
        blocks_ = getattr(stage, "blocks", None)
        if not blocks_ or block >= len(blocks_):
            continue
        tok = blocks_[block].token
        if isinstance(tok, AxialToken):
            out.append((i, tok.mix_h.fc.weight.detach().cpu().numpy(),
                        tok.mix_w.fc.weight.detach().cpu().numpy()))
    return out


def fig_token_mixing(model, title: str, out: Path, block: int = 0):
    if model is None:
        return "needs --checkpoint (trials keep no weights; nas.train --out DIR writes best.pt)"
    mats = token_mixing_weights(model, block)
    if not mats:
        return f"the checkpoint's model has no axial token mixing in block {block} of any stage"
    plt, _ = pyplot()
    n = len(mats)
    fig, axes = plt.subplots(2, n, figsize=(3.3 * n + 0.6, 6.4), squeeze=False)
    for j, (stage, wh, ww) in enumerate(mats):
        for r, (w, axis) in enumerate(((wh, "H"), (ww, "W"))):
            ax = axes[r][j]
            lim = float(np.abs(w).max()) or 1.0
            im = ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(f"stage {stage}: {axis} x {axis} ({w.shape[0]} x {w.shape[1]})", fontsize=9)
            ax.set_xlabel(f"input {axis} position", fontsize=8)
            ax.set_ylabel(f"output {axis} position", fontsize=8)
            ax.grid(False)
            step = max(1, w.shape[0] // 4)
            ax.set_xticks(range(0, w.shape[1], step))
            ax.set_yticks(range(0, w.shape[0], step))
            ax.tick_params(labelsize=7)
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            cb.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, "token_mixing")


def fig_learning_curves(df: pd.DataFrame, cfg: StudyConfig, out: Path):
    """Every trial's curve: colour by point, line style by how it ended."""
    metric = cfg.objectives[0].metric
    have = df[[len(c) > 0 for c in df["curve"]]] if len(df) else df
    if not len(have):
        return "no trial has a learning curve yet"
    plt, sns = pyplot()
    fig, ax = plt.subplots(figsize=(7.8, 4.4))
    styles = {"COMPLETE": dict(linestyle="-", alpha=0.85, linewidth=1.4),
              "PRUNED": dict(linestyle="--", alpha=0.8, linewidth=1.1),
              "FAIL": dict(linestyle=":", alpha=0.8, linewidth=1.1),
              "RUNNING": dict(linestyle="-.", alpha=0.8, linewidth=1.1)}
    points = list(dict.fromkeys(have["label"]))
    colours = dict(zip(points, sns.color_palette("tab10" if len(points) <= 10 else "husl", len(points))))
    counts: dict[str, int] = {}
    epochs_max = 1
    for _, row in have.iterrows():
        ys = np.array([_scale(metric, v) for v in row["curve"]], dtype=float)
        xs = np.arange(1, len(ys) + 1)
        epochs_max = max(epochs_max, len(ys))
        st = styles.get(row["state"], styles["RUNNING"])
        ax.plot(xs, ys, marker="o", markersize=3, color=colours[row["label"]], **st)
        if row["state"] == "PRUNED" and np.isfinite(ys[-1]):
            ax.plot(xs[-1], ys[-1], marker="x", color="black", markersize=7, linestyle="none")
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="black", label=f"{s.lower()} ({n})", **styles[s])
               for s, n in counts.items() if s in styles]
    if "PRUNED" in counts:
        handles.append(Line2D([], [], marker="x", color="black", linestyle="none",
                              label="stopped by the scheduler"))
    if len(points) <= 20:  # the points by colour, beside the states by line style
        handles += [Line2D([], [], color=colours[p], linewidth=2.5, label=p) for p in points]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=True)
    ax.set_xlabel("epoch")
    ax.set_xticks(range(1, epochs_max + 1, max(1, epochs_max // 10)))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{cfg.name}: learning curves of {len(have)} trials, {len(points)} points "
                 f"(full budget {cfg.fidelity.max_epochs} epochs)", fontsize=10)
    return save_figure(fig, out, "learning_curves")


# --------------------------------------------------------------------------- summary


def _fmt(v: float, digits: int = 4) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}g}"


def _pm(mean: float, sd: float, n: int, scale: float = 1.0, digits: int = 4) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    s = f"{mean * scale:.{digits}g}"
    return s + (f" ± {sd * scale:.2g}" if n > 1 and sd == sd else "")


def summary_markdown(df: pd.DataFrame, cfg: StudyConfig, figures: dict[str, Any],
                     best: pd.Series | None, rates_source: str | None,
                     rates: list[dict] | None, counts: str = "") -> str:
    lines = [f"# Study `{cfg.name}`", "",
             f"Storage `{cfg.storage_url}`; objectives: "
             + ", ".join(f"{o.metric} ({o.direction})" for o in cfg.objectives)
             + f"; full budget {cfg.fidelity.max_epochs} epochs; {counts}", ""]
    conf = configurations(df)
    lines += ["## Configurations (Table 3 style)", "",
              "Full-budget trials per configuration: mean ± sd over repeats. Energy, SOPs "
              "and firing rate are per image, measured at the end of each trial.", ""]
    if len(conf):
        lines += ["| # | configuration | n | val. acc. (%) | energy (µJ) | SOPs (M) | "
                  "firing rate | sparsity | params (M) |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for i, r in conf.iterrows():
            n = int(r["n"])
            lines.append(
                f"| {i + 1} | {r['label']} | {n} | {_pm(r['val_acc_mean'], r['val_acc_std'], n, 100)} | "
                f"{_pm(r['energy_uj_mean'], r['energy_uj_std'], n)} | "
                f"{_pm(r['sops_mean'], r['sops_std'], n, 1e-6)} | "
                f"{_pm(r['firing_rate_mean'], r['firing_rate_std'], n, 1.0, 3)} | "
                f"{_pm(r['sparsity_mean'], r['sparsity_std'], n, 1.0, 3)} | "
                f"{_fmt(r['params_mean'] / 1e6)} |")
    else:
        lines.append("No full-budget (COMPLETE) trial yet.")
    lines.append("")
    done = df[(df["state"] == "COMPLETE") & df["energy_uj"].notna() & df["val_acc"].notna()]
    if len(done):
        front = done[pareto_mask(done["energy_uj"].to_numpy(float), done["val_acc"].to_numpy(float))]
        lines += ["## Pareto front: accuracy vs energy", "",
                  "| trial | configuration | val. acc. (%) | energy (µJ) | SOPs (M) | MACs (M) | firing rate |",
                  "|---:|---|---:|---:|---:|---:|---:|"]
        for _, r in front.sort_values("energy_uj").iterrows():
            lines.append(f"| {r['number']} | {r['label']} | {r['val_acc'] * 100:.2f} | "
                         f"{_fmt(r['energy_uj'])} | {_fmt(r['sops'] / 1e6)} | "
                         f"{_fmt(r['macs'] / 1e6)} | {_fmt(r['firing_rate'], 3)} |")
        lines.append("")
    if best is not None:
        lines += [f"## Best architecture: trial {best['number']}, configuration {best['label']}", "",
                  f"Validation accuracy {best['val_acc'] * 100:.2f}%, energy "
                  f"{_fmt(best['energy_uj'])} µJ, sparsity {_fmt(best['sparsity'], 3)}; "
                  f"export it with `python -m nas.export`.", ""]
    if rates:
        frame = pd.DataFrame(rates)
        frame["stage"] = ["head" if s is None else s for s in frame["stage"]]
        g = frame.groupby("stage", sort=False)["rate"]
        lines += [f"Per-stage firing rates ({rates_source}):", "",
                  "| stage | spiking layers | mean | min | max |", "|---|---:|---:|---:|---:|"]
        for stage, sub in g:
            lines.append(f"| {'head' if stage == 'head' else f'stage {stage}'} | {len(sub)} | {sub.mean():.4f} | {sub.min():.4f} | {sub.max():.4f} |")
        lines.append("")
    lines += ["## Figures", ""]
    for name in FIGURES:
        got = figures.get(name)
        if isinstance(got, list):
            lines.append(f"- `{name}`: " + ", ".join(f"[{p.name}]({p.name})" for p in got))
        else:
            lines.append(f"- `{name}`: skipped: {got}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- main


def _effects(study, cfg: StudyConfig, out: Path) -> tuple[Any, str]:
    """The effects figure (or why not) and the effects section of summary.md."""
    from .analysis.effects import NoEffects, effects_markdown, fig_effects, study_effects

    try:
        result = study_effects(study, cfg)
    except NoEffects as err:
        return str(err), ""
    pyplot()
    return fig_effects(result, cfg.name, out, save_figure), effects_markdown(result)


def _checkpoint_model(path: str, cfg: StudyConfig, images: int):
    """The checkpoint's model and its metrics on the first validation images of the data
    it was trained on (else the study's); metrics None with a note if no data loads."""
    import torch

    from .training.checkpoint import load_checkpoint
    from .recipe import DataConfig
    from .training.data import load_data
    from .metrics import eval_batch, measure

    model, meta = load_checkpoint(path, "cpu")
    note = None
    for source in (meta.get("data"), cfg.data.model_dump(mode="json")):
        if not source:
            continue
        try:
            data = load_data(DataConfig.model_validate({**source, "batch_size": images}),
                             torch.device("cpu"))
            return model, measure(model, eval_batch(data, images)), None
        except Exception as err:  # noqa: BLE001 - fall back to the stored rates
            note = f"{type(err).__name__}: {err}"
    return model, None, note


def top_points(df: pd.DataFrame, top: int | None) -> pd.DataFrame:
    """The trials of the ``top`` best configurations (all trials when ``top`` is None)."""
    if top is None:
        return df
    keep = set(configurations(df).head(top)["point"]) if len(df) else set()
    return df[df["point"].isin(keep)]


def report(cfg: StudyConfig, out: Path, checkpoint: str | None = None, images: int = 64,
           block: int = 0, top: int | None = None) -> dict[str, Any]:
    """Write every figure that has data, and ``summary.md``; returns ``{figure: [paths]
    or the reason it was skipped}``. ``top``: only the best ``top`` configurations' trials
    in the figures and tables (the trial counts stay the study's)."""
    from .search.results import load_existing_study

    study = load_existing_study(cfg)
    out.mkdir(parents=True, exist_ok=True)
    df = top_points(trial_rows(study, cfg), top)
    best = best_trial(df, cfg)
    model, measured, note = (None, None, None)
    if checkpoint:
        model, measured, note = _checkpoint_model(checkpoint, cfg, images)
    figures: dict[str, Any] = {}
    figures["ablation"] = fig_ablation(df, cfg, out)
    figures["accuracy_energy"] = fig_accuracy_energy(df, cfg, out)
    figures["accuracy_params"] = fig_accuracy_params(df, cfg, out)
    if measured is not None:
        arch = getattr(model, "config", None)
        rates, sparsity = measured.layer_rates(), measured.sparsity
        source = (f"checkpoint {Path(checkpoint).name} ({arch.name if arch else 'model'}, "
                  f"T={measured.T}, {measured.batch} validation images)")
    elif best is not None and best["layer_rates"]:
        rates, sparsity = best["layer_rates"], best["sparsity"]
        source = (f"best trial {best['number']} (configuration {best['label']}), "
                  "stored at the end of the trial")
    else:
        rates, sparsity, source = None, None, None
    if note:
        print(f"note: could not measure the checkpoint on data ({note}); "
              "using the best trial's stored firing rates", file=sys.stderr)
    figures["firing_rates"] = fig_firing_rates(
        rates, f"{cfg.name}: per-layer firing rates\n{source}", out,
        None if sparsity is None else float(sparsity))
    figures["token_mixing"] = fig_token_mixing(
        model, f"token-mixing FC weights, block {block} of each stage"
        + (f" ({Path(checkpoint).name})" if checkpoint else ""), out, block)
    figures["learning_curves"] = fig_learning_curves(df, cfg, out)
    figures["intervals"] = fig_intervals(study, cfg, out)
    figures["effects"], effects_md = _effects(study, cfg, out)
    from .analysis.calibration import calibration_markdown
    from .search.prefilter import funnel_line
    from .search.racing import race_markdown
    from .analysis.zero_cost_agreement import agreement_markdown, fig_zero_cost

    figures["zero_cost"] = fig_zero_cost(study, cfg, out)
    funnel = funnel_line(study)
    (out / "summary.md").write_text(summary_markdown(df, cfg, figures, best, source, rates, trial_counts(study)) + "\n"
                                    + race_markdown(study, cfg) + "\n" + effects_md + "\n"
                                    + calibration_markdown(study)
                                    + ("\n## Prefilter\n\n" + funnel + "\n" if funnel else "")
                                    + "\n" + agreement_markdown(study))
    if cfg.promotion:  # the chain of promotion stages, when the study has one
        from .promotion.lineage import fig_lineage, lineage_frame, lineage_markdown

        pyplot()
        frame = lineage_frame(cfg)
        figures["lineage"] = fig_lineage(frame, {k: st.parent for k, st in cfg.promotion.items()}, out, save_figure)
        with open(out / "summary.md", "a") as fh:
            fh.write("\n" + lineage_markdown(frame, space_order(study)))
    for name in (*FIGURES, "lineage"):
        got = figures.get(name)
        if isinstance(got, list):
            print(f"wrote {name}: " + ", ".join(str(p) for p in got))
        elif got is not None:
            print(f"skipped {name}: {got}")
    print(f"wrote {out / 'summary.md'}")
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.report", description=__doc__.split("\n")[0])
    add_common_flags(ap, search=False)
    ap.add_argument("--out", help="output folder (default: runs/<study>/report)")
    ap.add_argument("--checkpoint", help="a trained model (nas.train --out DIR: best.pt) for the "
                                         "token-mixing weights and measured firing rates")
    ap.add_argument("--images", type=int, default=64, help="validation images to measure on (64)")
    ap.add_argument("--block", type=int, default=0, help="block of each stage whose token "
                                                         "mixing is drawn (0)")
    ap.add_argument("--top", type=int, help="only the best N configurations in the figures and tables "
                                            "(default: all)")
    args = ap.parse_args(argv)

    def body() -> None:
        cfg = load_study_from_args(args)
        if args.checkpoint and not Path(args.checkpoint).is_file():
            raise StudyError(f"--checkpoint: no such file: {args.checkpoint}")
        if args.top is not None and args.top < 1:
            raise StudyError(f"--top {args.top}: at least 1")
        out = output_folder(Path(args.out or cfg.run_dir / "report"),
                            "--out" if args.out else "runs_dir", cfg.source)
        report(cfg, out, args.checkpoint, args.images, args.block, args.top)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
