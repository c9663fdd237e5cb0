"""Optuna storages from URLs, and what a study has finished.

* ``sqlite:///path.db`` (the default; one driver at a time),
* any SQLAlchemy URL, e.g. ``postgresql+psycopg2://user@host/db`` (many drivers and hosts),
* ``journal:///path.log`` (Optuna's journal file: several drivers on one file system).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

import optuna

from blocks.config import one_line
from blocks.errors import NasError
from optuna.trial import FrozenTrial, TrialState

from ..study import StudyError
from ..trial_record import INTERRUPTED, is_proposal_only


class StorageError(NasError):
    """A storage that cannot be opened; ``str()`` is one line naming ``storage``."""


def file_path(url: str) -> Path | None:
    """The file of an SQLite or journal storage URL; None for a server."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme):
            rest = url.removeprefix(scheme)
            return None if rest in ("", ":memory:") else Path(rest)
    return None


OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})
ALLOWED_FILES = ("allowed: an Optuna storage written by nas.run, or a path that does not exist "
                 "yet (nas.run creates it)")


def check_storage_file(url: str) -> None:
    """Before Optuna opens a file storage (it would create its tables in any SQLite file and
    append to any journal): an existing file must be an Optuna SQLite storage, or a journal
    of whole records. Reads the file only; one :class:`StorageError` line if not."""
    path = file_path(url)
    if path is None or not os.path.lexists(path):
        return
    if not path.is_file():
        raise StorageError(f"storage: {url}: {path} is not a regular file; {ALLOWED_FILES}")
    if url.startswith("sqlite:///"):
        _check_sqlite(url, path)
    else:
        _check_journal(url, path)


def _check_sqlite(url: str, path: Path) -> None:
    import sqlite3
    from urllib.parse import quote

    if path.stat().st_size == 0:
        raise StorageError(f"storage: {url}: the file is empty, not an Optuna storage; {ALLOWED_FILES}")
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as err:
        raise StorageError(f"storage: {url}: not an SQLite database ({one_line(err)}); "
                           f"{ALLOWED_FILES}") from None
    if not OPTUNA_TABLES <= tables:
        held = ", ".join(sorted(tables)[:6]) or "none"
        raise StorageError(f"storage: {url}: an SQLite database without Optuna's tables (it has: "
                           f"{held}), so another application's file; {ALLOWED_FILES}")


def _check_journal(url: str, path: Path) -> None:
    import json

    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                raise StorageError(f"storage: {url}: the journal ends mid-record at byte {offset} "
                                   "(a write was cut off); allowed: a journal of whole records "
                                   "(remove the partial last line, or start another file)")
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "op_code" not in record:
                raise StorageError(f"storage: {url}: line {number} (byte {offset}) is not a record "
                                   f"of Optuna's journal; {ALLOWED_FILES}")
            offset += len(line)


def make_storage(url: str, create_folder: bool = False, attempts: int = 3) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``. A file storage's folder must exist unless
    ``create_folder`` (the study's own run folder), and an existing file must be an Optuna
    storage (:func:`check_storage_file`); a server is tried ``attempts`` times, a few
    seconds each. Every failure is one :class:`StorageError` line."""
    path = file_path(url)
    if path is None:
        return _open_storage(url, attempts)
    if create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        check_storage_file(url)
        raise StorageError(f"storage: {url}: the folder {path.parent} does not exist "
                           "(create it, or fix the path)")
    lock = Path(f"{path}.budget-lock")  # the study's lock file (budget_lock), made by nas.run
    if path.exists() and not lock.exists():  # a file no driver of ours made: check, then open
        check_storage_file(url)
        return _open_storage(url, attempts)
    import fcntl

    with open(lock, "a") as f:  # drivers creating one file at once: one after the other, so
        fcntl.flock(f, fcntl.LOCK_EX)  # none sees another's half-made schema
        try:
            check_storage_file(url)
            return _open_storage(url, attempts)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _open_storage(url: str, attempts: int) -> optuna.storages.BaseStorage:
    path = file_path(url)
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as err:
            raise StorageError(f"storage: {url}: {err}") from None
    from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, ProgrammingError

    kwargs: dict = {}
    if url.startswith("sqlite:///"):
        kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        kwargs = {"connect_args": {"connect_timeout": 5}}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (IntegrityError, ProgrammingError, OperationalError) as err:
            # unreachable (yet), or two drivers creating the schema of a fresh database
            if attempt == attempts - 1:
                reason = one_line(getattr(err, "orig", None) or err)
                raise StorageError(f"storage: cannot open {_safe(url)} after {attempts} attempts: "
                                   f"{reason}") from None
            time.sleep(1.0 + attempt)
        except (NoSuchModuleError, ArgumentError, ImportError, ModuleNotFoundError) as err:
            raise StorageError(
                f"storage: {_safe(url)}: {one_line(err)}; allowed: sqlite:///PATH.db, "
                "journal:///PATH.log, postgresql+psycopg2://USER@HOST/DB (pip install -e "
                "'.[postgres]'), or another SQLAlchemy URL whose driver is installed") from None
        except ValueError as err:  # optuna's own checks of the URL
            raise StorageError(f"storage: {_safe(url)}: {one_line(err)}") from None
    raise AssertionError("unreachable")


def _safe(url: str) -> str:
    """``url`` without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':')[0]}@{tail}"


# ---- who runs a trial --------------------------------------------------------------
# Every driver registers itself in the study (``nas:driver:<host:pid>`` = last beat) and,
# from a thread, beats every HEARTBEAT_S for itself and for each trial it runs. A trial is
# its driver's from the moment the driver claims it (``nas:driver``). A trial is dead when
# its driver's process is gone (same host) or after MISSED_BEATS silent beats (any host).

HEARTBEAT_S = 10.0
MISSED_BEATS = 3
STALE_AFTER_S = HEARTBEAT_S * MISSED_BEATS
_DRIVER_KEY = "nas:driver:"


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


def drivers(storage: optuna.storages.BaseStorage, study_id: int) -> dict[str, float]:
    """Registered drivers of a study and their last beat."""
    attrs = storage.get_study_system_attrs(study_id)
    return {k.removeprefix(_DRIVER_KEY): v for k, v in attrs.items() if k.startswith(_DRIVER_KEY)}


def live_drivers(storage: optuna.storages.BaseStorage, study_id: int,
                 stale_after: float = STALE_AFTER_S) -> list[str]:
    """The registered drivers of a study that still run (``host:pid``)."""
    now = time.time()
    return [d for d, beat in drivers(storage, study_id).items() if _lives(d, beat, now, stale_after)]


def _lives(driver: str, beat: float, now: float, stale_after: float) -> bool:
    alive = _driver_alive(driver)
    return alive if alive is not None else now - beat <= stale_after


def is_stale(t: FrozenTrial, stale_after: float = STALE_AFTER_S, now: float | None = None,
             registered: dict[str, float] | None = None) -> bool:
    """A RUNNING trial whose driver died (same host) or went silent (any host). A trial
    asked but not yet claimed belongs to no driver: it is stale once no registered driver
    (``registered``: :func:`drivers`) lives, or, without that list, after 60 s."""
    if t.state != TrialState.RUNNING:
        return False
    now = now or time.time()
    started = t.datetime_start.timestamp() if t.datetime_start else 0.0
    driver = t.system_attrs.get("nas:driver")
    if driver is None:
        if registered is None:
            return now - started > 60.0
        return not any(_lives(d, beat, now, stale_after) for d, beat in registered.items())
    if _driver_alive(driver) is False:
        return True
    return now - t.system_attrs.get("nas:heartbeat", started) > stale_after


def counts_toward_budget(t: FrozenTrial, stale_after: float = STALE_AFTER_S,
                         registered: dict[str, float] | None = None) -> bool:
    """Finished trials, and running trials of live drivers; not interrupted ones (their
    points were queued again), nor proposals of a point the study had (never trained)."""
    if t.user_attrs.get(INTERRUPTED) or is_proposal_only(t):
        return False
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return True
    return t.state == TrialState.RUNNING and not is_stale(t, stale_after, registered=registered)


def retried(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the failed trials queued again (each retry names its ``retry_of``)."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def budget_used(trials: list[FrozenTrial], stale_after: float = STALE_AFTER_S,
                registered: dict[str, float] | None = None) -> int:
    """Trials that count toward the study's budget: a failed trial that was retried
    counts through its retry only."""
    again = retried(trials)
    return sum(t.number not in again and counts_toward_budget(t, stale_after, registered)
               for t in trials)


# ---- one claim at a time ----------------------------------------------------------
# Counting the budget and asking for a trial are two steps; with several drivers a count
# taken by one can be stale by the time it asks, so both happen under a lock on the study
# that every driver of that storage honours: a transaction-scoped advisory lock on
# PostgreSQL (released by the server if the driver dies), an flock on a file beside an
# SQLite or journal file (one host), a lock of this process otherwise.

_LOCAL_LOCKS: dict[tuple[object, int], threading.Lock] = {}


def _lock_file(storage: optuna.storages.BaseStorage) -> Path | None:
    if isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "sqlite":
        db = storage.engine.url.database
        return Path(db + ".budget-lock") if db and db != ":memory:" else None
    backend = getattr(storage, "_backend", None)  # JournalStorage(JournalFileBackend)
    path = getattr(backend, "_file_path", None)
    return Path(path + ".budget-lock") if isinstance(path, str) else None


@contextmanager
def budget_lock(storage: optuna.storages.BaseStorage, study_id: int) -> Iterator[None]:
    """Held by one driver of the study at a time, across processes and hosts (see above)."""
    from optuna.storages._cached_storage import _CachedStorage  # what a Study wraps RDB in

    if isinstance(storage, _CachedStorage):
        storage = storage._backend
    if isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with storage.engine.begin() as conn:  # unlocked when this transaction ends
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": (0x6E6173 << 32) + study_id})
            yield
        return
    path = _lock_file(storage)
    if path is None:
        lock = _LOCAL_LOCKS.setdefault((getattr(storage, "url", id(storage)), study_id), threading.Lock())
        with lock:
            yield
        return
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Heartbeat:
    """This driver's beat, and its running trials', from a daemon thread."""

    def __init__(self, storage: optuna.storages.BaseStorage, study_id: int,
                 interval: float = HEARTBEAT_S) -> None:
        self.storage, self.study_id, self.interval = storage, study_id, interval
        self.driver = driver_id()
        self.trials: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="nas-heartbeat", daemon=True)
        self._thread.start()

    def claim(self, trial_id: int) -> None:
        self.storage.set_trial_system_attr(trial_id, "nas:driver", self.driver)
        self.storage.set_trial_system_attr(trial_id, "nas:heartbeat", time.time())
        with self._lock:
            self.trials.add(trial_id)

    def release(self, trial_id: int) -> None:
        with self._lock:
            self.trials.discard(trial_id)

    def beat(self) -> None:
        now = time.time()
        self.storage.set_study_system_attr(self.study_id, _DRIVER_KEY + self.driver, now)
        with self._lock:
            running = list(self.trials)
        for tid in running:
            try:
                self.storage.set_trial_system_attr(tid, "nas:heartbeat", now)
            except Exception:  # noqa: BLE001 - finished meanwhile
                self.release(tid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a storage hiccup: beat again next time
                pass

    def stop(self) -> None:
        self._stop.set()

    def __getstate__(self) -> dict:  # Ray Tune pickles the searcher: a copy does not beat
        return {"storage": self.storage, "study_id": self.study_id, "interval": self.interval,
                "driver": self.driver}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.trials, self._lock, self._stop = set(), threading.Lock(), threading.Event()
        self._stop.set()


def open_study_storage(cfg, create: bool = True):
    """The Optuna storage of study config ``cfg`` (:class:`nas.study.StudyConfig`); the
    default one (in the run folder) is created when ``create``, else its absence is an
    error saying to run the study first."""
    path = file_path(cfg.storage_url)
    try:
        check_storage_file(cfg.storage_url)  # before Optuna touches it
        if not create and path is not None and not path.is_file():
            raise StudyError(f"{cfg.source}: no study {cfg.name!r} has run yet (no {path}); "
                             f"run it first: python -m nas.run {cfg.source}")
        return make_storage(cfg.storage_url, create_folder=cfg.storage is None)
    except StorageError as err:
        raise StudyError(f"{cfg.source}: {err}") from None
