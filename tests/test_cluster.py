"""A real multi-node Ray cluster on one machine (a head and a worker node, separate
raylets with 1 CPU each), PostgreSQL storage and a shared results folder: trials run on
both nodes; a killed worker node or a killed driver loses and duplicates no trial.
Also the checks of a study's results location (nas/search/cluster.py)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from nas.search.cluster import check_results_storage, not_shared_warning
from nas.study import StudyError, load_study

sys.path.insert(0, str(Path(__file__).parent))  # tests/postgres.py, tests/studyruns.py
import postgres  # noqa: E402
from studyruns import cli, load, trained  # noqa: E402

ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


# ---- the results location ------------------------------------------------------------

def test_the_results_location_is_probed_and_named(tmp_path, studies):
    shared = tmp_path / "shared"
    shared.mkdir()
    cfg = load_study(studies / "cluster.yaml", smoke=False).model_copy(update={"results_storage": str(shared)})
    check_results_storage(cfg)  # writes and deletes a probe file
    assert cfg.results_uri == f"{shared}/cluster" and list((shared / "cluster").iterdir()) == []
    with pytest.raises(StudyError, match=r"results_storage: the folder .* does not exist"):
        check_results_storage(cfg.model_copy(update={"results_storage": str(tmp_path / "nope")}))


def test_a_local_results_folder_on_a_multi_host_cluster_is_a_warning(tmp_path, studies):
    cfg = load_study(studies / "cluster.yaml").model_copy(update={"results_storage": "/mnt/results"})
    one_host = [{"Alive": True, "NodeManagerAddress": "10.0.0.1"}] * 2
    two_hosts = one_host + [{"Alive": True, "NodeManagerAddress": "10.0.0.2"}]
    local = "/dev/sda1 / ext4 rw 0 0\n"
    nfs = local + "fs:/export /mnt/results nfs4 rw 0 0\n"
    assert not_shared_warning(cfg, one_host, local) is None  # one host: any folder is shared
    line = not_shared_warning(cfg, two_hosts, local)
    assert line.startswith("warning: ") and "results_storage" in line and "2 hosts" in line
    assert "local ext4" in line and "s3://" in line
    assert not_shared_warning(cfg, two_hosts, nfs) is None
    s3 = cfg.model_copy(update={"results_storage": "s3://bucket/nas"})
    assert s3.results_uri == "s3://bucket/nas/cluster" and not_shared_warning(s3, two_hosts, local) is None


# ---- a two-node cluster ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_url():
    url, stop = postgres.start()
    yield url
    stop()


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node (1 CPU each, a custom resource naming each), Ray's
    session files in a temporary folder; every process stopped at the end."""
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="nas-rc-", dir="/tmp")
    # Ray writes the cluster's address file to $RAY_TMPDIR/ray (default /tmp/ray, which a
    # clean machine does not have): here, into the folder this fixture removes
    (Path(tmp) / "ray").mkdir()
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = tmp
    small = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
    try:
        c = Cluster(initialize_head=True, head_node_args={
            **small, "resources": {"head_node": 1}, "include_dashboard": False, "temp_dir": tmp,
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3}})
        c.worker = c.add_node(**small, resources={"worker_node": 1})
        c.wait_for_nodes()
        yield c
        c.shutdown()
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _start(study: Path, name: str, pg_url: str, c, results: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nas.run", str(study), "--storage", pg_url, "--ray-address", c.address,
         "--set", f"name={name}", "--set", f"results_storage={results}"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(url: str, name: str, ready, timeout: float = 90) -> list:
    deadline, study = time.time() + timeout, None
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            study = study or load(url, name)  # one storage for every look once the study exists
            trials = study.get_trials()
        except Exception:  # noqa: BLE001 - the study is not created yet
            continue
        if ready(trials):
            return trials
    raise AssertionError(f"timed out waiting on the study {name!r}")


def _node_ids(trials) -> set[str]:
    return {n["id"] for t in trials for n in t.user_attrs.get("nodes", [])}


@pytest.mark.cluster
def test_a_killed_driver_resumes_on_the_cluster(cluster, pg_url, tmp_path, studies):
    """kill -9 of the driver while trials run on both nodes; the resumed run re-queues them
    and finishes every grid point once."""
    results = tmp_path / "shared"
    results.mkdir()
    driver = _start(studies / "cluster.yaml", "cluster_driver", pg_url, cluster, results, tmp_path)
    _wait_for(pg_url, "cluster_driver", lambda ts: any(t.state == TrialState.COMPLETE for t in ts)
              and any(t.state == TrialState.RUNNING for t in ts))
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    resumed = cli("nas.run", str(studies / "cluster.yaml"), "--storage", pg_url, "--ray-address",
                  cluster.address, "--set", "name=cluster_driver", "--set", f"results_storage={results}",
                  cwd=tmp_path, timeout=150)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "interrupted in an earlier run" in resumed.stdout
    trials = trained(pg_url, "cluster_driver")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = sorted(json.dumps(t.params, sort_keys=True) for t in complete)
    assert len(points) == 4 and len(set(points)) == 4  # every grid point once, none twice
    assert all(t.state == TrialState.COMPLETE or t.user_attrs.get("interrupted") for t in trials)
    assert _node_ids(complete) == {cluster.head_node.node_id, cluster.worker.node_id}  # both nodes ran trials
    assert any((results / "cluster_driver" / "ray").iterdir())  # Ray's experiments: the shared folder


@pytest.mark.cluster
def test_a_killed_worker_node_loses_and_duplicates_no_trial(cluster, pg_url, tmp_path, studies):
    """The worker node's raylet and its workers killed while a trial trains there: Ray
    restarts that trial on the head (worker_retries 1), one Optuna trial still; the study
    ends its budget with every trial ended and every earlier result kept. (Last in this
    file: the cluster has one node afterwards.)"""
    results = tmp_path / "shared"
    results.mkdir()
    worker = cluster.worker.node_id
    driver = _start(studies / "cluster.yaml", "cluster_node", pg_url, cluster, results, tmp_path)

    def training_on_worker(ts) -> bool:  # after the first results, so that some can be lost
        return any(t.state == TrialState.COMPLETE for t in ts) and any(
            t.state == TrialState.RUNNING and t.intermediate_values
            and t.user_attrs.get("nodes", [{}])[-1].get("id") == worker for t in ts)

    before = _wait_for(pg_url, "cluster_node", training_on_worker)
    cluster.remove_node(cluster.worker, allow_graceful=False)  # kill -9 of its raylet and workers
    finished_before = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    out, _ = driver.communicate(timeout=150)
    assert driver.returncode == 0, out[-3000:]
    trials = trained(pg_url, "cluster_node")
    n = len(trials)
    ended = [t for t in trials if t.state in ENDED and (t.state != TrialState.FAIL or t.user_attrs.get("error"))]
    lost = [k for k, v in finished_before.items() if trials[k].state != TrialState.COMPLETE or trials[k].value != v]
    points = [json.dumps(t.params, sort_keys=True) for t in trials]
    duplicated = len(points) - len(set(points))
    retried = sum(t.user_attrs.get("restarts", 0) for t in trials)
    print(f"\nworker node killed at trial {len(finished_before) + 1} of {n}: {len(ended)}/{n} ended, "
          f"{len(lost)} lost, {duplicated} duplicated, {retried} retried")
    assert finished_before and n == 4 and len(ended) == 4 and not lost and duplicated == 0
    assert retried >= 1 and "Ray restarts it" in out
    restarted = [t for t in trials if t.user_attrs.get("restarts")]
    # a restarted trial ends on a living node (one placed on the worker as it died may not
    # have reported from there, so its first recorded node can be the head already); one
    # that died again before it reported anything (under load: placed on the dying node)
    # has no node, and is a FAIL with its error
    assert restarted and all(t.user_attrs["nodes"][-1]["id"] != worker if "nodes" in t.user_attrs
                             else t.state == TrialState.FAIL and t.user_attrs.get("error")
                             for t in restarted), \
        [(t.state.name, t.user_attrs.get("nodes"), t.user_attrs.get("error")) for t in restarted]
    assert _node_ids(trials) == {cluster.head_node.node_id, worker}
