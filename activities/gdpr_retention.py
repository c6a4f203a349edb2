"""Data retention against the stores: one bounded batch of expired rows erased, or a dry run's count.

The engines (`PostgresSubjects.expire`, `MongoSubjects.expire`) own the queries; here the worker
supplies the pseudonym key (only when the table's retention pseudonymises a field, so a
delete-only retention needs no key) and turns the counts into models. Both activities return
table names and counts only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from temporalio import activity

from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.keepalive import keeps_alive
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.gdpr import Store
from zerotouch.gdpr_retention import COUNT_CAP, ExpireBatch, ExpiredRows
from zerotouch.gdpr_vault import VaultUnavailable, field_pseudonym, vault_key


class Expiring(Protocol):
    """What the PostgreSQL and MongoDB engines both offer for retention."""

    def expire(self, store: Store, table: str, before: datetime, *, dry_run: bool,
               pseudonymise: Callable[[str], str] | None = None) -> int: ...


class RetentionActivities:
    def __init__(self, *, postgres: PostgresSubjects, mongodb: MongoSubjects,
                 environ: Mapping[str, str] = os.environ) -> None:
        self._engines: dict[str, Expiring] = {"postgres": postgres, "mongodb": mongodb}
        self._environ = environ

    def _pseudonymise(self, batch: ExpireBatch) -> Callable[[str], str] | None:
        table = batch.store.tables.get(batch.table)
        retention = table.retention if table is not None else None
        if retention is None or "pseudonymise" not in retention.erase.fields.values():
            return None
        try:
            key = vault_key(self._environ, batch.key_env)
        except VaultUnavailable as error:
            if batch.dry_run:  # counting needs no key: the engines assume the default pseudonym shape
                return None
            raise errors.fail(str(error), errors.MISSING_SECRET) from None
        return lambda value: field_pseudonym(key, value)

    @activity.defn(name=names.EXPIRE_ROWS)
    @keeps_alive
    def expire_rows(self, batch: ExpireBatch) -> ExpiredRows:
        """Erase one batch (the table's `retention.batch`) of rows older than the cut-off; 0 when none are left."""
        rows = self._engines[batch.store.kind].expire(batch.store, batch.table, batch.before, dry_run=batch.dry_run,
                                                      pseudonymise=self._pseudonymise(batch))
        return ExpiredRows(store_name=batch.store_name, table=batch.table, rows=rows)

    @activity.defn(name=names.COUNT_EXPIRED_ROWS)
    @keeps_alive
    def count_expired_rows(self, batch: ExpireBatch) -> ExpiredRows:
        """Count the rows a run would erase now (up to COUNT_CAP), changing nothing."""
        rows = self._engines[batch.store.kind].expire(_counting(batch.store, batch.table), batch.table, batch.before,
                                                      dry_run=True, pseudonymise=self._pseudonymise(batch))
        return ExpiredRows(store_name=batch.store_name, table=batch.table, rows=rows, capped=rows >= COUNT_CAP)


def _counting(store: Store, table: str) -> Store:
    """The store with the table's batch widened to COUNT_CAP: a dry run's batch is then the whole count,
    by the engine's own query (the same rows a real run would erase, in the same order)."""
    mapped = store.tables.get(table)
    if mapped is None or mapped.retention is None:
        return store  # the engine refuses it with its own message
    retention = mapped.retention.model_copy(update={"batch": COUNT_CAP})
    tables = {**store.tables, table: mapped.model_copy(update={"retention": retention})}
    return store.model_copy(update={"tables": tables})
