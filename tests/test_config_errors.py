"""Bad architecture configs are rejected with the file, the field and what is allowed."""
import pytest
import yaml

import blocks


def _tiny(**changes):
    data = blocks.load_config("tiny").model_dump(mode="json")
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return data


@pytest.mark.parametrize("changes,message", [
    ({"stages.1.token": {"name": "attention"}},
     r"stages.1.token.name: unknown token 'attention'; allowed: axial, full, identity, lif_mixer"),
    ({"stages.1.dim": 25}, r"stages.1.dim: .*divisible by 3; got 25 \(nearest allowed: 24 or 27\)"),
    ({"T": 0}, r"T: Input should be greater than or equal to 1"),
    ({"stages.0.depth": 0}, r"stages.0.depth: Input should be greater than or equal to 1"),
    ({"image_size": 36}, r"stages.1.encoder: a grid of 9 does not divide by its stride 2 .*allowed: image sizes divisible by 8"),
    ({"stages.0.encoder": {"name": "patch", "patch_size": 5}}, r"stages.0.encoder: a grid of 32 does not divide by its stride 5"),
    ({"neuron": {"kind": "lif", "tau": 0.5}}, r"neuron: tau: 0.5; allowed: a finite number > 1"),
    ({"neuron": {"kind": "lif", "v_threshold": -1}}, r"neuron: v_threshold: -1; allowed: a finite number > 0"),
    ({"stages.0.encoder": {"name": "patch", "patch_size": 0}}, r"stages.0.encoder.patch_size: 0; allowed: a whole number >= 1"),
    ({"neuron": {"kind": "izhikevich"}}, r"neuron: unknown neuron 'izhikevich'; allowed: if, lif, plif"),
    ({"neuron": {"kind": "if", "tau": 2.0}}, r"neuron: neuron 'if' has no parameter 'tau'"),
    ({"stages.1.encoder": {"name": "spe", "edge_12": "conv5x5"}},
     r"stages.1.encoder.edge_12: unknown op 'conv5x5'; allowed: none, identity, conv1x1, conv3x3"),
    ({"stages.0.channel": {"name": "mlp", "norm": "layer"}}, r"stages.0.channel.norm: unknown 'layer'; allowed: token, channel"),
    ({"stages.0.skips": {"PT": True, "XX": True}}, r"stages.0.skips.XX: unknown field; allowed: PT, PC, TC, CT"),
    ({"family": "cnn"}, r"family: Input should be 'spiking_mlp' or 'snn_mlp'"),
    ({"stages": []}, r"stages: List should have at least 1 item"),
])
def test_bad_config_messages(changes, message, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_tiny(**changes)))
    with pytest.raises(blocks.ConfigError, match=message) as info:
        blocks.load_config(path)
    assert str(info.value).startswith(str(path))


def test_unknown_top_level_field_lists_the_allowed(tmp_path):
    data = _tiny()
    data["timesteps"] = 4
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(blocks.ConfigError, match=r"timesteps: unknown field; allowed: name, family, .*T, "):
        blocks.load_config(path)


def test_unknown_preset_lists_presets():
    with pytest.raises(blocks.ConfigError, match="unknown architecture 'resnet18'; presets: .*mlp_spe_t"):
        blocks.load_config("resnet18")


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(blocks.ConfigError, match="must be a mapping"):
        blocks.load_config(path)


def test_every_input_error_of_the_project_has_one_root():
    """Commands catch NasError: every kind of input error is one of its subclasses, and the
    flag to blame travels with the error, not in its text."""
    import blocks
    from blocks.errors import NasError
    from nas.analysis.effects import NoEffects
    from nas.search.storage import StorageError
    from nas.study import StudyError
    from nas.training.checkpoint import CheckpointError
    from nas.training.data import DataError
    from nas.training.finetune import InitError
    from search_spaces import SpaceError

    for kind in (blocks.ConfigError, SpaceError, StudyError, StorageError, DataError,
                 CheckpointError, InitError, NoEffects):
        assert issubclass(kind, NasError), kind
    err = InitError("freeze: 'x' matches no parameter", field="freeze", flag="--freeze")
    assert err.for_flag("--init-from") == "--freeze: 'x' matches no parameter"
    assert DataError("no such folder").for_flag("--data-root") == "--data-root: no such folder"
