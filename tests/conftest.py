import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def cifar_sample() -> Path:
    path = SHARED_DATA / "cifar10-sample.npz"
    if not path.exists():
        pytest.skip(f"real CIFAR sample not found at {path} (../shared/data beside the repo)")
    return path
