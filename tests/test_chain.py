"""Chained promotion stages in process (no Ray): search -> base (stands in for ImageNet,
T=4) -> tit (T=6 from base) -> ft (another data set with another class count, from tit,
stages.0 frozen). The search study is written directly into storage (two trials of the
space with their architectures; the search itself is tested in test_study_engine.py);
every stage trains for real on tiny synthetic data."""
import optuna
import pytest
import torch
import yaml

import blocks
import nas.promotion.stage
import nas.training.loop
from nas.training.checkpoint import read_checkpoint, save_checkpoint
from nas.search.cluster import checkpoint_dir
from nas.search.storage import open_study_storage
from nas.training.data import load_data
from nas.promotion.winners import export_stage
from nas.training.finetune import InitError, init_weights
from nas.promotion.lineage import SEARCH, lineage_frame, lineage_markdown
from nas.promotion.stage import promote
from nas.study import load_study

SYNTH = {"n_train": 192, "n_test": 0, "size": 8, "channels": 1, "num_classes": 4, "noise": 10.0}
STUDY = {
    "name": "chain", "space": "skip_connections", "base": "tiny", "arch": {"T": 4},
    "data": {"name": "synthetic", "batch_size": 16, "val_fraction": 0.25, "synthetic": SYNTH},
    "train": {"lr": 0.1}, "fidelity": {"max_epochs": 1}, "trials": 2,
    "promotion": {
        "base": {"top": 1, "epochs": 2},
        "tit": {"from": "base", "epochs": 1, "arch": {"T": 6},
                "train": {"lr": 0.01, "warmup_epochs": 0.5, "max_steps_per_epoch": 2}},
        "ft": {"from": "tit", "epochs": 1, "freeze": ["stages.0"],
               "data": {"synthetic": {**SYNTH, "num_classes": 3, "n_train": 96}},
               "train": {"lr": 0.01, "max_steps_per_epoch": 2}},
    },
}


def _search(cfg):
    """Two COMPLETE search trials (PT on: 0.6, PT off: 0.5) with their architectures."""
    space = cfg.load_space()
    study = optuna.create_study(study_name=cfg.name, storage=open_study_storage(cfg), direction="maximize")
    dist = optuna.distributions.CategoricalDistribution([True, False])
    for value, pt in ((0.6, True), (0.5, False)):
        point = {p.name: (pt if p.name == "PT" else True) for p in space.parameters}
        study.add_trial(optuna.trial.create_trial(
            value=value, params=point, distributions={k: dist for k in point},
            user_attrs={"arch": space.config_of(point).model_dump(mode="json"), "epochs": 1}))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    (tmp / "chain.yaml").write_text(yaml.safe_dump(STUDY))
    cfg = load_study(tmp / "chain.yaml")
    _search(cfg)
    return cfg


def test_a_killed_stage_resumes_and_the_chain_records_its_lineage(chain, monkeypatch, capsys):
    real = nas.training.loop.train

    def killed_after_one_epoch(*args, **kw):
        return real(*args, **kw, on_epoch=lambda epoch, m: (_ for _ in ()).throw(KeyboardInterrupt))

    monkeypatch.setattr(nas.promotion.stage, "train", killed_after_one_epoch)  # the stage's training
    with pytest.raises(KeyboardInterrupt):
        promote(chain, "ft")  # runs its ancestors first: killed in base, epoch 1 of 2
    monkeypatch.undo()
    base_dir = checkpoint_dir(chain) / "base" / "trial0-r0"
    assert read_checkpoint(base_dir / "last.pt")["epoch"] == 1
    storage = open_study_storage(chain)
    assert optuna.load_study(study_name="chain-base", storage=storage).trials == []

    ft = promote(chain, "ft")
    err = capsys.readouterr().err
    assert "resuming after epoch 1" in err
    assert "classifier head.fc re-initialised: 4 -> 3 classes" in err
    base, tit = (optuna.load_study(study_name=f"chain-{s}", storage=storage).trials for s in ("base", "tit"))
    (b,), (t,), (f,) = base, tit, ft.trials
    assert b.user_attrs["epochs"] == 2 and len(read_checkpoint(base_dir / "last.pt")["history"]) == 2
    assert (b.user_attrs["parent_study"], b.user_attrs["parent_trial"]) == ("chain", 0)  # the best point
    assert (t.user_attrs["parent_study"], t.user_attrs["parent_trial"]) == ("chain-base", b.number)
    assert t.user_attrs["parent_checkpoint"] == str(base_dir / "best.pt")
    assert (f.user_attrs["parent_study"], f.user_attrs["parent_trial"]) == ("chain-tit", t.number)
    assert [s["stage"] for s in f.user_attrs["lineage"]] == [SEARCH, "base", "tit"]
    assert f.user_attrs["lineage"][0]["val_acc"] == 0.6
    assert (t.user_attrs["arch"]["T"], f.user_attrs["arch"]["T"], f.user_attrs["arch"]["num_classes"]) == (6, 6, 3)
    for trial in (b, t, f):
        assert 0.0 <= trial.value <= 1.0
    assert b.value >= 0.5  # 4 classes: chance is 0.25
    # the frozen prefix kept the parent's weights exactly; the rest moved
    tit_w, ft_w = (read_checkpoint(f"{x.user_attrs['checkpoint']}/last.pt")["model"] for x in (t, f))
    assert torch.equal(tit_w["stages.0.encoder.conv.weight"], ft_w["stages.0.encoder.conv.weight"])
    assert not torch.equal(tit_w["stages.1.encoder.inputs.weight"], ft_w["stages.1.encoder.inputs.weight"])

    promote(chain, "ft")  # again: every stage is recorded, nothing trains
    assert capsys.readouterr().out.count("already promoted") == 3
    assert len(optuna.load_study(study_name="chain-ft", storage=storage).trials) == 1

    frame = lineage_frame(chain)
    assert list(frame.columns) == ["source_trial", "point", SEARCH, "base", "tit", "ft"]
    assert frame.iloc[0]["ft"] == f.value and "| 0 | " in lineage_markdown(frame)


@pytest.fixture
def promoted(chain):
    """The chain trained (by the test above; alone, here)."""
    promote(chain, "ft")
    return chain


def test_report_draws_the_lineage(promoted, tmp_path):
    from nas.analysis.report import report

    figures = report(promoted, tmp_path)
    assert [p.suffix for p in figures["lineage"]] == [".png", ".pdf"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| search trial | point | search | base | tit | ft |" in summary
    assert "| 0 | (CT, PC, PT, TC) | 60.00 |" in summary


def test_export_of_a_stage_writes_the_model_and_its_history(promoted, tmp_path):
    chain = promoted
    (path,) = export_stage(chain, "ft", 1, tmp_path)
    doc = yaml.safe_load(path.read_text())
    assert [s["stage"] for s in doc["recipe"]["lineage"]] == [SEARCH, "base", "tit", "ft"]
    model = blocks.build(path)
    model.load_state_dict(read_checkpoint(path.with_suffix(".pt"))["model"])
    assert model.config.num_classes == 3 and model.config.T == 6


def test_a_t4_network_evaluated_at_t6_keeps_its_accuracy(promoted):
    chain = promoted
    ckpt = checkpoint_dir(chain) / "base" / "trial0-r0" / "best.pt"
    data = load_data(chain.data)
    accs = {}
    for T in (4, 6):
        model = blocks.build(blocks.load_config(read_checkpoint(ckpt)["arch"], T=T))
        init_weights(model, ckpt)
        accs[T] = nas.training.loop.evaluate(model, data.val, torch.device("cpu"))
    assert accs[4]["acc"] >= 0.5 and abs(accs[6]["acc"] - accs[4]["acc"]) <= 0.15, accs
    assert torch.isfinite(torch.tensor(accs[6]["loss"]))


def test_what_does_not_fit_is_named(promoted, tmp_path):
    chain = promoted
    ckpt = checkpoint_dir(chain) / "base" / "trial0-r0" / "best.pt"
    arch = read_checkpoint(ckpt)["arch"]
    bigger = blocks.build(blocks.load_config(arch, image_size=16))
    with pytest.raises(InitError, match=r"image size 8 -> 16: \d+ layer\(s\) depend on the token grid "
                                        r"and cannot be carried over: stages.0.blocks.0.token.mix_h.fc"):
        init_weights(bigger, ckpt)
    state = read_checkpoint(ckpt)
    state["model"]["extra.weight"] = torch.zeros(2)
    del state["model"]["stages.0.encoder.conv.weight"]
    save_checkpoint(tmp_path / "odd.pt", state)
    with pytest.raises(InitError, match=r"1 missing: stages.0.encoder.conv.weight; 1 unexpected: extra.weight"):
        init_weights(blocks.build(arch), tmp_path / "odd.pt")
