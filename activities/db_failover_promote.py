"""Promoting the replica, then proving the new primary takes writes and kept the canary's rows.

Promotion is idempotent: a replica already out of recovery is not promoted twice. The write
check (`txid_current()` commits a transaction id) leaves nothing behind in the user's data.
The canary rows up to the promotion must be continuous: no gap larger than the policy's
``max_gap``; the WAL comparison before promotion is what rules out lost rows at the end.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from temporalio import activity

from activities.db_failover_pg import Postgres, first_line
from zerotouch.db_failover_models import FailoverStepResult
from zerotouch.recovery_databases import Canary

# A promoted server's timeline shows in its WAL file names at once; pg_control only at the next checkpoint.
_STATE = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
          "(SELECT timeline_id FROM pg_control_checkpoint())::text "
          "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END, "
          "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text, "
          "now()")


def promote_replica(replica: Postgres, timeout: timedelta) -> FailoverStepResult:
    """pg_promote(), then wait until the server has left recovery."""
    with replica.connect() as connection:
        before = _state(connection)
        if before["role"] == "primary":
            return FailoverStepResult(ok=True, before=before, after=before, detail="already promoted")
        connection.execute("SELECT pg_promote(true, %s)", (max(1, int(timeout.total_seconds())),))
    deadline = time.monotonic() + timeout.total_seconds()
    after: dict[str, str] = {}
    while time.monotonic() < deadline:
        activity.heartbeat("waiting for the end of recovery")
        with replica.connect() as connection:
            after = _state(connection)
        if after["role"] == "primary":
            return FailoverStepResult(ok=True, before=before, after=after,
                                      detail=f"promoted: timeline {before['timeline']} → {after['timeline']}, "
                                             f"WAL at {after['lsn']}")
        time.sleep(0.2)
    return FailoverStepResult(ok=False, before=before, after=after, detail=f"still in recovery after {timeout}")


def verify_new_primary(replica: Postgres, canary: Canary, until: datetime | None) -> FailoverStepResult:
    """A write commits on the new primary, and the canary rows before the promotion have no gap."""
    try:
        with replica.connect() as connection:
            state = _state(connection)
            xid = connection.execute("SELECT txid_current()::text").fetchone()
            detail = f"a write committed (transaction {xid[0] if xid else '?'})"
            if not canary.table:
                return FailoverStepResult(ok=True, after=state, detail=detail + "; no canary table in the policy")
            ok, canary_detail = _canary(connection, canary, until)
    except psycopg.Error as error:
        return FailoverStepResult(ok=False, detail=f"the new primary did not take a write: {first_line(error)}")
    return FailoverStepResult(ok=ok, after={**state, "canary": canary_detail}, detail=f"{detail}; {canary_detail}")


def _canary(connection: psycopg.Connection[Any], canary: Canary, until: datetime | None) -> tuple[bool, str]:
    table = sql.Identifier(*canary.table.split("."))
    end = sql.SQL("%s::timestamptz") if until is not None else sql.SQL("now()")
    query = sql.SQL("SELECT written_at FROM {t} WHERE written_at <= {end} AND written_at >= {end} - %s "
                    "ORDER BY written_at").format(t=table, end=end)
    params: tuple[object, ...] = (until, until, canary.window) if until is not None else (canary.window,)
    try:
        rows = [row[0] for row in connection.execute(query, params).fetchall()]
    except psycopg.errors.UndefinedTable:
        return False, f"canary table {canary.table} is missing on the new primary"
    if not rows:
        return False, f"no canary row in the {canary.window} before the promotion"
    gaps = [(b - a, a) for a, b in itertools.pairwise(rows)]
    widest, at = max(gaps, default=(timedelta(0), rows[0]))
    summary = (f"canary {canary.table}: {len(rows)} rows up to {rows[-1].isoformat(timespec='seconds')}, "
               f"widest gap {widest.total_seconds():.1f}s")
    if widest > canary.max_gap:
        return False, f"{summary} after {at.isoformat(timespec='seconds')}: over {canary.max_gap} (rows missing)"
    return True, summary + " (continuous)"


def _state(connection: psycopg.Connection[Any]) -> dict[str, str]:
    row = connection.execute(_STATE).fetchone()
    assert row is not None
    return {"role": "standby" if row[0] else "primary", "timeline": str(row[1]), "lsn": str(row[2]),
            "at": row[3].isoformat()}
