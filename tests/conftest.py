import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # one thread per test worker: two workers share two cores
os.environ.setdefault("OMP_NUM_THREADS", "1")  # and so do the commands and scripts they start

# never the user's real cache (nas/cache.py): one of this test session, removed at exit
_CACHE = tempfile.mkdtemp(prefix="spiking-mlp-nas-test-cache-")
os.environ["SPIKING_MLP_NAS_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def cifar_sample() -> Path:
    path = SHARED_DATA / "cifar10-sample.npz"
    if not path.exists():
        pytest.skip(f"real CIFAR sample not found at {path} (../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def studies(tmp_path_factory) -> Path:
    """A copy of tests/studies in a temporary folder: a study's run folder (``runs/``
    beside its file by default) then never lands in the checkout."""
    import shutil

    dest = tmp_path_factory.mktemp("studies")
    for f in (REPO / "tests" / "studies").glob("*.yaml"):
        shutil.copy(f, dest / f.name)
    return dest


# Every file that takes seconds, longest first (seconds of one test worker, measured with
# the suite on 2 cores). The two test workers take whole files in this order
# (pyproject: --no-loadscope-reorder, else xdist orders files by their number of tests), so
# the longest start first and the short ones fill the end: no worker ends alone on a long file.
LONGEST_FIRST = ("test_cluster.py", "test_study_engine.py", "test_study_faults.py", "test_new_user.py",
                 "test_report.py", "test_effects_study.py", "test_postgres.py", "test_benchmarks.py",
                 "test_train.py", "test_malformed.py", "test_presets.py", "test_triton_lif.py",
                 "test_storage.py", "test_doctor.py", "test_budget.py", "test_study_files.py",
                 "test_cupy_lif.py", "test_racing_stats.py")


# The files whose tests run studies (nas.run, nas.promote, nas.calibrate, in this process or
# as commands): one local Ray per test worker serves all their studies, which join it
# (nas/search/engine.py: SPIKING_MLP_NAS_RAY) instead of each starting and stopping its own
# (about 5 s of 2 cores each). A test of the local Ray's own start and clean-up runs its
# study without that variable (test_study_engine's asha_run).
RAY_FILES = {"test_study_engine.py", "test_study_faults.py", "test_new_user.py", "test_report.py",
             "test_effects_study.py", "test_storage.py", "test_postgres.py", "test_chain.py",
             "test_study_files.py", "test_malformed.py"}


# started in a process of its own, so that this one is a driver like any other (a study
# with its own ray_address still goes there); it stops its Ray when its stdin closes.
# One CPU: two test workers share two cores, and a study then runs its trials one at a time
# on one reused trial worker (with a CPU free, Ray Tune starts a second worker for the next
# trial, about 5 s of imports, that mostly loses the race to the first one's reuse).
_HOLD_RAY = ("import sys\nfrom nas.search.engine import start_local_ray, stop_local_ray\n"
             "print(start_local_ray(cpus=1), flush=True)\nsys.stdin.read()\nstop_local_ray()\n")


@pytest.fixture(scope="session")
def shared_ray():
    import subprocess
    import sys

    from nas.search.engine import JOIN_LOCAL_RAY

    holder = subprocess.Popen([sys.executable, "-c", _HOLD_RAY], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    address = holder.stdout.readline().strip()
    assert address, "the shared Ray did not start"
    os.environ[JOIN_LOCAL_RAY] = address
    yield address
    del os.environ[JOIN_LOCAL_RAY]
    holder.stdin.close()
    holder.wait(timeout=60)


@pytest.fixture(autouse=True)
def _ray_for_studies(request):
    if request.node.path.name in RAY_FILES:
        request.getfixturevalue("shared_ray")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
