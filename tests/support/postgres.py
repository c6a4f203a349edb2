"""A throwaway PostgreSQL server for tests, shared by every test package that needs one.

The binaries are found the way `.ci/run` checks for them: `initdb` on PATH first, else the
newest `/usr/lib/postgresql/<N>/bin` (Debian's layout, any version). PostgreSQL refuses to
run as root, so as root (CI containers) the server runs as `nobody` through runuser. The
server is stopped and its files removed even when the test body fails.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from activities.pg_binaries import DEBIAN_ROOT, PostgresBinariesMissing, as_server_user, find_bin_dir
from zerotouch.ports import free_port

INSTALL_HINT = ("install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install postgresql; .ci/run does this) "
                "or put the directory holding initdb and pg_ctl on PATH")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing; the message says what to install."""


def postgres_bin() -> Path:
    """The directory with `initdb` and `pg_ctl`: PATH first, else the newest Debian install
    (the same lookup the backup worker makes, `activities/pg_binaries.py`)."""
    try:
        return find_bin_dir()
    except PostgresBinariesMissing:
        raise PostgresUnavailable(f"PostgreSQL is not installed (no initdb on PATH or in {DEBIAN_ROOT}/*/bin): "
                                  f"{INSTALL_HINT}") from None


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
    return as_server_user()


def _conf_line(name: str, value: str) -> str:
    quoted = value.replace("'", "''")
    return f"{name} = '{quoted}'\n"


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextlib.contextmanager
def running_postgres(max_connections: int = 60, *, settings: Mapping[str, str] | None = None,
                     initdb_args: Sequence[str] = (), hba: Sequence[str] = ()) -> Iterator[Postgres]:
    """Start a PostgreSQL server on a free port; stop it (immediate mode) on exit.

    ``settings`` are appended to postgresql.conf (values quoted there, so paths need no shell
    escaping); ``initdb_args`` are extra initdb options (e.g. ``--wal-segsize=1``); ``hba`` lines
    go before initdb's ``trust`` entries in pg_hba.conf (e.g. to make some logins need a password).
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
        _run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
              *initdb_args])
        if settings:
            with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.writelines(_conf_line(name, value) for name, value in settings.items())
        if hba:
            # the first matching line wins; rewritten in place so the file keeps the server user as owner
            hba_conf = data / "pg_hba.conf"
            hba_conf.write_text("".join(f"{line}\n" for line in hba) + hba_conf.read_text())
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
