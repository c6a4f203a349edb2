"""The demo's PostgreSQL: a `shop` database that `zerotouch up` backs up and proves by test restores.

It lives in ``<state>/demo-db/`` (initdb once; its data survives restarts) and archives its WAL
continuously into ``<state>/wal-archive`` with `basic_archive` (no shell command), closing the
current segment every ``archive_timeout`` (`zerotouch up`: 2 min; each closed segment is archived
whole, 1 MB, so this bounds the archive to about 720 MB a day), so a restore loses at most that. It
listens on 127.0.0.1 only, on a free port chosen at each start, with a generated password
(``<state>/demo-db/password``, 0600).
While it runs, a canary row is written every second (the measured RPO) and an order every few
seconds (so tables change between backups and "orders placed in the last day" holds).
PostgreSQL refuses to run as root; under root the server runs as `nobody` through runuser.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from activities.pg_binaries import SERVER_USER, as_server_user, find_bin_dir
from zerotouch.pg_canary import CanaryWriter
from zerotouch.ports import free_port

SUPERUSER = "postgres"
DATABASE = "shop"
CONF_FILE = "zerotouch-demo.conf"
START_ATTEMPTS = 3
_MAX_SOCKET_DIR = 100  # sun_path holds 107 bytes, minus "/.s.PGSQL.65535"
_HBA = """# zerotouch demo database: the socket (a directory only the server user and root enter) trusts;
# TCP on 127.0.0.1 needs the password, for SQL and for pg_basebackup's replication connection.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""
_SCHEMA = """
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    amount_cents integer NOT NULL CHECK (amount_cents > 0),
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_placed_at ON orders (placed_at);
INSERT INTO customers (name, email, created_at)
    SELECT 'Customer ' || g, 'customer' || g || '@shop.example', now() - g * interval '5 hours'
    FROM generate_series(1, 2000) AS g;
-- Ten days of orders, a few of them in the last day.
INSERT INTO orders (customer_id, amount_cents, placed_at)
    SELECT 1 + (g * 7919) % 2000, 500 + (g * 104729) % 20000, now() - g * interval '3 minutes'
    FROM generate_series(1, 5000) AS g;
"""
_ORDER = ("INSERT INTO orders (customer_id, amount_cents) "
          "SELECT id, (500 + random() * 20000)::int FROM customers ORDER BY random() LIMIT 1")


class DemoDatabaseUnavailable(RuntimeError):
    """The demo database cannot run here; the message says why and what to change."""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Every:
    """Runs one statement every ``interval`` seconds until `stop`; rides out a lost connection."""

    def __init__(self, dsn: str, statement: str, *, interval: float, name: str) -> None:
        self._dsn, self._statement, self._interval = dsn, statement, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.runs = 0

    def start(self) -> Every:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            # A connection per run: a restarting server costs one run, not the thread.
            with contextlib.suppress(psycopg.Error), psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=5, application_name="zerotouch-up-demo") as connection:
                connection.execute(self._statement)
                self.runs += 1


class DemoDatabase:
    """The demo's PostgreSQL server in ``<state>/demo-db/``; `start` it, read `dsn`, `stop` it."""

    def __init__(self, state_dir: Path, *, archive: Path | None = None, canary_table: str = "zerotouch_canary",
                 archive_timeout: int = 10, bin_dir: Path | None = None, user: str = SERVER_USER) -> None:
        self.state_dir = state_dir.resolve()
        self.root = self.state_dir / "demo-db"
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.archive = (archive or self.state_dir / "wal-archive").resolve()
        self.password_file = self.root / "password"
        self.canary_table, self.archive_timeout = canary_table, archive_timeout
        self._bin_dir, self.user = bin_dir, user
        self.port = 0
        self._socket_dir = self.root / "sock"
        self._writers: list[CanaryWriter | Every] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> DemoDatabase:
        """initdb once, start on a free port, seed `shop` once, start the writers. Raises
        PostgresBinariesMissing or DemoDatabaseUnavailable (nothing left running) when it cannot."""
        bin_dir = self.bin_dir  # fail before touching anything if PostgreSQL is not installed
        self._prepare_directories()
        self._stop_server()  # one a killed `up` left running would hold the data directory
        if not (self.data / "PG_VERSION").is_file():
            self._initdb(bin_dir)
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                self.port = free_port()
                self._configure()
                try:
                    self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                               "start"], timeout=90)
                    break
                except DemoDatabaseUnavailable:
                    # Another process may have taken the free port before the server bound it.
                    if attempt == START_ATTEMPTS or self.server_pid() is not None:
                        raise
            self._seed()
        except BaseException:
            self.stop()
            raise
        self._writers = [
            CanaryWriter(self.dsn(), self.canary_table).start(),
            Every(self.dsn(), _ORDER, interval=3.0, name="demo-shop-orders").start(),
            # archive_timeout alone was not enough: on PostgreSQL 15.18 here, every other restart
            # forced no switch for minutes, so the archive lagged until a segment filled (about an
            # hour of this traffic). pg_switch_wal() does nothing when nothing was written.
            Every(self.dsn("postgres"), "SELECT pg_switch_wal()", interval=self.archive_timeout,
                  name="demo-wal-switch").start(),
        ]
        return self

    def stop(self) -> None:
        """Stop the writers, then the server (fast, then immediate); no server left is fine."""
        for writer in self._writers:
            writer.stop()
        self._writers, self.port = [], 0
        self._stop_server()
        if self._socket_dir.name.startswith("zt-demo-pgs-"):
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __enter__(self) -> DemoDatabase:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what clients need -------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    def dsn(self, database: str = DATABASE) -> str:
        """TCP on 127.0.0.1 with the password: what the backup worker and the writers use (also for a
        server another process started: its port is in postmaster.pid)."""
        port = self.port or self._running_port()
        return make_conninfo(host="127.0.0.1", port=port, user=SUPERUSER, password=self._password(), dbname=database)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def server_pid(self) -> int | None:
        """The postmaster's PID while a server of this data directory runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
            comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except (OSError, ValueError):
            return None
        # A stale pid file whose number now belongs to another process must never be signalled.
        return pid if comm.startswith(("postgres", "postmaster")) and cwd == self.data else None

    def _running_port(self) -> int:
        if self.server_pid() is None:
            raise DemoDatabaseUnavailable(f"the demo database in {self.data} is not running")
        # postmaster.pid: PID, data directory, start time, port, ... (one per line).
        return int((self.data / "postmaster.pid").read_text(encoding="utf-8").splitlines()[3])

    # --- steps -------------------------------------------------------------------------------

    @property
    def _as_user(self) -> list[str]:
        return as_server_user(self.user)

    def _run(self, command: list[str], *, timeout: float) -> None:
        # The working directory is the server user's own, so its tools can stat ".".
        done = subprocess.run([*self._as_user, *command], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, check=False)
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip())[-2000:]
            raise DemoDatabaseUnavailable(f"{Path(command[0]).name} {command[-1]} failed: {output}"
                                          f" (server log {self.log})")

    def _give(self, *paths: Path) -> None:
        if self._as_user:
            entry = pwd.getpwnam(self.user)
            for path in paths:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_directories(self) -> None:
        """The server user owns demo-db/ and the WAL archive, and can reach them through the state dir."""
        for directory in (self.root, self.archive):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
        if len(str(self._socket_dir)) > _MAX_SOCKET_DIR:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="zt-demo-pgs-"))
        self._socket_dir.mkdir(exist_ok=True)
        self._socket_dir.chmod(0o700)
        self._give(self.root, self.archive, self._socket_dir)
        if not self._as_user:
            return
        # The state dir is 0700 (it holds the relay token and codec keys); the server user gets
        # search permission through its group only: listing stays closed, and no other user gains.
        os.chown(self.state_dir, -1, pwd.getpwnam(self.user).pw_gid)
        self.state_dir.chmod(0o710)
        reach = subprocess.run([*self._as_user, "test", "-w", str(self.root)], capture_output=True, check=False)
        if reach.returncode != 0:
            raise DemoDatabaseUnavailable(
                f"user {self.user} (PostgreSQL refuses root) cannot reach {self.root}: make the directories above "
                f"{self.state_dir} searchable (chmod o+x) or choose another --state-dir")

    def _initdb(self, bin_dir: Path) -> None:
        """Into a side directory renamed at the end, so a half-done initdb is never taken for a cluster."""
        fresh = self.root / "data.initdb"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)
        # 1 MB segments: archive_timeout switches segments every few seconds, each archived whole.
        self._run([str(bin_dir / "initdb"), "-D", str(fresh), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                   "--data-checksums", "--wal-segsize=1", "--no-instructions"], timeout=120)
        with (fresh / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # postgresql.auto.conf still comes later: ALTER SYSTEM keeps working.
            conf.write(f"\n# zerotouch up: port, archiving and the socket, rewritten at every start\n"
                       f"include_if_exists {_quote(CONF_FILE)}\n")
        fresh.rename(self.data)

    def _configure(self) -> None:
        settings = {
            "port": str(self.port), "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self._socket_dir),
            "wal_level": "replica", "archive_mode": "on", "archive_library": "basic_archive",
            "basic_archive.archive_directory": str(self.archive),
            "archive_timeout": f"{self.archive_timeout}s",  # the demo's RPO is seconds
            "password_encryption": "scram-sha-256", "logging_collector": "off",
        }
        conf, hba = self.data / CONF_FILE, self.data / "pg_hba.conf"
        conf.write_text("".join(f"{name} = {_quote(value)}\n" for name, value in settings.items()), encoding="utf-8")
        hba.write_text(_HBA, encoding="utf-8")
        self._give(conf, hba)

    def _password(self) -> str:
        if not self.password_file.is_file():
            descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        return self.password_file.read_text(encoding="utf-8").strip()

    def _admin(self, database: str) -> psycopg.Connection[Any]:
        """The superuser over the socket (trusted): works before the password is set."""
        return psycopg.connect(host=str(self._socket_dir), port=self.port, user=SUPERUSER, dbname=database,
                               autocommit=True, connect_timeout=10, application_name="zerotouch-up")

    def _seed(self) -> None:
        """The password, the `shop` database and its tables with a few thousand rows: each once."""
        with self._admin("postgres") as admin:
            admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER),
                                                                      sql.Literal(self._password())))
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        with self._admin(DATABASE) as shop, shop.transaction():
            row = shop.execute("SELECT to_regclass('public.orders')").fetchone()
            if row is None or row[0] is None:
                shop.execute(_SCHEMA)

    def _stop_server(self) -> None:
        if self.server_pid() is None:
            return
        pg_ctl = str(self.bin_dir / "pg_ctl")
        for mode in ("fast", "immediate"):
            with contextlib.suppress(DemoDatabaseUnavailable, subprocess.TimeoutExpired):
                self._run([pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"], timeout=40)
            if self.server_pid() is None:
                return
        pid = self.server_pid()
        if pid is not None:  # pg_ctl could not stop it: as a last resort, by its own PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.server_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
