"""The ``triton`` neuron backend computes the reference dynamics exactly.

Triton decides at import whether it interprets kernels (``TRITON_INTERPRET=1``), so the
checks (tests/triton_interpreted.py) run in a child pytest started with that variable: on
CPU, Triton's interpreter executes the very kernels that compile for the GPU.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch


CHECKS = Path(__file__).with_name("triton_interpreted.py")


def test_kernels_in_triton_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", str(CHECKS)],
                         env=env, capture_output=True, text=True, timeout=600)  # -n 0: no workers of its own
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed.group(1)) >= 40, res.stdout[-500:]  # every case ran


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="the interpreter runs it on CPU")
def test_triton_kernel_on_cpu_says_so():
    pytest.importorskip("triton")
    from blocks.neurons.triton_lif import triton_multistep

    with pytest.raises(RuntimeError, match="backend 'triton' runs on CUDA tensors"):
        triton_multistep(torch.randn(2, 3), leak=0.5, decay_input=True, v_threshold=1.0,
                         v_reset=0.0, detach_reset=True, surrogate="sigmoid", alpha=4.0)


def test_blocks_give_128_bit_accesses():
    pytest.importorskip("triton")
    from blocks.neurons.triton_lif import NUM_WARPS, block_size

    for dtype, block in ((torch.float32, 512), (torch.bfloat16, 1024), (torch.float16, 1024)):
        assert block_size(dtype) == block
        per_thread_bytes = block // (32 * NUM_WARPS) * torch.empty((), dtype=dtype).element_size()
        assert per_thread_bytes == 16
