"""The check every neuron backend passes against the ``torch`` reference."""
import torch

from blocks.neurons import PLIF


def assert_same_dynamics(cls, backend: str, x: torch.Tensor, **kw) -> None:
    """``cls(backend=backend, **kw)`` against ``cls(**kw)`` on ``x``: identical spikes (and a
    firing rate that exercises both states), input and leak gradients within 1e-5 relative."""
    ref, other = cls(**kw), cls(backend=backend, **kw)
    if cls is PLIF:
        other.load_state_dict(ref.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ref(xa), other(xb)
    assert torch.equal(sa, sb)
    assert 0.02 < sa.mean() < 0.8
    g = torch.randn_like(sa)
    sa.backward(g)
    sb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-7)
    if cls is PLIF:
        torch.testing.assert_close(other.w.grad, ref.w.grad, rtol=1e-5, atol=1e-6)
