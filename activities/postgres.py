"""PostgreSQL activities: connection pressure relief and usage.

Requests name a connection *reference* ("main"); the worker resolves it to a
DSN from its own environment, so credentials never enter workflow history.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from pydantic import BaseModel, Field, ValidationError
from temporalio import activity

from activities.keepalive import keeps_alive
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.action_params import TerminateIdleConnectionsParams, describe
from zerotouch.models import ActionRequest, ActionResult

CONNECT_TIMEOUT_SECONDS = 10
_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

# Oldest idle client sessions first, never our own, never a superuser's (an admin
# shell or a migration), never replication or background workers.
_TERMINATE = """
WITH victims AS (
    SELECT a.pid, a.usename, a.datname, a.application_name, a.state_change
    FROM pg_stat_activity AS a
    LEFT JOIN pg_roles AS r ON r.oid = a.usesysid
    WHERE a.state = 'idle'
      AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid()
      AND NOT coalesce(r.rolsuper, false)
      AND a.state_change < now() - make_interval(secs => %(idle)s)
      AND (%(database)s::text IS NULL OR a.datname = %(database)s::text)
    ORDER BY a.state_change
    LIMIT %(limit)s
)
SELECT pid, usename, datname, pg_terminate_backend(pid) AS terminated FROM victims
"""

_USAGE = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS used,
       current_setting('max_connections')::int AS max,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle') AS idle,
       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active') AS active
FROM pg_stat_activity
"""


class ConnectionUsageRequest(BaseModel):
    """Which database server to look at, by connection reference."""

    reference: str = Field(description="connection reference, resolved by the worker to a DSN")


class ConnectionUsage(BaseModel):
    used: int
    max: int
    percent: float
    idle: int = 0
    active: int = 0


def _params(request: ActionRequest) -> TerminateIdleConnectionsParams:
    try:
        params = request.typed_params
    except ValidationError as error:
        raise errors.fail(f"{request.action}: {describe(error)}", errors.INVALID_PARAMS) from None
    if not isinstance(params, TerminateIdleConnectionsParams):
        raise errors.fail(f"{request.action}: not terminate_idle_connections parameters", errors.INVALID_PARAMS)
    return params


class PostgresActivities:
    """Blocking psycopg calls (sync activities on the worker's thread pool)."""

    def __init__(self, *, dsn_for: Callable[[str], str]) -> None:
        self._dsn_for = dsn_for

    def _connect(self, reference: str) -> psycopg.Connection[Any]:
        if not _REFERENCE.match(reference):
            raise errors.fail(f"connection reference {reference!r} is not a simple name like 'main'",
                              errors.INVALID_TARGET)
        try:
            dsn = self._dsn_for(reference)
        except KeyError as error:
            raise errors.fail(str(error.args[0] if error.args else error), errors.INVALID_TARGET) from None
        try:
            return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                   application_name="zerotouch")
        except psycopg.OperationalError as error:
            # The message may echo host and user but never the password; still keep it short.
            raise errors.fail(f"cannot connect to PostgreSQL {reference!r}: {str(error).splitlines()[0]}",
                              errors.DATABASE_UNAVAILABLE) from None

    @activity.defn(name=names.TERMINATE_IDLE_CONNECTIONS)
    @keeps_alive
    def terminate_idle_connections(self, request: ActionRequest) -> ActionResult:
        """Terminate client sessions idle longer than `idle_for_seconds` (at most `max_terminate`)."""
        params = _params(request)
        idle, limit, database = params.idle_for_seconds, params.max_terminate, params.database
        with self._connect(request.name) as connection:
            try:
                rows = connection.execute(_TERMINATE, {"idle": idle, "database": database, "limit": limit}).fetchall()
            except pg_errors.InsufficientPrivilege as error:
                raise errors.fail(f"not allowed to terminate sessions on {request.name!r}: {error}; "
                                  "grant pg_signal_backend to the zerotouch role", errors.FORBIDDEN) from None
        terminated = [row for row in rows if row[3]]
        by_user: dict[str, int] = {}
        for _, user, _, _ in terminated:
            by_user[str(user)] = by_user.get(str(user), 0) + 1
        where = f" in database {database}" if database else ""
        detail = f"terminated {len(terminated)} session(s) idle > {idle:g}s on {request.name!r}{where}"
        if len(rows) == limit:
            detail += f" (stopped at the limit of {limit})"
        activity.logger.info("terminate_idle_connections: %s", detail)
        return ActionResult(applied=True, detail=detail,
                            after={"terminated": len(terminated), "by_user": by_user,
                                   "pids": [row[0] for row in terminated]})

    @activity.defn(name=names.GET_CONNECTION_USAGE)
    def get_connection_usage(self, request: ConnectionUsageRequest) -> ConnectionUsage:
        """Client connections in use against max_connections."""
        with self._connect(request.reference) as connection:
            row = connection.execute(_USAGE).fetchone()
        used, maximum, idle, active = (int(v) for v in row) if row else (0, 0, 0, 0)
        percent = round(100.0 * used / maximum, 1) if maximum else 0.0
        return ConnectionUsage(used=used, max=maximum, percent=percent, idle=idle, active=active)
