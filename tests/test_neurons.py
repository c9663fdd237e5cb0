import math
import sys
from pathlib import Path

import pytest
import torch

import blocks
from blocks.fp_lif import fp_lif
from blocks.neurons import IF, LIF, PLIF, SpikingNeuron, surrogate_grad
from blocks.neurons.backends import BackendFallbackWarning, resolve

sys.path.insert(0, str(Path(__file__).parent))  # tests/neuron_checks.py
from neuron_checks import assert_same_dynamics  # noqa: E402


def test_lif_matches_hand_computed_sequence():
    # tau 2, V_th 1, hard reset to 0, decay_input: h = v + (x - v) / 2
    x = torch.tensor([1.5, 1.5, 0.4, 3.0, 0.0]).reshape(5, 1)
    # t0: h=.75 s0 v=.75 | t1: h=1.125 s1 v=0 | t2: h=.2 s0 v=.2 | t3: h=1.6 s1 v=0 | t4: h=0
    assert LIF()(x).flatten().tolist() == [0, 1, 0, 1, 0]
    # soft reset keeps the excess: t1 h=1.125 -> v=.125; t2 h=.2625; t3 h=1.63125 -> s
    assert LIF(v_reset=None)(x).flatten().tolist() == [0, 1, 0, 1, 0]
    # IF integrates without leak: 1.5 fires at t0
    assert IF()(x).flatten().tolist() == [1, 1, 0, 1, 0]


def test_lif_gradient_is_the_sigmoid_surrogate():
    x = torch.tensor([[0.6]], requires_grad=True)  # h = 0.3 -> no spike
    LIF()(x).sum().backward()
    sg = torch.sigmoid(torch.tensor(4 * (0.3 - 1.0))).item()
    assert x.grad.item() == pytest.approx(0.5 * 4 * sg * (1 - sg), rel=1e-6)


@pytest.mark.parametrize("name,alpha,x,expected", [
    ("sigmoid", 4.0, 0.0, 1.0),
    ("atan", 2.0, 0.0, 1.0),
    ("atan", 2.0, 1.0, 1.0 / (1 + math.pi ** 2)),
    ("triangle", 1.0, 0.5, 0.5),
    ("triangle", 1.0, 1.5, 0.0),
])
def test_surrogate_gradients(name, alpha, x, expected):
    assert surrogate_grad(name, torch.tensor(x), alpha).item() == pytest.approx(expected)


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
@pytest.mark.parametrize("surrogate", ["sigmoid", "atan", "triangle"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_torch_and_spikingjelly_backends_agree(cls, surrogate, v_reset):
    torch.manual_seed(1)
    assert_same_dynamics(cls, "spikingjelly", torch.randn(6, 4, 257) * 1.5,
                         surrogate=surrogate, v_reset=v_reset)


def test_plif_learns_its_time_constant():
    n = PLIF(tau=3.0)
    assert n.tau == pytest.approx(3.0)
    n(torch.randn(4, 100) * 2).sum().backward()
    assert n.w.grad is not None and n.w.grad != 0


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_a_backend_that_cannot_serve_warns_once_and_uses_autos_choice(backend):
    x = torch.randn(3, 50) * 1.5
    with pytest.warns(BackendFallbackWarning) as caught:
        out = LIF(backend=backend)(x)
    assert len(caught) == 1
    line = str(caught[0].message)
    assert "\n" not in line and f"neuron backend {backend!r}" in line and "using 'torch'" in line
    assert torch.equal(out, LIF(backend="torch")(x))


def test_auto_is_the_default_and_torch_on_cpu():
    assert LIF().backend == PLIF().backend == IF().backend == "auto"
    assert blocks.load_config("cifar_ablation_c60").neuron.params["backend"] == "auto"
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        assert resolve("auto", torch.device("cpu"), dtype, LIF) == ("torch", None)
    x = torch.randn(4, 2, 99) * 1.5
    torch.testing.assert_close(LIF()(x), LIF(backend="torch")(x), rtol=0, atol=0)


def test_auto_on_cuda_picks_our_kernel_where_it_applies():
    pytest.importorskip("triton")
    cuda = torch.device("cuda", 1)  # resolve() looks at the device's type only: no GPU needed
    for cls in (LIF, PLIF, IF):
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            assert resolve("auto", cuda, dtype, cls) == ("triton", None)
    assert resolve("auto", cuda, torch.float64, LIF) == ("torch", None)  # no fp64 kernel
    backend, reason = resolve("triton", cuda, torch.float64, LIF)
    assert backend == "torch" and "fp32, bf16 or fp16" in reason
    assert resolve("spikingjelly", cuda, torch.bfloat16, PLIF) == ("spikingjelly", None)

    class Other(SpikingNeuron):  # a neuron none of the fused kernels knows
        def leak(self):
            return 0.0
    assert resolve("auto", cuda, torch.float32, Other) == ("torch", None)
    assert resolve("triton", cuda, torch.float32, Other)[1] == "it does not compute Other"


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
def test_half_inputs_keep_an_fp32_membrane_also_under_autocast(cls):
    """"The" model computes the membrane in fp32 for bf16 inputs (our kernels do): the
    reference, under bf16 autocast too, and spikingjelly give the fp32 spikes."""
    torch.manual_seed(5)
    x = (torch.randn(8, 4, 300) * 1.5).to(torch.bfloat16)
    fp32 = cls(backend="torch")(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = cls(backend="torch")(x)
    sj = cls(backend="spikingjelly")(x)
    assert ref.dtype == sj.dtype == torch.bfloat16
    assert torch.equal(ref.float(), fp32) and torch.equal(sj.float(), fp32)
    if cls is LIF:  # the input tells the two apart: a bf16 membrane gives other spikes
        v, bf16 = torch.zeros_like(x[0]), []
        for x_t in x:
            h = v + (x_t - v) * 0.5
            bf16.append((h >= 1.0).to(x.dtype))
            v = h * (1 - bf16[-1])
        assert not torch.equal(torch.stack(bf16).float(), fp32)


def test_bad_neuron_values_name_the_field():
    with pytest.raises(ValueError, match="tau: 0.5; allowed: a finite number > 1"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match="surrogate: unknown 'relu'; allowed: sigmoid, atan, triangle"):
        LIF(surrogate="relu")
    with pytest.raises(ValueError, match="backend: unknown 'jax'"):
        blocks.create("neuron", "lif", backend="jax")


def test_full_precision_lif_hand_computed_with_leftover():
    # group 2 along W of length 5: groups [0,1], [2,3], leftover [4]
    x = torch.tensor([0.3, 0.05, 0.05, 0.2, 7.0]).reshape(1, 1, 1, 5)
    tau, vth = torch.tensor(0.25), torch.tensor(0.1)
    y = fp_lif(x, tau, vth, dim=-1, group=2)
    # group 1: u0=.3 fires -> out .3, o1=0; u1=.05 no -> out vth
    # group 2: u0=.05 no -> out vth, o1=.05; u1=.25*.05+.2=.2125 fires -> .2125
    # leftover 7.0 passes through
    torch.testing.assert_close(y.flatten(), torch.tensor([0.3, 0.1, 0.1, 0.2125, 7.0]))
    # along H the same sequence gives the same values
    yh = fp_lif(x.transpose(-1, -2), tau, vth, dim=-2, group=2)
    torch.testing.assert_close(yh.flatten(), y.flatten())


def test_full_precision_lif_gradients_follow_the_reference():
    x = torch.tensor([0.05, 0.2, 0.3, 0.05]).reshape(1, 4).requires_grad_()
    tau = torch.tensor(0.25, requires_grad=True)
    vth = torch.tensor(0.1, requires_grad=True)
    fp_lif(x, tau, vth, dim=-1, group=4).sum().backward()
    # u = [.05 (no), .2125 (fire), .3 (fire, o=0), .05 (no)]
    # dx_j = fired_j + (1 - fired_j) * tau * dx_{j+1}  (through o_{j+1} = u_j)
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([0.25, 1.0, 1.0, 0.0]))
    assert vth.grad.item() == pytest.approx(2.0)  # two positions did not fire
    assert tau.grad.item() == pytest.approx(0.05)  # d u_1 / d tau = o_1 = .05, fired
