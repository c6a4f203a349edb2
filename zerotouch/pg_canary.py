"""The RPO canary: a row written every second into a PostgreSQL table, so a restore can tell how
much it lost (the newest row present vs the moment recovery aimed at).

`CanaryWriter` runs in a thread of whatever owns the database (`zerotouch up`'s demo database,
tests). It creates ``<table>(written_at timestamptz primary key default now())`` if missing,
inserts one row per interval, deletes rows older than a day, and rides out a lost connection
by reconnecting on the next tick.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

CONNECT_TIMEOUT = 5
PRUNE_EVERY = 60  # inserts between deletions of old rows


class CanaryWriter:
    """Writes one canary row per ``interval`` seconds until `stop`."""

    def __init__(self, dsn: str, table: str = "zt_canary", *, interval: float = 1.0,
                 keep: timedelta = timedelta(days=1)) -> None:
        self._dsn, self._interval, self._keep = dsn, interval, keep
        self._table = sql.Identifier(*table.split("."))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.last_error = ""

    def start(self) -> CanaryWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-canary", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> CanaryWriter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if connection is None or connection.closed:
                        connection = self._connect()
                    self._write(connection)
                except psycopg.Error as error:
                    # The database restarting or unreachable: try again on the next tick.
                    self.last_error = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                    if connection is not None:
                        connection.close()
                    connection = None
                self._stopping.wait(self._interval)
        finally:
            if connection is not None:
                connection.close()

    def _connect(self) -> psycopg.Connection[Any]:
        connection = psycopg.connect(self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                     application_name="zerotouch-canary")
        connection.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (written_at timestamptz PRIMARY KEY DEFAULT now())").format(self._table))
        return connection

    def _write(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES ON CONFLICT DO NOTHING").format(self._table))
        self.written += 1
        if self.written % PRUNE_EVERY == 1:
            connection.execute(sql.SQL("DELETE FROM {} WHERE written_at < now() - %s").format(self._table),
                               (self._keep,))
