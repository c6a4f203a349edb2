"""A throwaway PostgreSQL server for test restores: started, polled, stopped and swept.

Everything lives under the verification's scratch directory (``data/``, ``server.log``, the
WAL copy, the socket), so removing that directory after stopping the server leaves nothing.
PostgreSQL refuses to run as root; under root the server runs as an unprivileged user
(`nobody` by default) through runuser. Clients connect over a Unix socket in a directory only
that user (and root) can enter, and the server's TCP listener on 127.0.0.1 rejects everyone:
a restored copy of production data is reachable by nobody else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from activities.backup_engine import ToolFailed, run_tool
from activities.pg_binaries import SERVER_USER, as_server_user
from zerotouch.ports import free_port

STOP_TIMEOUT = 60.0
START_TIMEOUT = 60.0
POLL_INTERVAL = 0.2
BEAT_EVERY = 5.0
_SOCKET_POINTER = "socket-dir"  # names a socket directory outside scratch when scratch's path is too long
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes, minus "/.s.PGSQL.65535"
_HBA = """# zerotouch scratch server: local socket connections only
local all all trust
host all all 0.0.0.0/0 reject
host all all ::/0 reject
"""


class RestoreFailed(Exception):  # an outcome reported as a failed check, not a bug
    """The scratch server did not start, died, or did not reach the wanted state in time."""


def quote_setting(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ScratchServer:
    """A PostgreSQL server in ``<scratch>/data`` on a free port."""

    def __init__(self, scratch: Path, bin_dir: Path, *, user: str = SERVER_USER,
                 heartbeat: Callable[[str], None] | None = None) -> None:
        self.scratch, self.bin_dir, self.user = scratch, bin_dir, user
        self.data, self.log = scratch / "data", scratch / "server.log"
        self.port = free_port()
        self._beat = heartbeat or (lambda _message: None)
        self._original_auto_conf: str | None = None
        self._settings: dict[str, str] = {}
        self.socket_dir = scratch / "sock"
        if len(str(self.socket_dir)) > _MAX_SOCKET_PATH:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="zt-pgs-"))
            (scratch / _SOCKET_POINTER).write_text(str(self.socket_dir), encoding="utf-8")

    @property
    def _as_user(self) -> list[str]:
        return as_server_user(self.user)

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def give_to_server(self, *paths: Path) -> None:
        """Make ``paths`` (recursively) the server user's, as PostgreSQL requires of its data directory."""
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam(self.user)
        for root in paths:
            os.chown(root, account.pw_uid, account.pw_gid)
            for directory, subdirectories, files in os.walk(root):
                for name in [*subdirectories, *files]:
                    os.chown(os.path.join(directory, name), account.pw_uid, account.pw_gid, follow_symlinks=False)

    def prepare(self) -> None:
        """The socket directory and ownership; fail clearly if the server user cannot reach scratch."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        # The WAL copy and the data are production data: only the server's user (and root) may look.
        for private in (self.scratch, self.socket_dir, self.data):
            private.chmod(0o700)
        self.give_to_server(self.scratch, self.socket_dir)
        if self._as_user:
            try:
                run_tool([*self._as_user, "test", "-w", str(self.data)], timeout=30)
            except ToolFailed:
                raise RestoreFailed(f"user {self.user} cannot reach {self.data}: make the parent directories "
                                    "of the scratch directory searchable (chmod o+x)") from None

    def initdb(self, superuser: str, timeout: float) -> None:
        self.data.mkdir(parents=True)
        self.prepare()
        run_tool([*self._as_user, self.tool("initdb"), "-D", str(self.data), "-U", superuser, "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions"], timeout=timeout)

    def configure(self, settings: dict[str, str]) -> None:
        """Our settings after the backup's own (later lines win), plus an HBA file of our own."""
        self._settings = settings
        auto_conf = self.data / "postgresql.auto.conf"
        if self._original_auto_conf is None:
            self._original_auto_conf = auto_conf.read_text(encoding="utf-8") if auto_conf.exists() else ""
            # A Debian cluster keeps these in /etc/postgresql, so the base backup lacks them.
            for name in ("postgresql.conf", "pg_ident.conf"):
                (self.data / name).touch()
            (self.data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")
        fixed = {
            "port": str(self.port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.socket_dir),
            "hba_file": str(self.data / "pg_hba.conf"), "ident_file": str(self.data / "pg_ident.conf"),
            # Never archive into the source's archive, never wait for the source's standbys.
            "archive_mode": "off", "synchronous_standby_names": "", "primary_conninfo": "",
            "ssl": "off", "logging_collector": "off", "hot_standby": "on",
        }
        lines = [f"{name} = {quote_setting(value)}" for name, value in {**settings, **fixed}.items()]
        block = "\n# zerotouch verification settings\n" + "\n".join(lines) + "\n"
        auto_conf.write_text(self._original_auto_conf + block, encoding="utf-8")
        self.give_to_server(auto_conf, self.data / "pg_hba.conf", self.data / "postgresql.conf",
                            self.data / "pg_ident.conf")

    def start(self) -> None:
        """Start without waiting: recovery may take long, and `wait_for` polls with heartbeats."""
        self.log.touch()
        self.give_to_server(self.log)
        log_from = self.log.stat().st_size
        try:
            self._start(log_from)
        except RestoreFailed:
            # free_port() cannot reserve the port: someone may have taken it since. Once more, elsewhere.
            if "Address already in use" not in _log_since(self.log, log_from):
                raise
            self.port = free_port()
            self.configure(self._settings)
            self._start(self.log.stat().st_size)

    def _start(self, log_from: int) -> None:
        try:
            run_tool([*self._as_user, self.tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-W",
                      "start"], timeout=60)
        except ToolFailed as error:
            raise RestoreFailed(f"pg_ctl start failed: {error.output.strip()}\n{self.log_tail()}") from None
        # pg_ctl -W returns before the postmaster writes its PID file; until it has, "not running"
        # means "not yet", unless the log already says why it never will.
        deadline = time.monotonic() + START_TIMEOUT
        while not self.running():
            if time.monotonic() > deadline or _fatal(_log_since(self.log, log_from)):
                raise RestoreFailed(f"the server did not start\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        run_tool([*self._as_user, self.tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t",
                  str(int(STOP_TIMEOUT)), "stop"], timeout=STOP_TIMEOUT + 10)

    def running(self) -> bool:
        return server_pid(self.data) is not None

    def log_tail(self, limit: int = 3000) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "server log:\n" + text[-limit:].strip()

    @contextlib.contextmanager
    def connect(self, user: str, dbname: str) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=user, dbname=dbname,
                             autocommit=True, connect_timeout=5, application_name="zerotouch-verify") as connection:
            yield connection

    def wait_for(self, what: str, probe: Callable[[psycopg.Connection[Any]], bool], *, user: str,
                 timeout: float) -> float:
        """Poll until ``probe`` is true on a fresh connection; return the seconds waited.

        Raises RestoreFailed (with the server log) if the server stops or the deadline passes.
        """
        started = time.monotonic()
        last_beat, last_error = started, ""
        while True:
            if not self.running():
                raise RestoreFailed(f"the server stopped while waiting until {what}\n{self.log_tail()}")
            try:
                with self.connect(user, "postgres") as connection:
                    if probe(connection):
                        return time.monotonic() - started
            except psycopg.Error as error:
                last_error = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            now = time.monotonic()
            if now - started > timeout:
                raise RestoreFailed(f"not {what} after {timeout:.0f}s (last: {last_error or 'probe false'})\n"
                                    f"{self.log_tail()}")
            if now - last_beat >= BEAT_EVERY:
                self._beat(f"waiting until {what} ({now - started:.0f}s)")
                last_beat = now
            time.sleep(POLL_INTERVAL)


def _log_since(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _fatal(text: str) -> bool:
    """Whether the server logged an error that ends it (not a client refused during startup)."""
    return any(("FATAL:" in line or "PANIC:" in line) and "the database system is" not in line
               for line in text.splitlines())


def server_pid(data: Path) -> int | None:
    """The postmaster's PID if ``data`` has a postmaster.pid whose process is alive."""
    try:
        pid = int((data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _serves(pid: int, data: Path) -> bool:
    """Whether ``pid`` is a postgres process working in ``data`` (never kill anything else)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return comm.startswith(("postgres", "postmaster")) and cwd.resolve() == data.resolve()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="utf-8")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _kill_server(pid: int, data: Path) -> None:
    """pg_ctl could not stop it: SIGKILL the postmaster and its children, each only if it is a postgres
    process working in ``data`` (a recycled PID belongs to someone else)."""
    victims = [p for p in [pid, *_children(pid)] if _serves(p, data)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(_serves(victim, data) for victim in victims) and time.monotonic() < deadline:
        time.sleep(0.05)


def sweep_scratch(scratch: Path, bin_dir: Path, user: str = SERVER_USER) -> None:
    """Stop any server left in ``scratch`` (a killed worker's) and remove the directory; nothing there is fine."""
    if not scratch.exists():
        return
    for pid_file in [*scratch.glob("postmaster.pid"), *scratch.glob("*/postmaster.pid")]:
        data = pid_file.parent
        pid = server_pid(data)
        if pid is None:
            continue
        as_user = as_server_user(user)
        with contextlib.suppress(ToolFailed, OSError, subprocess.TimeoutExpired):
            run_tool([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30",
                      "stop"], timeout=40)
        if server_pid(data) == pid:
            _kill_server(pid, data)
    pointer = scratch / _SOCKET_POINTER
    if pointer.is_file():
        socket_dir = Path(pointer.read_text(encoding="utf-8").strip())
        if socket_dir.name.startswith("zt-pgs-"):
            shutil.rmtree(socket_dir, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
