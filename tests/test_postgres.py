"""Several drivers on one study need a server storage: PostgreSQL, for real."""
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))  # tests/postgres.py
import postgres  # noqa: E402
from studyruns import run_here  # noqa: E402



@pytest.fixture(scope="module")
def pg_url():
    url, stop = postgres.start()
    yield url
    stop()


def test_two_drivers_share_one_study_without_losing_a_trial(pg_url, tmp_path, studies):
    drivers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        drivers.append(subprocess.Popen(
            [sys.executable, "-m", "nas.run", str(studies / "two_drivers.yaml"), "--storage", pg_url], cwd=tmp_path / name,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [d.communicate(timeout=400) for d in drivers]
    for d, (out, err) in zip(drivers, outs):
        assert d.returncode == 0, err[-2000:]
    trials = [t for t in optuna.load_study(study_name="two_drivers", storage=pg_url).get_trials()
              if "duplicate_of" not in t.user_attrs]  # proposals of points it had: not trained
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    # the budget is counted and the trial asked under one lock on the study: exactly 6
    assert len(trials) == 6
    drivers_seen = {t.system_attrs["nas:driver"] for t in trials}
    assert len(drivers_seen) == 2  # both drivers really ran trials of the one study
    again = run_here("nas.run", str(studies / "two_drivers.yaml"), "--storage", pg_url, cwd=tmp_path)
    assert again.returncode == 0 and "0 to run" in again.stdout
