"""Hostile and broken inputs outside study files (tests/hostile.py): each command exits
2 with one ``error:`` line naming the file or flag, the field and what is allowed; never a
traceback, never a hang, and a command that only reads writes nothing."""
import importlib
import os
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/hostile.py
from hostile import CASES  # noqa: E402


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")}


def test_the_corpus_is_large():
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_input_is_one_line(name, tmp_path, capsys, monkeypatch):
    c = CASES[name]
    inputs = tmp_path / "in"
    inputs.mkdir()
    argv = c.build(inputs)
    before = snapshot(inputs)
    monkeypatch.chdir(tmp_path)  # anything written by default lands here, not in the checkout
    started = time.time()
    code = importlib.import_module(c.module).main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.match(r"(nas\.\w+: )?error: ", err) and err.count("\n") == 1, err
    assert c.expect in err, err
    assert time.time() - started < 20
    after = snapshot(inputs)
    assert {k: v for k, v in after.items() if k in before} == before  # inputs untouched
    if c.read_only:
        assert after == before and sorted(os.listdir(tmp_path)) == ["in"], after


def test_a_race_trial_folder_is_ours_and_removed(tmp_path, monkeypatch):
    """Not in the system's temporary folder: in our cache folder, removed when the trial
    ends, or by a later trial once its process is gone."""
    import subprocess

    from nas.training.trainable import _PausableReport, remove_orphan_trial_dirs

    monkeypatch.setenv("SPIKING_MLP_NAS_CACHE", str(tmp_path))
    report = _PausableReport([1])
    folder = Path(report.checkpoint_dir)
    assert folder.parent == tmp_path / "trials" and folder.is_dir()
    report.close()
    assert not folder.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan, live = tmp_path / "trials" / f"nas-trial-{dead.pid}-x", tmp_path / "trials" / f"nas-trial-{os.getpid()}-y"
    orphan.mkdir(), live.mkdir()
    assert remove_orphan_trial_dirs(tmp_path / "trials") == [orphan] and live.is_dir()


def test_a_fifo_in_a_class_folder_is_skipped_not_read_forever(tmp_path):
    from hostile import folder

    from nas.recipe import DataConfig
    from nas.training.data import load_data

    root = folder(tmp_path)
    os.mkfifo(root / "train" / "a" / "a9.png")  # reading it would block: it is not a file
    data = load_data(DataConfig(name="imagefolder", root=str(root), val_fraction=0.0))
    assert data.sizes["train"] == 6 and not list(root.rglob(".*"))


def test_the_next_commands_repeat_the_overrides(tmp_path, capsys):
    """Pasted, they name the same study: its --storage and every --set, quoted."""
    import shlex

    from hostile import study

    from nas.search.engine import print_next_steps
    from nas.study import load_study, overrides_from_args, parse_set

    path = study(tmp_path)
    args = type("Args", (), {"storage": f"sqlite:///{tmp_path}/my db.db", "set": ["data.subset=32", "fidelity.max_steps_per_epoch=3"]})()
    overrides = overrides_from_args(args)
    cfg = load_study(path, overrides)
    print_next_steps(cfg, smoke=False, overrides=overrides)
    export = next(line for line in capsys.readouterr().out.splitlines() if "nas.export" in line)
    words = shlex.split(export.split("#")[0])
    assert words[:4] == ["python", "-m", "nas.export", path]
    assert words[4:] == ["--storage", args.storage, "--set", "data.subset=32", "--set", "fidelity.max_steps_per_epoch=3"]
    assert [parse_set(words[i + 1]).value for i in (6, 8)] == [32, 3]


def test_the_next_commands_take_the_search_flags_as_settings(tmp_path, capsys):
    """After ``nas.run ... --trials 14 --epochs 2``, the printed nas.export and nas.report
    lines parse with those commands' own flags (they have no --trials) and name the same
    study: the same budget and fidelity."""
    import argparse
    import shlex

    from hostile import study

    from nas.search.engine import print_next_steps
    from nas.study import add_common_flags, load_study, load_study_from_args, overrides_from_args

    path = study(tmp_path)
    run = argparse.ArgumentParser()
    add_common_flags(run)
    overrides = overrides_from_args(run.parse_args([path, "--trials", "14", "--epochs", "2"]))
    cfg = load_study(path, overrides)
    print_next_steps(cfg, smoke=False, overrides=overrides)
    lines = capsys.readouterr().out.splitlines()
    for module in ("nas.export", "nas.report"):
        words = shlex.split(next(line for line in lines if f" {module} " in line).split("#")[0])
        reader = argparse.ArgumentParser(exit_on_error=False)
        add_common_flags(reader, search=False)  # what nas.export and nas.report parse
        again = load_study_from_args(reader.parse_args(words[3:]))
        assert (again.trials, again.fidelity.max_epochs) == (14, 2), words
    rerun = next(line for line in lines if " nas.run " in line)
    assert "--trials 14 --epochs 2 --fresh" in rerun
