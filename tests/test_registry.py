"""Every registered block is built and exercised here, the day it is registered."""
import pytest
import torch

import blocks
from blocks import registry

GRID, DIM, T, B = 8, 12, 2, 3


def neuron():
    return blocks.create("neuron", "lif")


def _cases():
    for kind in ("encoder", "token", "channel", "head", "neuron", "fp_lif"):
        for name in blocks.available(kind):
            yield kind, name


@pytest.mark.parametrize("kind,name", list(_cases()))
def test_every_block_builds_runs_and_passes_gradients(kind, name):
    spikes = (torch.rand(T, B, DIM, GRID, GRID) < 0.3).float().requires_grad_()
    if kind == "encoder":
        stride = registry.get(kind, name).factory.stride()
        block = blocks.create(kind, name, in_dim=DIM // 2 * 2, dim=DIM, grid=GRID // stride,
                              neuron=neuron, stem=False)
        out = block(spikes)
        assert out.shape == (T, B, DIM, GRID // stride, GRID // stride)
    elif kind in ("token", "channel"):
        block = blocks.create(kind, name, dim=DIM, grid=GRID, neuron=neuron)
        out = block(spikes)
        assert out.shape == spikes.shape
    elif kind == "head":
        block = blocks.create(kind, name, dim=DIM, num_classes=7)
        out = block(spikes)
        assert out.shape == (B, 7)
    elif kind == "neuron":
        block = blocks.create(kind, name)
        out = block(spikes * 3)
        assert set(out.unique().tolist()) <= {0.0, 1.0}
    else:
        block = blocks.create(kind, name)
        out = block(spikes)
        assert out.shape == spikes.shape
    assert torch.isfinite(out).all()
    out.float().square().sum().backward()
    assert spikes.grad is not None and spikes.grad.abs().sum() > 0
    params = [p for p in block.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in params), [n for n, p in block.named_parameters()
                                                     if p.grad is None]


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="allowed: axial, full, identity, lif_mixer"):
        blocks.create("token", "attention", dim=4, grid=4, neuron=neuron)
    with pytest.raises(KeyError, match="unknown block kind"):
        blocks.available("conv")


def test_unknown_parameter_is_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match="no parameter 'depthwise'.*allowed: bias, identity"):
        blocks.create("token", "axial", dim=4, grid=4, neuron=neuron, depthwise=True)


def test_double_registration_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("token", "axial")(object)


def test_searchable_parameters_exclude_context():
    params = registry.get("encoder", "spe").params
    assert params == {"edge_12": "conv3x3", "edge_13": "identity", "edge_23": "conv3x3"}
