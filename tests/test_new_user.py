"""What a new user meets: the README's headline study on a fresh clone (no ../shared, no
GPU, no internet), and one clear line, never a traceback, for each thing that can be wrong."""
import shutil
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import blocks
from nas.training.checkpoint import save_checkpoint
from nas.inspect import main as inspect_main
from nas.run import main as run_main
from nas.study import Override, load_study
from tests.studyruns import run_here

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The study files of a fresh clone, with nothing beside it (no ../shared, no data)."""
    root = tmp_path_factory.mktemp("clone") / "spiking-mlp-nas"
    shutil.copytree(REPO / "studies", root / "studies")
    return root


def test_every_parameter_of_the_quickstart_changes_its_network_and_an_inert_one_is_named():
    from nas.search.effects_check import parameters_without_effect

    cfg = load_study(REPO / "studies" / "quickstart.yaml")
    assert parameters_without_effect(cfg.load_space(), (1, 16, 16), 10) == []  # PT, PC, TC, CT all act
    inert = parameters_without_effect(load_study(REPO / "studies" / "quickstart.yaml",
                                                 [Override("base", "tiny", "--set base=tiny")]).load_space(),
                                      (1, 16, 16), 10)
    assert [line.split("'")[1] for line in inert] == ["PT", "CT"], inert
    assert inert[0].startswith("warning: parameter 'PT' (stages.*.skips.PT) of space 'skip_connections' "
                               "has no effect on base 'tiny'")


def test_smoke_test_runs_offline_as_its_own_study(clone, capsys, monkeypatch):
    proc = run_here("nas.run", "studies/skip_connections.yaml", "--smoke-test", cwd=clone)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = clone / "runs" / "skip_connections-smoke" / "optuna.db"  # runs/ at the clone's root
    trials = optuna.load_study(study_name="skip_connections-smoke", storage=f"sqlite:///{db}").get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 2 and len(trials) == 16  # 2 run, the other grid points stay queued
    arch = blocks.load_config(done[0].user_attrs["arch"])
    assert arch.name == "cifar_ablation_c60" and arch.T == 1 and arch.stages[0].dim == 60
    assert arch.in_channels == 1 and arch.image_size == 32  # the bundled digits, upsampled
    assert not (clone / "runs" / "skip_connections").exists()  # the real study is untouched
    assert "nas.export studies/skip_connections.yaml --smoke-test" in proc.stdout  # next steps
    # the real study has not run: exporting it says so; the smoke one exports, from any folder
    from nas.export import main as export_main

    monkeypatch.chdir(clone)
    assert export_main(["studies/skip_connections.yaml"]) == 2
    assert "has run yet" in capsys.readouterr().err
    monkeypatch.chdir(clone / "studies")
    assert export_main(["skip_connections.yaml", "--smoke-test", "--top", "1"]) == 0
    assert f"to {clone / 'runs' / 'skip_connections-smoke' / 'export'}" in capsys.readouterr().out


def test_headline_study_offline_says_which_flag_to_use(clone, capsys, monkeypatch):
    monkeypatch.chdir(clone)
    assert run_main(["studies/skip_connections.yaml"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "data: cifar10 not found" in err and "--data imagefolder --data-root DIR" in err
    assert "to DIR/cifar10/train/<class>/*.jpg: `--data-root DIR/cifar10`" in err  # the shipped archive
    assert "../shared" not in err
    assert not (clone / "data").exists()  # no empty folder left behind


def test_a_study_that_cannot_be_placed_fails_at_once(clone):
    started = time.time()
    proc = run_here("nas.run", "studies/skip_connections.yaml", "--data", "digits",
                    "--set", "data.image_size=32", cwd=clone)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "resources: a trial asks 4 CPUs and 0.25 GPUs" in proc.stderr
    assert "--set resources.cpu=1 --set resources.gpu=0" in proc.stderr
    assert "studies/skip_connections_cpu.yaml is this study at CPU scale" in proc.stderr
    assert time.time() - started < 90


@pytest.mark.parametrize("args, expected", [
    (["--trials", "-1"], "--trials -1: trials: Input should be greater than or equal to 1"),
    (["--epochs", "0"], "--epochs 0: fidelity.max_epochs: Input should be greater than or equal to 1"),
    (["--set", "fidelity.bogus=1"], "--set fidelity.bogus=1: fidelity.bogus: unknown field; allowed: max_epochs"),
    (["--set", "data.subset=many"], "--set data.subset=many: data.subset: Input should be a valid integer"),
    (["--set", "resources"], "--set resources: expected FIELD=VALUE"),
    (["--data", "mnist"], "--data mnist: data.name: Input should be"),
])
def test_bad_flags_are_blamed_not_the_file(args, expected, studies, capsys):
    assert run_main([str(studies / "asha.yaml"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "asha.yaml:" not in err, err


def test_studies_lists_deletes_and_watches(tmp_path, capsys, monkeypatch):
    from nas.studies import main as studies_main

    url = f"sqlite:///{tmp_path / 'o.db'}"
    for name in ("one", "two"):
        optuna.create_study(study_name=name, storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert studies_main(["--storage", url]) == 0
    out = capsys.readouterr().out
    assert "one" in out and "two" in out and "3 trials: COMPLETE 3" in out and "none" in out
    assert studies_main(["--storage", url, "--watch", "one"]) == 0
    assert "one: 3 trials: COMPLETE 3; best " in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert studies_main(["--storage", url, "--delete", "one"]) == 0 and "kept" in capsys.readouterr().out
    assert studies_main(["--storage", url, "--delete", "one", "--yes"]) == 0
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["two"]
    assert studies_main(["--storage", url, "--delete", "one", "--yes"]) == 2
    assert "--delete one: no such study" in capsys.readouterr().err


def test_read_only_commands_take_no_budget_flags_and_promote_starts_a_stage_over(capsys):
    from nas.export import main as export_main
    from nas.report import main as report_main

    for main in (export_main, report_main):
        with pytest.raises(SystemExit):
            main(["studies/quickstart.yaml", "--trials", "3"])
        assert "unrecognized arguments: --trials 3" in capsys.readouterr().err
    from nas.promote import main as promote_main

    with pytest.raises(SystemExit):
        promote_main(["--help"])
    shown = capsys.readouterr().out
    assert "--fresh" in shown and "--epochs" not in shown and "--concurrency" not in shown


def test_a_race_whose_budget_cannot_hold_every_seed_of_every_point_fails_at_once(studies, tmp_path, capsys):
    assert run_main([str(studies / "race.yaml"), "--trials", "7", "--storage", f"sqlite:///{tmp_path / 'o.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trials: a race trains all 4 points of its grid with their 2 seeds" in err
    assert "(4 x 2 = 8 trials), but trials is 7" in err and not (tmp_path / "o.db").exists()


def test_flags_and_set_override_the_file(studies, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_study(studies / "asha.yaml", [Override("data.root", "here.npz", "--data-root here.npz"),
                                             Override("resources", {"cpu": 2, "gpu": 0}, "--set")])
    assert cfg.data.root == str(tmp_path / "here.npz")  # a flag's path: from the working folder
    assert cfg.resources.cpu == 2 and cfg.run_dir == studies / "runs" / "asha"


def test_paths_in_a_study_are_relative_to_its_file(tmp_path, monkeypatch):
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    (sub / "s.yaml").write_text(
        "name: s\nspace: skip_connections\nstorage: sqlite:///db/o.db\nruns_dir: out\n"
        "data: {name: npz, root: data/x.npz}\nfidelity: {max_epochs: 1}\ntrials: 1\n"
        "promotion: {long: {epochs: 2, data: {root: big}}}\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_study(sub / "s.yaml")
    assert cfg.data.root == str(sub / "data" / "x.npz")
    assert cfg.storage == f"sqlite:///{sub / 'db' / 'o.db'}" and cfg.run_dir == sub / "out" / "s"
    assert cfg.promotion["long"].data["root"] == str(sub / "big")
    smoke_less = pytest.raises(Exception, load_study, sub / "s.yaml", smoke=True)
    assert "no smoke section" in str(smoke_less.value)


@pytest.mark.parametrize("storage, expected", [
    ("postgresql+psycopg2://u@127.0.0.1:1/db", "storage: cannot open postgresql+psycopg2://u@127.0.0.1:1/db after 3 attempts"),
    ("mysql://u@h/db", "storage: mysql://u@h/db: "),
    ("sqlite:///{tmp}/no/such/folder/o.db", "the folder {tmp}/no/such/folder does not exist"),
    ("journal://{tmp}/no/such/folder/o.log", "the folder {tmp}/no/such/folder does not exist"),
])
def test_storage_errors_are_one_line(storage, expected, studies, tmp_path, capsys):
    started = time.time()
    code = run_main([str(studies / "asha.yaml"), "--storage", storage.format(tmp=tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected.format(tmp=tmp_path) in err, err
    assert time.time() - started < 20 and not (tmp_path / "no").exists()


def test_an_unreachable_ray_cluster_is_one_line(studies, tmp_path, capsys):
    started = time.time()
    code = run_main([str(studies / "asha.yaml"), "--storage", f"sqlite:///{tmp_path / 'o.db'}",
                     "--ray-address", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and "ray_address: cannot start or reach the Ray cluster at '127.0.0.1:1'" in err
    assert time.time() - started < 30


def test_inspect_names_what_does_not_fit_a_checkpoint(tmp_path, capsys):
    other = blocks.build("tiny", num_classes=4)
    save_checkpoint(tmp_path / "c.pt", {"model": other.state_dict(), "arch": other.config.model_dump(mode="json")})
    assert inspect_main(["--arch", "tiny", "--checkpoint", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err
    assert "differently shaped (checkpoint vs model): head.fc.weight (4, " in err, err


def test_inspect_measures_on_the_recipes_data_and_says_when_it_is_noise(tmp_path, capsys):
    """An export of the quickstart (digits upsampled to 16 px, one channel): inspect takes
    the recipe's data and image size, with or without --data; with no data, says noise."""
    import yaml

    arch = blocks.load_config("tiny2", image_size=16, in_channels=1)
    path = tmp_path / "rank01.yaml"
    path.write_text(blocks.dump_config(arch) + yaml.safe_dump(
        {"recipe": {"data": {"name": "digits", "image_size": 16, "val_fraction": 0.2}}}))
    for extra in ([], ["--data", "digits"]):
        assert inspect_main(["--arch-config", str(path), "--images", "8", *extra]) == 0
        out = capsys.readouterr()
        assert "8 validation images of digits" in out.out and "noise" not in out.err.lower(), out
    assert inspect_main(["--arch-config", str(path), "--image-size", "24", "--images", "4"]) == 0  # data resized
    assert "4 validation images of digits" in capsys.readouterr().out
    assert inspect_main(["--arch", "tiny", "--images", "4"]) == 0
    out = capsys.readouterr()
    assert "GAUSSIAN-NOISE images, not data" in out.out and out.err.startswith("note: no data")


def test_a_long_run_prints_a_trials_epoch_when_the_terminal_was_quiet(studies, monkeypatch, capsys):
    from types import SimpleNamespace

    import nas.search.engine

    cfg = load_study(studies / "asha.yaml")
    progress = nas.search.engine._progress_callback(cfg, cfg.load_space(), 6, 0, lambda trial_id: None)
    trial = SimpleNamespace(config={"optuna_trial": 3, "params": {"PC": True, "PT": False}, "repeat": 0})
    progress.on_trial_result(0, [], trial, {"epoch": 1, "val_acc": 0.25})
    assert capsys.readouterr().out == ""  # just started: quiet
    monkeypatch.setattr(nas.search.engine, "QUIET_S", 0.0)
    progress.on_trial_result(0, [], trial, {"epoch": 2, "val_acc": 0.5})
    assert capsys.readouterr().out == "  trial 3 (PC) repeat 0: epoch 2/3, val_acc 0.5000\n"


def test_train_logs_progress_lines_without_a_terminal(monkeypatch, capsys):
    import nas.training.loop

    monkeypatch.setattr(nas.training.loop, "LOG_EVERY_S", 0.0)
    nas.training.loop.train("tiny", {"name": "synthetic", "batch_size": 64, "synthetic": {"n_train": 256}},
                    {"epochs": 1, "device": "cpu"}, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1  step 1/" in err and "img/s" in err


@pytest.mark.parametrize("module", ["nas.verify", "nas.doctor", "nas.inspect", "nas.train", "nas.run", "nas.report",
                                    "nas.export", "nas.promote", "nas.calibrate", "nas.zero_cost",
                                    "nas.studies", "nas.effects"])
def test_every_command_has_help(module, capsys, monkeypatch):
    """``python -m MODULE --help``, run as ``__main__`` in this process (a fresh
    interpreter per command would only add its imports)."""
    import runpy
    import warnings

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is imported already
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    out = capsys.readouterr().out
    assert done.value.code == 0 and "usage: python -m" in out and len(out.splitlines()) > 5, out
    assert out.count("--") >= 4


def test_another_study_with_the_same_name_is_refused(studies, tmp_path, capsys):
    from nas.search.engine import open_study

    url = f"sqlite:///{tmp_path / 'o.db'}"
    first = load_study(studies / "asha.yaml", [Override("storage", url, "--storage")])
    open_study(first, first.load_space())
    other = tmp_path / "asha.yaml"  # the same name, other data
    other.write_text((studies / "asha.yaml").read_text().replace("n_train: 192", "n_train: 256"))
    (tmp_path / "two_skips.yaml").write_text((studies / "two_skips.yaml").read_text())
    assert run_main([str(other), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "name: the stored study 'asha'" in err and "--fresh" in err
    assert f"data.synthetic.n_train (stored 192, now 256, from the file {other})" in err, err
    assert run_main([str(studies / "asha.yaml"), "--storage", url, "--epochs", "5"]) == 2  # a flag's
    assert "fidelity.max_epochs (stored 3, now 5, from --epochs 5)" in capsys.readouterr().err
    # what may change between runs of one study does not trip it: the budget, the resources
    again = load_study(studies / "asha.yaml", [Override("storage", url, "--storage"),
                                               Override("trials", 9, "--trials 9")])
    open_study(again, again.load_space())


def test_fresh_deletes_the_stored_study_and_its_ray_folder_only(studies, tmp_path):
    from nas.search.engine import open_study

    url = f"sqlite:///{tmp_path / 'o.db'}"
    cfg = load_study(studies / "asha.yaml", [Override("storage", url, "--storage"),
                                             Override("runs_dir", str(tmp_path / "runs"), "--set")])
    study, _ = open_study(cfg, cfg.load_space())
    study.enqueue_trial({"PT": True, "PC": True})
    (cfg.run_dir / "ray" / "old-experiment").mkdir(parents=True)
    (cfg.run_dir / "keep.txt").write_text("not Ray's")
    (tmp_path / "runs" / "other-study").mkdir()
    again, _ = open_study(cfg, cfg.load_space(), fresh=True)
    assert again.trials == [] and not (cfg.run_dir / "ray").exists()
    assert (cfg.run_dir / "keep.txt").exists() and (tmp_path / "runs" / "other-study").exists()


def test_ray_logs_of_dead_drivers_are_removed(tmp_path):
    """Only sessions our drivers marked: a `ray start` cluster's session is named after a
    short-lived CLI process (gone) but lives on, and is never touched."""
    import os
    import subprocess as sp

    from nas.search.engine import SESSION_MARKER, remove_dead_sessions

    dead = sp.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp_path / "ray" / f"session_2026-01-01_00-00-00_000001_{dead.pid}"
    live = tmp_path / "ray" / f"session_2026-01-01_00-00-01_000002_{os.getpid()}"
    cluster = tmp_path / "ray" / f"session_2026-01-01_00-00-02_000003_{dead.pid}"
    for d, owner in ((old, dead.pid), (live, os.getpid()), (cluster, None)):
        (d / "logs").mkdir(parents=True)
        if owner is not None:
            (d / SESSION_MARKER).write_text(f"{owner}\n")
    assert remove_dead_sessions(tmp_path) == [old]
    assert not old.exists() and live.exists() and cluster.exists()
