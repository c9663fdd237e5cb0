"""Surrogate gradients for the Heaviside spike function.

Forward: ``spike = (x >= 0)`` with ``x = h - V_th``. Backward: the derivative of a smooth
stand-in, named here and shared by every backend (torch, spikingjelly, cupy, triton).
"""
from __future__ import annotations

import math

import torch

# name -> default sharpness alpha
DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0}
SURROGATES = tuple(DEFAULT_ALPHA)


def surrogate_grad(name: str, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """d spike / d x of the named surrogate at ``x = h - V_th``."""
    if name == "sigmoid":
        sg = torch.sigmoid(alpha * x)
        return alpha * sg * (1.0 - sg)
    if name == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    if name == "triangle":  # piecewise quadratic: alpha - alpha^2 |x| inside |x| < 1/alpha
        return torch.clamp(alpha - alpha * alpha * x.abs(), min=0.0)
    raise ValueError(f"unknown surrogate {name!r}; allowed: {', '.join(SURROGATES)}")


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(ctx.name, x, ctx.alpha), None, None


def spike(x: torch.Tensor, name: str = "sigmoid", alpha: float | None = None) -> torch.Tensor:
    """Heaviside step of ``x`` with the named surrogate gradient."""
    return _Spike.apply(x, name, DEFAULT_ALPHA[name] if alpha is None else float(alpha))
