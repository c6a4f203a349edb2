"""Fencing the old primary: stopped, and confirmed stopped, before anything is promoted.

Confirmed means both: ``pg_ctl status`` finds no postmaster for the data directory, and its
address refuses TCP connections (a timeout is not a refusal: it may be a partition). A
``standby.signal`` is left in the data directory, so that whatever restarts the old primary
(a supervisor, a person) brings it up as a read-only standby, never as a second primary.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

from activities.backup_engine import ToolFailed
from activities.db_failover_pg import Postgres, first_line
from zerotouch.db_failover_models import FailoverStepResult


def fence_old_primary(primary: Postgres, stop_timeout: timedelta) -> FailoverStepResult:
    """pg_ctl stop -m fast (immediate if that does not finish), standby.signal, then confirm."""
    data = primary.data()
    was_running = primary.running()
    before = {"primary": "running" if was_running else "stopped", "address": primary.server.describe()}
    seconds = str(max(1, int(stop_timeout.total_seconds())))
    if was_running:
        for mode in ("fast", "immediate"):
            try:
                primary.tool("pg_ctl", "stop", "-D", str(data), "-m", mode, "-w", "-t", seconds,
                             timeout=stop_timeout.total_seconds() + 30)
                break
            except ToolFailed as failed:
                if not primary.running():  # stopped meanwhile (pg_ctl says "no server running")
                    break
                detail = first_line(failed)
        else:
            return FailoverStepResult(ok=False, before=before, detail=f"pg_ctl stop failed: {detail}")
    _leave_standby_signal(data)
    stopped, refused = not primary.running(), primary.refuses_connections()
    after = {"primary": "stopped" if stopped else "running", "refuses_connections": str(refused),
             "standby_signal": "yes"}
    if not (stopped and refused):
        why = "its postmaster still runs" if not stopped else f"{primary.server.describe()} does not refuse connections"
        return FailoverStepResult(ok=False, before=before, after=after,
                                  detail=f"the old primary is not confirmed stopped: {why}")
    return FailoverStepResult(ok=True, before=before, after=after,
                              detail=f"old primary {'stopped' if was_running else 'was already stopped'}; "
                                     "pg_ctl finds no postmaster and its port refuses connections")


def _leave_standby_signal(data: os.PathLike[str]) -> None:
    path = os.path.join(data, "standby.signal")
    if os.path.exists(path):
        return
    with open(path, "w", encoding="utf-8"):
        pass
    owner = os.stat(data)
    with contextlib.suppress(PermissionError):  # as root: the file must stay the server user's
        os.chown(path, owner.st_uid, owner.st_gid)
