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

from blocks.neurons import LIF

CHECKS = Path(__file__).with_name("triton_interpreted.py")


def test_kernels_in_triton_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CHECKS)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed.group(1)) >= 40, res.stdout[-500:]  # every case ran


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="the interpreter runs it on CPU")
def test_triton_backend_on_cpu_says_so():
    pytest.importorskip("triton")
    with pytest.raises(RuntimeError, match="backend 'triton' runs on CUDA tensors"):
        LIF(backend="triton")(torch.randn(2, 3))
