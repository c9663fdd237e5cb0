"""The ``cupy`` backend's kernels compute the reference dynamics: its CUDA source, compiled
for the host (tests/cuda_on_host.py), runs behind the real autograd Function and launch
arguments on CPU tensors. Deliberately broken kernels must fail the same checks."""
import platform
import sys
from pathlib import Path

import pytest
import torch

from blocks.neurons import IF, LIF, PLIF
from blocks.neurons import cupy_lif

sys.path.insert(0, str(Path(__file__).parent))
import cuda_on_host  # noqa: E402
from neuron_checks import assert_same_dynamics  # noqa: E402

if cuda_on_host.compiler() is None or platform.machine() not in ("x86_64", "AMD64"):
    pytest.skip("needs a host C++ compiler on x86_64 (F16C for fp16)", allow_module_level=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cuda_on_host")


@pytest.fixture
def kernels(monkeypatch, workdir):
    cuda_on_host.install(monkeypatch, cuda_on_host.build(cupy_lif.source(), workdir))


def assert_half_matches(cls, dtype, x=None):
    """Half inputs: identical spikes; input gradients rounded once to the dtype, so at most
    a few elements (a rounding boundary reached in another summation order) differ."""
    torch.manual_seed(3)
    x = (torch.randn(4, 2, 500) * 1.5).to(dtype) if x is None else x
    ref, fast = cls(backend="torch"), cls(backend="cupy")
    if cls is PLIF:
        fast.load_state_dict(ref.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ref(xa), fast(xb)
    assert sb.dtype == dtype and torch.equal(sa, sb)
    g = torch.randn_like(sb)
    sa.backward(g)
    sb.backward(g)
    assert xb.grad.dtype == dtype
    torch.testing.assert_close(xb.grad.float(), xa.grad.float(), rtol=8e-3, atol=1e-6)
    assert (xb.grad != xa.grad).float().mean() < 0.01
    if cls is PLIF:
        torch.testing.assert_close(fast.w.grad, ref.w.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
@pytest.mark.parametrize("surrogate", ["sigmoid", "atan", "triangle"])
@pytest.mark.parametrize("v_reset,detach_reset,decay_input", [
    (0.0, True, True), (None, True, True), (0.3, False, False), (None, False, True),
])
def test_cupy_matches_reference(kernels, cls, surrogate, v_reset, detach_reset, decay_input):
    torch.manual_seed(2)
    kw = dict(surrogate=surrogate, v_reset=v_reset, detach_reset=detach_reset)
    if cls is not IF:
        kw["decay_input"] = decay_input
    # 903 neurons: the last block of 256 threads is partly idle
    assert_same_dynamics(cls, "cupy", torch.randn(5, 3, 301) * 1.5, **kw)


@pytest.mark.parametrize("cls", [LIF, PLIF])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cupy_half_inputs_match_the_reference(kernels, cls, dtype):
    assert_half_matches(cls, dtype)


def test_cupy_fixed_leak_and_one_step(kernels):
    torch.manual_seed(4)
    assert_same_dynamics(LIF, "cupy", torch.randn(6, 1000) * 1.5, tau=1.7)
    assert_same_dynamics(PLIF, "cupy", torch.randn(1, 700) * 3.0)  # T = 1


MUTANTS = {  # what a broken kernel looks like -> the dtype whose check must catch it
    "no hard reset": ("return hard ? h * (1.f - s) + vr * s : h - vth * s;",
                      "return hard ? h : h - vth * s;", torch.float32),
    "leak gradient path": ("grad_v = grad_h * (1.f - k);", "grad_v = grad_h * (1.f + k);", torch.float32),
    "surrogate scale": ("return a * s * (1.f - s); }", "return s * (1.f - s); }", torch.float32),
    "threshold shifted": ("const float s = h - vth >= 0.f ? 1.f : 0.f;\n        put(",
                          "const float s = h - vth >= 0.05f ? 1.f : 0.f;\n        put(", torch.float32),
    "bf16 truncates": ("(unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)",
                       "(unsigned short)(u >> 16)", torch.bfloat16),
    "fp16 stores bf16 bits": ("p->bits = f32_to_f16_bits(v);", "p->bits = __float_as_uint(v) >> 16;",
                              torch.float16),
}


@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_broken_kernel_fails_the_check(monkeypatch, workdir, mutant):
    good, bad, dtype = MUTANTS[mutant]
    source = cupy_lif.source()
    assert source.count(good) == 1, "the mutation no longer applies: update MUTANTS"
    cuda_on_host.install(monkeypatch, cuda_on_host.build(source.replace(good, bad), workdir))
    torch.manual_seed(2)
    with pytest.raises(AssertionError):
        if dtype is torch.float32:
            assert_same_dynamics(LIF, "cupy", torch.randn(5, 3, 301) * 1.5)
        else:
            assert_half_matches(LIF, dtype)
