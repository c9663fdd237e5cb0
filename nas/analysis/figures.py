"""The figures of a study's report (``python -m nas.report``): each one a :class:`Figure`
registered with :func:`register_figure` in :data:`FIGURE_KINDS`, in the order the report
lists them. A figure draws from :class:`FigureInputs` and returns the paths it wrote (PNG
and PDF, named after the figure), or a sentence saying why it was skipped (its data does
not exist). A new figure is a subclass here with a ``name``, a ``description`` and
``draw``; ``tests/test_figures.py`` draws every member.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from blocks.tokens import AxialToken

from ..plotting import fig_firing_rates, pyplot, save_figure
from ..promotion.lineage import SEARCH
from ..registry import Registry
from ..study import StudyConfig
from .trial_table import METRIC_LABELS, configurations, drawn_value, pareto_mask


@dataclass
class FigureInputs:
    """What a figure draws from: the study and its config, its trials as a table
    (:func:`nas.analysis.trial_table.trial_rows`, only the ``--top`` configurations), the
    output folder, the per-layer firing rates to draw and where they come from, the
    ``--checkpoint`` model and the block whose token mixing is drawn, and for a study with
    promotion stages its lineage (:func:`nas.promotion.lineage.lineage_frame`)."""
    cfg: StudyConfig
    study: Any
    trials: pd.DataFrame
    out: Path
    rates: list[dict] | None = None
    rates_source: str | None = None
    sparsity: float | None = None
    model: Any = None
    checkpoint: str | None = None
    block: int = 0
    lineage: pd.DataFrame | None = None

    @cached_property
    def effects(self):
        """The study's component effects (``nas.analysis.effects``), or why there are none."""
        from .effects import NoEffects, study_effects

        try:
            return study_effects(self.study, self.cfg)
        except NoEffects as err:
            return str(err)


class Figure(ABC):
    """One figure of the report: ``name`` is the stem of the files it writes, ``description``
    one line on what it shows. ``promotion``: drawn only for a study with promotion stages,
    after summary.md has listed the others."""
    name: ClassVar[str]
    description: ClassVar[str]
    promotion: ClassVar[bool] = False

    @abstractmethod
    def draw(self, inputs: FigureInputs) -> list[Path] | str:
        """The paths written (``inputs.out/<name>.png`` and ``.pdf``), or why not."""


FIGURE_KINDS: Registry = Registry("figure")  # name -> Figure, drawn in this order
register_figure = FIGURE_KINDS.register


@register_figure
class Ablation(Figure):
    name = "ablation"
    description = ("one bar per configuration (mean, sd and the repeats), the paper's Table 3; "
                   "needs >= 2 configurations at the full budget")

    def draw(self, inputs):
        df, cfg = inputs.trials, inputs.cfg
        conf = configurations(df)
        metric = "val_acc" if len(conf) and conf["val_acc_mean"].notna().any() else cfg.objectives[0].metric
        if len(conf) < 2:
            return f"needs >= 2 configurations at the full budget, the study has {len(conf)}"
        plt, sns = pyplot()
        done = df[df["state"] == "COMPLETE"].copy()
        done["value"] = [drawn_value(metric, v) for v in done[metric]]
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
        return save_figure(fig, inputs.out, self.name)


@register_figure
class Intervals(Figure):
    name = "intervals"
    description = ("each point's validation accuracy at the budget it reached with its 95% "
                   "interval over seeds x images, a race's dropped points in red")

    def draw(self, inputs):
        from ..search.racing import race_rows

        cfg = inputs.cfg
        rows, used, full = race_rows(inputs.study, cfg)
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
        return save_figure(fig, inputs.out, self.name)


@register_figure
class Effects(Figure):
    name = "effects"
    description = ("a forest plot of the main effects and two-factor interactions of the space's "
                   "parameters with 95% intervals and decisions; needs per-image correctness of >= 2 points")

    def draw(self, inputs):
        from .effects import fig_effects

        result = inputs.effects
        if isinstance(result, str):
            return result
        pyplot()
        return fig_effects(result, inputs.cfg.name, inputs.out, save_figure)


def _acc_scatter(inputs: FigureInputs, xkey: str, name: str, xlabel: str, scale: float = 1.0):
    """Accuracy against ``xkey`` of the full-budget trials, the Pareto front highlighted."""
    df = inputs.trials
    done = df[(df["state"] == "COMPLETE") & df[xkey].notna() & df["val_acc"].notna()]
    done = done[np.isfinite(done[xkey].astype(float)) & (done[xkey] < 1e29)]  # no row: dtype object
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
    ax.set_title(f"{inputs.cfg.name}: {len(x)} full-budget trials")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=True, fontsize=8,
              title="configuration" if len(configs) <= 8 else None, title_fontsize=8)
    return save_figure(fig, inputs.out, name)


@register_figure
class AccuracyEnergy(Figure):
    name = "accuracy_energy"
    description = "accuracy against energy per image of the full-budget trials, the Pareto front highlighted"

    def draw(self, inputs):
        return _acc_scatter(inputs, "energy_uj", self.name, METRIC_LABELS["energy_uj"])


@register_figure
class AccuracyParams(Figure):
    name = "accuracy_params"
    description = "accuracy against parameters of the full-budget trials"

    def draw(self, inputs):
        df = inputs.trials
        top = df["params"].max() if len(df) and df["params"].notna().any() else 0
        scale, unit = (1e6, "M") if top >= 1e6 else ((1e3, "thousands") if top >= 1e3 else (1.0, ""))
        return _acc_scatter(inputs, "params", self.name,
                            f"parameters ({unit})" if unit else "parameters", scale)


@register_figure
class FiringRates(Figure):
    name = "firing_rates"
    description = ("per-layer firing rates of the best architecture coloured by stage (the paper's "
                   "Fig. 4): measured on --checkpoint if given, else as stored by the best trial")

    def draw(self, inputs):
        return fig_firing_rates(inputs.rates, f"{inputs.cfg.name}: per-layer firing rates\n"
                                f"{inputs.rates_source}", inputs.out,
                                None if inputs.sparsity is None else float(inputs.sparsity))


def token_mixing_weights(model, block: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``[(stage, W_h, W_w)]``: the axial token-mixing FC weights of one block per stage."""
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


@register_figure
class TokenMixing(Figure):
    name = "token_mixing"
    description = ("the H x H and W x W token-mixing FC weights per stage of the --checkpoint "
                   "model (the paper's Fig. 5); trials keep no weights, so it needs one")

    def draw(self, inputs):
        model, block = inputs.model, inputs.block
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
        fig.suptitle(f"token-mixing FC weights, block {block} of each stage"
                     + (f" ({Path(inputs.checkpoint).name})" if inputs.checkpoint else ""), fontsize=10)
        fig.tight_layout()
        return save_figure(fig, inputs.out, self.name)


@register_figure
class LearningCurves(Figure):
    name = "learning_curves"
    description = ("the first objective per epoch of every trial: colour by point, line style by "
                   "how it ended (pruned ones visible)")

    def draw(self, inputs):
        df, cfg = inputs.trials, inputs.cfg
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
            ys = np.array([drawn_value(metric, v) for v in row["curve"]], dtype=float)
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
        return save_figure(fig, inputs.out, self.name)


@register_figure
class ZeroCost(Figure):
    name = "zero_cost"
    description = ("training-free score against trained accuracy of the points both scored "
                   "(nas.zero_cost, the prefilter) and trained, with Kendall's tau")

    def draw(self, inputs):
        from .zero_cost_agreement import fig_zero_cost

        return fig_zero_cost(inputs.study, inputs.cfg, inputs.out)


@register_figure
class Lineage(Figure):
    name = "lineage"
    description = ("validation accuracy of each promoted architecture at the search and along its "
                   "chain of promotion stages")
    promotion = True

    def draw(self, inputs):
        """One colour per architecture, a segment from every stage's parent (its ``from``;
        none: the search) to the stage."""
        frame = inputs.lineage
        parents = {k: st.parent for k, st in (inputs.cfg.promotion or {}).items()}
        plt, _ = pyplot()
        stages = [c for c in frame.columns if c not in ("source_trial", "point")]
        if not len(frame) or len(stages) < 2:
            return "no promotion stage has run"
        x = {s: i for i, s in enumerate(stages)}
        fig, ax = plt.subplots(figsize=(1.6 * len(stages) + 2, 3.5))
        for k, (_, r) in enumerate(frame.iterrows()):
            color = f"C{k % 10}"
            acc = {s: 100 * r[s] for s in stages if r[s] is not None and r[s] == r[s]}
            for s, y in acc.items():
                parent = parents.get(s) or SEARCH
                if s != SEARCH and parent in acc:
                    ax.plot([x[parent], x[s]], [acc[parent], y], color=color)
            ax.plot([x[s] for s in acc], list(acc.values()), "o", color=color, label=f"trial {r['source_trial']}")
        ax.set_xticks(range(len(stages)), stages)
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title("lineage: search -> promotion stages (a line joins a stage to the one it starts from)")
        ax.legend(fontsize=7)
        return save_figure(fig, inputs.out, self.name)


FIGURES = tuple(name for name, figure in FIGURE_KINDS.items() if not figure.promotion)
"""The figures of every study's report, in the order summary.md lists them."""
