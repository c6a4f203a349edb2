"""The policy's ``recovery.databases``: PostgreSQL primaries and how to fail each over (DatabaseFailoverWorkflow).

Connections are *references* the data worker resolves from its own environment
(``ZEROTOUCH_PG_<REF>_DSN``, as backups and rotations do): credentials never enter workflow
history. ``host``/``port`` are the address consumers use, which is what a repoint writes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator

from .durations import Duration
from .k8s_names import require_namespace, require_object_name
from .runbooks import PolicyModel

DATABASE_NAME = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"
_CONNECTION = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$")
_TABLE = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"
_OS_USER = r"^[a-z_][a-z0-9_-]{0,31}$"
_KEY = r"^[-._A-Za-z0-9]{1,253}$"
RISK_CLASS = "database_failover"
GRANT_ACTION = "failover_database"
FAILOVER_ALERT = "DatabaseFailoverRefused"
PRIMARY_DOWN_ALERT = "PostgresPrimaryDown"  # with a `database` label: starts that database's failover (relay)


class DatabaseServer(PolicyModel):
    """One server of the pair: how zerotouch reaches it, and where consumers reach it."""

    connection: str = Field(pattern=_CONNECTION, description="admin connection reference: ZEROTOUCH_PG_<REF>_DSN")
    host: str = Field(description="the address consumers connect to (what a repoint writes)")
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="postgres", min_length=1, max_length=63)
    data_directory: str = Field(
        default="", description="on the data worker's machine: needed by the local fencer, the lag measure "
                                "(the old primary's own WAL) and the rejoin")
    os_user: str = Field(default="postgres", pattern=_OS_USER,
                         description="the OS user the server runs as (pg_ctl, pg_rewind run as it when root)")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.match(value):
            raise ValueError("a host name or IP address (letters, digits, '.', ':', '-')")
        return value

    @field_validator("data_directory")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError("an absolute path")
        return value

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


class LocalFencer(PolicyModel):
    """``pg_ctl stop -m fast`` on the old primary's data directory, confirmed by pg_ctl status and a refused
    connection; a ``standby.signal`` left there makes an accidental restart come up read-only."""

    kind: Literal["local"] = "local"
    stop_timeout: Duration = Field(default=timedelta(seconds=60))


class ConnectionFileRepoint(PolicyModel):
    """An atomically replaced JSON file (``{"host", "port", "dbname"}``) that consumers read."""

    kind: Literal["connection_file"] = "connection_file"
    path: str = Field(description="absolute path on the data worker's machine")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\0" in value:
            raise ValueError("an absolute path")
        return value


class KubernetesSecretRepoint(PolicyModel):
    """The host and port keys of a Secret the consumers read, written guarded by resourceVersion."""

    kind: Literal["kubernetes_secret"] = "kubernetes_secret"
    namespace: str
    name: str
    host_key: str = Field(default="host", pattern=_KEY)
    port_key: str = Field(default="port", pattern=_KEY)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return require_namespace(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return require_object_name(value, "Secret")

    def describe(self) -> str:
        return f"Secret {self.namespace}/{self.name}"


Repoint = Annotated[ConnectionFileRepoint | KubernetesSecretRepoint, Field(discriminator="kind")]


class FailoverApprovals(PolicyModel):
    """Which steps wait for a human (approve / abort); a timeout aborts, never approves."""

    promote: bool = Field(default=True, description="fence + promote + repoint")
    rejoin: bool = Field(default=True, description="pg_rewind (or recreate) over the old primary's data")
    timeout: Duration = Field(default=timedelta(minutes=30))


class Canary(PolicyModel):
    """The table `zerotouch.pg_canary.CanaryWriter` writes a row into every ``interval``."""

    table: str = Field(default="", pattern=_TABLE + r"|^$", description="empty: no canary check")
    max_gap: Duration = Field(default=timedelta(seconds=5),
                              description="a larger gap between canary rows before the failure means lost rows")
    window: Duration = Field(default=timedelta(minutes=10), description="how far back the rows are checked")


class DatabaseFailoverTarget(PolicyModel):
    """One primary, its replica, the lag bound and how consumers are repointed."""

    primary: DatabaseServer
    replica: DatabaseServer
    max_lag_bytes: int = Field(
        default=0, ge=0, description="promote only if the old primary's end of WAL minus the replica's replay "
                                     "position is at most this; unknown counts as over")
    probes: int = Field(default=3, ge=1, le=20, description="failed connections before the primary counts as down")
    probe_interval: Duration = Field(default=timedelta(seconds=1))
    fence: LocalFencer = Field(default_factory=LocalFencer)
    repoint: list[Repoint] = Field(default_factory=list)
    canary: Canary = Field(default_factory=Canary)
    approvals: FailoverApprovals = Field(default_factory=FailoverApprovals)
    rejoin: Literal["pg_rewind", "none"] = Field(
        default="pg_rewind", description="pg_rewind the old primary and stream from the new one; none: leave it "
                                         "fenced for a human")
    promote_timeout: Duration = Field(default=timedelta(seconds=60))
    alerts: list[str] = Field(
        default_factory=lambda: [PRIMARY_DOWN_ALERT],
        description="alerts whose `database` label names this database start its failover through the relay")
