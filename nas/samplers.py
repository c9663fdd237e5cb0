"""The samplers a study can name (``sampler: {name: ...}``): one registered class each.

A sampler kind says how to build its Optuna sampler and what it allows: ``fixed`` kinds
know every point before any trial (the engine queues them: ``grid``, ``factorial``),
``takes_options`` whether ``sampler.options`` are passed to the constructor, and
``multi_objective`` whether it can search on several objectives. A new sampler is one
class here with ``@register_sampler``; ``tests/test_samplers.py`` runs every member.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import optuna


class SamplerKind(ABC):
    name: ClassVar[str]
    fixed: ClassVar[bool] = False
    takes_options: ClassVar[bool] = True
    multi_objective: ClassVar[bool] = True

    @abstractmethod
    def build(self, seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
        """The Optuna sampler; ``options`` (only where ``takes_options``) go to its constructor."""


SAMPLER_KINDS: dict[str, SamplerKind] = {}


def register_sampler(cls: type[SamplerKind]) -> type[SamplerKind]:
    if cls.name in SAMPLER_KINDS:
        raise ValueError(f"sampler {cls.name!r} is registered twice")
    SAMPLER_KINDS[cls.name] = cls()
    return cls


@register_sampler
class TPE(SamplerKind):
    """Tree-structured Parzen estimator (Optuna's default)."""
    name = "tpe"

    def build(self, seed, options):
        return optuna.samplers.TPESampler(seed=seed, **options)


@register_sampler
class NSGA2(SamplerKind):
    """Genetic search on several objectives (non-dominated sorting)."""
    name = "nsga2"

    def build(self, seed, options):
        return optuna.samplers.NSGAIISampler(seed=seed, **options)


@register_sampler
class GP(SamplerKind):
    """Gaussian-process Bayesian optimisation."""
    name = "gp"

    def build(self, seed, options):
        return optuna.samplers.GPSampler(seed=seed, **options)


@register_sampler
class CMAES(SamplerKind):
    """CMA evolution strategy (the ``cmaes`` package); one objective."""
    name = "cmaes"
    multi_objective = False

    def build(self, seed, options):
        return optuna.samplers.CmaEsSampler(seed=seed, **options)


@register_sampler
class Random(SamplerKind):
    """Independent uniform draws."""
    name = "random"
    takes_options = False

    def build(self, seed, options):
        return optuna.samplers.RandomSampler(seed=seed)


@register_sampler
class Grid(SamplerKind):
    """Every point of the space (``repeats`` seeds each), queued before the first trial."""
    name = "grid"
    fixed = True
    takes_options = False

    def build(self, seed, options):
        return optuna.samplers.RandomSampler(seed=seed)  # never asked: every point is queued


@register_sampler
class Factorial(SamplerKind):
    """The 2^k design of the space's two-level parameters, or a regular fraction of it
    (``fraction``; search_spaces/design.py), queued before the first trial."""
    name = "factorial"
    fixed = True
    takes_options = False

    def build(self, seed, options):
        return optuna.samplers.RandomSampler(seed=seed)  # never asked: every point is queued


SAMPLERS = tuple(SAMPLER_KINDS)
