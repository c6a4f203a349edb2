"""A throwaway PostgreSQL server for tests, shared by every test package that needs one.

The binaries are found the way `.ci/run` checks for them: `initdb` on PATH first, else the
newest `/usr/lib/postgresql/<N>/bin` (Debian's layout, any version). PostgreSQL refuses to
run as root, so as root (CI containers) the server runs as `nobody` through runuser. The
server is stopped and its files removed even when the test body fails.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from zerotouch.ports import free_port

DEBIAN_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = ("install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install postgresql; .ci/run does this) "
                "or put the directory holding initdb and pg_ctl on PATH")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing; the message says what to install."""


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version_key(directory: Path) -> tuple[int, ...]:
    """`/usr/lib/postgresql/15/bin` → (15,); `9.6` → (9, 6); anything else sorts first."""
    try:
        return tuple(int(part) for part in directory.parent.name.split("."))
    except ValueError:
        return ()


@functools.cache
def postgres_bin() -> Path:
    """The directory with `initdb` and `pg_ctl`: PATH first, else the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path:
        # Debian's /usr/local/bin-style symlinks: the real directory also has pg_ctl and postgres.
        for directory in (Path(on_path).parent, Path(on_path).resolve().parent):
            if _has_server_binaries(directory):
                return directory
    installed = sorted((d for d in DEBIAN_ROOT.glob("*/bin") if _has_server_binaries(d)), key=_version_key)
    if installed:
        return installed[-1]
    raise PostgresUnavailable(f"PostgreSQL is not installed (no initdb on PATH or in {DEBIAN_ROOT}/*/bin): "
                              f"{INSTALL_HINT}")


@dataclass
class Postgres:
    port: int

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    @property
    def admin_dsn(self) -> str:
        """The superuser on the `postgres` database."""
        return self.dsn()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database (its name), so tests sharing the server stay independent."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_unprivileged() -> list[str]:
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextlib.contextmanager
def running_postgres(max_connections: int = 60) -> Iterator[Postgres]:
    """Start a PostgreSQL server on a free port; stop it (immediate mode) on exit.

    Raises PostgresUnavailable before starting anything if the binaries are missing.
    """
    binaries = postgres_bin()
    initdb, pg_ctl = str(binaries / "initdb"), str(binaries / "pg_ctl")
    prefix = _as_unprivileged()
    workdir = Path(tempfile.mkdtemp(prefix="zt-pg-"))
    if prefix:
        shutil.chown(workdir, "nobody")
    data, log = workdir / "data", workdir / "server.log"
    started = False
    try:
        _run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        port = free_port()
        options = (f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections={max_connections}")
        started = True  # from here on, stop it even if start fails half-way
        _run([*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"])
        yield Postgres(port=port)
    finally:
        if started:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
