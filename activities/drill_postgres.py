"""The postgres_primary_stop drill's fault: the declared primary stopped for real, and one working primary after.

The data worker runs these, on whose machine the primary's data directory is (as the failover's
fencer). The stop is ``pg_ctl stop -m immediate``, what a lost host looks like to the replica. The
restore leaves exactly one primary: the replica if the failover promoted it, else the old primary
started again, and only once no failover can still promote the replica (one waiting for approval is
aborted first: its premise, a dead primary, is gone; one fencing or promoting is waited out).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.backup_engine import ToolFailed
from activities.db_failover_pg import Postgres, first_line
from activities.pg_binaries import find_bin_dir
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.drill_models import DrillFault, DrillInjection
from zerotouch.models import AbortInput
from zerotouch.names import UPDATE_ABORT
from zerotouch.recovery import FINAL_STAGES, QUERY_RECOVERY_STATUS, RecoveryStatus, recovery_id
from zerotouch.recovery_databases import DatabaseFailoverTarget

DRILL_ACTOR = "zerotouch-drill"
LOG_NAME = "zerotouch-drill.log"
POLL_SECONDS = 0.5
# Within one attempt, how long a fencing or promoting failover is waited for before the attempt
# fails (and is retried: the drill's cleanup retries for as long as it takes).
WAIT_FAILOVER_SECONDS = 120.0


def _target(fault: DrillFault) -> DatabaseFailoverTarget:
    if fault.database is None:
        raise errors.fail(f"drill {fault.drill.name}: {fault.drill.target_name!r} is not in the policy's "
                          "recovery.databases; declare it there", errors.INVALID_TARGET)
    return fault.database


def in_recovery(server: Postgres) -> bool | None:
    """pg_is_in_recovery() on a fresh connection; None when the server does not answer."""
    try:
        return bool(server.value("SELECT pg_is_in_recovery()"))
    except psycopg.Error:
        return None


class DrillPostgresActivities:
    def __init__(self, *, dsn_for: Callable[[str], str], client: Client,
                 bin_dir: Callable[[], Path] = find_bin_dir) -> None:
        self._dsn_for, self._client, self._bin_dir = dsn_for, client, bin_dir

    def _pair(self, target: DatabaseFailoverTarget) -> tuple[Postgres, Postgres]:
        return (Postgres(target.primary, dsn_for=self._dsn_for, bin_dir=self._bin_dir),
                Postgres(target.replica, dsn_for=self._dsn_for, bin_dir=self._bin_dir))

    @activity.defn(name=names.STOP_DRILL_PRIMARY)
    async def stop_drill_primary(self, fault: DrillFault) -> DrillInjection:
        """pg_ctl stop -m immediate -D <primary>, only on a pair as declared (idempotent: stopped stays stopped)"""
        return await asyncio.to_thread(self._stop, fault)

    def _stop(self, fault: DrillFault) -> DrillInjection:
        target = _target(fault)
        primary, replica = self._pair(target)
        # A drill breaks a healthy pair only: after a real failover the policy may still name the old roles.
        if in_recovery(replica) is not True:
            raise errors.fail(f"drill {fault.drill.name}: the replica {replica.server.describe()} is not a "
                              "streaming standby; swap primary and replica in the policy after a failover",
                              errors.INVALID_TARGET)
        if not primary.running():
            return DrillInjection(injected_at=time.time(), detail=f"primary {primary.server.describe()} "
                                                                  "was already stopped")
        if in_recovery(primary) is not False:
            raise errors.fail(f"drill {fault.drill.name}: {primary.server.describe()} is not a primary",
                              errors.INVALID_TARGET)
        primary.tool("pg_ctl", "stop", "-D", str(primary.data()), "-m", "immediate", "-w", "-t", "60", timeout=90)
        return DrillInjection(injected_at=time.time(),
                              detail=f"primary {primary.server.describe()} stopped (pg_ctl stop -m immediate)")

    @activity.defn(name=names.RESTORE_DRILL_PRIMARY)
    async def restore_drill_primary(self, fault: DrillFault) -> bool:
        """Leave one working primary: the promoted replica, or the old primary started again; True if started"""
        target = _target(fault)
        primary, replica = self._pair(target)
        await self._settle_failover(fault, replica)
        return await asyncio.to_thread(self._start_unless_promoted, primary, replica)

    async def _settle_failover(self, fault: DrillFault, replica: Postgres) -> None:
        """Until no failover of this database can still promote its replica (or it did)."""
        handle = self._client.get_workflow_handle(recovery_id("database", fault.cluster, fault.drill.target_name))
        until = time.monotonic() + WAIT_FAILOVER_SECONDS
        while True:
            activity.heartbeat()
            status = await _status(handle)
            if status is None or status.stage in FINAL_STAGES or await asyncio.to_thread(in_recovery, replica) is False:
                return
            if status.stage in ("planning", "awaiting_approval"):
                with contextlib.suppress(WorkflowUpdateFailedError, RPCError):  # over meanwhile: asked again below
                    await handle.execute_update(UPDATE_ABORT, AbortInput(
                        by=DRILL_ACTOR, reason=f"drill {fault.drill.name} is over: its primary is started again"))
            if time.monotonic() >= until:
                raise errors.fail(f"the failover of {fault.drill.target_name} is still {status.stage}: the old "
                                  "primary is started only once it cannot promote the replica", errors.API_UNAVAILABLE)
            await asyncio.sleep(POLL_SECONDS)

    def _start_unless_promoted(self, primary: Postgres, replica: Postgres) -> bool:
        role = in_recovery(replica)
        if role is False:
            return False  # the failover promoted the replica: it is the one primary; the old one stays as left
        if role is None:
            raise errors.fail(f"the replica {replica.server.describe()} does not answer: not starting the old "
                              "primary blind (it could be a promoted primary)", errors.API_UNAVAILABLE)
        data = primary.data()
        if primary.running():
            return False
        # A fence the failover left before failing to promote: no failover runs now and the replica is a
        # standby, so the old primary is the only one that can serve.
        with contextlib.suppress(FileNotFoundError):
            (data / "standby.signal").unlink()
        try:
            primary.tool("pg_ctl", "start", "-D", str(data), "-l", str(data / LOG_NAME), "-w", "-t", "60", timeout=90)
        except ToolFailed as failed:
            if not primary.running():
                raise errors.fail(f"pg_ctl start {primary.server.describe()}: {first_line(failed)}",
                                  errors.API_UNAVAILABLE) from None
        try:
            primary.value("SELECT txid_current()")  # a write commits: it is a primary again
        except psycopg.Error as error:
            raise errors.fail(f"{primary.server.describe()} started but takes no write: {first_line(error)}",
                              errors.API_UNAVAILABLE) from None
        return True


async def _status(handle: WorkflowHandle[Any, Any]) -> RecoveryStatus | None:
    try:
        raw = await handle.query(QUERY_RECOVERY_STATUS)  # None while it loads its policy
    except (RPCError, WorkflowQueryFailedError):
        return None  # never started: no alert reached the relay
    return RecoveryStatus.model_validate(raw) if raw else None
