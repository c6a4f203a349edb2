"""Is the primary really down, and how far behind is the replica? Read-only: nothing here changes anything.

The measured lag is the old primary's end of WAL (read from its own ``pg_wal`` once it is down)
minus the replica's *replay* position. Received but not yet replayed WAL counts as lag on purpose:
a replica whose replay is paused, stuck on a conflict or broken is not a safe promotion target,
and what it holds unreplayed is only as good as that replay. Whatever cannot be read (no data
directory, the old postmaster still alive, the replica unreachable) is an unknown lag, which the
workflow treats as over the bound.
"""

from __future__ import annotations

import time

import psycopg
from temporalio import activity

from activities.backup_engine import ToolFailed
from activities.db_failover_pg import Postgres, first_line
from zerotouch.db_failover_models import FailoverStepResult


def confirm_primary_down(primary: Postgres, probes: int, interval: float) -> FailoverStepResult:
    """ok when every one of ``probes`` connections failed; a single answer means it is up."""
    failures: list[str] = []
    for attempt in range(probes):
        if attempt:
            time.sleep(interval)
        activity.heartbeat(f"probe {attempt + 1}/{probes}")
        try:
            in_recovery = primary.value("SELECT pg_is_in_recovery()")
        except psycopg.Error as error:
            failures.append(first_line(error))
            continue
        role = "standby" if in_recovery else "primary"
        return FailoverStepResult(ok=False, detail=f"{primary.server.describe()} answers as a {role}",
                                  before={"primary": f"up ({role})"})
    return FailoverStepResult(ok=True, detail=f"{probes} of {probes} connections failed; last: {failures[-1]}",
                              before={"primary": "down"})


def measure_replica_lag(primary: Postgres, replica: Postgres) -> FailoverStepResult:
    """The replica's lag behind the old primary in bytes (``lag_bytes`` None: unknown)."""
    seen: dict[str, str] = {}
    try:
        with replica.connect() as connection:
            row = connection.execute("SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, "
                                     "pg_last_wal_replay_lsn()::text, pg_is_wal_replay_paused()").fetchone()
            assert row is not None
            in_recovery, received, replayed, paused = row
            seen.update(replica_in_recovery=str(in_recovery), replica_receive_lsn=str(received),
                        replica_replay_lsn=str(replayed), replica_replay_paused=str(paused))
            if not in_recovery:
                return _unknown(seen, "the replica is not in recovery: it is already a primary, or not a replica")
            end, how = _primary_end(primary)
            if end is None:
                return _unknown(seen, how)
            seen["primary_end_lsn"] = end
            diff = connection.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())",
                                      (end,)).fetchone()
    except psycopg.Error as error:
        return _unknown(seen, f"the replica {replica.server.describe()} cannot be read: {first_line(error)}")
    assert diff is not None
    lag = max(0, int(diff[0]))
    paused = " (replay is paused)" if seen.get("replica_replay_paused") == "True" else ""
    return FailoverStepResult(ok=True, lag_bytes=lag, before=seen,
                              detail=f"replica replayed to {seen['replica_replay_lsn']}, the old primary's WAL ends "
                                     f"at {end}: {lag} bytes behind{paused}; {how}")


def _primary_end(primary: Postgres) -> tuple[str | None, str]:
    if not primary.server.data_directory:
        return None, "the old primary has no data_directory in the policy, so its end of WAL cannot be read"
    try:
        if primary.running():
            return None, "the old primary's postmaster is still running: its end of WAL may still move"
        return primary.end_of_wal()
    except (ToolFailed, OSError) as error:
        return None, f"the old primary's WAL cannot be read: {first_line(error)}"


def _unknown(seen: dict[str, str], why: str) -> FailoverStepResult:
    return FailoverStepResult(ok=False, lag_bytes=None, before=seen, detail=f"lag unknown: {why}")
