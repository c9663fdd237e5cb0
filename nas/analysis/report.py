"""A study's report (``python -m nas.report``): every registered figure
(:mod:`nas.analysis.figures`) and ``summary.md`` (the configurations as the paper's Table 3,
the Pareto front, the best architecture and its firing rates, the figures written or why
not, then the race, the effects, calibration, the prefilter, training-free scores and, for
a study with promotion stages, the lineage), from what the study's storage holds."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..metrics import eval_batch, measure
from ..promotion.lineage import lineage_frame, lineage_markdown
from ..recipe import DataConfig
from ..search.prefilter import funnel_line
from ..search.results import load_existing_study, space_order, trial_counts
from ..study import StudyConfig
from ..training.checkpoint import load_checkpoint
from ..training.data import load_data
from .calibration import calibration_markdown
from .figures import FIGURE_KINDS, FIGURES, FigureInputs
from .trial_table import best_trial, configurations, pareto_mask, top_points, trial_rows


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


def _checkpoint_model(path: str, cfg: StudyConfig, images: int):
    """The checkpoint's model and its metrics on the first validation images of the data
    it was trained on (else the study's); metrics None with a note if no data loads."""
    import torch

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


def _inputs(cfg: StudyConfig, study, out: Path, checkpoint: str | None, images: int, block: int,
            top: int | None) -> tuple[FigureInputs, pd.Series | None]:
    """What the figures draw from: the trials of the ``top`` configurations, and the firing
    rates measured on the checkpoint, else those the best trial stored; and the best trial."""
    df = top_points(trial_rows(study, cfg), top)
    best = best_trial(df, cfg)
    model, measured, note = (None, None, None)
    if checkpoint:
        model, measured, note = _checkpoint_model(checkpoint, cfg, images)
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
    return FigureInputs(cfg, study, df, out, rates, source, sparsity, model, checkpoint, block), best


def report(cfg: StudyConfig, out: Path, checkpoint: str | None = None, images: int = 64,
           block: int = 0, top: int | None = None) -> dict[str, Any]:
    """Write every figure that has data, and ``out/summary.md``; returns ``{figure: [paths]
    or the reason it was skipped}`` in the order of :data:`FIGURE_KINDS` (a figure for
    promotion stages only when the study has them). ``top``: only the best ``top``
    configurations' trials in the figures and tables (the trial counts stay the study's)."""
    from ..search.racing import race_markdown
    from .effects import effects_markdown
    from .zero_cost_agreement import agreement_markdown

    study = load_existing_study(cfg)
    out.mkdir(parents=True, exist_ok=True)
    inputs, best = _inputs(cfg, study, out, checkpoint, images, block, top)
    figures = {name: figure.draw(inputs) for name, figure in FIGURE_KINDS.items() if not figure.promotion}
    effects_md = "" if isinstance(inputs.effects, str) else effects_markdown(inputs.effects)
    funnel = funnel_line(study)
    (out / "summary.md").write_text(summary_markdown(inputs.trials, cfg, figures, best, inputs.rates_source,
                                                     inputs.rates, trial_counts(study)) + "\n"
                                    + race_markdown(study, cfg) + "\n" + effects_md + "\n"
                                    + calibration_markdown(study)
                                    + ("\n## Prefilter\n\n" + funnel + "\n" if funnel else "")
                                    + "\n" + agreement_markdown(study))
    if cfg.promotion:  # the chain of promotion stages, when the study has one
        inputs.lineage = lineage_frame(cfg)
        figures.update({name: figure.draw(inputs) for name, figure in FIGURE_KINDS.items() if figure.promotion})
        with open(out / "summary.md", "a") as fh:
            fh.write("\n" + lineage_markdown(inputs.lineage, space_order(study)))
    return figures
