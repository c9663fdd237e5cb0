"""Training one architecture: results, checkpoints, resume, divergence, the CLI, learning."""
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import blocks
from nas.training.checkpoint import read_checkpoint
from nas.training.data import load_data
from nas.train import main as train_main
from nas.recipe import TrainConfig
from tests.studyruns import run_here
from nas.training.loop import (Trainer, TrainingDiverged, cosine_with_warmup, evaluate, load_checkpoint,
                               make_optimizers, train)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "cifar10-sample.npz"
SYNTH = dict(name="synthetic", batch_size=64, augment="none")
CPU = dict(device="cpu")


def test_one_epoch_returns_results_and_history():
    seen = []
    result = train("tiny", SYNTH, dict(epochs=1, **CPU), progress=False,
                   on_epoch=lambda epoch, m: seen.append((epoch, m)))
    assert result["epochs"] == 1 and len(result["history"]) == 1 and not result["stopped_early"]
    h = result["history"][0]
    assert set(h) == {"epoch", "train_loss", "train_acc", "val_acc", "val_loss", "lr", "epoch_seconds",
                      "images_per_second", "params"}
    assert seen == [(1, h)]
    assert h["epoch"] == 1 and 0.5 < h["train_loss"] < 3.0 and h["images_per_second"] > 0
    assert h["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine to 0 at the end
    assert result["val_acc"] == h["val_acc"] == result["best_val_acc"]
    assert 0.0 <= result["test_acc"] <= 1.0 and result["wall_seconds"] > 0
    model = blocks.build("tiny", num_classes=4, in_channels=3, image_size=16)
    assert result["params"] == sum(p.numel() for p in model.parameters())


def test_learns_synthetic_and_stops_early_on_request():
    result = train("tiny", SYNTH, dict(epochs=5, **CPU), progress=False,
                   on_epoch=lambda epoch, m: m["val_acc"] >= 0.95)
    assert result["stopped_early"] and result["epochs"] < 5
    assert result["val_acc"] >= 0.95 and result["test_acc"] >= 0.9


def test_checkpoint_reload_gives_identical_logits(tmp_path):
    result = train("tiny", SYNTH, dict(epochs=1, **CPU), checkpoint_dir=tmp_path, progress=False)
    assert {"last.pt", "best.pt", "arch.yaml"} <= {p.name for p in tmp_path.iterdir()}
    model, info = load_checkpoint(tmp_path / "last.pt")
    assert not model.training and info["epoch"] == 1 and info["arch"]["name"] == "tiny"
    assert info["data"]["name"] == "synthetic" and info["train"]["epochs"] == 1
    assert "optimizers" not in info and info["history"] == result["history"]
    data = load_data(SYNTH)
    again = evaluate(model, data.val, torch.device("cpu"))  # the trained weights and BN statistics
    assert again["acc"] == result["val_acc"]
    assert again["loss"] == pytest.approx(result["history"][0]["val_loss"], rel=1e-5)
    best, _ = load_checkpoint(tmp_path / "best.pt")
    x, _ = next(iter(data.test))
    with torch.no_grad():
        assert torch.equal(model(x), best(x))


def test_resume_continues_to_the_same_result(tmp_path):
    cfg = dict(epochs=3, max_steps_per_epoch=3, **CPU)
    straight = train("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "a", progress=False)
    first = train("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False,
                  on_epoch=lambda epoch, m: epoch == 1)  # "interrupted" after epoch 1
    assert first["epochs"] == 1 and first["stopped_early"]
    resumed = train("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed["epochs"] == 3 and [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][0] == first["history"][0]
    for key in ("train_acc", "val_acc", "test_acc"):
        assert resumed[key] == straight[key]
    assert [h["train_loss"] for h in resumed["history"]] == pytest.approx(
        [h["train_loss"] for h in straight["history"]], rel=1e-5)
    done = train("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False)  # finished: no-op
    assert done["epochs"] == 3 and done["val_acc"] == resumed["val_acc"]
    with pytest.raises(ValueError, match="another architecture"):
        train(blocks.load_config("tiny", T=1), SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False)


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("epoch_seconds", "images_per_second")}


def test_the_trainer_in_steps_resumes_to_the_same_next_epoch(tmp_path):
    """The loop object driven by hand: set-up, two epochs, evaluation, checkpoints; a run
    stopped after its first epoch and set up again from its checkpoint trains the same
    second epoch, even when the driver draws random numbers in between."""
    cfg = dict(epochs=3, max_steps_per_epoch=3, **CPU)
    straight = Trainer("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "a", progress=False)
    assert straight.epoch == 0 and straight.data.num_classes == 4
    assert straight.model.config.num_classes == 4 and straight.params > 0
    epochs = []
    for _ in range(2):
        epochs.append(straight.run_epoch())
        straight.save_checkpoint()
    assert [m["epoch"] for m in epochs] == [1, 2] and straight.epoch == 2
    assert straight.history == epochs and "val_correct" not in epochs[0]
    assert read_checkpoint(tmp_path / "a" / "last.pt")["epoch"] == 2
    assert {"best.pt", "arch.yaml"} <= {p.name for p in (tmp_path / "a").iterdir()}
    val = straight.evaluate(straight.data.val)
    assert val["acc"] == epochs[1]["val_acc"] and val["loss"] == epochs[1]["val_loss"]
    rng_after_two = torch.get_rng_state()

    stopped = Trainer("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False)
    assert _untimed(stopped.run_epoch()) == _untimed(epochs[0])
    stopped.save_checkpoint()
    resumed = Trainer("tiny", SYNTH, cfg, checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed.epoch == 1 and resumed.history == stopped.history
    torch.rand(7)  # a driver's own draws (measuring a batch ...) between set-up and epoch
    assert _untimed(resumed.run_epoch()) == _untimed(epochs[1])
    assert torch.equal(torch.get_rng_state(), rng_after_two)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.evaluate(resumed.data.val) == val
    result = resumed.fit()
    assert result["epochs"] == 3 and [h["epoch"] for h in result["history"]] == [1, 2, 3]


def test_nan_loss_raises_training_diverged(monkeypatch):
    real_build = blocks.build

    def poisoned_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        forward, calls = model.forward, []

        def forward_nan_from_third_call(x):
            calls.append(1)
            out = forward(x)
            return out * float("nan") if len(calls) >= 3 else out
        model.forward = forward_nan_from_third_call
        return model

    monkeypatch.setattr(blocks, "build", poisoned_build)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 3") as err:
        train("tiny", SYNTH, dict(epochs=1, **CPU), progress=False)
    assert err.value.epoch == 1 and err.value.step == 3


def test_huge_learning_rate_diverges():
    with pytest.raises(TrainingDiverged):
        train("tiny", SYNTH, dict(epochs=2, lr=1e30, **CPU), progress=False)


def test_optimizer_groups():
    class Scalars(nn.Module):
        own_optimizer = {"lr": 1e-4, "weight_decay": 0.0}

        def __init__(self):
            super().__init__()
            self.tau = nn.Parameter(torch.tensor(0.25))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)
            self.lif = Scalars()
            self.gain = nn.Parameter(torch.ones(1, 1))  # one element: no decay

    net = Net()
    main, own = make_optimizers(net, TrainConfig(weight_decay=5e-4))
    assert isinstance(main, torch.optim.SGD) and isinstance(own, torch.optim.AdamW)
    decay, no_decay = main.param_groups
    assert decay["weight_decay"] == 5e-4 and [p for p in decay["params"]] == [net.fc.weight]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 4  # fc.bias, bn x2, gain
    assert own.param_groups[0]["lr"] == 1e-4 and own.param_groups[0]["params"] == [net.lif.tau]
    assert len(make_optimizers(net, TrainConfig(optimizer="adamw"))) == 2


def test_snn_mlp_lif_scalars_get_their_own_adamw_also_in_a_deep_copy():
    model = copy.deepcopy(blocks.build("tiny", family="snn_mlp", stages=[
        {"dim": 8, "depth": 2, "encoder": {"name": "patch", "norm": "gn"},
         "token": "lif_mixer", "channel": "gelu_mlp"}], head="gn_pool"))
    scalars = [p for n, p in model.named_parameters() if n.endswith((".tau", ".v_threshold"))]
    assert len(scalars) == 2 * 2 * 2  # 2 blocks x (H, W) x (tau, V_th)
    main, own = make_optimizers(model, TrainConfig())
    assert isinstance(own, torch.optim.AdamW)
    assert own.param_groups[0]["lr"] == 1e-4 and own.param_groups[0]["weight_decay"] == 0.0
    assert {id(p) for p in own.param_groups[0]["params"]} == {id(p) for p in scalars}
    in_main = {id(p) for g in main.param_groups for p in g["params"]}
    assert not in_main & {id(p) for p in scalars}


def test_cosine_schedule_with_warmup():
    f = cosine_with_warmup(total_steps=110, warmup_steps=10)
    assert [f(0), f(4), f(9)] == pytest.approx([0.1, 0.5, 1.0])
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)
    assert cosine_with_warmup(10, 0)(0) == 1.0


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "nas.train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, flag, words", [
    (["--arch", "no_such_preset", "--data", "digits"], "--arch", ["tiny", "cifar_ablation_c60"]),
    (["--arch", "tiny", "--data", "mnist"], "--data", ["digits", "imagefolder"]),
    (["--arch", "tiny", "--data", "npz"], "--data-root", ["required"]),
    (["--arch", "tiny", "--data", "npz", "--data-root", "/no/such/file.npz"], "--data-root", ["not found"]),
    (["--arch", "tiny", "--data", "cifar10", "--data-root", "{tmp}"], "--data-root", ["internet", "npz"]),
    (["--arch", "tiny", "--data", "digits", "--batch-size", "0"], "--batch-size", ["greater than"]),
    (["--arch", "tiny", "--data", "digits", "--device", "cpu", "--neuron-backend", "triton"],
     "--neuron-backend", ["CUDA only", "allowed on cpu: auto, torch, spikingjelly"]),
])
def test_cli_bad_input_exits_2_with_one_message(tmp_path, args, flag, words):
    # in this process: the command's checks, without a new interpreter's imports (the
    # process entry itself is the smoke run's below)
    proc = run_here("nas.train", *[a.format(tmp=tmp_path) for a in args], "--out", str(tmp_path / "run"),
                    cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and flag in proc.stderr
    for word in words:
        assert word in proc.stderr
    assert proc.stdout == ""


def test_cli_checks_a_config_files_backend_like_the_flag(tmp_path, capsys):
    cfg = blocks.load_config({**blocks.load_config("tiny").model_dump(mode="json"),
                              "neuron": {"kind": "lif", "backend": "triton"}})
    path = tmp_path / "arch.yaml"
    blocks.dump_config(cfg, path)
    assert train_main(["--arch-config", str(path), "--data", "digits", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--arch-config: neuron.backend: 'triton'" in err
    assert "CUDA only" in err and "allowed on cpu: auto, torch, spikingjelly" in err


def test_cli_smoke_run_prints_one_json_line(tmp_path):
    proc = _cli("--arch", "tiny", "--data", "synthetic", "--epochs", "1", "--max-steps-per-epoch", "2",
                "--device", "cpu", "--T", "1", "--neuron-backend", "spikingjelly", "--out", str(tmp_path),
                "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["epochs"] == 1 and summary["arch"] == "tiny" and 0 <= summary["test_acc"] <= 1
    _, info = load_checkpoint(tmp_path / "last.pt")
    assert info["arch"]["T"] == 1  # --T overrides the preset's T=2
    assert info["arch"]["neuron"]["backend"] == "spikingjelly"  # and --neuron-backend its backend


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"shared CIFAR-10 sample absent: {SAMPLE}")
def test_tiny_spiking_mlp_learns_cifar10_sample():
    start = time.perf_counter()
    result = train(blocks.load_config("tiny", T=1),
                   dict(name="npz", root=str(SAMPLE), batch_size=64, augment="none"),
                   dict(epochs=3, lr=0.1, **CPU), progress=False)
    seconds = time.perf_counter() - start
    print(f"tiny T=1, 3 epochs on the CIFAR-10 sample: test {result['test_acc']:.3f}, "
          f"val {result['val_acc']:.3f}, {seconds:.0f} s")
    assert result["test_acc"] >= 0.25  # chance is 0.10
    assert result["history"][-1]["train_loss"] < result["history"][0]["train_loss"]


def test_cli_init_from_reinitialises_the_classifier_freezes_and_refuses_another_grid(tmp_path, capsys):
    from nas.training.checkpoint import save_checkpoint

    model = blocks.build(blocks.load_config("tiny", T=2), num_classes=10, image_size=16)
    save_checkpoint(tmp_path / "src.pt", {"model": model.state_dict(),
                                          "arch": model.config.model_dump(mode="json")})
    common = ["--arch", "tiny", "--data", "synthetic", "--T", "3", "--epochs", "1", "--subset", "64",
              "--max-steps-per-epoch", "1", "--no-progress", "--init-from", str(tmp_path / "src.pt")]
    assert train_main([*common, "--freeze", "stages.0", "--out", str(tmp_path / "a")]) == 0
    out = read_checkpoint(tmp_path / "a" / "last.pt")
    assert torch.equal(out["model"]["stages.0.encoder.conv.weight"], model.state_dict()["stages.0.encoder.conv.weight"])
    assert out["model"]["head.fc.weight"].shape[0] == 4  # synthetic: 4 classes, a fresh classifier
    assert out["init"] == {"checkpoint": str(tmp_path / "src.pt"), "freeze": ["stages.0"]}
    assert train_main([*common, "--image-size", "32", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nas.train: error: --init-from: image size 16 -> 32: ") and "token.mix_h.fc" in err
    assert train_main([*common[:-2], "--freeze", "stages.0"]) == 2
    assert "--freeze: only with --init-from" in capsys.readouterr().err
