"""A private PostgreSQL server on 127.0.0.1 for tests (Debian's server binaries).

Started in a temporary folder as the ``postgres`` system user when run as root;
``pytest.skip`` with the reason when the binaries or that user are missing.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(durable: bool = False):
    """Start a server in a fresh folder under /tmp; returns ``(url, stop)``. Not
    ``durable``: no fsync (tests: a commit costs no disk flush; a benchmark wants durable)."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: "
                    "apt-get install postgresql")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 not installed (pip install -e '.[test]')")
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server")
        run_as = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="nas-pg-"))  # /tmp itself: the server user can reach it
    data = home / "data"
    if run_as:
        shutil.chown(home, "postgres")
    port = _free_port()
    subprocess.run(run_as + [initdb, "-D", str(data), "-U", "nas", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [pg_ctl, "-D", str(data), "-l", str(home / "log"), "-w", "-o",
                             f"-h 127.0.0.1 -p {port} -k {home}" + ("" if durable else " -F"), "start"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(run_as + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)

    return f"postgresql+psycopg2://nas@127.0.0.1:{port}/postgres", stop
