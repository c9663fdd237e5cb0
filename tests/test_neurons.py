import math
import sys
from pathlib import Path

import pytest
import torch

import blocks
from blocks.fp_lif import fp_lif
from blocks.neurons import IF, LIF, PLIF, surrogate_grad

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


def test_cupy_backend_without_cuda_says_so():
    with pytest.raises(RuntimeError, match="backend 'cupy'"):
        LIF(backend="cupy")(torch.randn(2, 3))


def test_bad_neuron_values_name_the_field():
    with pytest.raises(ValueError, match="tau: must be a float > 1"):
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
