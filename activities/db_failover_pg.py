"""What the failover steps share: short connections, PostgreSQL's programs run as the server's user, WAL positions.

Programs run without a shell (argument lists), as the server's OS user when the worker is root
(PostgreSQL refuses root, and files they write must stay the server's). A password in a
connection reference travels in the child's environment (PGPASSWORD), never in its argv.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from activities.backup_engine import ToolFailed, run_tool
from activities.pg_binaries import as_server_user
from zerotouch.recovery_databases import DatabaseServer

CONNECT_TIMEOUT = 3
_LSN = re.compile(r"\b([0-9A-F]{1,8}/[0-9A-F]{1,8})\b")


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Postgres:
    """One server of the pair as the worker reaches it: its DSN, its programs, its OS user."""

    def __init__(self, server: DatabaseServer, *, dsn_for: Callable[[str], str], bin_dir: Callable[[], Path]) -> None:
        self.server, self._dsn_for, self._bin_dir = server, dsn_for, bin_dir

    @property
    def dsn(self) -> str:
        return self._dsn_for(self.server.connection)

    def connect(self, timeout: int = CONNECT_TIMEOUT) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=timeout,
                               application_name="zerotouch-failover")

    def value(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row of one statement on a fresh connection."""
        with self.connect() as connection:
            row = connection.execute(statement.encode(), params).fetchone()  # statements here are constants
        return None if row is None else row[0]

    def tool(self, name: str, *args: str, timeout: float = 120, check: bool = True,
             env: dict[str, str] | None = None) -> str:
        return run_tool([*as_server_user(self.server.os_user), str(self._bin_dir() / name), *args],
                        timeout=timeout, check=check, env=env)

    def data(self) -> Path:
        if not self.server.data_directory:
            raise ValueError(f"{self.server.describe()} has no data_directory in the policy: set it (the local "
                             "fencer, the lag measure and the rejoin work on it)")
        return Path(self.server.data_directory)

    def running(self) -> bool:
        """pg_ctl status: 0 running, 3 not running, 4 no usable data directory."""
        try:
            self.tool("pg_ctl", "status", "-D", str(self.data()), timeout=30)
        except ToolFailed as failed:
            if failed.returncode in (3, 4):
                return False
            raise
        return True

    def refuses_connections(self) -> bool:
        """True only for a refused TCP connection: a timeout may be a partition, not a stopped server."""
        try:
            with socket.create_connection((self.server.host, self.server.port), timeout=CONNECT_TIMEOUT):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    def conninfo_and_env(self) -> tuple[str, dict[str, str]]:
        """The DSN without its password, and the environment that carries the password."""
        parts = conninfo_to_dict(self.dsn)
        password = parts.pop("password", None)
        return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None}), \
            ({"PGPASSWORD": str(password)} if password else {})

    def end_of_wal(self) -> tuple[str | None, str]:
        """Where the stopped server's own WAL ends (pg_waldump from the last checkpoint's REDO), and how it was found.

        None when it cannot be read: the caller must treat that as an unknown lag.
        """
        data = self.data()
        control = self.tool("pg_controldata", "-D", str(data), timeout=30)
        state = _field(control, "Database cluster state")
        redo = _field(control, "Latest checkpoint's REDO location")
        if not redo:
            return None, f"pg_controldata shows no REDO location (state {state or '?'})"
        # pg_waldump reads on until the first invalid record, which is where the WAL ends; it then
        # reports "... invalid record length at X/Y" (or "could not find a valid record after X/Y").
        output = self.tool("pg_waldump", "--quiet", "--path", str(data / "pg_wal"), "--start", redo,
                           timeout=120, check=False)
        found = _LSN.findall(output.splitlines()[-1] if output.strip() else "")
        if not found:
            return None, f"pg_waldump did not say where the WAL ends: {output.strip()[-300:]}"
        return found[-1], f"cluster state {state}; WAL read from REDO {redo} to {found[-1]}"


def _field(control: str, name: str) -> str:
    for line in control.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""
