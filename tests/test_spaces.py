"""Declarative search spaces: the shipped spaces, Optuna define-by-run, grids, round trips
and the messages of malformed space files."""
import random
import re

import optuna
import pytest
import torch
import yaml

import blocks
from blocks.models import SpikingBlock
from search_spaces import SpaceError, available_spaces, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
SKIPS = ("PT", "PC", "TC", "CT")


def test_shipped_spaces():
    assert available_spaces() == ["full", "mixer", "neurons", "skip_connections", "spe_cell"]
    sizes = {name: load_space(name).size for name in available_spaces()}
    # mixer: (axial, full) x bias + identity = 5 token settings, 7 ratios, 2 norms,
    # 6 widths (36..96 step 12), 4 depth lists
    assert sizes == {"full": None, "mixer": 5 * 7 * 2 * 6 * 4, "neurons": None,
                     "skip_connections": 16, "spe_cell": 64}
    space = load_space("skip_connections")
    assert space.name == "skip_connections"
    assert isinstance(space.base, blocks.ArchConfig) and space.base.name == "cifar_ablation_c60"
    assert [(p.name, p.type) for p in space.parameters] == [(s, "bool") for s in SKIPS]


def test_skip_space_has_the_16_ablation_points():
    space = load_space("skip_connections")
    grid = space.grid()
    assert len(grid) == 16
    assert {tuple(p[s] for s in SKIPS) for p in grid} == {
        (a, b, c, d) for a in (False, True) for b in (False, True)
        for c in (False, True) for d in (False, True)}
    for point in grid:
        cfg = space.to_config(point)
        assert all(st.skips.model_dump() == point for st in cfg.stages)
        # only the skips change
        assert [st.dim for st in cfg.stages] == [60, 120, 240, 480]
        assert [st.depth for st in cfg.stages] == [2, 8, 14, 2]


@pytest.mark.parametrize("flags", [(False, False, False, False), (True, True, True, False)])
def test_skip_points_build_and_run(flags):
    space = load_space("skip_connections")
    cfg = space.to_config(dict(zip(SKIPS, flags)))
    model = blocks.build(cfg, T=1).eval()
    found = {tuple(getattr(m.skips, s) for s in SKIPS)
             for m in model.modules() if isinstance(m, SpikingBlock)}
    assert found == {flags}
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_define_by_run_respects_conditionals():
    space = load_space("full")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(40):
        trial = study.ask()
        assert space.define_by_run(trial) is None
        params = trial.params
        kinds.add(params["neuron"])
        assert ("tau" in params) == (params["neuron"] != "if")
        assert ("token_bias" in params) == (params["token"] != "identity")
        alphas = [k for k in params if k.startswith("alpha_")]
        assert alphas == [f"alpha_{params['surrogate']}"]
        cfg = space.to_config(params)
        assert cfg.neuron.kind == params["neuron"]
        assert cfg.neuron.alpha == params[alphas[0]]
        if params["neuron"] == "if":
            assert "tau" not in cfg.neuron.params and "decay_input" not in cfg.neuron.params
        else:
            assert cfg.neuron.tau == params["tau"]
        study.tell(trial, 0.0)
    assert kinds == {"lif", "plif", "if"}


def test_random_points_of_full_all_validate():
    space = load_space("full")
    rng = random.Random(1)
    seen = set()
    for _ in range(200):
        point = space.sample(rng)
        cfg = space.to_config(point)
        dims = [st.dim for st in cfg.stages]
        assert dims == [point["width"] * 2 ** s for s in range(4)]
        assert all(d % 3 == 0 for d in dims[1:])
        seen.add((point["token"], point["depths"]))
    assert len(seen) == 12  # every token kind with every depth list


def test_round_trip_fields_equal_the_chosen_values():
    space = load_space("mixer")
    point = {"token": "full", "token_bias": False, "ratio": 2.5, "norm": "channel",
             "width": 48, "depths": "[2,4,8,2]"}
    cfg = space.to_config(point)
    assert isinstance(cfg, blocks.ArchConfig)
    assert [st.dim for st in cfg.stages] == [48, 96, 192, 384]
    assert [st.depth for st in cfg.stages] == [2, 4, 8, 2]
    assert all(st.token.name == "full" and st.token.params == {"bias": False} for st in cfg.stages)
    assert all(st.channel.params == {"ratio": 2.5, "norm": "channel"} for st in cfg.stages)
    assert cfg.stages[1].encoder.name == "spe" and cfg.T == 4  # untouched base fields
    assert space.to_config({**point, "depths": [2, 4, 8, 2]}) == cfg  # the list itself works too
    # the config survives YAML and still equals the point
    again = blocks.load_config(yaml.safe_load(blocks.dump_config(cfg)))
    assert again == cfg

    cell = load_space("spe_cell").to_config({"edge_12": "none", "edge_13": "conv1x1",
                                            "edge_23": "identity"})
    assert cell.stages[0].encoder.params == {"patch_size": 4}
    assert [st.encoder.params for st in cell.stages[1:]] == \
        [{"edge_12": "none", "edge_13": "conv1x1", "edge_23": "identity"}] * 3

    neurons = load_space("neurons")
    cfg = neurons.to_config({"neuron": "if", "v_threshold": 0.75, "v_reset": None,
                             "surrogate": "atan", "alpha_atan": 3.0, "T": 6})
    assert cfg.T == 6
    assert cfg.neuron.model_dump() == {"kind": "if", "v_threshold": 0.75, "v_reset": None,
                                       "detach_reset": True, "surrogate": "atan", "alpha": 3.0,
                                       "backend": "auto"}


def test_grid_raises_for_infinite_spaces():
    for name in ("neurons", "full"):
        space = load_space(name)
        assert space.size is None
        with pytest.raises(SpaceError, match=r"no grid: .*tau.*continuous"):
            space.grid()


def test_mixer_grid_is_exact_and_valid():
    space = load_space("mixer")
    grid = space.grid()
    assert len(grid) == space.size == 1680
    assert len({tuple(sorted(p.items())) for p in grid}) == 1680
    assert sum("token_bias" in p for p in grid) == 4 * 7 * 2 * 6 * 4
    assert {p["width"] for p in grid} == {36, 48, 60, 72, 84, 96}


def test_to_config_rejects_points_outside_the_space():
    space = load_space("neurons")
    good = {"neuron": "lif", "tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0,
            "surrogate": "sigmoid", "alpha_sigmoid": 4.0, "T": 4}
    assert space.to_config(good).neuron.tau == 2.0
    np = pytest.importorskip("numpy")  # values coming back from Ray Tune may be numpy scalars
    cfg = space.to_config({**good, "tau": np.float64(3.0), "T": np.int64(8)})
    assert (cfg.neuron.tau, cfg.T, type(cfg.T)) == (3.0, 8, int)
    skips = load_space("skip_connections").to_config({s: np.bool_(s != "CT") for s in SKIPS})
    assert skips.stages[2].skips.model_dump() == {"PT": True, "PC": True, "TC": True, "CT": False}
    cases = [({**good, "tau": 9.0}, r"parameter 'tau': 9.0 is not allowed; allowed: floats in \[1.5, 8.0\], log"),
             ({**good, "T": 3}, r"parameter 'T': 3 is not a choice; allowed: 1, 2, 4, 6, 8"),
             ({**good, "neuron": "if"}, r"parameter 'tau' is inactive .*neuron is one of \['lif', 'plif'\]"),
             ({**good, "alpha_atan": 2.0}, r"parameter 'alpha_atan' is inactive"),
             ({k: v for k, v in good.items() if k != "T"}, r"parameter 'T' is missing"),
             ({**good, "tau_m": 2.0}, r"unknown parameter\(s\) 'tau_m'; allowed: neuron, tau, ")]
    for point, message in cases:
        with pytest.raises(SpaceError, match=message):
            space.to_config(point)


def test_unknown_space_name_lists_the_shipped():
    with pytest.raises(SpaceError, match=r"unknown search space 'skips'; shipped: full, mixer, "):
        load_space("skips")


BASE = "cifar_ablation_c60"
EDGE = {"type": "categorical", "choices": ["none", "conv3x3"], "target": "stages.1:.encoder.edge_12"}
NEURON = {"type": "categorical", "choices": ["lif", "plif", "if"], "target": "neuron.kind"}
TAU = {"type": "float", "low": 1.5, "high": 4.0, "target": "neuron.tau"}

MALFORMED = [
    ({"base": BASE, "parameter": {"e": EDGE}},
     r": parameter: unknown top-level key; allowed: name, description, base, fixed, parameters"),
    ({"base": BASE, "parameters": {"e": {**EDGE, "choises": ["none"]}}},
     r": parameters\.e\.choises: unknown key for a categorical parameter; allowed: type, "
     r"target, when, per_stage, doc, choices"),
    ({"base": BASE, "parameters": {"T": {"type": "integer", "low": 1, "high": 8, "target": "T"}}},
     r": parameters\.T\.type: unknown 'integer'; allowed: categorical, int, float, bool"),
    ({"base": BASE, "parameters": {"tau": {**TAU, "low": 4.0, "high": 2.0}}},
     r": parameters\.tau\.high: must be greater than low \(4\.0\); got 2\.0"),
    ({"base": BASE, "parameters": {"a": {"type": "float", "low": 0.0, "high": 8.0, "log": True,
                                          "target": "neuron.alpha"}}},
     r": parameters\.a\.low: must be > 0 on a log scale; got 0\.0"),
    ({"base": BASE, "parameters": {"e": {**EDGE, "choices": []}}},
     r": parameters\.e\.choices: missing or empty; allowed: a non-empty list"),
    ({"base": BASE, "parameters": {"neuron": NEURON, "tau": {**TAU, "when": {"kind": ["lif"]}}}},
     r": parameters\.tau\.when: unknown parameter 'kind'; allowed: neuron"),
    ({"base": BASE, "parameters": {"neuron": NEURON, "tau": {**TAU, "when": {"neuron": "izh"}}}},
     r": parameters\.tau\.when\.neuron: 'izh' is not a value 'neuron' can take; allowed: "
     r"'lif', 'plif', 'if'"),
    ({"base": BASE, "parameters": {"x": {"type": "bool", "target": "stages.*.skips.XY"}}},
     r": parameters\.x\.target: 'stages\.\*\.skips\.XY': stages\.0\.skips has no field 'XY'; "
     r"allowed: CT, PC, PT, TC"),
    ({"base": BASE, "parameters": {"d": {"type": "int", "low": 1, "high": 4, "target": "stages.7.depth"}}},
     r": parameters\.d\.target: 'stages\.7\.depth': stages has 4 entries; allowed indices 0\.\.3"),
    ({"base": BASE, "parameters": {"token": {"type": "categorical", "choices": ["axial", "attention"],
                                              "target": "stages.*.token.name"}}},
     r": parameters\.token\.choices: unknown token block 'attention'; allowed: axial, full, "
     r"identity, lif_mixer"),
    ({"base": BASE, "parameters": {"tau": {**TAU, "low": 0.5}}},
     r": parameters\.tau: value 0\.5 gives an invalid architecture: neuron: tau: 0\.5; "
     r"allowed: a finite number > 1"),
    ({"base": BASE, "parameters": {"width": {"type": "int", "low": 32, "high": 64, "step": 8,
                                              "target": "stages.*.dim", "per_stage": "double"}}},
     r": parameters\.width: value 32 gives an invalid architecture: stages\.1\.dim: .*divisible "
     r"by 3; got 64 \(nearest allowed: 63 or 66\)"),
    # tau without `when`: fine on the lif base alone, invalid once neuron is `if`
    ({"base": BASE, "parameters": {"neuron": NEURON, "tau": TAU}},
     r": parameters\.tau: the point \{'neuron': 'if', 'tau': .*\} gives an invalid architecture: "
     r"neuron: neuron 'if' has no parameter 'tau'; allowed: alpha, backend, "),
    ({"base": BASE, "parameters": {"depths": {"type": "categorical", "choices": [[2, 2, 6]],
                                               "target": "stages.*.depth"}}},
     r": parameters\.depths\.choices: \[2, 2, 6\] has 3 values but target 'stages\.\*\.depth' "
     r"selects 4 fields; allowed: lists of 4 values"),
    ({"base": BASE, "parameters": {"a": {**TAU, "target": "neuron.v_threshold"},
                                   "b": {**TAU, "target": "neuron.v_threshold"}}},
     r": parameters\.b\.target: neuron\.v_threshold is also set by parameter 'a'; allowed: one "
     r"parameter per field"),
    ({"base": "resnet18", "parameters": {"e": EDGE}},
     r": base: unknown architecture 'resnet18'; presets: .*cifar_ablation_c60"),
    ({"base": BASE, "parameters": {"T": {"type": "float", "low": 1.0, "high": 8.0, "target": "T"}}},
     r": parameters\.T: value 4\.5 gives an invalid architecture: T: Input should be a valid integer"),
    ({"base": BASE, "parameters": {"stage/dim": {"type": "int", "low": 6, "high": 12, "target": "T"}}},
     r": parameters\.stage/dim: a parameter name must be a non-empty string without '/'"),
    ({"base": BASE, "parameters": {"c": {"type": "int", "low": 36, "high": 90, "step": 12,
                                          "target": "stages.0.dim"}}},
     r": parameters\.c\.high: high - low \(90 - 36\) must be a multiple of step 12"),
]


@pytest.mark.parametrize("data,message", MALFORMED)
def test_malformed_spaces_name_file_key_and_allowed(data, message, tmp_path):
    path = tmp_path / "bad_space.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpaceError) as info:
        load_space(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert re.search(message, text), text


def test_duplicate_yaml_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("base: cifar_ablation_c60\nparameters:\n"
                    "  PT: {type: bool, target: 'stages.*.skips.PT'}\n"
                    "  PT: {type: bool, target: 'stages.*.skips.PC'}\n")
    with pytest.raises(SpaceError, match=rf"^{re.escape(str(path))}: not valid YAML: line 4, column 3: duplicate key 'PT'"):
        load_space(path)


def test_relative_base_fixed_and_inline(tmp_path):
    arch = tmp_path / "archs" / "small.yaml"
    blocks.dump_config(blocks.load_config("tiny", T=3), arch)
    path = tmp_path / "space.yaml"
    path.write_text("base: archs/small.yaml\nfixed: {num_classes: 100}\nparameters:\n"
                    "  C: {type: int, low: 6, high: 24, step: 6, target: 'stages.*.dim', per_stage: double}\n"
                    "  k: {type: categorical, choices: [lif, if], target: neuron.kind}\n")
    space = load_space(path)
    assert space.name == "space" and space.base.T == 3 and space.base.num_classes == 100
    assert space.size == 4 * 2
    cfg = space.to_config({"C": 18, "k": "if"})
    assert [st.dim for st in cfg.stages] == [18, 36] and cfg.neuron.kind == "if"
    inline = load_space({"name": "inline", "base": blocks.load_config("tiny").model_dump(),
                         "parameters": {"T": {"type": "int", "low": 1, "high": 4, "target": "T"}}})
    assert [inline.to_config(p).T for p in inline.grid()] == [1, 2, 3, 4]
