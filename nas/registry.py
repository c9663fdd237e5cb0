"""The registry behind every extension point but the blocks' own (blocks/registry.py): the
samplers, schedulers, objectives, report figures and doctor checks each keep one.

    SAMPLER_KINDS = Registry("sampler")
    register_sampler = SAMPLER_KINDS.register   # @register_sampler on each class
"""
from __future__ import annotations


class Registry(dict):
    """``{name: one instance of each registered class}``, in the order they were
    registered; :meth:`register` is the class decorator and refuses a name twice."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, cls: type) -> type:
        if cls.name in self:
            raise ValueError(f"{self.kind} {cls.name!r} is registered twice")
        self[cls.name] = cls()
        return cls
