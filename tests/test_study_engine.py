"""End to end: the real ``python -m nas.run`` with local Ray on CPU, checked in storage."""
import json
import math
import os
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

import blocks

sys.path.insert(0, str(Path(__file__).parent))  # tests/studyruns.py
from studyruns import cli, load, run_here, trained  # noqa: E402


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory, studies):
    tmp = tmp_path_factory.mktemp("asha")
    url = f"sqlite:///{tmp / 'optuna.db'}"
    started = time.time()
    ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # short: Ray's socket paths
    proc = subprocess.run([sys.executable, "-m", "nas.run", str(studies / "asha.yaml"), "--storage", url],
                          cwd=tmp, capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k != "SPIKING_MLP_NAS_RAY"},
                               "RAY_TMPDIR": str(ray_tmp)})  # a Ray of its own, started and removed
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(ray_tmp.rglob("session_2*"))  # its Ray session (logs) is removed
    shutil.rmtree(ray_tmp)  # the folder this test made for it
    return tmp, url, proc, time.time() - started


def test_study_stores_every_trial_with_its_attributes(asha_run):
    tmp, url, proc, _ = asha_run
    trials = trained(url, "asha")
    assert len(trials) == 6
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for t in trials:
        assert set(t.params) == {"PT", "PC"}
        arch = blocks.load_config(t.user_attrs["arch"])
        assert arch.stages[0].skips.PT == t.params["PT"] and arch.T == 1
        assert t.user_attrs["params"] == blocks.count_parameters(blocks.build(arch))
        assert t.user_attrs["wall_seconds"] > 0
        assert len(t.user_attrs["curve"]) == t.user_attrs["epochs"]
    assert "[6/6]" in proc.stdout and "ranking at the full budget" in proc.stdout
    from nas.search.results import trial_counts

    assert f"points; {trial_counts(load(url, 'asha'))}" in proc.stdout  # the end table's count
    assert len(load(url, "asha").trials) == 6  # no record but the 6 trials
    # each trial's figures and architecture, as Optuna artifacts (the dashboard shows them)
    import optuna

    from nas.search.artifacts import artifact_dir
    from nas.study import Override, load_study

    cfg = load_study(Path(proc.args[3]), [Override("storage", url, "--storage")])
    assert f"--artifact-dir {artifact_dir(cfg)}" in proc.stdout
    # Ray's log lines go to the run's log file, not the terminal
    assert "Started a local Ray instance" in (cfg.run_dir / "run.log").read_text()
    assert " INFO " not in proc.stdout + proc.stderr and "[I " not in proc.stdout + proc.stderr
    store = optuna.artifacts.FileSystemArtifactStore(str(artifact_dir(cfg)))
    for t in trials:
        metas = {m.filename: m for m in optuna.artifacts.get_all_artifact_meta(t, storage=load(url, "asha")._storage)}
        full = t.state == TrialState.COMPLETE
        assert set(metas) == {"learning_curve.png", "architecture.yaml"} | ({"firing_rates.png"} if full else set())
        optuna.artifacts.download_artifact(artifact_store=store, file_path=str(tmp / f"a{t.number}.yaml"),
                                           artifact_id=metas["architecture.yaml"].artifact_id)
        assert blocks.load_config(tmp / f"a{t.number}.yaml") == blocks.load_config(t.user_attrs["arch"])
    assert load(url, "asha").metric_names == ["val_acc"]  # the dashboard's label
    assert "optuna-dashboard " + url in proc.stdout and "nas.export" in proc.stdout  # next steps


def test_scheduler_stopped_trials_are_pruned_not_complete(asha_run):
    _, url, _, _ = asha_run
    for t in trained(url, "asha"):
        if t.state == TrialState.COMPLETE:  # only full-budget trials carry a value
            assert t.user_attrs["epochs"] == 3 and 0.0 <= t.value <= 1.0
        else:
            assert t.state == TrialState.PRUNED and t.user_attrs["epochs"] < 3
            assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
            assert t.value == t.intermediate_values[t.user_attrs["epochs"]]  # Optuna's convention


def test_the_prefilter_queues_the_best_scored_points_first(asha_run):
    _, url, proc, _ = asha_run
    study = load(url, "asha")
    rows = study.user_attrs["zero_cost"]  # every candidate, scored once, stored
    assert len(rows) == 4 and len({json.dumps(r["point"], sort_keys=True) for r in rows}) == 4
    scores = sorted((r["scores"]["snn_hamming"] for r in rows), reverse=True)
    assert len(set(scores)) == 4  # the architectures score differently
    first = sorted(study.get_trials(), key=lambda t: t.number)[:2]  # queued before any sampling
    assert [t.user_attrs["prefilter_rank"] for t in first] == [1, 2]
    assert [t.user_attrs["prefilter_score"] for t in first] == scores[:2]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in first)
    assert study.user_attrs["prefilter"]["queued"] == 2
    assert "prefilter (snn_hamming): 4 points scored -> 2 queued -> 2 trained" in proc.stdout


def test_rerun_continues_the_study(asha_run, studies, capsys, monkeypatch):
    from nas.run import main as run_main

    tmp, url, _, _ = asha_run
    monkeypatch.chdir(tmp)
    assert run_main([str(studies / "asha.yaml"), "--storage", url]) == 0  # nothing to run: no Ray
    out = capsys.readouterr().out
    assert "6/6 trials" in out and "0 to run" in out
    assert len(trained(url, "asha")) == 6
    more = run_here("nas.run", str(studies / "asha.yaml"), "--storage", url, "--trials", "7", cwd=tmp)
    assert more.returncode == 0, more.stderr[-2000:]
    assert len(trained(url, "asha")) == 7
    assert "scoring" not in more.stdout  # the prefilter ran once: not scored or queued again
    assert sum("prefilter_rank" in t.user_attrs for t in load(url, "asha").get_trials()) == 2


def test_export_writes_configs_that_rebuild_exactly(asha_run, studies, tmp_path):
    tmp, url, _, _ = asha_run
    out = tmp_path / "export"
    proc = run_here("nas.export", str(studies / "asha.yaml"), "--storage", url, "--top", "2",
               "--out", str(out), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(out.glob("rank*.yaml"))
    rows = [ln for ln in (out / "summary.md").read_text().splitlines() if ln[:3] in ("| 1", "| 2")]
    assert len(files) == 2 and len(rows) == 2
    study = load(url, "asha")
    number = int(files[0].stem.split("trial")[1])
    trial = study.trials[number]
    assert trial.state == TrialState.COMPLETE
    assert blocks.load_config(files[0]) == blocks.load_config(trial.user_attrs["arch"])
    import torch

    a, b = blocks.build(files[0]).eval(), blocks.build(trial.user_attrs["arch"]).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(a(x), b(x))
    # the file carries its recipe: no --data, the study's 32 px synthetic set, the same model
    recipe = yaml.safe_load(files[0].read_text())["recipe"]
    assert recipe["data"]["synthetic"]["size"] == 32 and recipe["train"]["epochs"] == 3
    assert recipe["threads"] == trial.user_attrs["threads"] == 1  # the trial's CPU threads
    again = cli("nas.train", "--arch-config", str(files[0]), "--no-progress", "--out", str(tmp_path / "a"),
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["val_acc"] == trial.value  # bit for bit
    run = cli("nas.train", "--arch-config", str(files[0]), "--epochs", "1",
              "--no-progress", "--out", str(tmp_path / "ckpt"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    final = json.loads(run.stdout.strip().splitlines()[-1])
    assert final["params"] == trial.user_attrs["params"] and final["data"] == "synthetic"
    assert final["epochs"] == 1  # a flag overrides the recipe


def test_promote_records_a_linked_study_and_resumes(asha_run, studies):
    tmp, url, _, _ = asha_run
    proc = run_here("nas.promote", str(studies / "asha.yaml"), "--storage", url, "--stage", "longer", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    linked = load(url, "asha-longer").get_trials()
    assert len(linked) == 2
    source = load(url, "asha")
    for t in linked:
        assert t.state == TrialState.COMPLETE and 0.0 <= t.value <= 1.0
        assert t.user_attrs["epochs"] == 2 and t.user_attrs["test_acc"] is not None
        assert source.trials[t.user_attrs["source_trial"]].state == TrialState.COMPLETE
    again = run_here("nas.promote", str(studies / "asha.yaml"), "--storage", url, "--stage", "longer", cwd=tmp)
    assert again.returncode == 0 and again.stdout.count("already promoted") == 2
    assert len(load(url, "asha-longer").trials) == 2
    bad = run_here("nas.promote", str(studies / "asha.yaml"), "--storage", url, "--stage", "nope", cwd=tmp)
    assert bad.returncode == 2 and "promotion.nope: no such stage; allowed: longer, ddp" in bad.stderr


def test_promote_data_parallel_with_ray_train(asha_run, studies, monkeypatch):
    tmp, url, _, _ = asha_run
    from nas.search.engine import JOIN_LOCAL_RAY

    monkeypatch.delenv(JOIN_LOCAL_RAY, raising=False)  # a local Ray of its own: two workers, two CPUs
    proc = run_here("nas.promote", str(studies / "asha.yaml"), "--storage", url, "--stage", "ddp", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load(url, "asha-ddp").metric_names == ["val_acc"]  # the dashboard's label
    (t,) = load(url, "asha-ddp").get_trials()
    assert t.state == TrialState.COMPLETE and t.user_attrs["epochs"] == 1


def test_dashboard_serves_the_study(asha_run):
    import socket
    import urllib.request

    tmp, url, _, _ = asha_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen([str(exe), url, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        studies = None
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer"
        sid = next(s["study_id"] for s in studies if s["study_name"] == "asha")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{sid}", timeout=5) as r:
            detail = json.load(r)
        assert len(detail["trials"]) == len(load(url, "asha").trials)
        # one count of trials: the dashboard's, the end table's and summary.md's
        from collections import Counter

        from nas.search.results import trial_counts

        shown = Counter(t["state"].upper() for t in detail["trials"])
        line = trial_counts(load(url, "asha"))
        assert line.startswith(f"{len(detail['trials'])} trials: ")
        assert all(f"{state} {n}" in line for state, n in shown.items()), (shown, line)
        assert "FAIL" not in shown  # no discarded proposal on a finite space
        attrs = {a["key"] for a in detail["trials"][0]["user_attrs"]}
        assert {"arch", "params", "epochs", "curve"} <= attrs
    finally:
        server.terminate()
        server.wait(10)


def test_calibration_paired_and_free_are_stored_in_the_study(asha_run, studies):
    tmp, url, _, _ = asha_run
    free = run_here("nas.calibrate", str(studies / "asha.yaml"), "--storage", url, "--free", cwd=tmp)
    assert free.returncode == 0, free.stderr[-2000:]
    rows = load(url, "asha").user_attrs["calibration_free"]
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["points"] >= 3 for r in rows)
    assert all(-1 <= r["kendall_tau"] <= 1 or math.isnan(r["kendall_tau"]) for r in rows)  # NaN: all tied
    assert "epoch 1 vs 3: Spearman" in free.stdout
    paired = run_here("nas.calibrate", str(studies / "asha.yaml"), "--storage", url, "--k", "3",
                 "--low", "fidelity.max_epochs=1", "--high", "fidelity.max_epochs=2", cwd=tmp)
    assert paired.returncode == 0, paired.stderr[-2000:]
    cal = load(url, "asha").user_attrs["calibration"]
    assert cal["k"] == 3 and cal["low"] == ["fidelity.max_epochs=1"] and len(cal["points"]) == 3
    for name, epochs in (("asha-cal-low", 1), ("asha-cal-high", 2)):
        done = [t for t in trained(url, name) if t.state == TrialState.COMPLETE]
        assert len(done) == 3 and all(t.user_attrs["epochs"] == epochs for t in done)
    assert sorted(json.dumps(p["point"], sort_keys=True) for p in cal["points"]) == sorted(
        json.dumps(t.params, sort_keys=True) for t in trained(url, "asha-cal-low"))
    again = run_here("nas.run", str(studies / "asha.yaml"), "--storage", url, cwd=tmp)  # its end table
    assert "calibration (3 points, fidelity.max_epochs=1 vs fidelity.max_epochs=2): Kendall tau" in again.stdout
