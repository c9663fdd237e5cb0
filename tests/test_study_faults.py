"""End to end, when things go wrong: diverging trials, a race killed mid-way; the real
``python -m nas.run`` with local Ray on CPU, checked in storage. (A file of its own, so
that the test workers share the engine tests.) A driver killed with ``kill -9`` and
resumed: tests/test_cluster.py (on a two-node cluster with PostgreSQL); the window
between Optuna's ask and our claim: tests/test_storage.py."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))  # tests/studyruns.py
from studyruns import load, run_here, trained  # noqa: E402


def test_diverging_trials_are_recorded_as_failures(tmp_path, studies, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_here("nas.run", str(studies / "diverge.yaml"), "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = trained(url, "diverge")
    assert len(trials) == 2
    for t in trials:
        assert t.state == TrialState.FAIL
        assert "Diverged" in t.user_attrs["error"] or "non-finite" in t.user_attrs["error"]
    assert "FAILED after" in proc.stdout
    # a re-run retries each failed trial once more (max_attempts 2) ...
    again = run_here("nas.run", str(studies / "diverge.yaml"), "--storage", url, cwd=tmp_path)
    assert again.returncode == 0 and "retrying 2 failed trial(s)" in again.stdout, again.stdout
    trials = trained(url, "diverge")
    assert [t.user_attrs.get("attempt", 1) for t in trials] == [1, 1, 2, 2]
    assert sorted(t.user_attrs.get("retry_of", -1) for t in trials) == [-1, -1, 0, 1]
    assert sorted(json.dumps(t.params) for t in trials[:2]) == sorted(json.dumps(t.params) for t in trials[2:])
    # ... and then gives up, saying how to start over
    from nas.run import main as run_main

    monkeypatch.chdir(tmp_path)
    assert run_main([str(studies / "diverge.yaml"), "--storage", url]) == 0  # nothing to run: no Ray
    last = capsys.readouterr().out
    assert "0 to run" in last and "--fresh" in last
    assert "2 trial(s) failed 2 time(s)" in last and len(trained(url, "diverge")) == 4


def test_a_race_drops_the_worse_points_and_resumes_after_a_kill(tmp_path, studies):
    """The race (scheduler: race) on digits: two dead points are PRUNED after the first
    rung with their p-value and the point they lost to; killed after that round, the
    resumed race keeps them dropped and finishes the others."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [sys.executable, "-m", "nas.run", str(studies / "race.yaml"), "--storage", url]
    driver = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, pruned, study = time.time() + 240, [], None
    while time.time() < deadline and driver.poll() is None:
        time.sleep(1)
        try:
            study = study or load(url, "race")  # one storage for every look once the study exists
            pruned = [t for t in study.get_trials() if t.state == TrialState.PRUNED]
        except Exception:  # noqa: BLE001 - the study is not created yet
            continue
        if len(pruned) == 4:
            break
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert len(pruned) == 4, "the race dropped no point"
    for t in pruned:
        assert t.params["VTH"] == 1000.0 and t.user_attrs["epochs"] == 2
        assert t.user_attrs["race_rung"] == 2 and t.user_attrs["race_p_value"] <= 0.05
        assert t.user_attrs["race_lost_to"]["VTH"] == 1.0
    resumed = run_here("nas.run", str(studies / "race.yaml"), "--storage", url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    trials = trained(url, "race")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert {t.params["VTH"] for t in complete} == {1.0} and len(complete) == 4
    assert len([t for t in trials if t.state == TrialState.PRUNED]) == 4  # dropped stay dropped
    assert "the race (for the best, alpha 0.05; rungs [2, 3])" in resumed.stdout and "dropped @2" in resumed.stdout
    table = resumed.stdout[resumed.stdout.index("the race ("):resumed.stdout.index("How to read this")]
    assert max(len(line) for line in table.splitlines()) <= 100  # the end table fits 100 columns
    assert "How to read this" in resumed.stdout and "VTH=1000.0, PC=True" in resumed.stdout  # space order
    from nas.search.racing import race_rows
    from nas.study import load_study

    rows, _, _ = race_rows(load(url, "race"), load_study(studies / "race.yaml"))
    assert len(rows) == 4 and all(0.0 <= r["acc"][1] <= r["acc"][0] <= r["acc"][2] <= 1.0 for r in rows)
