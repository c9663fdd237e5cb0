"""The metrics a study can optimise (``objectives: [{metric: ...}]``): one registered class each.

A metric has a name, a default direction, and says how a trial comes by its value:

* ``cost = False``: the training loop reports it after every epoch (``val_acc``; the
  network's size ``params`` and time steps ``T``), so any scheduler can prune on it;
* ``cost = True``: counted by :func:`nas.metrics.measure` on the trial's fixed batch
  of validation images (energy, synaptic operations, firing ...): at the end of every
  trial, and after every epoch when a study optimises one, so that a multi-objective
  scheduler can prune on it too.

A new objective is one class here with ``@register_metric`` (a cost metric also needs
its count in ``ModelMetrics``); ``tests/test_objectives.py`` runs every member through a
trial and through the study file.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from .registry import Registry

Direction = Literal["maximize", "minimize"]


class Metric:
    """A study objective: its name in a trial's results, its default direction and
    whether it is a cost counted on the network (see the module's docstring)."""
    name: ClassVar[str]
    direction: ClassVar[Direction]
    cost: ClassVar[bool] = False

    def value(self, result: dict) -> float:
        """The metric in a trial's reported ``result``."""
        return float(result[self.name])


METRIC_KINDS: Registry = Registry("metric")  # name -> Metric
register_metric = METRIC_KINDS.register


@register_metric
class ValAcc(Metric):
    """Accuracy on the validation split after the epoch."""
    name, direction = "val_acc", "maximize"


@register_metric
class Params(Metric):
    """Trainable parameters of the network."""
    name, direction = "params", "minimize"


@register_metric
class TimeSteps(Metric):
    """Time steps T the network runs for each image."""
    name, direction = "T", "minimize"


class _Cost(Metric):
    cost, direction = True, "minimize"


@register_metric
class Energy(_Cost):
    """Inference energy per image, µJ (45 nm: 0.9 pJ per addition, 4.6 pJ per MAC)."""
    name = "energy_uj"


@register_metric
class SynapticOps(_Cost):
    """Synaptic operations (additions driven by spikes) per image."""
    name = "sops"


@register_metric
class FiringRate(_Cost):
    """Mean spikes per neuron and time step, averaged over the spiking layers."""
    name = "firing_rate"


@register_metric
class Sparsity(_Cost):
    """Total spikes over total feature-map size (the papers' mean sparsity)."""
    name = "sparsity"


@register_metric
class MACs(_Cost):
    """Multiply-accumulates per image (layers that read real values)."""
    name = "macs"


@register_metric
class AnnFlops(_Cost):
    """FLOPs of the same network run once as an ANN (2 x its dense MACs)."""
    name = "ann_flops"


METRICS = tuple(METRIC_KINDS)
COST_METRICS = tuple(n for n, m in METRIC_KINDS.items() if m.cost)
