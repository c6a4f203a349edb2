"""Talking to the source database: DSNs for tools without secrets on the command line, identity.

A password in a tool's ``-d`` argument would be readable by every local user in ``ps``; tools
get it through ``PGPASSWORD`` instead. The identity recorded with a backup (system identifier,
version, address without credentials) is what a restore is later matched against.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CONNECT_TIMEOUT = 10
# Hot standby refuses to replay WAL from a primary with larger values than its own (PostgreSQL
# docs, "Hot Standby Parameter Settings"); a scratch server copies the source's.
STANDBY_MINIMUMS = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
                    "max_locks_per_transaction")


def for_database(dsn: str, database: str) -> str:
    return make_conninfo(dsn, dbname=database)


def tool_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment carrying it) for pg_basebackup / pg_dump."""
    parts = conninfo_to_dict(dsn)
    password = parts.pop("password", None)
    parts.setdefault("connect_timeout", CONNECT_TIMEOUT)
    env = {"PGPASSWORD": str(password)} if password is not None else {}
    return make_conninfo("", **{k: str(v) for k, v in parts.items()}), env


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT,
                           application_name="zerotouch-backup")


def identity(connection: psycopg.Connection[Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(source identity for the manifest, server facts a restore needs) of a connected source."""
    row = connection.execute(
        "SELECT (SELECT system_identifier FROM pg_control_system())::text, current_setting('server_version'),"
        " current_database(), (SELECT rolname FROM pg_roles WHERE oid = 10),"
        " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')").fetchone()
    assert row is not None
    settings = dict(connection.execute(
        "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(STANDBY_MINIMUMS),)).fetchall())
    info = connection.info
    source = {"system_identifier": str(row[0]), "server_version": str(row[1]), "database": str(row[2]),
              "address": f"{info.host}:{info.port}", "user": info.user}
    facts = {"superuser": str(row[3]), "wal_segment_size": int(row[4]), "settings": settings}
    return source, facts


def tablespaces(connection: psycopg.Connection[Any]) -> dict[str, str]:
    """User tablespaces: OID → location on the source."""
    rows = connection.execute("SELECT oid::text, pg_tablespace_location(oid) FROM pg_tablespace "
                              "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid").fetchall()
    return {str(oid): str(location) for oid, location in rows}
