"""nas.metrics: spikes, synaptic additions, MACs and energy against hand counts."""
import json
import math

import pytest
import torch
from torch import nn

import blocks
from nas.metrics import TRIAL_METRICS, eval_batch, measure
from nas.mfi import calibrate_bn


class Toy(nn.Module):
    """image (B, 1, 6, 6) -> stem Conv 2x2/2 (weights 1/4: 2x2 block means, real input)
    -> repeated over T = 4 -> IF neurons (V_th 1, hard reset) on the 3x3 map ->
    [Conv 1->2, 3x3, pad 1 on spikes] and [Linear 9 -> 3 on spikes] -> Linear 3 -> 2 (real)."""

    def __init__(self):
        super().__init__()
        self.T = 4
        self.stem = nn.Conv2d(1, 1, 2, 2, bias=False)
        nn.init.constant_(self.stem.weight, 0.25)
        self.lif = blocks.create("neuron", "if", v_threshold=1.0)
        self.conv = nn.Conv2d(1, 2, 3, 1, 1)
        self.fc = nn.Linear(9, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        h = self.stem(x)
        h = h.unsqueeze(0).expand(self.T, *h.shape)       # direct encoding: stem runs once
        s = self.lif(h)                                    # (T, B, 1, 3, 3) spikes
        T, B = s.shape[:2]
        c = self.conv(s.reshape(T * B, 1, 3, 3)).mean((1, 2, 3)).reshape(T, B, 1)
        return self.head(self.fc(s.flatten(2)) + c).mean(0)


# block values of the image -> spikes of an IF neuron in 4 steps with constant input:
# 1.0 fires every step (4); 0.5 every other step (2); 0.375 at step 3 only (1); 0 never
VALUES = torch.tensor([[1.0, 0.5, 0.0], [0.375, 1.0, 0.0], [0.5, 0.0, 0.375]])
SPIKES = torch.tensor([[4, 2, 0], [1, 4, 0], [2, 0, 1]])
COVER = torch.tensor([[4, 6, 4], [6, 9, 6], [4, 6, 4]])  # 3x3 windows (pad 1) holding each cell


def image(values=VALUES):
    return values.repeat_interleave(2, 0).repeat_interleave(2, 1)[None, None]


def test_hand_count_on_a_toy_network():
    m = measure(Toy(), image())
    # spikes: 14 over 9 neurons x 4 steps
    assert m.spikes == SPIKES.sum() == 14
    assert m.sparsity == pytest.approx(14 / 36) and m.firing_rate == pytest.approx(14 / 36)
    (layer,) = m.layers
    assert (layer.name, layer.neurons, layer.spikes) == ("lif", 9, 14)
    ops = {o.name: o for o in m.ops}
    # conv on spikes: every spike adds into each output position whose window holds it, x 2
    # channels = 2 x sum(spikes x cover) = 164 (dense MACs x rate would say 252)
    assert ops["conv"].additions == 2 * int((SPIKES * COVER).sum()) == 164
    assert ops["fc"].additions == 14 * 3 == 42                  # nnz x out_features
    assert ops["stem"].macs == 9 * 4 == 36                       # once: 9 outputs x 2x2 kernel
    assert ops["head"].macs == 4 * 3 * 2 == 24                   # real inputs, at every step
    assert (ops["conv"].input, ops["fc"].input, ops["stem"].input) == ("spikes", "spikes", "real")
    assert m.additions == m.sops == 206 and m.macs == 60
    assert m.energy_uj == pytest.approx((206 * 0.9 + 60 * 4.6) * 1e-6, rel=1e-12)  # 461.4 pJ
    # the ANN (T = 1): stem 36 + conv 9 x 9 x 2 + fc 27 + head 6 = 231 MACs
    assert m.ann_flops == 2 * 231
    assert m.ann_energy_uj == pytest.approx(231 * 4.6e-6)
    assert m.params == 4 + 20 + 30 + 8
    d = m.as_dict()
    assert set(TRIAL_METRICS) <= set(d) and all(isinstance(v, float) for v in d.values())
    assert d["energy_uj"] == m.energy_uj and d["T"] == 4.0


def test_counts_are_per_image_and_energy_constants_configurable():
    x = torch.cat([image(), image(torch.ones(3, 3))])  # second image: every neuron fires 4x
    m = measure(Toy(), x, e_ac=1e-12, e_mac=2e-12)
    second = 2 * 4 * int(COVER.sum()) + 36 * 3               # 392 + 108
    assert m.batch == 2 and m.additions == (206 + second) / 2 == 353
    assert m.macs == 60 and m.spikes == (14 + 36) / 2
    assert m.energy_uj == pytest.approx((353 * 1 + 60 * 2) * 1e-6, rel=1e-12)


def test_linear_on_a_known_spike_tensor():
    fc = nn.Linear(4, 3)
    spikes = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    m = measure(fc, spikes)
    assert m.additions == (3 * 3 + 1 * 3) / 2 and m.macs == 0     # per image
    assert m.ann_flops == 2 * 4 * 3
    real = measure(fc, spikes * 0.5)
    assert real.additions == 0 and real.macs == 12


def test_tiny_spiking_mlp_is_multiplication_free_but_for_stem_and_head():
    model = blocks.build("tiny")  # T = 2, 32 x 32, stage dims 12, 24
    x = torch.randn(4, 3, 32, 32)
    calibrate_bn(model, x)
    m = measure(model, x)
    assert model.training  # state restored
    # stem Conv 3 -> 12, 4x4/4 on 32x32: 64 positions x 12 x 48, once; head 2 x 24 x 10
    assert m.macs == 64 * 12 * 48 + 2 * 24 * 10
    rows = {r["stage"]: r for r in m.per_stage()}
    assert rows[0]["mfi"] and rows[1]["mfi"] and rows[0]["exempt"] == ["stages.0.encoder.conv"]
    assert rows["head"]["exempt"] == ["head.fc"] and rows["head"]["macs"] == 480
    neurons = [mod for mod in model.modules() if isinstance(mod, blocks.neurons.base.SpikingNeuron)]
    assert len(m.layers) == len(neurons) and m.additions > 0
    assert all(0.0 <= r.firing_rate <= 1.0 for r in m.layers)
    total = sum(r.neurons for r in m.layers) * 2
    assert m.sparsity == pytest.approx(sum(r.spikes for r in m.layers) / total)
    assert sum(o.additions for o in m.ops) == pytest.approx(m.additions)
    assert m.ann_flops == pytest.approx(2 * sum(o.dense_macs for o in m.ops))
    assert sum(r["params"] for r in rows.values()) == m.params == blocks.count_parameters(model)
    rates = m.layer_rates()
    assert rates[0] == {"layer": "stages.0.encoder_lif", "stage": 0, "rate": rates[0]["rate"]}
    json.dumps(m.to_json())


def test_snn_mlp_is_all_macs():
    model = blocks.build("snn_mlp_t", image_size=32, num_classes=10, T=1).eval()
    m = measure(model, torch.randn(1, 3, 32, 32))
    assert m.additions == 0 and m.macs > 0 and not m.layers and math.isnan(m.sparsity)
    assert not any(r["mfi"] for r in m.per_stage() if r["stage"] != "head")
    assert m.macs == pytest.approx(m.ann_flops / 2)  # T = 1: every layer dense


def test_trial_reports_metrics_in_its_last_result():
    from nas.study import StudyConfig
    from nas.training.trainable import run_trial

    study = StudyConfig.model_validate({
        "name": "m", "space": "tests/studies/two_skips.yaml", "trials": 1,
        "data": {"name": "synthetic", "batch_size": 16, "val_fraction": 0.25,
                 "synthetic": {"n_train": 64, "n_test": 8, "num_classes": 4, "size": 32}},
        "fidelity": {"max_epochs": 2},
        "objectives": [{"metric": "val_acc"}, {"metric": "energy_uj"}]})
    reports = []
    last = run_trial({"params": {"PT": True, "PC": False}}, study, report=reports.append)
    assert "error" not in last, last.get("error")
    assert [r["epoch"] for r in reports] == [1, 2]
    # a cost objective is measured every epoch on the fixed batch (a scheduler prunes on it)
    assert reports[0]["energy_uj"] > 0 and math.isfinite(reports[0]["sops"])
    final = reports[-1]
    for key in TRIAL_METRICS:
        assert math.isfinite(final[key]), key
    assert final["energy_uj"] > 0 and final["macs"] > 0
    rates = json.loads(final["layer_rates_json"])
    assert {"layer", "stage", "rate"} == set(rates[0]) and len(rates) == 14


def test_eval_batch_takes_the_first_validation_images():
    from nas.recipe import DataConfig
    from nas.training.data import load_data

    data = load_data(DataConfig(name="synthetic", batch_size=8, val_fraction=0.5,
                                synthetic={"n_train": 40, "n_test": 8, "num_classes": 2, "size": 8}),
                     torch.device("cpu"))
    x = eval_batch(data, 12)
    first = torch.cat([b for b, _ in data.val])[:12]
    assert x.shape[0] == 12 and torch.equal(x, first)


def test_inspect_prints_a_per_stage_table(tmp_path, capsys):
    from nas.inspect import main
    from nas.training.loop import train

    train("tiny", {"name": "synthetic", "batch_size": 16, "val_fraction": 0.25,
                   "synthetic": {"n_train": 48, "n_test": 8, "num_classes": 4, "size": 32}},
          {"epochs": 1}, checkpoint_dir=tmp_path, progress=False)
    out = tmp_path / "m.json"
    assert main(["--arch-config", str(tmp_path / "arch.yaml"), "--checkpoint",
                 str(tmp_path / "best.pt"), "--images", "8", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("stage", "params", "firing rate", "SOPs", "MACs", "energy", "MFI", "total", "head"):
        assert word in text
    saved = json.loads(out.read_text())
    assert saved["batch"] == 8 and saved["energy_uj"] > 0
    assert main(["--arch", "tiny", "--images", "2", "--e-ac", "1", "--e-mac", "2"]) == 0
    assert "x 1 pJ" in capsys.readouterr().out
    assert main(["--arch-config", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--arch", "cifar_ablation_c60", "--checkpoint", str(tmp_path / "best.pt")]) == 2
    assert "do not fit" in capsys.readouterr().err
