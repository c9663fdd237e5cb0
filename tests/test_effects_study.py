"""A factorial study end to end: ``sampler: factorial`` with ``fraction: 1/2`` trains the 8
points of the half fraction (x 2 seeds) and prints its aliases; ``nas.effects`` reads it
back as a table and as JSON; ``nas.report`` draws ``effects.png``."""
import json

import matplotlib.image
import optuna
import pytest

from nas.effects import main as effects
from nas.report import main as report
from search_spaces import load_space
from search_spaces.design import fractional_design
from tests.studyruns import run_study, trained


@pytest.fixture(scope="module")
def factorial_run(tmp_path_factory, studies):
    tmp = tmp_path_factory.mktemp("factorial")
    url, proc = run_study(studies, "factorial", tmp)
    return tmp, url, proc.stdout


def test_a_half_fraction_trains_its_8_points_twice_and_prints_the_aliases(factorial_run):
    _, url, out = factorial_run
    trials = trained(url, "factorial")
    assert len(trials) == 16 and all(t.state.name == "COMPLETE" for t in trials)
    points = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(points) == 8
    half = fractional_design(load_space("skip_connections"), "1/2").points
    assert points == {json.dumps(p, sort_keys=True) for p in half}  # CT = PT x PC x TC
    assert "fraction 1/2" in out and "PT x PC = TC x CT" in out and "resolution IV" in out
    assert "component effects" in out  # the end table
    # trial_figures: false: each trial's architecture is an artifact, no figure is drawn
    study = optuna.load_study(study_name="factorial", storage=url)
    for t in trials[:2]:
        names = {m.filename for m in optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)}
        assert names == {"architecture.yaml"}, names


def test_effects_print_a_table_and_json_with_every_main_effect(factorial_run, studies, capsys):
    _, url, _ = factorial_run
    assert effects([str(studies / "factorial.yaml"), "--storage", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["effect"] for r in rows][:4] == ["PT", "PC", "TC", "CT"]
    assert rows[4]["effect"] == "PT x PC" and rows[4]["aliases"] == ["TC x CT"]
    for r in rows:
        assert r["epoch"] == 1 and r["decision"] in ("positive", "negative", "negligible", "undecided")
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"] and 0 <= r["p"] <= 1
    assert effects([str(studies / "factorial.yaml"), "--storage", url, "--plan", "--delta", "5"]) == 0
    plan = capsys.readouterr().out
    assert "| main effect PC |" in plan and "| two configurations apart |" in plan
    assert effects([str(studies / "factorial.yaml"), "--storage", url, "--epoch", "3"]) == 2
    assert "no trial recorded epoch 3; recorded: 1" in capsys.readouterr().err


def test_the_report_draws_the_effects(factorial_run, studies, tmp_path, capsys):
    _, url, _ = factorial_run
    assert report([str(studies / "factorial.yaml"), "--storage", url, "--out", str(tmp_path)]) == 0
    pixels = matplotlib.image.imread(tmp_path / "effects.png")
    assert pixels.shape[0] > 200 and pixels.std() > 0.01
    summary = (tmp_path / "summary.md").read_text()
    assert "## Component effects" in summary and "| PT x PC (= TC x CT) |" in summary
    assert "How to read this" in summary
