"""Per-trial files as Optuna artifacts, so that a trial's page in optuna-dashboard shows them
(``optuna-dashboard URL --artifact-dir DIR``; the run prints the command):

* ``learning_curve.png``: the trial's objective per epoch;
* ``firing_rates.png``: its spiking layers' firing rates (full-budget trials);
* ``architecture.yaml``: the network it trained (``nas.train --arch-config`` takes it).

The two figures take about half a second of the driver's CPU per trial: a study of many
short trials can go without them (``trial_figures: false``; the architecture stays).

They live in ``<run folder>/artifacts`` (:func:`artifact_dir`). Writing them never stops a
study: a failure is one warning line.
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

ARTIFACT_NAMES = ("learning_curve.png", "firing_rates.png", "architecture.yaml")


def artifact_dir(cfg) -> Path:
    return cfg.run_dir / "artifacts"


def artifact_store(cfg):
    import optuna

    path = artifact_dir(cfg)
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def _learning_curve(curve: list[float], metric: str, title: str, path: Path) -> None:
    from ..plotting import pyplot

    plt, _ = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.plot(range(1, len(curve) + 1), curve, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _files(cfg, attrs: dict, title: str, folder: Path) -> list[Path]:
    import blocks

    from ..plotting import fig_firing_rates

    out = []
    if not cfg.trial_figures:
        attrs = {k: v for k, v in attrs.items() if k not in ("curve", "layer_rates")}
    if attrs.get("curve"):
        _learning_curve(attrs["curve"], cfg.objectives[0].metric, title, folder / ARTIFACT_NAMES[0])
        out.append(folder / ARTIFACT_NAMES[0])
    if attrs.get("layer_rates"):
        fig_firing_rates(attrs["layer_rates"], title, folder, attrs.get("sparsity"), formats=("png",))
        out.append(folder / ARTIFACT_NAMES[1])
    if attrs.get("arch"):
        (folder / ARTIFACT_NAMES[2]).write_text(blocks.dump_config(blocks.load_config(attrs["arch"])))
        out.append(folder / ARTIFACT_NAMES[2])
    return out


def store_trial_artifacts(cfg, trial, attrs: dict, title: str) -> None:
    """Upload the trial's files (``trial``: an Optuna Trial, still running) from ``attrs``
    (its user attributes: curve, layer_rates, arch)."""
    import optuna

    try:
        store = artifact_store(cfg)
        with tempfile.TemporaryDirectory(dir=artifact_dir(cfg)) as tmp, warnings.catch_warnings():  # ours
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for path in _files(cfg, attrs, title, Path(tmp)):
                optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path),
                                                 study_or_trial=trial)
    except Exception as err:  # noqa: BLE001 - the trial's result is stored; its pictures are extra
        print(f"warning: trial {trial.number}: its artifacts were not stored: "
              f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)
