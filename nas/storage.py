"""Optuna storages from URLs, and what a study has finished.

* ``sqlite:///path.db`` (the default; one driver at a time),
* any SQLAlchemy URL, e.g. ``postgresql+psycopg2://user@host/db`` (many drivers and hosts),
* ``journal:///path.log`` (Optuna's journal file: several drivers on one file system).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState


def make_storage(url: str) -> optuna.storages.BaseStorage:
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    kwargs = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (IntegrityError, ProgrammingError, OperationalError):
            # two drivers creating the schema of a fresh database at the same moment
            if attempt == 4:
                raise
            time.sleep(1.0 + attempt)


# ---- who runs a trial: written when it starts, refreshed on every result --------------

def driver_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _driver_alive(driver: str) -> bool | None:
    """True/False for a driver on this host; None (unknown) for another host."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def is_stale(t: FrozenTrial, stale_after: float, now: float | None = None) -> bool:
    """A RUNNING trial whose driver died (same host) or went silent (any host)."""
    if t.state != TrialState.RUNNING:
        return False
    now = now or time.time()
    started = t.datetime_start.timestamp() if t.datetime_start else 0.0
    driver = t.system_attrs.get("nas:driver")
    if driver is None:  # its driver died between asking and claiming it
        return now - started > 60.0
    if _driver_alive(driver) is False:
        return True
    return now - t.system_attrs.get("nas:heartbeat", started) > stale_after


def counts_toward_budget(t: FrozenTrial, stale_after: float) -> bool:
    """Finished trials, and running trials of live drivers; not interrupted ones."""
    if t.user_attrs.get("interrupted"):
        return False
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return True
    return t.state == TrialState.RUNNING and not is_stale(t, stale_after)
