"""Our GPU kernels compile for the GPUs we target (A100: sm_80, H100/H200: sm_90) with no
GPU present: the Triton kernels ahead of time through ``triton.compile`` (a
representative handful of variants), the CuPy source through NVRTC. The PTX also shows
what the code promises: 128-bit global accesses, no fused multiply-adds in the forward
pass (the spikes stay bit-identical to the reference), round-to-nearest bf16 stores."""
import pytest
import torch

from blocks.neurons import aot, cupy_lif

ARCHS = (80, 90)


def _triton(variant, sm, **kw):
    pytest.importorskip("triton")
    try:
        return aot.compile_triton(variant, sm, **kw)
    except aot.CompilerMissing as err:
        pytest.skip(str(err))


def _nvrtc(sm):
    pytest.importorskip("cuda.bindings.nvrtc")
    try:
        return aot.compile_cupy(sm)
    except aot.CompilerMissing as err:
        pytest.skip(str(err))


def test_the_representative_set_covers_every_axis():
    vs = aot.REPRESENTATIVE
    assert {v.direction for v in vs} == {"forward", "backward"}
    assert {torch.float32, torch.bfloat16} <= {v.dtype for v in vs}
    assert {v.neuron for v in vs} == {"lif", "plif"} and {v.T for v in vs} == {1, 4, 8}
    for direction in ("forward", "backward"):  # both neurons and both main dtypes each way
        assert {v.neuron for v in vs if v.direction == direction} == {"lif", "plif"}
        assert {torch.float32, torch.bfloat16} <= {v.dtype for v in vs if v.direction == direction}


@pytest.mark.parametrize("sm", ARCHS)
@pytest.mark.parametrize("variant", aot.REPRESENTATIVE, ids=str)
def test_triton_kernel_compiles_with_128_bit_accesses(variant, sm):
    k = _triton(variant, sm)
    assert len(k.cubin) > 1000 and f".target sm_{sm}" in k.ptx
    accesses = k.global_accesses()
    scalar = {key: n for key, n in accesses.items() if ".v4." not in key}
    # every access is 128 bits wide, but PLIF's single read of its leak
    assert scalar == ({"ld.b32": 1} if variant.neuron == "plif" else {}), accesses
    assert k.widest_access_bits() == 128
    assert "fma." not in k.ptx  # enable_fp_fusion=False: the reference's rounding
    if variant.dtype is torch.bfloat16 and variant.direction == "backward":
        assert "cvt.rn.bf16" in k.ptx  # gradients rounded to nearest (the interpreter truncates)


def test_triton_unaligned_neuron_count_falls_back_to_scalar_accesses():
    """What the 128-bit promise depends on: N % 16 == 0 (Triton's divisibility hint)."""
    k = _triton(aot.REPRESENTATIVE[0], 90, n_multiple_of_16=False)
    assert k.widest_access_bits() == 32


@pytest.mark.parametrize("sm", ARCHS)
def test_cupy_source_compiles_with_nvrtc(sm):
    k = _nvrtc(sm)
    assert len(k.cubin) > 1000 and f".target sm_{sm}" in k.ptx
    for dtype in cupy_lif.STORAGE:
        for direction in ("forward", "backward"):
            body = aot.ptx_function(k.ptx, cupy_lif.kernel_name(direction, dtype))
            if direction == "forward":
                assert "fma." not in body  # --fmad=false (the backward's expf uses fma inside)
    # 16-bit inputs are read and written as 16 bits (no fp32 copy of x); the one fp32 load
    # is PLIF's leak, the fp32 stores are h
    half = aot.Compiled(aot.ptx_function(k.ptx, "lif_forward_f16"), b"")
    assert "cvt.f32.f16" in half.ptx and "cvt.rn.f16.f32" in half.ptx
    accesses = half.global_accesses()
    assert accesses["ld.f32"] == 1 and accesses["ld.u16"] == accesses["st.u16"] == accesses["st.f32"]
