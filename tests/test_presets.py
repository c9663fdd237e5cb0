import pytest
import torch

import blocks

# exact parameter counts of the papers' reference code at 224 x 224, 1000 classes (the
# papers report 25.23M, 37.98M, 65.61M, 34.49M for MLP-S (its code: 34.51M); 28.3M, 49.7M, 87.9M)
REFERENCE_PARAMS = {
    "mlp_spe_t": 25_229_180, "mlp_spe_s": 37_975_568, "mlp_spe_b": 65_607_184,
    "mlp_s": 34_507_408,
    "snn_mlp_t": 28_335_736, "snn_mlp_s": 49_703_080, "snn_mlp_b": 87_897_288,
}


def test_every_named_preset_ships():
    assert set(REFERENCE_PARAMS) | {"cifar_ablation_c60", "tiny"} <= set(blocks.presets())


@pytest.mark.parametrize("name,expected", sorted(REFERENCE_PARAMS.items()))
def test_preset_parameter_counts_match_the_papers(name, expected):
    cfg = blocks.load_config(name)
    assert (cfg.image_size, cfg.num_classes) == (224, 1000)
    assert blocks.count_parameters(blocks.build(cfg)) == expected


def test_cifar_ablation_network_is_c60_at_native_resolution():
    cfg = blocks.load_config("cifar_ablation_c60")
    assert [s.dim for s in cfg.stages] == [60, 120, 240, 480]
    assert (cfg.image_size, cfg.num_classes) == (32, 10)
    assert cfg.grids() == [8, 4, 2, 1]
    skips = cfg.stages[0].skips
    assert (skips.PT, skips.PC, skips.TC, skips.CT) == (True, True, True, False)


@pytest.mark.parametrize("name", sorted(blocks.presets()))
def test_presets_run_at_small_size(name):
    model = blocks.build(name, image_size=32, num_classes=5, T=1)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(blocks.presets()))
def test_config_yaml_round_trip_is_lossless(name, tmp_path):
    cfg = blocks.load_config(name)
    path = tmp_path / "arch.yaml"
    blocks.dump_config(cfg, path)
    again = blocks.load_config(path)
    assert again == cfg
    torch.manual_seed(0)
    a = blocks.build(cfg, image_size=32, T=1)
    torch.manual_seed(0)
    b = blocks.build(path, image_size=32, T=1)
    assert blocks.count_parameters(a) == blocks.count_parameters(b)


def test_model_output_is_time_average_and_spikes_are_binary():
    model = blocks.build("tiny", T=3).eval()
    seen = []
    for mod in model.modules():
        if isinstance(mod, blocks.neurons.SpikingNeuron):
            mod.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    # stage 0: encoder, token H/W branches, token, channel hidden, channel = 6; stage 1: + 2 SPE nodes
    assert len(seen) == 6 + 8
    for s in seen:
        assert s.shape[0] == 3 and set(s.unique().tolist()) <= {0.0, 1.0}
    # direct encoding: feeding the T-times repeated image gives the same logits
    torch.testing.assert_close(model(x.unsqueeze(0).expand(3, *x.shape)), out)


def test_gradients_reach_every_parameter():
    model = blocks.build("tiny")
    model(torch.randn(8, 3, 32, 32)).logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_skips_change_the_wiring():
    base = blocks.load_config("tiny")
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    outs = []
    for skips in ({"PT": True, "PC": True, "TC": True, "CT": False},
                  {"PT": False, "PC": False, "TC": False, "CT": False},
                  {"PT": True, "PC": True, "TC": True, "CT": True}):
        data = base.model_dump()
        for st in data["stages"]:
            st["skips"] = skips
            st["depth"] = 2
        torch.manual_seed(0)
        outs.append(blocks.build(data)(x))  # training mode: BN normalises, neurons fire
    assert not torch.allclose(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def test_overrides_revalidate():
    with pytest.raises(blocks.ConfigError, match="T: Input should be greater than or equal to 1"):
        blocks.build("tiny", T=0)


def test_first_block_of_each_stage_always_adds_the_patch_state():
    # seed 002: "the skip connection from the patch block to the first token block is set
    # as default"; PT=False removes it only from the later blocks of a stage
    data = blocks.load_config("tiny").model_dump()
    for st in data["stages"]:
        st["depth"] = 2
        st["skips"] = {"PT": False, "PC": False, "TC": False, "CT": False}
    model = blocks.build(data)
    seen = {}
    for s, stage in enumerate(model.stages):
        stage.encoder.register_forward_hook(lambda m, i, o, s=s: seen.__setitem__((s, "h"), o))
        for b, block in enumerate(stage.blocks):
            block.token.register_forward_hook(
                lambda m, i, o, k=(s, b): seen.__setitem__(k + ("t",), o))
            block.token_lif.register_forward_pre_hook(
                lambda m, i, k=(s, b): seen.__setitem__(k + ("u",), i[0]))
    model(torch.randn(4, 3, 32, 32))
    for s in range(len(model.stages)):
        h = seen[s, "h"]
        assert h.abs().sum() > 0
        torch.testing.assert_close(seen[s, 0, "u"], seen[s, 0, "t"] + h)  # first block: t + h
        torch.testing.assert_close(seen[s, 1, "u"], seen[s, 1, "t"])      # later: t alone


def test_snn_mlp_classifier_starts_as_in_the_reference():
    # SNN-MLP's code: truncated normal weights with std 0.02, zero bias
    torch.manual_seed(0)
    fc = blocks.build("snn_mlp_t", image_size=32).head.fc  # 768 x 1000
    assert fc.weight.std().item() == pytest.approx(0.02, abs=3e-4)  # PyTorch default: 0.0208
    assert fc.weight.abs().max().item() > 0.05  # a normal's tails; the default is within 0.036
    assert not fc.bias.any()


def test_snn_mlp_drop_path_mask_is_per_sample_and_shared_over_time():
    torch.manual_seed(0)
    model = blocks.build("snn_mlp_t", image_size=32, num_classes=5, T=3, drop_path=0.5).train()
    checked = []

    def hook(module, inputs, out):
        x, T, B = inputs[0], 3, 8
        kept = (out.reshape(T, B, -1) != 0).any(-1)  # (T, B): was the branch kept?
        assert x.reshape(T, B, -1).ne(0).any(-1).all()
        assert (kept == kept[0]).all(), kept  # the same draw at every time step
        checked.append(kept[0])

    for m in model.modules():
        if isinstance(m, blocks.common.DropPath) and m.p >= 0.4:
            m.register_forward_hook(hook)
    model(torch.randn(8, 3, 32, 32))
    kept = torch.stack(checked)
    assert len(checked) >= 4 and kept.any() and not kept.all()  # masks really drop some samples
