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


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_half_inputs_keep_fp32_membrane(dtype):
    torch.manual_seed(3)
    x = (torch.randn(4, 2, 500) * 1.5).to(dtype)
    ref, fast = LIF(), LIF(backend="triton")
    xa, xb = x.float().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ref(xa), fast(xb)
    assert sb.dtype == dtype and torch.equal(sa, sb.float())  # same spikes as fp32 maths
    g = torch.randn_like(sb)  # the same upstream gradient for both, representable in dtype
    sa.backward(g.float())
    sb.backward(g)
    assert xb.grad.dtype == dtype  # fp32 maths, rounded once to the input's dtype
    torch.testing.assert_close(xb.grad.float(), xa.grad.to(dtype).float(), rtol=8e-3, atol=1e-6)


@pytest.mark.parametrize("tau", [3.0, 1.7])
def test_triton_fixed_leak_passed_by_value_matches(tau):
    torch.manual_seed(4)
    assert_same_dynamics(LIF, "triton", torch.randn(6, 1000) * 1.5, tau=tau)
