"""Rejoining the old primary as a standby of the new one: pg_rewind, its own configuration back, streaming, verified.

pg_rewind copies the source's configuration files (port, sockets, HBA) over the target's; the old
primary keeps its own, so they are saved before and put back after, then the standby settings
(``standby.signal``, ``primary_conninfo`` to the new primary) are added. pg_rewind needs
``wal_log_hints = on`` or data checksums on the old primary. Idempotent: an old primary already
streaming from the new one is left alone. Recreating it from a backup is not done here.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from temporalio import activity

from activities.backup_engine import ToolFailed
from activities.db_failover_pg import Postgres, first_line
from activities.pg_scratch import quote_setting
from zerotouch.db_failover_models import FailoverStepResult

OWN_FILES = ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf")
LOG_NAME = "zerotouch-rejoin.log"


def rejoin_old_primary(old: Postgres, new: Postgres, timeout: timedelta) -> FailoverStepResult:
    """pg_rewind the stopped old primary from the new one, start it as a standby, wait until it streams."""
    data = old.data()
    streaming = _streaming(old)
    if streaming:
        return FailoverStepResult(ok=True, before={"old_primary": streaming}, after={"old_primary": streaming},
                                  detail=f"already a standby: {streaming}")
    before = {"old_primary": "running" if old.running() else "stopped"}
    if old.running():
        old.tool("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60", timeout=90)
    own = {name: (data / name).read_bytes() for name in OWN_FILES if (data / name).is_file()}
    conninfo, env = new.conninfo_and_env()
    try:
        rewound = old.tool("pg_rewind", "--target-pgdata", str(data), "--source-server", conninfo,
                           timeout=max(60.0, timeout.total_seconds()), env=env)
    except ToolFailed as failed:
        return FailoverStepResult(ok=False, before=before, detail=f"pg_rewind failed: {failed}")
    finally:
        _put_back(data, own)
    _standby_settings(data, new)
    old.tool("pg_ctl", "start", "-D", str(data), "-l", str(data / LOG_NAME), "-w", "-t", "60", timeout=90)
    return _wait_streaming(old, new, timeout, before, rewound.strip().splitlines()[-1:] or ["rewound"])


def _put_back(data: Path, own: dict[str, bytes]) -> None:
    owner = os.stat(data)
    for name, content in own.items():
        (data / name).write_bytes(content)
        if os.geteuid() == 0:
            os.chown(data / name, owner.st_uid, owner.st_gid)


def _standby_settings(data: Path, new: Postgres) -> None:
    """standby.signal and primary_conninfo (with a password if the reference has one, as ``pg_basebackup -R``
    writes it; the file is the server user's, mode 0600)."""
    conninfo = new.dsn
    auto = data / "postgresql.auto.conf"
    with auto.open("a", encoding="utf-8") as out:
        out.write("\n# zerotouch rejoin: a standby of the new primary\n"
                  f"primary_conninfo = {quote_setting(conninfo)}\nrecovery_target_timeline = 'latest'\n")
    (data / "standby.signal").touch()
    owner = os.stat(data)
    for path in (auto, data / "standby.signal"):
        path.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)


def _streaming(old: Postgres) -> str:
    """"standby streaming from host:port" when the old primary is a standby with a streaming receiver; else ""."""
    try:
        with old.connect() as connection:
            row = connection.execute("SELECT pg_is_in_recovery(), (SELECT sender_host || ':' || sender_port "
                                     "FROM pg_stat_wal_receiver WHERE status = 'streaming')").fetchone()
    except psycopg.Error:
        return ""
    return f"standby streaming from {row[1]}" if row is not None and row[0] and row[1] else ""


def _wait_streaming(old: Postgres, new: Postgres, timeout: timedelta, before: dict[str, str],
                    rewound: list[str]) -> FailoverStepResult:
    deadline = time.monotonic() + timeout.total_seconds()
    last = "not yet streaming"
    while time.monotonic() < deadline:
        activity.heartbeat(last)
        streaming = _streaming(old)
        if streaming:
            try:
                wanted = str(new.value("SELECT pg_current_wal_lsn()::text"))
                behind = old.value("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (wanted,))
            except psycopg.Error as error:
                last = first_line(error)
            else:
                if behind is not None and int(behind) <= 0:
                    return FailoverStepResult(
                        ok=True, before=before, after={"old_primary": streaming, "replayed_to": wanted},
                        detail=f"{rewound[0]}; {streaming}, replayed the new primary's WAL up to {wanted}")
                last = f"{streaming}, {behind} bytes behind"
        time.sleep(0.3)
    return FailoverStepResult(ok=False, before=before, after={"old_primary": last},
                              detail=f"the old primary did not stream from the new one within {timeout}: {last}")
