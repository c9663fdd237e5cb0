"""Ray Tune's ``OptunaSearch``, made honest and resumable for architecture studies.

On top of Ray Tune's Optuna searcher (which samples through a real Optuna storage, so
every trial lands in the study that optuna-dashboard reads), :class:`StudySearcher`:

* stops asking once the study holds its budget of trials, counted in the storage under a
  lock on the study with the ask (:func:`nas.search.storage.budget_lock`), so that a re-run, or
  any number of drivers on the same study, never exceeds ``trials``;
* marks every trial with its driver and a heartbeat, so that a later run can tell trials
  of a killed driver (re-enqueued, see :func:`recover_interrupted`) from live ones;
* tells Optuna the truth about fidelity: a trial the scheduler stopped before
  ``max_epochs`` becomes PRUNED with its learning curve, never a COMPLETE trial with a
  low-budget value; a trial that raised becomes FAIL with its error;
* stores per trial: the architecture config, parameters, epochs, curve, wall time, repeat,
  and for full-budget trials the :mod:`nas.metrics` measured at the end (energy, SOPs,
  firing rate, sparsity, MACs, ANN FLOPs; ``layer_rates``: ``[{layer, stage, rate}]``).
"""
from __future__ import annotations

import hashlib
import json
import math

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..metrics import TRIAL_METRICS
from ..objectives import METRIC_KINDS
from ..study import StudyConfig
from ..trial_record import (
    CORRECT_KEY,
    DUPLICATE_OF,
    INTERRUPTED,
    point_key,
    trial_point,
    was_dropped,
)
from .artifacts import store_trial_artifacts
from .results import config_label
from .storage import (
    STALE_AFTER_S,
    Heartbeat,
    budget_lock,
    budget_used,
    drivers,
    is_stale,
    retried,
)
from .untried import UntriedFirst, steerable

MAX_REASKS = 20  # on a space too large to list: a sampler that keeps repeating gets its way


def driver_seed(seed: int | None, storage, study_id: int, driver: str) -> int | None:
    """The study's sampler seed for the first driver of a fresh study (a run is then
    reproducible); for any other driver (a second one, a resumed one) a seed of its own,
    derived from the study's seed, the driver and the trials so far, so that no two
    drivers replay one random stream."""
    if seed is None:
        return None
    n = len(storage.get_all_trials(study_id, deepcopy=False))
    if n == 0 and set(drivers(storage, study_id)) == {driver}:
        return seed
    digest = hashlib.sha256(f"{seed}:{driver}:{n}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class StudySearcher(OptunaSearch):
    def __init__(self, study: StudyConfig, space, storage, sampler=None, budget: int = 1,
                 stale_after: float = STALE_AFTER_S) -> None:
        """``sampler``: default the study's, seeded per driver (:func:`driver_seed`)."""
        metrics = [o.metric for o in study.objectives]
        modes = ["max" if d == "maximize" else "min" for d in study.directions]
        self._cfg, self._arch_space, self._budget = study, space, budget
        self._stale_after = stale_after
        self._curves: dict[str, list[float]] = {}
        self._nodes: dict[str, list[dict]] = {}  # per trial: the workers it ran on
        study_id = optuna.create_study(study_name=study.name, storage=storage, load_if_exists=True,
                                       directions=study.directions)._study_id
        self.heartbeat = Heartbeat(storage, study_id)  # registers this driver
        if sampler is None:
            sampler = study.sampler.build(driver_seed(study.sampler.seed, storage, study_id,
                                                      self.heartbeat.driver))
        self._steered = steerable(space)  # proposals are untried points: nothing to discard
        if self._steered:
            sampler = UntriedFirst(sampler, space, study.sampler.seed)
        super().__init__(space=self._define, metric=metrics if len(metrics) > 1 else metrics[0],
                         mode=modes if len(modes) > 1 else modes[0], sampler=sampler,
                         study_name=study.name, storage=storage)

    def _define(self, trial) -> None:
        self._arch_space.define_by_run(trial)

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def _budget_reached(self) -> bool:
        trials = self._ot_study.get_trials(deepcopy=False)
        registered = drivers(self._ot_study._storage, self._ot_study._study_id)
        return budget_used(trials, self._stale_after, registered) >= self._budget

    def suggest(self, trial_id: str):
        """A new trial, counted and asked under the study's :func:`budget_lock`, so that
        drivers together never run more than the budget."""
        if trial_id in self._ot_trials:
            return self._ask(trial_id)
        with budget_lock(self._ot_study._storage, self._ot_study._study_id):
            if self._budget_reached():
                return Searcher.FINISHED
            return self._ask(trial_id)

    def _ask(self, trial_id: str) -> dict:
        for attempt in range(MAX_REASKS + 1):
            params = super().suggest(trial_id)
            ot = self._ot_trials[trial_id]
            queued = ot.user_attrs.get("repeat") is not None  # a repeat, retry or grid point
            twin = None if queued or self._steered or attempt == MAX_REASKS else self._twin(ot)
            if twin is None:
                break
            # a space too large to list: a proposal of a point the study has is discarded
            # (a FAIL record with duplicate_of, counted nowhere) and the sampler asked again
            ot.set_user_attr(DUPLICATE_OF, twin)
            self._ot_study.tell(ot, state=TrialState.FAIL)
            del self._ot_trials[trial_id]
        self.heartbeat.claim(ot._trial_id)
        repeat = ot.user_attrs.get("repeat")
        if repeat is None:  # a freshly sampled point: queue its other repeats
            repeat = 0
            ot.set_user_attr("repeat", 0)
            for r in range(1, self._cfg.repeats):
                self._ot_study.enqueue_trial(ot.params, user_attrs={"repeat": r})
        self._curves[trial_id] = []
        return {"params": dict(params), "repeat": int(repeat), "optuna_trial": ot.number}

    def _twin(self, ot) -> int | None:
        """The number of another trial of the study at the same point (repeat 0) that is
        queued, running or finished; None if there is none, or if the study already holds
        every point of a finite space (then a point is trained again)."""
        point, seen, twin = trial_key(ot.params), set(), None
        for t in self._ot_study.get_trials(deepcopy=False):
            a = t.user_attrs
            if t.number == ot.number or a.get(INTERRUPTED) or DUPLICATE_OF in a:
                continue
            if a.get("repeat", 0) != 0:
                continue
            key = trial_key(trial_point(t))
            seen.add(key)
            if key == point and twin is None:
                twin = t.number
        size = getattr(self._arch_space, "size", None)  # a property: None when infinite
        return None if size is not None and len(seen) >= size else twin

    def set_attrs(self, number: int, attrs: dict) -> None:
        """User attributes of the study's trial ``number`` (a scheduler's decision)."""
        storage = self._ot_study._storage
        tid = storage.get_trial_id_from_study_id_trial_number(self._ot_study._study_id, number)
        for k, v in attrs.items():
            storage.set_trial_user_attr(tid, k, v)

    def _note_worker(self, trial_id: str, ot, result: dict) -> None:
        """``nodes``: where the trial ran (node id, ip, host, pid), one entry per worker;
        several when Ray restarted it after its worker or node died."""
        if "node_id" not in result:
            return
        here = {"id": result["node_id"], "ip": result.get("node_ip"), "host": result.get("node_host"),
                "pid": result.get("worker_pid")}
        nodes = self._nodes.setdefault(trial_id, [])
        if not nodes or nodes[-1] != here:
            nodes.append(here)
            ot.set_user_attr("nodes", nodes)

    def restarted(self, trial_id: str) -> None:
        """Ray restarts the trial (its worker or node died, ``worker_retries``): one Optuna
        trial still, its curve starts over, counted in ``restarts``."""
        ot = self._ot_trials.get(trial_id)
        if ot is None or trial_id in self._completed_trials:
            return
        self._curves[trial_id] = []
        restarts = int(self._ot_study._storage.get_trial_user_attrs(ot._trial_id).get("restarts", 0)) + 1
        ot.set_user_attr("restarts", restarts)

    def _record(self, trial_id: str, result: dict) -> None:
        """Add an epoch's value to the trial's curve (Ray may deliver the last result to
        on_trial_result, on_trial_complete, or both)."""
        ot = self._ot_trials[trial_id]
        self._note_worker(trial_id, ot, result)
        epoch, curve = int(result["epoch"]), self._curves.setdefault(trial_id, [])
        if "error" in result or epoch <= len(curve):
            return
        value = METRIC_KINDS[self._cfg.objectives[0].metric].value(result)
        curve.append(value)
        if not self._cfg.multi_objective and math.isfinite(value):  # NaN: measured at the end
            ot.report(value, epoch)
        if "val_correct" in result:  # per-image correctness: for paired tests between trials
            self._ot_study._storage.set_trial_system_attr(ot._trial_id, f"{CORRECT_KEY}{epoch}",
                                                          result["val_correct"])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and trial_id not in self._completed_trials:
            self._record(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        ot = self._ot_trials.get(trial_id)
        if ot is None or trial_id in self._completed_trials:
            return
        self._completed_trials.add(trial_id)
        result = result or {}
        self.heartbeat.release(ot._trial_id)
        if "epoch" in result:
            self._record(trial_id, result)
        curve = self._curves.pop(trial_id, [])
        self._nodes.pop(trial_id, None)
        attrs = {"curve": curve, "epochs": max(int(result.get("epoch", 0)), len(curve))}
        if "arch_json" in result:
            attrs["arch"] = json.loads(result["arch_json"])
        measured = () if "error" in result else ("val_acc", *TRIAL_METRICS)  # not the worst values
        for key in ("params", "wall_seconds", "T", "threads", "train_acc", "val_loss", *measured):
            if key in result and not (isinstance(result[key], float) and math.isnan(result[key])):
                attrs[key] = result[key]
        if "layer_rates_json" in result:
            attrs["layer_rates"] = json.loads(result["layer_rates_json"])
        for k, v in attrs.items():
            ot.set_user_attr(k, v)
        self._store_artifacts(ot, attrs)
        if error or "error" in result:
            ot.set_user_attr("error", result.get("error") or (
                "its worker process died (killed by the system, e.g. out of memory, or its "
                f"node was lost) after {attrs['epochs']} epoch(s); see the Ray logs"))
            self._ot_study.tell(ot, state=TrialState.FAIL)
        elif attrs["epochs"] < self._cfg.fidelity.max_epochs:
            self._ot_study.tell(ot, state=TrialState.PRUNED)
        else:
            values = [METRIC_KINDS[o.metric].value(result) for o in self._cfg.objectives]
            self._ot_study.tell(ot, values if len(values) > 1 else values[0])


    def _store_artifacts(self, ot, attrs: dict) -> None:
        """The trial's learning curve, firing rates and architecture, for the dashboard."""
        order = [p.name for p in getattr(self._arch_space, "parameters", [])]
        store_trial_artifacts(self._cfg, ot, attrs, f"{self._cfg.name} trial {ot.number}: "
                                                    f"{config_label(ot.params, order)}")


def recover_interrupted(study: optuna.Study, stale_after: float = STALE_AFTER_S) -> int:
    """Trials left RUNNING by a driver that died: mark them FAIL (``interrupted``) and
    queue their points again, so that none is lost and none counts twice. One that its
    scheduler had already dropped (:func:`~nas.trial_record.was_dropped`: the driver died
    between the decision and telling Optuna) becomes PRUNED, as it would have: a race's
    dropped point stays dropped. Returns the number queued again."""
    n = 0
    registered = drivers(study._storage, study._study_id)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(t, stale_after, registered=registered):
            continue
        if was_dropped(t):
            study.tell(t.number, state=TrialState.PRUNED)
            continue
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        study._storage.set_trial_user_attr(t._trial_id, "error", "interrupted: its driver stopped")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"repeat": t.user_attrs.get("repeat", 0),
                                                      "attempt": t.user_attrs.get("attempt", 1)})
        n += 1
    return n


def retry_failed(study: optuna.Study, max_attempts: int) -> tuple[int, int]:
    """Queue again every failed trial that has had fewer than ``max_attempts`` attempts
    (the retry names it in ``retry_of``; the failed one then no longer counts toward the
    budget). Returns (queued again, given up): failed trials out of attempts."""
    trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    queued = given_up = 0
    for t in trials:
        a = t.user_attrs
        if t.state != TrialState.FAIL or a.get(INTERRUPTED) or DUPLICATE_OF in a or t.number in done:
            continue
        attempt = int(a.get("attempt", 1))
        if attempt >= max_attempts or not t.params:
            given_up += 1
            continue
        study.enqueue_trial(t.params, user_attrs={"repeat": a.get("repeat", 0), "attempt": attempt + 1,
                                                  "retry_of": t.number})
        queued += 1
    return queued, given_up


def trial_key(params: dict, repeat: int = 0) -> str:
    """One string per (point, repeat): trials with the same key train the same thing."""
    return json.dumps([point_key(params), repeat])


def enqueue_grid(study: optuna.Study, points: list[dict], repeats: int) -> int:
    """Queue every (grid point, repeat) that the study has neither run nor queued."""
    have = set()
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(INTERRUPTED):
            continue
        have.add(trial_key(trial_point(t), t.user_attrs.get("repeat", 0)))
    n = 0
    for r in range(repeats):
        for p in points:
            if trial_key(p, r) not in have:
                study.enqueue_trial(p, user_attrs={"repeat": r})
                n += 1
    return n
