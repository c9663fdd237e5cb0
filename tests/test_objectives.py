"""Every registered objective (nas/objectives.py) is one a study can name and a trial
reports: its default direction reaches the study, a trial of the tiny network reports it as
a finite number after every epoch (a cost metric too, when the study optimises it: the
multi-objective scheduler prunes on it) and the searcher's value is that number."""
import math

import pytest

from nas.metrics import TRIAL_METRICS
from nas.objectives import COST_METRICS, METRIC_KINDS, Metric, register_metric
from nas.study import Objective, Override, StudyError, load_study
from nas.training.trainable import run_trial


@pytest.mark.parametrize("name", list(METRIC_KINDS))
def test_every_objective_is_reported_by_a_trial_after_every_epoch(name, studies):
    metric = METRIC_KINDS[name]
    objective = Objective(metric=name)
    assert objective.direction == metric.direction and metric.direction in ("maximize", "minimize")
    assert Objective(metric=name, direction="maximize").direction == "maximize"  # the study may turn it
    cfg = load_study(studies / "asha.yaml").model_copy(update={"objectives": [objective], "scheduler": "none"})
    results: list[dict] = []
    run_trial({"params": {"PT": True, "PC": True}}, cfg, report=results.append)
    assert [r["epoch"] for r in results] == [1, 2, 3] and "error" not in results[-1], results[-1]
    for r in results:
        assert math.isfinite(metric.value(r)) and metric.value(r) == float(r[name])
    if metric.cost:  # counted on the network: a trial stores it, and it costs something
        assert name in TRIAL_METRICS and metric.value(results[-1]) >= 0


def test_the_registry_is_the_study_files_vocabulary(studies):
    assert set(COST_METRICS) <= set(TRIAL_METRICS) and "val_acc" in METRIC_KINDS
    with pytest.raises(StudyError, match="metric: unknown 'accuracy'; allowed: val_acc, params, T"):
        load_study(studies / "asha.yaml", [Override("objectives", [{"metric": "accuracy"}], "--set")])
    with pytest.raises(ValueError, match="registered twice"):
        register_metric(type("Again", (Metric,), {"name": "val_acc", "direction": "maximize"}))
