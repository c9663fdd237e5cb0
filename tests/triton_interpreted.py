"""The ``triton`` backend against the reference, run by tests/test_triton_lif.py in a child
pytest started with TRITON_INTERPRET=1 (not collected on its own: no ``test_`` prefix)."""
import os
import sys
from pathlib import Path

import pytest
import torch

from blocks.neurons import IF, LIF, PLIF

sys.path.insert(0, str(Path(__file__).parent))  # tests/neuron_checks.py
from neuron_checks import assert_same_dynamics  # noqa: E402

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before Triton is imported", allow_module_level=True)


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
@pytest.mark.parametrize("surrogate", ["sigmoid", "atan", "triangle"])
@pytest.mark.parametrize("v_reset,detach_reset,decay_input", [
    (0.0, True, True), (None, True, True), (0.0, False, False), (None, False, True),
])
def test_triton_matches_reference(cls, surrogate, v_reset, detach_reset, decay_input):
    torch.manual_seed(2)
    kw = dict(surrogate=surrogate, v_reset=v_reset, detach_reset=detach_reset)
    if cls is not IF:
        kw["decay_input"] = decay_input
    # 903 neurons: the last program is partly masked
    assert_same_dynamics(cls, "triton", torch.randn(5, 3, 301) * 1.5, **kw)


@pytest.mark.parametrize("cls", [LIF, PLIF])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_half_inputs_match_the_reference(cls, dtype):
    """The reference keeps an fp32 membrane for half inputs too: identical spikes; input
    gradients rounded once to the dtype (the sums differ in order below that rounding)."""
    torch.manual_seed(3)
    x = (torch.randn(4, 2, 500) * 1.5).to(dtype)
    ref, fast = cls(backend="torch"), cls(backend="triton")
    if cls is PLIF:
        fast.load_state_dict(ref.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ref(xa), fast(xb)
    assert sa.dtype == sb.dtype == dtype and torch.equal(sa, sb)
    g = torch.randn_like(sb)
    sa.backward(g)
    sb.backward(g)
    assert xb.grad.dtype == dtype
    torch.testing.assert_close(xb.grad.float(), xa.grad.float(), rtol=8e-3, atol=1e-6)
    if dtype is torch.float16:  # rounded once, to nearest (Triton's interpreter truncates to
        # bf16; the GPU code rounds to nearest: tests/test_gpu_compile.py reads cvt.rn in its PTX)
        assert (xb.grad != xa.grad).float().mean() < 0.01
    if cls is PLIF:
        torch.testing.assert_close(fast.w.grad, ref.w.grad, rtol=1e-4, atol=1e-6)


def test_launches_are_guarded_to_the_inputs_device(monkeypatch):
    from blocks.neurons import triton_lif

    seen = []
    real = triton_lif.device_guard
    monkeypatch.setattr(triton_lif, "device_guard", lambda t: seen.append(t.device) or real(t))
    x = torch.randn(3, 40, requires_grad=True)
    LIF(backend="triton")(x).sum().backward()
    assert seen == [x.device, x.device]  # forward and backward


@pytest.mark.parametrize("tau", [3.0, 1.7])
def test_triton_fixed_leak_passed_by_value_matches(tau):
    torch.manual_seed(4)
    assert_same_dynamics(LIF, "triton", torch.randn(6, 1000) * 1.5, tau=tau)
