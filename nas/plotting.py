"""Plotting in one place: pyplot in the project's style, saving a figure as PNG and PDF,
and the figures that more than one stage draws (per-layer firing rates: a trial's
artifact, nas.report's figure)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def pyplot():
    """matplotlib's pyplot (headless) and seaborn, in the project's style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    return plt, sns


def save_figure(fig, out: Path, name: str, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """``out/name.png`` and ``.pdf`` (or ``formats``); the figure is closed."""
    paths = []
    for ext in formats:
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _short(layer: str) -> str:
    s = layer.replace("stages.", "s").replace("encoders.", "e").replace("blocks.", "b")
    return s.removesuffix(".lif")


def fig_firing_rates(rates: list[dict] | None, title: str, out: Path, sparsity: float | None = None,
                     formats: tuple[str, ...] = ("png", "pdf")):
    if not rates:
        return "no per-layer firing rates: no full-budget trial stored them and no --checkpoint"
    plt, sns = pyplot()
    frame = pd.DataFrame(rates)
    frame["stage"] = ["head" if s is None else f"stage {s}" for s in frame["stage"]]
    frame["index"] = range(len(frame))
    n = len(frame)
    fig, ax = plt.subplots(figsize=(min(16, max(7.0, 0.22 * n + 2)), 4.6))
    stages = list(dict.fromkeys(frame["stage"]))
    palette = dict(zip(stages, sns.color_palette("tab10", len(stages))))
    ax.bar(frame["index"], frame["rate"], width=0.85,
           color=[palette[s] for s in frame["stage"]], edgecolor="none")
    from matplotlib.patches import Patch

    handles = [Patch(color=palette[s], label=s) for s in stages]
    silent = frame[frame["rate"] == 0]
    if len(silent):  # a bar of height 0 is invisible: mark the layers that never fired
        handles.append(ax.scatter(silent["index"], np.zeros(len(silent)), marker="x", color="C3", zorder=3,
                                  clip_on=False, label=f"silent: no spike ({len(silent)} layers)"))
    if sparsity is not None and math.isfinite(sparsity):
        line = ax.axhline(sparsity, color="black", linestyle="--", linewidth=1)
        line.set_label(f"network sparsity {sparsity:.3g}")
        handles.append(line)
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=True,
              ncol=min(len(handles), 5))
    top = max(frame["rate"].max(), sparsity or 0.0, 1e-3)
    ax.set_ylim(0, top * 1.3)
    ax.set_xlim(-0.8, n - 0.2)
    if n <= 40:
        ax.set_xticks(frame["index"], [_short(x) for x in frame["layer"]], rotation=90, fontsize=7)
        ax.set_xlabel("spiking layer")
    else:
        starts = frame.groupby("stage", sort=False)["index"].min()
        ax.set_xticks(list(starts), [f"{s} →" for s in starts.index], fontsize=8)
        ax.set_xlabel(f"spiking layer, network order ({n} layers)")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out, "firing_rates", formats)
