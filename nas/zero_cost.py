"""Training-free scores: rank untrained spiking networks by one forward pass.

    python -m nas.zero_cost STUDY.yaml --candidates 1000 [--scorers snn_hamming,params]
                                       [--batch 16] [--seed 0] [--T 2]
    python -m nas.zero_cost STUDY.yaml --trained   # score what it trained; Kendall's tau

samples N distinct points of the study's space, builds each network (seeded per point),
runs ONE forward on a fixed batch of validation images with a hook on every spiking layer,
computes every requested scorer from that shared pass, prints a ranked table and stores the
scores in the study's storage (user attr ``zero_cost`` of the Optuna study: a list of
``{point, scores, settings}``, merged with earlier runs; no trials are created).

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

import argparse
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .study import StudyError, add_common_flags, load_study_from_args, run_command

ATTR = "zero_cost"  # the Optuna study's user attr holding every scored point
DEFAULT_SCORERS = ("snn_hamming", "params")


class ZeroCostError(StudyError):
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
    from .metrics import _spiking_types

    kinds = _spiking_types()
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


def store_scores(study, rows: list[dict]) -> int:
    """Merge ``rows`` ({point, scores, settings}) into the study's ``zero_cost`` user attr
    (a row with the same point and settings is replaced); the number stored in all."""
    def key(r: dict) -> str:
        return json.dumps([r["point"], r["settings"]], sort_keys=True, default=str)

    merged = {key(r): r for r in study.user_attrs.get(ATTR, [])}
    merged.update({key(r): r for r in rows})
    study.set_user_attr(ATTR, list(merged.values()))
    return len(merged)


def _fmt(v: float) -> str:
    return f"{int(v):,}" if math.isfinite(v) and v == int(v) and abs(v) >= 1000 else f"{v:.4g}"


def _table(rows: list[dict], names: list[str], top: int, order=()) -> None:
    from rich.console import Console
    from rich.table import Table

    from .search.results import config_label

    first = names[0]
    ranked = sorted(rows, key=lambda r: -r["scores"][first]
                    if not math.isnan(r["scores"][first]) else math.inf)
    title = f"zero-cost scores, ranked by {first} (top {min(top, len(rows))} of {len(rows)})"
    t = Table(title=title, min_width=len(title))  # the title on one line, however short the labels
    t.add_column("#", justify="right")
    for n in names:
        t.add_column(n, justify="right")
    t.add_column("point")
    for i, r in enumerate(ranked[:top], 1):
        t.add_row(str(i), *(_fmt(r["scores"][n]) for n in names),
                  config_label(r["point"], order))
    Console(width=200).print(t)


# ---- command line --------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.zero_cost", description=__doc__.split("\n")[0])
    add_common_flags(ap)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--candidates", type=int, help="points to sample and score")
    what.add_argument("--trained", action="store_true",
                      help="score the points the study has trained, and print how well each "
                           "score agrees with their accuracy (Kendall's tau)")
    ap.add_argument("--scorers", default=",".join(DEFAULT_SCORERS),
                    help=f"comma-separated (default: {','.join(DEFAULT_SCORERS)}); the first ranks "
                         f"the table; known: {', '.join(available_scorers())}")
    ap.add_argument("--batch", type=int, default=16, help="validation images per forward (default: 16)")
    ap.add_argument("--seed", type=int, default=0, help="sampling and init seed (default: 0)")
    ap.add_argument("--T", type=int, default=None,
                    help="score every network at T steps (default: each point's own T)")
    ap.add_argument("--top", type=int, default=20, help="rows of the printed table (default: 20)")
    args = ap.parse_args(argv)
    return run_command(lambda: run_zero_cost(args))


def score_study(cfg, study, space, points: list[dict], scorers: Sequence[Scorer], *, batch: int = 16,
                seed: int = 0, T: int | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Score ``points`` of the study's space on ``batch`` of the study's validation images
    and store them (:func:`store_scores`); the rows ``{point, scores, settings}``. Points
    already stored with the same settings and every requested score are not scored again
    (a resumed prefilter costs nothing)."""
    from .training.data import load_data

    data = load_data(cfg.data, "cpu")
    images, labels = image_batch(data, batch)
    arch = {"num_classes": data.num_classes, "in_channels": data.in_channels,
            "image_size": data.image_size}
    if T is not None:
        arch["T"] = T
    settings = {"seed": seed, "batch": len(images), "T": T}
    names = [s.name for s in scorers]
    stored = {json.dumps([r["point"], r["settings"]], sort_keys=True, default=str): r["scores"]
              for r in study.user_attrs.get(ATTR, [])}

    def cached(p: dict) -> dict | None:
        got = stored.get(json.dumps([p, settings], sort_keys=True, default=str))
        return got if got is not None and all(n in got for n in names) else None

    todo = [p for p in points if cached(p) is None]
    log(f"scoring {len(todo)} points of {space.name!r} ({space.size or 'infinite'} in all) with "
        f"{', '.join(names)} on {len(images)} images"
        + (f" ({len(points) - len(todo)} scored before)" if len(todo) < len(points) else ""))
    start, last = time.perf_counter(), [time.perf_counter()]

    def progress(done: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or done == len(todo):
            last[0] = now
            log(f"  {done}/{len(todo)} scored, {done / (now - start):.2f} points/s")

    fresh = iter(score_points(space, todo, images, scorers, seed, labels=labels, arch=arch,
                              progress=progress))
    rows = [{"point": p, "scores": cached(p) or next(fresh), "settings": settings} for p in points]
    total = store_scores(study, rows)
    log(f"stored {len(rows)} scored points in {cfg.storage_url} (study {cfg.name!r}, user attr "
        f"{ATTR!r}: {total} in all)")
    return rows


def run_zero_cost(args) -> list[dict]:
    from .run import open_study

    scorers = get_scorers(args.scorers)
    if args.candidates is not None and args.candidates < 1:
        raise ZeroCostError(f"--candidates {args.candidates}: at least 1")
    if args.batch < 2:
        raise ZeroCostError(f"--batch {args.batch}: at least 2 images (a kernel over one image "
                            "says nothing)")
    if args.T is not None and args.T < 1:
        raise ZeroCostError(f"--T {args.T}: at least 1")
    cfg = load_study_from_args(args)
    space = cfg.load_space()
    study, _ = open_study(cfg, space)  # created if the study has not run yet
    if args.trained:
        from .analysis.zero_cost_agreement import trained_accuracy

        points = [p for p, _, _ in trained_accuracy(study).values()]
        if not points:
            raise ZeroCostError(f"--trained: the study {cfg.name!r} has no COMPLETE trial yet")
    else:
        points = space.distinct_points(args.candidates, args.seed)
    rows = score_study(cfg, study, space, points, scorers, batch=args.batch,
                       seed=args.seed, T=args.T, log=lambda m: print(m, flush=True))
    _table(rows, [s.name for s in scorers], args.top, [p.name for p in space.parameters])
    if args.trained:
        from .analysis.zero_cost_agreement import agreement_markdown

        print(agreement_markdown(study) or "fewer than 3 trained points: no agreement table")
    return rows


if __name__ == "__main__":
    sys.exit(main())
