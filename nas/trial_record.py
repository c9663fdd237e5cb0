"""What a trial stores in its study, named in one place (docs/architecture.md, stage 3).

A trial of a study is an Optuna trial with
- ``params``: its point (the space's parameter values; :func:`point_key` is the one string
  per point that every reader groups and compares by);
- user attributes (the keys below): ``repeat`` (the seed index), ``epochs`` trained,
  ``curve`` (the first objective per epoch), ``arch`` (the architecture's YAML), the
  metrics, the race's and the scheduler's reasons (``race_*``, ``pruned_at_rung``), the
  lineage of a promoted trial, ``error`` and ``interrupted`` for a failure;
- system attributes ``nas:val_correct:<epoch>``: its per-image correctness on the fixed
  validation split, packed (:func:`pack_correct`).

A proposal of a point the study already had (older studies stored them as FAIL trials with
``duplicate_of``) was never trained: :func:`is_proposal_only`, and every reader skips it.
Torch-free: the trial workers write with it, the search and analysis read with it.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Mapping

import numpy as np

CORRECT_KEY = "nas:val_correct:"  # + epoch: a trial system attr, one per epoch
DUPLICATE_OF = "duplicate_of"  # a proposal of a point the study had, never trained
INTERRUPTED = "interrupted"  # a trial whose driver was stopped; its point was queued again
FIXED_PARAMS = "fixed_params"  # system attr of a queued trial: the point it will train
# a scheduler's reason for stopping a trial, stored before Ray Tune stops it: the trial was
# dropped, not interrupted (nas/search/schedulers.py)
RACE_RUNG = "race_rung"  # the race's round that dropped it (with race_p_value, race_lost_to ...)
RACE_ANSWERED = "race_answered"  # the effects race's answer, which stopped every trial
PRUNED_AT_RUNG = "pruned_at_rung"  # MO-ASHA's rung (with rung_rank, rung_trials, rung_keeps)
DROP_REASONS = (RACE_RUNG, RACE_ANSWERED, PRUNED_AT_RUNG)


def point_key(point: Mapping[str, Any]) -> str:
    """One string per point: its parameters sorted by name, floats rounded to 12 digits
    (Optuna's steps leave noise below that), anything else as ``str``."""
    norm = {k: round(v, 12) if isinstance(v, float) else v for k, v in point.items()}
    return json.dumps(norm, sort_keys=True, default=str)


def trial_point(t) -> dict:
    """A trial's point: its parameters, or, while it waits in the queue, the fixed ones."""
    return t.params or t.system_attrs.get(FIXED_PARAMS, {})


def was_dropped(t) -> bool:
    """A scheduler decided to stop the trial (its reason is stored), whatever its state."""
    return any(k in t.user_attrs for k in DROP_REASONS)


def is_proposal_only(t) -> bool:
    """A proposal of a point the study already had, recorded but never trained."""
    return DUPLICATE_OF in t.user_attrs


def worst(direction: str) -> float:
    """The value a failed trial reports for an objective of ``direction``."""
    return -1e30 if direction == "maximize" else 1e30


def pack_correct(correct) -> str:
    """A boolean vector (numpy or torch) as ``"<n>:<base64 of its packed bits>"``."""
    bits = np.asarray(correct.cpu() if hasattr(correct, "cpu") else correct, dtype=bool)
    return f"{bits.size}:{base64.b64encode(np.packbits(bits)).decode()}"


def unpack_correct(text: str) -> np.ndarray:
    n, _, data = text.partition(":")
    return np.unpackbits(np.frombuffer(base64.b64decode(data), dtype=np.uint8))[: int(n)].astype(bool)


def correct_by_epoch(trial) -> dict[int, np.ndarray]:
    """A trial's recorded per-image correctness, by epoch."""
    return {int(k.removeprefix(CORRECT_KEY)): unpack_correct(v)
            for k, v in trial.system_attrs.items() if k.startswith(CORRECT_KEY)}
