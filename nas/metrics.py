"""Spikes, synaptic operations, energy: what one inference of a model costs.

    m = measure(model, images)          # eval mode, no_grad, one forward pass
    m.energy_uj, m.sops, m.sparsity     # per image
    m.as_dict()                         # flat floats (Optuna user attributes, objectives)

Definitions (all counts are **per image**, averaged over the batch, summed over the T
time steps, for the network exactly as it runs):

* **firing rate** of a spiking layer (a :class:`blocks.neurons.SpikingNeuron`, or a
  spikingjelly ``BaseNode``): spikes / (neurons x T), the mean number of spikes per neuron
  per time step. ``firing_rate`` is the unweighted mean over layers; ``sparsity`` is the
  network's total spikes / total feature-map size (neurons x T summed over layers), the
  paper's "mean sparsity" (0.14 for MLP-SPE-T).
* **additions** (synaptic operations, ``sops``): every Linear/conv whose input is binary
  (spikes) adds one weight per (nonzero input, output it reaches) pair. Counted exactly by
  spikingjelly 2.0's ``op_counter.SynOpCounter`` (``nnz x out_features`` for a Linear;
  for a convolution, each spike times the number of output positions and channels whose
  receptive field holds it, borders and strides included). ``sops == additions``: bias,
  BatchNorm (folded into the weights) and membrane additions are not counted.
* **MACs**: Linear/conv layers whose input is real-valued, counted densely by
  ``op_counter.MACCounter`` (BatchNorm excluded: it folds into the preceding weights).
  In the spiking MLP these are the stem (it reads the image; with direct encoding it runs
  once, not T times, since its output is the same at every step) and the classifier
  Linear, which reads spatial means of BN(spikes) and is counted as MACs at every step.
  In non-MFI models (SNN-MLP) every layer reads real values: everything is MACs.
  Whether an input is binary is decided per call, as spikingjelly does.
* **energy** (45 nm): ``additions x E_AC + MACs x E_MAC``, E_AC = 0.9 pJ and
  E_MAC = 4.6 pJ by default, reported in microjoules.
* **ann_flops**: 2 x the dense MACs of every Linear/conv of the same network run as an
  ANN, once (T = 1); ``ann_energy_uj`` = those MACs x E_MAC.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from blocks.neurons.base import SpikingNeuron

from .mfi import exemption

E_AC = 0.9e-12  # J per accumulate (addition), 45 nm
E_MAC = 4.6e-12  # J per multiply-accumulate, 45 nm

EVAL_IMAGES = 64  # trials are measured on the first 64 validation images

# scalar metrics a trial stores (user attributes) and that studies may use as objectives
TRIAL_METRICS = ("energy_uj", "sops", "additions", "macs", "firing_rate", "sparsity",
                 "ann_flops", "ann_energy_uj", "spikes")

__all__ = ["E_AC", "E_MAC", "EVAL_IMAGES", "TRIAL_METRICS", "LayerOps", "LayerRate", "ModelMetrics",
           "eval_batch", "measure", "stage_of"]


@dataclass
class LayerRate:
    """One spiking layer: neurons per image and time step, spikes per image (all T)."""
    name: str
    stage: int | None
    neurons: int
    spikes: float
    firing_rate: float


@dataclass
class LayerOps:
    """One Linear/conv layer: what it costs per image (all T)."""
    name: str
    stage: int | None
    input: str  # "spikes" or "real"
    additions: float
    macs: float
    dense_macs: float  # per image at T = 1 (the ANN)
    exempt: str | None = None  # why it may read real values (stem, classifier)


@dataclass
class ModelMetrics:
    layers: list[LayerRate]
    ops: list[LayerOps]
    T: int
    batch: int
    params: int
    spikes: float
    sparsity: float
    firing_rate: float
    additions: float
    macs: float
    ann_flops: float
    e_ac: float = E_AC
    e_mac: float = E_MAC
    stage_params: dict[str, int] = field(default_factory=dict)  # "0", "1", ..., "rest"

    @property
    def sops(self) -> float:
        return self.additions

    @property
    def energy_uj(self) -> float:
        return (self.additions * self.e_ac + self.macs * self.e_mac) * 1e6

    @property
    def ann_energy_uj(self) -> float:
        return self.ann_flops / 2 * self.e_mac * 1e6

    def as_dict(self) -> dict[str, float]:
        """The scalar metrics as flat floats (keys of :data:`TRIAL_METRICS` plus params, T)."""
        out = {k: float(getattr(self, k)) for k in TRIAL_METRICS}
        out.update(params=float(self.params), T=float(self.T))
        return out

    def layer_rates(self, digits: int = 6) -> list[dict[str, Any]]:
        """``[{"layer", "stage", "rate"}]`` in network order (compact, for user attributes)."""
        return [{"layer": r.name, "stage": r.stage, "rate": float(f"{r.firing_rate:.{digits}g}")}
                for r in self.layers]

    def per_stage(self) -> list[dict[str, Any]]:
        """One row per stage (then the head, or whatever lies outside the stages): params,
        spiking layers, neurons, spikes, firing rate, SOPs, MACs, energy and MFI status
        (``mfi``: every layer that is not exempt reads spikes)."""
        keys = sorted({r.stage for r in self.layers} | {o.stage for o in self.ops}
                      | {_stage_key(k) for k in self.stage_params},
                      key=lambda s: (s is None, -1 if s is None else s))
        rows = []
        for s in keys:
            rates = [r for r in self.layers if r.stage == s]
            ops = [o for o in self.ops if o.stage == s]
            names = [r.name for r in rates] + [o.name for o in ops]
            label = s if s is not None else (
                "head" if all(n.startswith("head") for n in names) else "other")
            neurons = sum(r.neurons for r in rates)
            spikes = sum(r.spikes for r in rates)
            adds, macs = sum(o.additions for o in ops), sum(o.macs for o in ops)
            real = [o.name for o in ops if o.input == "real" and not o.exempt]
            rows.append({
                "stage": label, "params": self.stage_params.get(_param_key(s), 0),
                "spiking_layers": len(rates), "neurons": neurons, "spikes": spikes,
                "firing_rate": spikes / (neurons * self.T) if neurons else float("nan"),
                "sops": adds, "macs": macs,
                "energy_uj": (adds * self.e_ac + macs * self.e_mac) * 1e6,
                "mfi": not real, "real_input_layers": real,
                "exempt": [o.name for o in ops if o.input == "real" and o.exempt],
            })
        return rows

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(self.as_dict())
        return d


def stage_of(name: str) -> int | None:
    """The stage index of a module name (``stages.2.blocks.0...`` -> 2, SNN-MLP
    ``encoders.1`` -> 1); None for the head and anything outside the stages."""
    m = re.match(r"(?:stages|encoders)\.(\d+)(?:\.|$)", name)
    return int(m.group(1)) if m else None


def _stage_key(k: str) -> int | None:
    return None if k == "rest" else int(k)


def _param_key(s: int | None) -> str:
    return "rest" if s is None else str(s)


def _dense_counter():
    """A spikingjelly counter of the dense MACs of every matmul and convolution."""
    from math import prod

    from spikingjelly.activation_based.op_counter import BaseCounter

    aten = torch.ops.aten

    def mm(args, kwargs, out):
        x, y = args[:2]
        return x.shape[0] * x.shape[1] * y.shape[1]

    def addmm(args, kwargs, out):
        return mm(args[1:], kwargs, out)

    def bmm(args, kwargs, out):
        x, y = args[:2]
        return x.shape[0] * x.shape[1] * x.shape[2] * y.shape[2]

    def baddbmm(args, kwargs, out):
        return bmm(args[1:], kwargs, out)

    def conv(args, kwargs, out):
        x, w, transposed = args[0], args[1], args[6]
        spatial = x.shape[2:] if transposed else out.shape[2:]
        return prod(w.shape) * prod(spatial) * x.shape[0]

    counter = BaseCounter()
    counter.rules = {aten.mm.default: mm, aten.addmm.default: addmm, aten.bmm.default: bmm,
                     aten.baddbmm.default: baddbmm, aten.convolution.default: conv}
    return counter


def spiking_types() -> tuple[type, ...]:
    types: tuple[type, ...] = (SpikingNeuron,)
    try:
        from spikingjelly.activation_based.neuron import BaseNode

        types += (BaseNode,)
    except ImportError:  # pragma: no cover
        pass
    return types


def _weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
             nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return {n: m for n, m in model.named_modules() if isinstance(m, kinds)}


def _stage_params(model: nn.Module) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        key = _param_key(stage_of(name))
        out[key] = out.get(key, 0) + p.numel()
    return out


def _totals(counter) -> dict[str, float]:
    return {scope: float(sum(v.values())) for scope, v in counter.get_counts().items()}


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, e_ac: float = E_AC,
            e_mac: float = E_MAC) -> ModelMetrics:
    """Run ``model`` once on ``images`` (``(B, C, H, W)``, or time-major ``(T, B, ...)``) in
    eval mode and count spikes, synaptic additions, MACs and the ANN's FLOPs, per image.
    ``e_ac`` and ``e_mac`` are in joules. The model's train/eval state is restored."""
    from spikingjelly.activation_based import monitor
    from spikingjelly.activation_based.op_counter import (
        DispatchCounterMode,
        MACCounter,
        SynOpCounter,
    )

    device = next((p.device for p in model.parameters()), images.device)
    images = images.to(device)
    batch = images.shape[1] if images.ndim == 5 else images.shape[0]
    was_training = model.training
    model.eval()
    root = type(model).__name__
    syn, mac = SynOpCounter(), MACCounter()
    mac.rules.pop(torch.ops.aten.native_batch_norm.default, None)  # BN folds into weights
    spiking = spiking_types()
    stats: dict[str, list[float]] = {}

    def on_spikes(s: torch.Tensor):
        s = s.detach()
        return float(s.sum(dtype=torch.float64)), s.numel(), s.shape[0]

    try:
        with monitor.OutputMonitor(model, spiking, on_spikes) as mon:
            with DispatchCounterMode([syn, mac]):
                model(images)
            T_seen = 1
            for name in mon.monitored_layers:
                if any(name.startswith(o + ".") for o in mon.monitored_layers if o != name):
                    continue  # a node inside a monitored neuron
                recs = mon[name]
                if not recs:
                    continue
                spikes = sum(r[0] for r in recs)
                size = sum(r[1] for r in recs)
                steps = recs[0][2]
                T_seen = max(T_seen, steps)
                stats[name] = [spikes, size, steps]
        # the same network as an ANN: one pass at T = 1, dense MACs of every matmul/conv
        dense = _dense_counter()
        saved_T = getattr(model, "T", None)
        ann_images = images[0] if images.ndim == 5 else images
        try:
            if isinstance(saved_T, int):
                model.T = 1
            with DispatchCounterMode([dense]):
                model(ann_images)
        finally:
            if isinstance(saved_T, int):
                model.T = saved_T
    finally:
        model.train(was_training)

    T = int(getattr(model, "T", T_seen) or T_seen) if images.ndim == 4 else images.shape[0]
    layers = []
    for name, (spikes, size, steps) in stats.items():
        neurons = size // (steps * batch)
        layers.append(LayerRate(name=name, stage=stage_of(name), neurons=int(neurons),
                                spikes=spikes / batch, firing_rate=spikes / size if size else 0.0))
    exempt = exemption(model)
    adds, macs, dense_macs = _totals(syn), _totals(mac), _totals(dense)
    ops = []
    for name in _weight_layers(model):
        scope = f"{root}.{name}"
        if scope not in adds and scope not in macs:
            continue  # not called
        a, m, d = adds.get(scope, 0.0), macs.get(scope, 0.0), dense_macs.get(scope, 0.0)
        ops.append(LayerOps(name=name, stage=stage_of(name), input="real" if m > 0 else "spikes",
                            additions=a / batch, macs=m / batch, dense_macs=d / batch,
                            exempt=exempt.get(name)))
    total_a, total_m = adds.get("Global", 0.0), macs.get("Global", 0.0)
    total_d = dense_macs.get("Global", 0.0)
    rest = (total_a - sum(o.additions for o in ops) * batch,
            total_m - sum(o.macs for o in ops) * batch, total_d - sum(o.dense_macs for o in ops) * batch)
    if any(abs(v) > 0.5 for v in rest):  # matmuls outside Linear/conv modules
        ops.append(LayerOps(name="(functional matmuls)", stage=None,
                            input="real" if rest[1] > 0.5 else "spikes", additions=rest[0] / batch,
                            macs=rest[1] / batch, dense_macs=rest[2] / batch))
    spikes = sum(r.spikes for r in layers)
    size = sum(r.neurons for r in layers) * T
    return ModelMetrics(
        layers=layers, ops=ops, T=T, batch=batch,
        params=sum(p.numel() for p in model.parameters()),
        spikes=spikes, sparsity=spikes / size if size else float("nan"),
        firing_rate=(sum(r.firing_rate for r in layers) / len(layers)) if layers else float("nan"),
        additions=total_a / batch, macs=total_m / batch, ann_flops=2.0 * total_d / batch,
        e_ac=e_ac, e_mac=e_mac, stage_params=_stage_params(model))


def eval_batch(data, n: int = 64) -> torch.Tensor:
    """The first ``n`` images of the validation split (else test, else train) of a
    :class:`nas.training.data.Data`: the fixed batch that trial metrics are measured on."""
    for loader in (data.val, data.test, data.train):
        if loader is None:
            continue
        got, count = [], 0
        for x, _ in loader:
            got.append(x)
            count += len(x)
            if count >= n:
                break
        if got:
            return torch.cat(got)[:n]
    raise ValueError("no images to measure metrics on: the data has no split with images")
