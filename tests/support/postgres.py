"""A throwaway PostgreSQL server for tests, shared by any test package that needs one.

PostgreSQL refuses to run as root, so as root (CI containers) the server runs as
`nobody` through runuser. The server is stopped and its files removed even when
the test body fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import free_port

PG_BIN = next((d for d in ("/usr/local/bin", "/usr/lib/postgresql/15/bin") if os.path.exists(f"{d}/initdb")), "")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing; tests should skip, not fail."""


@dataclass
class Postgres:
    port: int

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database (its name), so tests sharing the server stay independent."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_unprivileged() -> list[str]:
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a PostgreSQL server on a free port; stop it (immediate mode) on exit."""
    if not PG_BIN:
        raise PostgresUnavailable("PostgreSQL binaries are not installed")
    prefix = _as_unprivileged()
    workdir = Path(tempfile.mkdtemp(prefix="zt-pg-"))
    if prefix:
        shutil.chown(workdir, "nobody")
    data, log = workdir / "data", workdir / "server.log"
    started = False
    try:
        _run([*prefix, f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-sync"])
        port = free_port()
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        started = True  # from here on, stop it even if start fails half-way
        _run([*prefix, f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
              "start"])
        yield Postgres(port=port)
    finally:
        if started:
            subprocess.run([*prefix, f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
