"""A PostgreSQL primary with a streaming replica (``pg_basebackup -R``): the failover benchmark's and test's.

It lives in bench/ so both use this one launcher (the import contract keeps the benchmarks from
importing the tests; the tests may import bench). The binaries are found as the backup worker
finds them (`activities/pg_binaries.py`), whose error says what to install.

Each server keeps its port and socket directory in its own ``postgresql.conf`` (not on pg_ctl's
command line), so anything may stop and start it with plain ``pg_ctl -D`` — the failover's fencer
and rejoin do. ``wal_log_hints`` is on, which pg_rewind needs. As root the servers run as
nobody. Both are stopped (immediate) and their files removed on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from activities.pg_binaries import SERVER_USER, as_server_user, find_bin_dir
from zerotouch.ports import free_port

OS_USER = SERVER_USER


def _run(command: list[str], timeout: float = 120) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


@dataclass
class PgServer:
    name: str
    data: Path
    port: int
    sockets: Path
    bin_dir: Path

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=5"

    def ctl(self, *args: str) -> None:
        _run([*as_server_user(OS_USER), str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args])

    def start(self) -> None:
        self.ctl("-l", str(self.data.parent / f"{self.name}.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        done = subprocess.run([*as_server_user(OS_USER), str(self.bin_dir / "pg_ctl"), "status", "-D",
                               str(self.data)], capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def value(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            row = connection.execute(statement.encode(), params).fetchone()
        return None if row is None else row[0]

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(statement.encode(), params)

    def log(self) -> str:
        path = self.data.parent / f"{self.name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass
class PgPair:
    primary: PgServer
    replica: PgServer
    workdir: Path

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """Until the primary has a streaming standby that replayed everything written so far."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.primary.value(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication "
                    "WHERE state = 'streaming'")
            except psycopg.Error as error:
                last = error
            if last is not None and not isinstance(last, Exception) and int(last) <= 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the replica did not catch up in {timeout}s (last: {last!r})\n{self.replica.log()}")


def _server(name: str, workdir: Path, bin_dir: Path) -> PgServer:
    sockets = workdir / f"{name}-sock"
    sockets.mkdir()
    if as_server_user(OS_USER):
        shutil.chown(sockets, OS_USER)
    return PgServer(name=name, data=workdir / name, port=free_port(), sockets=sockets, bin_dir=bin_dir)


def _own_settings(server: PgServer) -> None:
    with (server.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\n# {server.name}'s own\nport = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                   f"unix_socket_directories = '{server.sockets}'\n")


@contextlib.contextmanager
def pg_pair() -> Iterator[PgPair]:
    """A primary and its streaming replica; both stopped and removed on exit."""
    bin_dir = find_bin_dir()
    prefix = as_server_user(OS_USER)
    workdir = Path(tempfile.mkdtemp(prefix="zt-pair-"))
    if prefix:
        shutil.chown(workdir, OS_USER)
    primary, replica = _server("primary", workdir, bin_dir), _server("replica", workdir, bin_dir)
    try:
        _run([*prefix, str(bin_dir / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--no-sync", "--wal-segsize=1"])
        with (primary.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("wal_level = replica\nwal_log_hints = on\nmax_wal_senders = 5\nhot_standby = on\n"
                       "fsync = off\nmax_connections = 30\nwal_keep_size = '64MB'\nshared_buffers = '16MB'\n")
        _own_settings(primary)
        primary.start()
        _run([*prefix, str(bin_dir / "pg_basebackup"), "-D", str(replica.data), "-h", "127.0.0.1", "-p",
              str(primary.port), "-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
        _own_settings(replica)
        replica.start()
        pair = PgPair(primary=primary, replica=replica, workdir=workdir)
        pair.wait_streaming()
        yield pair
    finally:
        for server in (replica, primary):
            if (server.data / "postmaster.pid").exists():
                subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w",
                                "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
