"""Malformed studies and spaces: exit code 2 and one clear message, never a traceback."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.run import main as run_main

STUDIES = Path(__file__).parent / "studies"
GOOD = yaml.safe_load((STUDIES / "asha.yaml").read_text())


def write(tmp_path: Path, data, name="study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    (tmp_path / "two_skips.yaml").write_text((STUDIES / "two_skips.yaml").read_text())
    return path


def changed(**changes):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        node, *rest = key.split(".")
        target = data
        parts = key.split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        if value is ...:
            target.pop(parts[-1])
        else:
            target[parts[-1]] = value
    return data


CASES = [
    (changed(epochs=3), r"epochs: unknown field; allowed: name, space, base, arch, data, train, fidelity, "),
    (changed(**{"fidelity.epochs_per_rung": 2}), r"fidelity.epochs_per_rung: unknown field; allowed: max_epochs, "),
    (changed(space="no_such_space"), r"unknown search space 'no_such_space'; shipped: full, mixer"),
    (changed(**{"sampler.name": "bayes"}), r"sampler.name: Input should be 'tpe', 'nsga2', 'gp', 'cmaes', 'random', 'grid' or 'factorial'"),
    (changed(scheduler="median"), r"scheduler: Input should be 'asha', 'hyperband', 'race' or 'none'"),
    (changed(objectives=[{"metric": "accuracy"}]), r"objectives.0: .*metric: unknown 'accuracy'; allowed: val_acc, params"),
    (changed(trials=...), r"trials: required unless sampler.name is grid"),
    (changed(**{"fidelity.max_epochs": 0}), r"fidelity.max_epochs: Input should be greater than or equal to 1"),
    (changed(**{"fidelity.rung_epochs": 9}), r"fidelity.rung_epochs: 9 exceeds fidelity.max_epochs 3"),
    (changed(**{"data.name": "mnist"}), r"data.name: Input should be"),
    (changed(**{"data.name": "npz", "data.root": "/nonexistent/x.npz"}), r"data: npz file not found: /nonexistent/x.npz"),
    (changed(**{"resources.gpu": -1}), r"resources.gpu: Input should be greater than or equal to 0"),
    (changed(objectives=[{"metric": "val_acc"}, {"metric": "params"}], **{"sampler.name": "cmaes"}),
     r"sampler.name: cmaes takes one objective"),
    (changed(name="my study"), r"name: String should match pattern"),
    (changed(base="resnet50"), r"base \(applied to space 'two_skips'\): base: unknown architecture 'resnet50'; presets: "),
    (changed(arch={"T": 0}), r"arch \(applied to space 'two_skips'\): T: Input should be greater than or equal to 1"),
    ("- just\n- a list\n", r"a study file must be a mapping of fields"),
    ("name: [unclosed\n", r"not valid YAML"),
]


@pytest.mark.parametrize("data,message", CASES, ids=[m[:40] for _, m in CASES])
def test_bad_study_gives_exit_2_and_one_message(tmp_path, capsys, data, message):
    path = write(tmp_path, data)
    assert run_main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}") or "unknown search space" in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert re.search(message, err), err


def test_bad_space_file_is_named(tmp_path, capsys):
    path = write(tmp_path, changed(space="broken_space.yaml"))
    (tmp_path / "broken_space.yaml").write_text(
        "base: tiny\nparameters:\n  PT: {type: bool, target: stages.*.skips.XX}\n")
    assert run_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken_space.yaml" in err and "parameters.PT" in err


def test_missing_study_file_and_no_traceback_from_the_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nas.run", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such study file"


def test_export_of_a_study_never_run_says_so(tmp_path, capsys):
    from nas.export import main as export_main

    path = write(tmp_path, GOOD)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert export_main([str(path), "--storage", url]) == 2
    assert "no study 'asha' has run yet" in capsys.readouterr().err and not (tmp_path / "empty.db").exists()


SHIPPED = sorted((Path(__file__).parents[1] / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_studies_load_and_every_stage_builds(path):
    """Every shipped study (and its smoke version) validates, and the base architecture
    builds, on the meta device, at the search's image size and at each stage's."""
    import torch

    import blocks
    from nas.promotion.lineage import chain
    from nas.study import load_study

    for smoke in (False, True) if "smoke:" in path.read_text() else (False,):
        cfg = load_study(path, smoke=smoke)
        again = type(cfg).model_validate_json(cfg.model_dump_json())  # as trials get it
        assert again.model_dump() == cfg.model_dump()
        arch = cfg.load_space().base
        for stage in [None, *cfg.promotion]:
            st = cfg.promotion.get(stage)
            size = (st.data if st else {}).get("image_size", cfg.data.image_size) or arch.image_size
            T = (st.arch if st else {}).get("T", arch.T)
            with torch.device("meta"):
                model = blocks.build(blocks.load_config(arch, T=T), image_size=size)
            assert model.config.image_size == size and model.config.T == T
            if st and st.parent:
                assert chain(cfg, stage)[-2] == st.parent
