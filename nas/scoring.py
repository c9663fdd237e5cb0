"""Training-free scores: rank untrained spiking networks by one forward pass.

:func:`score_points` builds each network of a list of points (seeded per point), runs ONE
forward on a fixed batch of images with a hook on every spiking layer and computes every
requested scorer from that shared pass (``nas.zero_cost``, the prefilter:
:mod:`nas.search.scores` stores them in a study).

Scorers (one class each, :func:`register_scorer`):

* ``snn_hamming`` (our version of the SNASNet idea, Kim et al., ECCV 2022): each spiking
  layer gives every image a binary code (its spikes over neurons x T). Per layer with
  N units and firing rate r on the batch, the kernel entry of images i, j is
  ``(N - d_H(b_i, b_j)) / N - (r^2 + (1 - r)^2)``: the fraction of units on which the two
  codes agree, minus the agreement two unrelated codes of that rate have by chance. That
  is the sparsity-aware part: in a layer that rarely fires (or nearly always fires) two
  images agree on almost every unit by chance, and the raw ``N - d_H`` kernel would call
  them identical; here such a layer contributes little, and a silent or saturated layer
  (r = 0 or 1) contributes exactly nothing. Every layer weighs the same (per unit, not per
  neuron count). Score: ``log|det(sum of the layer kernels)|`` (slogdet, float64); higher
  means the network tells the images apart. ``-inf``: the codes cannot separate the images
  at all (e.g. a network that never fires).
* ``params``: the parameter count (a baseline; no forward needed, but it is free).
* ``grad_norm``: the L2 norm of the gradient of the cross-entropy on the batch's labels
  with respect to all weights; **needs a backward** (the shared pass then runs with grad).
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from blocks.errors import NasError

from .metrics import spiking_types

DEFAULT_SCORERS = ("snn_hamming", "params")


class ZeroCostError(NasError):
    """Bad scoring input (an unknown scorer, no points, ...); one readable line."""


# ---- the shared forward pass ---------------------------------------------------------

@dataclass
class ForwardPass:
    """What one forward of one network gives the scorers."""

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor | None
    output: torch.Tensor
    # per spiking layer (outermost spiking modules, network order): its name and the binary
    # codes of the batch, (B, units) uint8, units = neurons x T (all calls of the layer)
    codes: list[tuple[str, torch.Tensor]] = field(default_factory=list)


class Scorer:
    """A training-free score of one network; subclass, set ``needs_grad``, register."""

    name: str = ""
    needs_grad: bool = False  # True: the shared forward keeps the graph for a backward

    def score(self, run: ForwardPass) -> float:
        raise NotImplementedError


SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(name: str) -> Callable[[type[Scorer]], type[Scorer]]:
    """Class decorator: ``@register_scorer("mine") class Mine(Scorer): ...``."""

    def deco(cls: type[Scorer]) -> type[Scorer]:
        if name in SCORERS:
            raise ValueError(f"scorer {name!r} is registered twice")
        cls.name = name
        SCORERS[name] = cls
        return cls

    return deco


def available_scorers() -> list[str]:
    return sorted(SCORERS)


def get_scorers(names: str | Sequence[str]) -> list[Scorer]:
    """Scorer instances for names (a list or 'a,b'); an unknown name is a ZeroCostError."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ZeroCostError(f"--scorers: none given; allowed: {', '.join(available_scorers())}")
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise ZeroCostError(f"--scorers: unknown {', '.join(map(repr, unknown))}; "
                            f"allowed: {', '.join(available_scorers())}")
    return [SCORERS[n]() for n in dict.fromkeys(names)]


# ---- scorers -------------------------------------------------------------------------

def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """One layer's sparsity-aware kernel (B, B) of binary codes (B, N): the fraction of
    agreeing units minus the agreement of unrelated codes at the layer's firing rate."""
    n = codes.shape[1]
    if n == 0:
        return torch.zeros(codes.shape[0], codes.shape[0], dtype=torch.float64)
    b = codes.to(torch.float32)
    both = (b @ b.T).to(torch.float64)  # units where both fire (exact counts below 2^24)
    fired = b.sum(1, dtype=torch.float64)
    d_h = fired[:, None] + fired[None, :] - 2 * both  # Hamming distances
    r = float(fired.sum()) / (n * codes.shape[0])
    return (n - d_h) / n - (r * r + (1 - r) * (1 - r))


@register_scorer("snn_hamming")
class SNNHamming(Scorer):
    """log|det| of the summed per-layer sparsity-aware Hamming kernels (module docstring)."""

    def score(self, run: ForwardPass) -> float:
        if not run.codes:
            return float("-inf")
        K = sum(hamming_kernel(c) for _, c in run.codes)
        _, logabsdet = torch.linalg.slogdet(K)
        return float(logabsdet)


@register_scorer("params")
class Params(Scorer):
    """The number of parameters (a baseline)."""

    def score(self, run: ForwardPass) -> float:
        return float(sum(p.numel() for p in run.model.parameters()))


@register_scorer("grad_norm")
class GradNorm(Scorer):
    """L2 norm of d(cross-entropy)/d(weights) at initialisation; needs a backward."""

    needs_grad = True

    def score(self, run: ForwardPass) -> float:
        if run.labels is None:
            raise ZeroCostError("grad_norm: needs the batch's labels")
        params = [p for p in run.model.parameters() if p.requires_grad]
        loss = nn.functional.cross_entropy(run.output.float(), run.labels)
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))


# ---- scoring -------------------------------------------------------------------------

def _spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost spiking modules (a neuron inside a neuron is not a layer of its own)."""
    kinds = spiking_types()
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    return [(n, m) for n, m in found if not any(n.startswith(o + ".") for o, _ in found if o != n)]


def _per_image(out: torch.Tensor, batch: int) -> torch.Tensor:
    """A neuron's time-major output (T, B, ...) as (B, units), units = T x neurons."""
    if out.ndim < 2 or out.shape[1] != batch:
        raise ValueError(f"a spiking layer's output {tuple(out.shape)} is not time-major "
                         f"(T, B={batch}, ...)")
    return out.detach().transpose(0, 1).reshape(batch, -1)


def forward_pass(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                 grad: bool = False) -> ForwardPass:
    """One forward of ``model`` in train mode (BatchNorm normalises with the batch's own
    statistics, so an untrained network fires), collecting every spiking layer's codes.
    A layer whose output is not exactly 0/1 raises: its codes would not be spikes."""
    batch = images.shape[0]
    layers = _spiking_layers(model)
    got: dict[str, list[torch.Tensor]] = {n: [] for n, _ in layers}

    def hook(name: str):
        def on_output(_mod, _inp, out):
            s = _per_image(out, batch)
            if not bool(((s == 0) | (s == 1)).all()):
                raise ValueError(f"spiking layer {name!r} put out values other than 0 and 1")
            got[name].append(s.to(torch.uint8))
        return on_output

    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    model.train()
    try:
        with torch.set_grad_enabled(grad):
            output = model(images)
    finally:
        for h in handles:
            h.remove()
    codes = [(n, torch.cat(got[n], dim=1)) for n, _ in layers if got[n]]
    return ForwardPass(model=model, images=images, labels=labels, output=output, codes=codes)


def point_seed(point: dict, seed: int) -> int:
    """The init seed of a point: the same point gets the same network in any order."""
    return zlib.crc32(json.dumps(point, sort_keys=True, default=str).encode()) ^ (seed & 0xFFFFFFFF)


def score_points(space, points: Sequence[dict], images: torch.Tensor, scorers: Sequence[Scorer],
                 seed: int = 0, *, labels: torch.Tensor | None = None,
                 arch: dict[str, Any] | None = None,
                 progress: Callable[[int], None] | None = None) -> list[dict[str, float]]:
    """Scores of every point (``{scorer name: value}``, in ``points`` order). Each network
    is built from ``space.to_config(point)`` (plus ``arch`` overrides such as num_classes,
    image_size or T), initialised under :func:`point_seed` and run once on ``images``."""
    import blocks

    grad = any(s.needs_grad for s in scorers)
    out = []
    for i, point in enumerate(points):
        torch.manual_seed(point_seed(point, seed))
        model = blocks.build(space.to_config(point), **(arch or {}))
        run = forward_pass(model, images, labels, grad=grad)
        out.append({s.name: s.score(run) for s in scorers})
        del run, model
        if progress:
            progress(i + 1)
    return out


# ---- points, data, storage -----------------------------------------------------------

def image_batch(data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` validation images and labels (else test, else train)."""
    for loader in (data.val, data.test, data.train):
        if loader is None:
            continue
        xs, ys, count = [], [], 0
        for x, y in loader:
            xs.append(x)
            ys.append(y)
            count += len(x)
            if count >= n:
                break
        if xs:
            return torch.cat(xs)[:n], torch.cat(ys)[:n]
    raise ZeroCostError("the study's data has no images to score on")
