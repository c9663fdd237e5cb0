"""Spiking neurons, one family per module; the state contract is in :mod:`.base`."""
from .base import BACKENDS, CUDA_BACKENDS, SpikingNeuron
from .lif import IF, LIF, PLIF
from .reference import reference_multistep
from .surrogate import SURROGATES, spike, surrogate_grad

__all__ = ["BACKENDS", "CUDA_BACKENDS", "IF", "LIF", "PLIF", "SURROGATES", "SpikingNeuron",
           "reference_multistep", "spike", "surrogate_grad"]
