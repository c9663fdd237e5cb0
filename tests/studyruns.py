"""Running study commands from tests and reading their studies back."""
import subprocess
import sys
from pathlib import Path

import optuna


def cli(module: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def trained(url: str, name: str) -> list:
    """The study's trials, without the proposals of points it already had (never trained)."""
    return [t for t in load(url, name).get_trials() if "duplicate_of" not in t.user_attrs]
