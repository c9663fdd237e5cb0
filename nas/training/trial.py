"""The function Ray Tune runs for a trial: :func:`nas.training.trainable.run_trial`, imported
when the trial starts, not when its worker is made.

Ray Tune starts a worker for the next trial while other trials train, and drops that worker
unused when a running trial's worker frees up first (it reuses that one). With short trials
this happens at nearly every trial: a race's trials pause at every rung, and each pause hands
the paused trial's worker to the next trial while a new worker is half started. Unpickling
this function is all such a worker does, so it never pays torch's import (about 2 s of CPU).
"""
from __future__ import annotations


def train_trial(config: dict, study: str) -> dict:
    """``run_trial(config, study)`` (``study``: the study's JSON)."""
    from .trainable import run_trial  # torch: only in a worker that trains

    return run_trial(config, study)
