"""Declarative search spaces over architecture configs (format: :mod:`search_spaces.space`).

>>> from search_spaces import load_space
>>> space = load_space("skip_connections")
>>> space.size
16
"""
from .params import Parameter, SpaceError
from .load import available_spaces, load_space
from .space import Space

__all__ = ["Parameter", "Space", "SpaceError", "available_spaces", "load_space"]
