"""Training-free scores (nas.zero_cost): the kernel, the hook, the scorers, the CLI."""
import math
import shutil

import optuna
import pytest
import torch

import blocks
from nas.scoring import SCORERS, ZeroCostError, forward_pass, get_scorers, hamming_kernel, score_points
from nas.search.scores import ATTR
from nas.zero_cost import main
from search_spaces import load_space

# tiny at T = 2: PT on/off, stage 1 one or two blocks deep, and a threshold no input reaches
SPACE = {"name": "zc", "base": "tiny", "fixed": {"T": 2}, "parameters": {
    "PT": {"type": "bool", "target": "stages.*.skips.PT"},
    "depth": {"type": "categorical", "choices": [1, 2], "target": "stages.1.depth"},
    "v_threshold": {"type": "categorical", "choices": [1.0, 1000.0], "target": "neuron.v_threshold"}}}


@pytest.fixture(scope="module")
def space():
    return load_space(SPACE)


@pytest.fixture(scope="module")
def images():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_kernel_by_hand():
    # 3 images x 4 units; rate r = 6/12 = 0.5, chance agreement r^2 + (1-r)^2 = 0.5
    codes = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.uint8)
    # Hamming: d(0,1) = 2, d(0,2) = 2, d(1,2) = 4; entry = (4 - d) / 4 - 0.5
    want = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, -0.5], [0.0, -0.5, 0.5]], dtype=torch.float64)
    assert torch.allclose(hamming_kernel(codes), want)
    # a silent layer and a saturated one carry nothing; so does one where all images agree
    assert hamming_kernel(torch.zeros(3, 5, dtype=torch.uint8)).abs().max() == 0
    assert hamming_kernel(torch.ones(3, 5, dtype=torch.uint8)).abs().max() == 0
    same = hamming_kernel(torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.uint8))
    assert torch.linalg.matrix_rank(same) == 1


def test_registry_and_unknown_scorer():
    assert {"snn_hamming", "params", "grad_norm"} <= set(SCORERS)
    assert [s.name for s in get_scorers("params,snn_hamming")] == ["params", "snn_hamming"]
    assert SCORERS["grad_norm"].needs_grad and not SCORERS["snn_hamming"].needs_grad
    with pytest.raises(ZeroCostError, match=r"unknown 'nope'; allowed: .*snn_hamming"):
        get_scorers("snn_hamming,nope")


def test_hook_sees_the_binary_spikes(space, images):
    torch.manual_seed(0)
    model = blocks.build(space.to_config({"PT": True, "depth": 1, "v_threshold": 1.0}))
    from nas.metrics import spiking_types
    first = next(m for m in model.modules() if isinstance(m, spiking_types()))
    seen = []
    handle = first.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    torch.manual_seed(0)
    run = forward_pass(model, images)
    handle.remove()
    name, codes = run.codes[0]
    assert codes.dtype == torch.uint8 and set(codes.unique().tolist()) <= {0, 1}
    raw = seen[0]  # (T, B, ...): image i's code is its spikes at every step, in order
    assert torch.equal(codes, raw.transpose(0, 1).reshape(len(images), -1).to(torch.uint8))
    assert codes.shape == (8, raw[0, 0].numel() * 2) and 0 < codes.float().mean() < 1
    n_layers = sum(1 for m in model.modules() if isinstance(m, spiking_types()))
    assert len(run.codes) == n_layers  # every spiking layer, none twice


def test_a_layer_that_is_not_binary_is_refused(space, images, monkeypatch):
    from blocks.neurons import backends
    real = backends.run
    monkeypatch.setattr(backends, "run", lambda mod, x: real(mod, x) * 0.5)
    model = blocks.build(space.to_config({"PT": True, "depth": 1, "v_threshold": 1.0}))
    with pytest.raises(ValueError, match="other than 0 and 1"):
        forward_pass(model, images)


def test_scores_differ_and_are_deterministic(space, images):
    points = [{"PT": pt, "depth": d, "v_threshold": 1.0} for pt in (True, False) for d in (1, 2)]
    scorers = get_scorers("snn_hamming,params")
    a = score_points(space, points, images, scorers, seed=0)
    b = score_points(space, points[::-1], images, scorers, seed=0)[::-1]  # order does not matter
    assert a == b
    hamming = [s["snn_hamming"] for s in a]
    assert all(math.isfinite(h) for h in hamming) and len(set(hamming)) == 4
    assert a[0]["params"] < a[1]["params"]  # a deeper stage 1
    other = score_points(space, points, images, scorers, seed=1)
    assert [s["snn_hamming"] for s in other] != hamming  # another init
    assert [s["params"] for s in other] == [s["params"] for s in a]


def test_a_silent_network_scores_lowest(space, images):
    live = {"PT": True, "depth": 1, "v_threshold": 1.0}
    silent = {**live, "v_threshold": 1000.0}
    s_live, s_silent = score_points(space, [live, silent], images, get_scorers("snn_hamming"))
    assert math.isfinite(s_live["snn_hamming"]) and s_silent["snn_hamming"] == -math.inf


def test_grad_norm_needs_a_backward(space, images):
    labels = torch.arange(8) % 10
    (s,) = score_points(space, [{"PT": True, "depth": 1, "v_threshold": 1.0}], images,
                        get_scorers("grad_norm,snn_hamming"), labels=labels)
    assert s["grad_norm"] > 0 and math.isfinite(s["snn_hamming"])


def test_cli_scores_and_stores(tmp_path, studies, capsys):
    for f in ("asha.yaml", "two_skips.yaml"):
        shutil.copy(studies / f, tmp_path / f)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study_file = str(tmp_path / "asha.yaml")
    assert main([study_file, "--candidates", "3", "--storage", url, "--batch", "8"]) == 0
    out = capsys.readouterr().out
    assert "ranked by snn_hamming" in out and "stored 3 scored points" in out
    stored = optuna.load_study(study_name="asha", storage=url).user_attrs[ATTR]
    assert len(stored) == 3 and not optuna.load_study(study_name="asha", storage=url).trials
    assert all(set(r["scores"]) == {"snn_hamming", "params"} for r in stored)
    assert len({str(sorted(r["point"].items())) for r in stored}) == 3  # distinct points
    # a second run merges: the 4-point space gives one new point, the 3 others are replaced
    assert main([study_file, "--candidates", "4", "--storage", url, "--batch", "8"]) == 0
    assert len(optuna.load_study(study_name="asha", storage=url).user_attrs[ATTR]) == 4
    assert "scoring 1 points" in capsys.readouterr().out  # the 3 stored ones are not scored again
    assert main([study_file, "--trained", "--storage", url]) == 2
    assert "--trained: the study 'asha' has no COMPLETE trial yet" in capsys.readouterr().err
    assert main([study_file, "--candidates", "3", "--storage", url, "--scorers", "params,bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --scorers: unknown 'bogus'; allowed:")
