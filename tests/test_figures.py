"""Every registered figure of the report (nas/analysis/figures.py) draws a readable PNG (and
its PDF) from a small study built here in memory (no Ray, no training), and says why it is
skipped when its data is missing; a figure's name registers once."""
import optuna
import pandas as pd
import pytest

import matplotlib.image
import numpy as np

from nas.analysis.figures import FIGURE_KINDS, FIGURES, Figure, FigureInputs, register_figure
from nas.analysis.trial_table import trial_rows
from nas.study import load_study
from nas.trial_record import CORRECT_KEY, pack_correct

optuna.logging.set_verbosity(optuna.logging.WARNING)

# why each figure is skipped on a study with no trial (the report prints it, summary.md lists it)
SKIPPED = {
    "ablation": "needs >= 2 configurations at the full budget, the study has 0",
    "intervals": "needs per-image correctness (record_predictions: true, or scheduler: race) for >= 2 "
                 "configurations; the study has 0",
    "effects": "needs per-image correctness (record_predictions: true, or scheduler: race) of >= 2 "
               "points; the study has 0",
    "accuracy_energy": "no full-budget trial with both val_acc and energy_uj stored",
    "accuracy_params": "no full-budget trial with both val_acc and params stored",
    "firing_rates": "no per-layer firing rates: no full-budget trial stored them and no --checkpoint",
    "token_mixing": "needs --checkpoint (trials keep no weights; nas.train --out DIR writes best.pt)",
    "learning_curves": "no trial has a learning curve yet",
    "zero_cost": "fewer than 2 points both scored (nas.zero_cost or prefilter) and trained",
    "lineage": "no promotion stage has run",
}
POINTS = [{"PT": pt, "PC": pc} for pt in (False, True) for pc in (False, True)]
RATES = [{"layer": f"stages.{s}.blocks.{b}.lif", "stage": s, "rate": 0.05 * (1 + s + b)}
         for s in (0, 1) for b in (0, 1)] + [{"layer": "head.lif", "stage": None, "rate": 0.0}]


def _study(cfg) -> optuna.Study:
    """The pareto study's 4 points x 2 repeats, COMPLETE after 2 epochs with their metrics,
    per-image correctness on 40 images and a training-free score each; one more trial of
    the first point PRUNED after 1 epoch."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("definition", {"space": {"parameters": [{"name": "PT"}, {"name": "PC"}]}})
    dist = {k: optuna.distributions.CategoricalDistribution([False, True]) for k in ("PT", "PC")}
    for i, point in enumerate(POINTS):
        for repeat in (0, 1):
            p = 0.5 + 0.1 * i
            correct = {e: rng.random(40) < p - 0.1 * (2 - e) for e in (1, 2)}
            acc, energy = float(correct[2].mean()), 1.0 + i + 0.1 * repeat
            study.add_trial(optuna.trial.create_trial(
                values=[acc, energy], params=point, distributions=dist,
                user_attrs={"repeat": repeat, "epochs": 2, "curve": [float(correct[1].mean()), acc],
                            "val_acc": acc, "energy_uj": energy, "params": 1000.0 + 500 * i,
                            "sops": 1e6 * (i + 1), "macs": 2e6, "firing_rate": 0.1, "sparsity": 0.1,
                            "T": 1.0, "layer_rates": RATES},
                system_attrs={f"{CORRECT_KEY}{e}": pack_correct(c) for e, c in correct.items()}))
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.PRUNED, params=POINTS[0], distributions=dist,
        user_attrs={"repeat": 2, "epochs": 1, "curve": [0.4]}))
    study.set_user_attr("zero_cost", [{"point": p, "scores": {"params": 1000.0 + 500 * i,
                                                              "snn_hamming": float(i % 3)},
                                       "settings": {}} for i, p in enumerate(POINTS)])
    return study


@pytest.fixture(scope="module")
def cfg(studies):
    return load_study(studies / "pareto.yaml")


@pytest.fixture(scope="module")
def full(cfg, tmp_path_factory):
    """Inputs with every figure's data: the study above, the stored firing rates, a model
    with axial token mixing and a lineage over two promotion stages."""
    import blocks

    study = _study(cfg)
    lineage = pd.DataFrame({"source_trial": [0, 2], "point": [POINTS[0], POINTS[1]],
                            "search": [0.6, 0.55], "base": [0.62, 0.5], "ft": [0.7, float("nan")]},
                           columns=["source_trial", "point", "search", "base", "ft"])
    return FigureInputs(cfg, study, trial_rows(study, cfg), tmp_path_factory.mktemp("full"),
                        rates=RATES, rates_source="best trial 0", sparsity=0.1,
                        model=blocks.build("tiny", num_classes=4), checkpoint="best.pt", lineage=lineage)


@pytest.fixture(scope="module")
def empty(cfg, tmp_path_factory):
    """Inputs of a study that has no trial yet, no checkpoint and no promotion stage run."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    return FigureInputs(cfg, study, trial_rows(study, cfg), tmp_path_factory.mktemp("empty"),
                        lineage=pd.DataFrame(columns=["source_trial", "point", "search"]))


@pytest.mark.parametrize("name", list(FIGURE_KINDS))
def test_every_figure_draws_a_png_or_says_why_not(name, full, empty):
    figure = FIGURE_KINDS[name]
    assert figure.name == name and figure.description
    paths = figure.draw(full)
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.pdf"]
    pixels = matplotlib.image.imread(paths[0])
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.01
    assert paths[1].read_bytes()[:4] == b"%PDF"
    assert name in SKIPPED, f"say here why {name} is skipped on a study without trials"
    assert figure.draw(empty) == SKIPPED[name]
    assert not (empty.out / f"{name}.png").exists()


def test_figures_without_information_say_so(full, tmp_path):
    same = full.trials.assign(params=5.0)
    got = FIGURE_KINDS["accuracy_params"].draw(FigureInputs(full.cfg, full.study, same, tmp_path))
    assert got == ("every full-budget trial has the same params (5): accuracy against it would "
                   "carry no information")
    got = FIGURE_KINDS["token_mixing"].draw(FigureInputs(full.cfg, full.study, same, tmp_path,
                                                         model=full.model, block=9))
    assert got == "the checkpoint's model has no axial token mixing in block 9 of any stage"
    assert list(tmp_path.iterdir()) == []


def test_the_report_lists_every_figure_but_the_chains_in_registration_order():
    assert FIGURES == ("ablation", "intervals", "effects", "accuracy_energy", "accuracy_params",
                       "firing_rates", "token_mixing", "learning_curves", "zero_cost")
    assert [n for n, f in FIGURE_KINDS.items() if f.promotion] == ["lineage"]


def test_a_name_registers_once():
    class Twice(Figure):
        name, description = "ablation", "again"

        def draw(self, inputs):
            return "never"

    with pytest.raises(ValueError, match="registered twice"):
        register_figure(Twice)
    assert type(FIGURE_KINDS["ablation"]).__name__ == "Ablation"
