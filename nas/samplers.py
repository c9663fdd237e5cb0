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

from .registry import Registry


class SamplerKind(ABC):
    name: ClassVar[str]
    fixed: ClassVar[bool] = False
    takes_options: ClassVar[bool] = True
    multi_objective: ClassVar[bool] = True

    @abstractmethod
    def build(self, seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
        """The Optuna sampler; ``options`` (only where ``takes_options``) go to its constructor."""


SAMPLER_KINDS: Registry = Registry("sampler")  # name -> SamplerKind
register_sampler = SAMPLER_KINDS.register


class _OptunaSampler(SamplerKind):
    """A kind that is one of Optuna's samplers, built with the seed and the options."""
    sampler: ClassVar[type[optuna.samplers.BaseSampler]]

    def build(self, seed, options):
        return self.sampler(seed=seed, **options)


class _Queued(SamplerKind):
    """A design whose every point is queued before the first trial; the sampler behind it
    is never asked (a random one, seeded)."""
    fixed = True
    takes_options = False

    def build(self, seed, options):
        return optuna.samplers.RandomSampler(seed=seed)


@register_sampler
class TPE(_OptunaSampler):
    """Tree-structured Parzen estimator (Optuna's default)."""
    name, sampler = "tpe", optuna.samplers.TPESampler


@register_sampler
class NSGA2(_OptunaSampler):
    """Genetic search on several objectives (non-dominated sorting)."""
    name, sampler = "nsga2", optuna.samplers.NSGAIISampler


@register_sampler
class GP(_OptunaSampler):
    """Gaussian-process Bayesian optimisation."""
    name, sampler = "gp", optuna.samplers.GPSampler


@register_sampler
class CMAES(_OptunaSampler):
    """CMA evolution strategy (the ``cmaes`` package); one objective."""
    name, sampler = "cmaes", optuna.samplers.CmaEsSampler
    multi_objective = False


@register_sampler
class Random(SamplerKind):
    """Independent uniform draws."""
    name = "random"
    takes_options = False

    def build(self, seed, options):
        return optuna.samplers.RandomSampler(seed=seed)


@register_sampler
class Grid(_Queued):
    """Every point of the space (``repeats`` seeds each)."""
    name = "grid"


@register_sampler
class Factorial(_Queued):
    """The 2^k design of the space's two-level parameters, or a regular fraction of it
    (``fraction``; search_spaces/design.py)."""
    name = "factorial"


SAMPLERS = tuple(SAMPLER_KINDS)
