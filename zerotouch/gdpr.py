"""The policy's ``gdpr:`` section: where personal data lives, how a subject is found, how it is erased.

A data map per store (a PostgreSQL database or a MongoDB database, by connection *reference*):
for each table or collection holding personal data, its row key, how a subject is found in it
(directly by an identity key, or through a parent's rows by a reference), how it is erased
(delete the row, or null / pseudonymise named fields) and how long its rows are kept. Erasure
runs children before parents; `erasure_order` derives that order and refuses cycles, so
`zerotouch policy check` rejects a map that could not be erased safely.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerotouch.durations import Duration

DSR_WORKFLOW: Final = "DataSubjectRequestWorkflow"
DSR_WORKFLOW_ID_PREFIX: Final = "gdpr-"
OVERDUE_ALERT: Final = "DataSubjectRequestOverdue"
RISK_CLASS: Final = "data_deletion"
GRANT_ACTION: Final = "erase_subject"

IdentityKind = Literal["email", "user_id"]
FieldMethod = Literal["null", "pseudonymise"]
StoreKind = Literal["postgres", "mongodb"]

_NAME = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"
_CONNECTION = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ENV = r"^[A-Z_][A-Z0-9_]{0,100}$"
# A table (optionally schema-qualified) or a collection; a column or a dotted document path.
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62}){0,4}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _field_name(value: str) -> str:
    if not _FIELD.match(value):
        raise ValueError(f"{value!r} is not a plain column or document path")
    return value


class ParentLink(_Model):
    """Rows found through a parent's rows: this table's ``column`` holds the parent's ``parent_key``."""

    table: str = Field(description="the parent table or collection, in the same store")
    column: str = Field(description="this table's column (or document path) that references the parent")
    parent_key: str = Field(default="", description="the parent's referenced column (default: its key)")

    @field_validator("column", "parent_key")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _field_name(value) if value else value


class Erasure(_Model):
    """How a subject's rows go: deleted, or the named fields nulled or replaced by a keyed hash."""

    method: Literal["delete", "fields"] = "delete"
    fields: dict[str, FieldMethod] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_named(self) -> Erasure:
        if self.method == "fields" and not self.fields:
            raise ValueError("method fields needs the fields to null or pseudonymise")
        if self.method == "delete" and self.fields:
            raise ValueError("method delete removes the row; fields are for method fields")
        for name in self.fields:
            _field_name(name)
        return self


class Retention(_Model):
    """Rows older than ``keep`` (by ``column``) are erased by the scheduled retention run, in batches."""

    column: str
    keep: Duration
    erase: Erasure = Field(default_factory=Erasure)
    batch: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("column")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _field_name(value)


class TableMap(_Model):
    """One table or collection holding personal data."""

    key: str = Field(default="id", description="the row key kept in the subject manifest (MongoDB: `_id`)")
    identity: dict[IdentityKind, str] = Field(default_factory=dict,
                                              description="identity key → the column holding it")
    parent: ParentLink | None = None
    erase: Erasure = Field(default_factory=Erasure)
    export: list[str] | None = Field(default=None, description="columns an access request exports (default: all)")
    retention: Retention | None = None

    @model_validator(mode="after")
    def _findable(self) -> TableMap:
        if not self.identity and self.parent is None:
            raise ValueError("a subject must be findable: give `identity` columns or a `parent`")
        for name in [self.key, *self.identity.values(), *(self.export or [])]:
            _field_name(name)
        return self


class Store(_Model):
    """A database holding personal data, by connection reference (resolved by the data worker)."""

    kind: StoreKind
    connection: str = Field(pattern=_CONNECTION)
    database: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_-]+$")
    tables: dict[str, TableMap] = Field(min_length=1)

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, TableMap]) -> dict[str, TableMap]:
        bad = [name for name in value if not _TABLE.match(name)]
        if bad:
            raise ValueError(f"not a plain table or collection name: {bad}")
        return value

    @model_validator(mode="after")
    def _order(self) -> Store:
        self.erasure_order()
        return self

    def erasure_order(self) -> list[str]:
        """Children before parents (a child is found through its parent's rows, so it goes first);
        ValueError for a parent that is not in the map or a cycle."""
        for name, table in self.tables.items():
            if table.parent is not None and table.parent.table not in self.tables:
                raise ValueError(f"table {name}: parent {table.parent.table!r} is not in this store's map")
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise ValueError(f"the data map's references form a cycle: {' -> '.join([*path, name])}")
            state[name] = "visiting"
            for child, table in sorted(self.tables.items()):
                if table.parent is not None and table.parent.table == name:
                    visit(child, [*path, name])
            state[name] = "done"
            order.append(name)

        for name in sorted(self.tables):
            visit(name, [])
        return order

    def finding_order(self) -> list[str]:
        """Parents before children: a child's rows are found from its parent's rows (the reverse of erasure)."""
        return list(reversed(self.erasure_order()))


class GdprPolicy(_Model):
    """``gdpr:`` — the data map, the periods the law and the policy give, where requests are kept."""

    stores: dict[str, Store] = Field(default_factory=dict)
    grace: Duration = Field(default=timedelta(days=7), description="an erasure waits this long; `cancel` stops it")
    warn_before: Duration = Field(default=timedelta(days=7), description="warn this long before a request is due")
    approval_timeout: Duration = Field(default=timedelta(days=7), description="then the request escalates")
    storage: str = Field(default="", description="directory for requests, manifests and exports "
                                                 "(default: gdpr/ in the worker's state directory)")
    key_env: str = Field(default="ZEROTOUCH_GDPR_KEY", pattern=_ENV,
                         description="the variable holding the key that encrypts requests and exports and keys "
                                     "the subject pseudonyms (32 bytes, base64)")
    legal_holds: list[str] = Field(default_factory=list, description="subject pseudonyms no erasure may touch")

    @field_validator("stores")
    @classmethod
    def _store_names(cls, value: dict[str, Store]) -> dict[str, Store]:
        bad = [name for name in value if not re.match(_NAME, name)]
        if bad:
            raise ValueError(f"store names must be lower-case DNS labels: {bad}")
        return value


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months later, the month's last day when it is shorter
    (GDPR Art. 12(3): one month from receipt; 31 January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def dsr_workflow_id(request_id: str, cluster: str = "") -> str:
    return f"{DSR_WORKFLOW_ID_PREFIX}{cluster + '-' if cluster else ''}{request_id}"
