"""Running study commands from tests and reading their studies back."""
import subprocess
import sys
from pathlib import Path

import optuna


def cli(module: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def run_here(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m module args`` run by this process (its imports are made: seconds less
    than a new interpreter), in ``cwd``, its output captured; for the tests that check what
    a command does, not how its process starts or dies (those use :func:`cli`)."""
    import contextlib
    import importlib
    import io
    import os

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = importlib.import_module(module).main(list(args))
            except SystemExit as stop:  # argparse
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess:
    """``python SCRIPT args`` (a benchmark script) run by this process, its output captured,
    like :func:`run_here`: for scripts that only read and print (no threads, workers or
    Ray of their own that would change this process)."""
    import contextlib
    import io
    import runpy

    out, err, argv, path = io.StringIO(), io.StringIO(), sys.argv, list(sys.path)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(Path(script).parent))  # as `python SCRIPT`: its folder's modules
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(script), run_name="__main__")
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv, sys.path[:] = argv, path
    return subprocess.CompletedProcess([str(script), *args], code, out.getvalue(), err.getvalue())


def run_study(studies: Path, name: str, tmp: Path) -> tuple[str, subprocess.CompletedProcess]:
    """``nas.run`` of ``studies/<name>.yaml`` in ``tmp`` (:func:`run_here`) with an SQLite
    storage there; it must succeed. Returns the storage URL and the run."""
    url = f"sqlite:///{tmp / 'optuna.db'}"
    proc = run_here("nas.run", str(studies / f"{name}.yaml"), "--storage", url, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return url, proc


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def trained(url: str, name: str) -> list:
    """The study's trials, without the proposals of points it already had (never trained)."""
    return [t for t in load(url, name).get_trials() if "duplicate_of" not in t.user_attrs]
