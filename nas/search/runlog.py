"""Ray's and Optuna's log lines and Python warnings go to the run's log file
(``<run folder>/run.log``), not the terminal: the terminal keeps the study's own lines."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

LOGGERS = ("ray", "optuna", "py.warnings")


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Path]:
    """Route :data:`LOGGERS` to ``path`` (appended) while the block runs, then restore them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in map(logging.getLogger, LOGGERS)]
    for lg, _, _ in saved:
        lg.handlers, lg.propagate = [handler], False
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        for lg, handlers, propagate in saved:
            lg.handlers, lg.propagate = handlers, propagate
        handler.close()
