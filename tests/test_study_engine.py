"""End to end: the real ``python -m nas.run`` with local Ray on CPU, checked in storage."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import blocks

STUDIES = Path(__file__).parent / "studies"


def cli(module: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asha")
    url = f"sqlite:///{tmp / 'optuna.db'}"
    started = time.time()
    proc = cli("nas.run", str(STUDIES / "asha.yaml"), "--storage", url, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, url, proc, time.time() - started


def test_study_stores_every_trial_with_its_attributes(asha_run):
    tmp, url, proc, _ = asha_run
    trials = load(url, "asha").get_trials()
    assert len(trials) == 6
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for t in trials:
        assert set(t.params) == {"PT", "PC"}
        arch = blocks.load_config(t.user_attrs["arch"])
        assert arch.stages[0].skips.PT == t.params["PT"] and arch.T == 1
        assert t.user_attrs["params"] == blocks.count_parameters(blocks.build(arch))
        assert t.user_attrs["wall_seconds"] > 0
        assert len(t.user_attrs["curve"]) == t.user_attrs["epochs"]
    assert "[6/6]" in proc.stdout and "points at the full budget" in proc.stdout


def test_scheduler_stopped_trials_are_pruned_not_complete(asha_run):
    _, url, _, _ = asha_run
    for t in load(url, "asha").get_trials():
        if t.state == TrialState.COMPLETE:  # only full-budget trials carry a value
            assert t.user_attrs["epochs"] == 3 and 0.0 <= t.value <= 1.0
        else:
            assert t.user_attrs["epochs"] < 3 and t.value is None
            assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))


def test_rerun_continues_the_study(asha_run):
    tmp, url, _, _ = asha_run
    again = cli("nas.run", str(STUDIES / "asha.yaml"), "--storage", url, cwd=tmp)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "6/6 trials" in again.stdout and "0 to run" in again.stdout
    assert len(load(url, "asha").trials) == 6
    more = cli("nas.run", str(STUDIES / "asha.yaml"), "--storage", url, "--trials", "7", cwd=tmp)
    assert more.returncode == 0, more.stderr[-2000:]
    assert len(load(url, "asha").trials) == 7


def test_killed_driver_loses_no_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [sys.executable, "-m", "nas.run", str(STUDIES / "grid.yaml"), "--storage", url]
    driver = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:  # kill -9 once one trial finished and others run
        time.sleep(1)
        try:
            states = [t.state for t in load(url, "grid").get_trials()]
        except (KeyError, Exception):
            continue
        if TrialState.COMPLETE in states and TrialState.RUNNING in states:
            break
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    before = load(url, "grid").get_trials()
    assert any(t.state == TrialState.RUNNING for t in before)
    resumed = cli("nas.run", str(STUDIES / "grid.yaml"), "--storage", url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "interrupted in an earlier run" in resumed.stdout
    trials = load(url, "grid").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = sorted(json.dumps(t.params, sort_keys=True) for t in complete)
    assert len(points) == 4 and len(set(points)) == 4  # every grid point once, none twice
    for t in trials:
        assert t.state == TrialState.COMPLETE or t.user_attrs.get("interrupted")


def test_diverging_trials_are_recorded_as_failures(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = cli("nas.run", str(STUDIES / "diverge.yaml"), "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = load(url, "diverge").get_trials()
    assert len(trials) == 2
    for t in trials:
        assert t.state == TrialState.FAIL
        assert "Diverged" in t.user_attrs["error"] or "non-finite" in t.user_attrs["error"]
