"""A two-objective study (accuracy up, energy down, NSGA-II) end to end through the real
``python -m nas.run``: metrics in the storage, then ``nas.report`` on it."""
import json
import math
from pathlib import Path

import matplotlib.image
import optuna
import pytest
from optuna.trial import TrialState

from nas.metrics import TRIAL_METRICS
from nas.analysis.figures import FIGURES
from nas.analysis.report import report
from nas.analysis.trial_table import pareto_mask
from nas.report import main
from nas.search.results import config_label
from nas.study import Override, load_study
from tests.studyruns import run_here, run_script, run_study





@pytest.fixture(scope="module")
def pareto_run(tmp_path_factory, studies):
    tmp = tmp_path_factory.mktemp("pareto")
    url, _ = run_study(studies, "pareto", tmp)
    return tmp, url


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from nas.training.loop import train

    out = tmp_path_factory.mktemp("ckpt")
    train("tiny", {"name": "synthetic", "batch_size": 16, "val_fraction": 0.25,
                   "synthetic": {"n_train": 48, "n_test": 8, "num_classes": 4, "size": 32}},
          {"epochs": 1}, checkpoint_dir=out, progress=False)
    return out / "best.pt"


def test_metrics_are_stored_and_are_the_objectives(pareto_run):
    _, url = pareto_run
    study = optuna.load_study(study_name="pareto", storage=url)
    trials = [t for t in study.get_trials() if "duplicate_of" not in t.user_attrs]
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 2  # 2 points x 2 repeats
    for t in trials:
        attrs = t.user_attrs
        for key in TRIAL_METRICS:
            assert isinstance(attrs[key], float) and math.isfinite(attrs[key]), key
        assert t.values[0] == attrs["val_acc"] and t.values[1] == attrs["energy_uj"] > 0
        assert attrs["sops"] == attrs["additions"] and 0 < attrs["sparsity"] < 1
        assert attrs["energy_uj"] == pytest.approx(
            (attrs["sops"] * 0.9 + attrs["macs"] * 4.6) * 1e-6, rel=1e-9)
        assert len(attrs["layer_rates"]) == 14
        assert {r["stage"] for r in attrs["layer_rates"]} == {0, 1}
        assert len(attrs["curve"]) == 2
    assert study.best_trials  # the Pareto set of two objectives


def test_report_writes_every_figure_and_the_table(pareto_run, checkpoint, tmp_path, studies, capsys):
    tmp, url = pareto_run
    from nas.zero_cost import main as zero_cost

    # the 2 points the study trained, scored without training (the zero_cost figure)
    assert zero_cost([str(studies / "pareto.yaml"), "--storage", url, "--trained",
                      "--batch", "8", "--scorers", "snn_hamming,params"]) == 0
    scored = capsys.readouterr().out
    assert "scoring 2 points" in scored and "(PC)" in scored and "{" not in scored  # its one label
    out = tmp_path / "report"
    proc = run_here("nas.report", str(studies / "pareto.yaml"), "--storage", url, "--out", str(out),
               "--checkpoint", str(checkpoint), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # skips add no weight: one parameter count for every point, so no accuracy-vs-parameters figure
    assert "skipped accuracy_params: every full-budget trial has the same params" in proc.stdout
    for name in (f for f in FIGURES if f != "accuracy_params"):
        assert f"wrote {name}" in proc.stdout, proc.stdout
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:4] == b"%PDF"
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.01
    summary = (out / "summary.md").read_text()
    assert "## Configurations (Table 3 style)" in summary and "## Pareto front" in summary
    head, intervals = summary.split("## Accuracy with 95% intervals")
    table = [line for line in head.splitlines() if "| none |" in line or "| (PC) |" in line]
    assert len(table) == 3  # two configurations, one of them on the Pareto front
    rows = [line for line in intervals.splitlines() if line.startswith(("| none |", "| (PC) |"))]
    assert len(rows) == 2 and all(r.endswith("| kept |") for r in rows)  # per-image intervals
    assert all(row.split("|")[3].strip() == "2" for row in table[:2])  # n = 2 repeats
    assert "checkpoint best.pt" in summary
    from nas.search.results import trial_counts

    assert "; 4 trials: COMPLETE 4\n" in summary and trial_counts(optuna.load_study(study_name="pareto", storage=url)) in summary


def test_report_without_checkpoint_uses_stored_rates_and_says_what_it_skips(pareto_run, tmp_path, studies,
                                                                           monkeypatch):
    tmp, url = pareto_run
    monkeypatch.chdir(tmp)
    cfg = load_study(studies / "pareto.yaml", [Override("storage", url, "--storage")])
    figures = report(cfg, tmp_path / "r", top=1)
    assert isinstance(figures["firing_rates"], list)
    assert "needs >= 2 configurations" in figures["ablation"]  # --top 1: the best configuration only
    assert figures["token_mixing"].startswith("needs --checkpoint")
    assert "best trial" in (tmp_path / "r" / "summary.md").read_text()


def test_missing_study_or_storage_exits_2(tmp_path, capsys, studies):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert main([str(studies / "pareto.yaml"), "--storage", missing, "--out", str(tmp_path / "o")]) == 2
    assert "has run yet" in capsys.readouterr().err and not (tmp_path / "none.db").exists()
    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path / 'x.db'}")
    assert main([str(studies / "pareto.yaml"), "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--out",
                 str(tmp_path / "o")]) == 2
    assert "no study named 'pareto'" in capsys.readouterr().err


def test_figures_without_information_say_so(tmp_path):
    from nas.analysis.zero_cost_agreement import tau_text
    from nas.plotting import fig_firing_rates

    assert tau_text({"kendall": math.nan, "ci": (math.nan, math.nan)}).startswith("undefined (the score")
    assert tau_text({"kendall": 0.5, "ci": (0.1, 0.8)}) == "+0.500 [+0.10, +0.80]"
    rates = [{"layer": "stages.0.blocks.0.lif", "stage": 0, "rate": 0.0},
             {"layer": "stages.0.blocks.1.lif", "stage": 0, "rate": 0.2}]
    assert isinstance(fig_firing_rates(rates, "t", tmp_path), list)  # a silent layer is marked, not hidden


def test_labels_and_pareto_front():
    assert config_label({"PT": True, "PC": False, "TC": True}) == "(PT, TC)"
    assert config_label({"PT": False}) == "none" and config_label({}) == "(base)"
    assert config_label({"T": 2, "PT": True}) == "T=2, PT=True"
    order = ["PT", "PC", "TC", "CT"]  # the space file's: every command names a point so
    assert config_label({"CT": False, "PC": True, "PT": True, "TC": True}, order) == "(PT, PC, TC)"
    assert config_label({"TC": 1, "T": 2, "PT": 0}, order) == "PT=0, TC=1, T=2"
    import numpy as np

    energy = np.array([1.0, 2.0, 3.0, 2.5])
    acc = np.array([0.5, 0.7, 0.8, 0.6])
    assert pareto_mask(energy, acc).tolist() == [True, True, True, False]


def test_recorded_correctness_replays_as_a_race(pareto_run, studies, tmp_path):
    """Trials store their per-image validation correctness per epoch; the ablation-cost
    benchmark exports it and plays a race on it."""
    from nas.trial_record import correct_by_epoch

    tmp, url = pareto_run
    study = optuna.load_study(study_name="pareto", storage=url)
    trials = [t for t in study.get_trials() if "duplicate_of" not in t.user_attrs]
    for t in trials:
        by_epoch = correct_by_epoch(t)
        assert sorted(by_epoch) == [1, 2]
        assert by_epoch[2].mean() == pytest.approx(t.user_attrs["curve"][1])  # val_acc, image by image
    script = Path(__file__).parents[1] / "benchmarks" / "ablation_cost.py"
    table = tmp_path / "truth.json"
    proc = run_script(script, "export", str(studies / "pareto.yaml"), "--storage", url, "--out", str(table))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_script(script, "replay", str(table), "--rungs", "1,2", "--reference", "none",
                      "--json", str(tmp_path / "s.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["epochs_full"] == 4 * 2 and summary["epochs_used"] <= 8
    assert "race:" in proc.stdout and proc.stdout.count("| none |") + proc.stdout.count("| (PC) |") >= 1
