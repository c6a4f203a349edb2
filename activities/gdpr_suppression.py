"""Erased subjects stay erased: after a database restore, erase every suppressed subject again.

A backup taken before an erasure brings the subject's rows back when it is restored. The request
vault keeps every erased subject's identity (encrypted) on its suppression list; re-applying the
list resolves each of them in the restored store and erases what it finds, with the same data map
and the same keyed hash as the original erasure. Only counts come back, never a subject or a row.

The manifests here are resolved afresh and never written to the vault: a request's manifest is the
proof of what that request found, and a restore is not that request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from temporalio import activity

from activities.gdpr import SubjectStore
from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.keepalive import keeps_alive
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.gdpr import Store
from zerotouch.gdpr_models import TableCount
from zerotouch.gdpr_suppression_models import ReapplyResult, ReapplyStep
from zerotouch.gdpr_vault import RequestVault, VaultError, VaultUnavailable


def erase_suppressed(vault: RequestVault, engine: SubjectStore, store: Store,
                     pseudonymise: Callable[[str], str]) -> dict[str, int]:
    """Erase every suppressed subject's rows in ``store``; rows erased now per table (all zero on a rerun)."""
    erased = dict.fromkeys(store.erasure_order(), 0)
    for subject in vault.suppressed_subjects():
        manifest = engine.resolve(store, subject)
        if not any(manifest.values()):
            continue  # nothing came back for this subject: no write session for nothing
        for table, count in engine.erase(store, manifest, pseudonymise).items():
            erased[table] = erased.get(table, 0) + count
    return erased


class SuppressionActivities:
    """Re-applying the suppression list, with the same engines and vault the request activities use."""

    def __init__(self, *, postgres: PostgresSubjects, mongodb: MongoSubjects, state_dir: Path,
                 environ: Mapping[str, str] = os.environ) -> None:
        self._engines: dict[str, SubjectStore] = {"postgres": postgres, "mongodb": mongodb}
        self._state_dir, self._environ = state_dir, environ

    @activity.defn(name=names.REAPPLY_SUPPRESSION)
    @keeps_alive
    def reapply_suppression(self, step: ReapplyStep) -> ReapplyResult:
        """Erase again, in one store, every erased subject a restore brought back; counts per table."""
        try:
            vault = RequestVault.open(step.vault, self._state_dir, self._environ)
        except VaultUnavailable as error:
            raise errors.fail(str(error), errors.MISSING_SECRET) from None
        try:
            subjects = len(vault.suppressed())
            # the vault's key, so a field gets the same keyed hash the request's erasure gave it
            erased = erase_suppressed(vault, self._engines[step.store.kind], step.store, vault.field_pseudonym)
        except VaultError as error:  # a suppressed identity that fails authentication: retrying cannot fix it
            raise errors.fail(str(error), errors.INVALID) from None
        return ReapplyResult(store_name=step.store_name, subjects=subjects, tables=[
            TableCount(table=table, erased=erased.get(table, 0), method=step.store.tables[table].erase.method)
            for table in step.store.erasure_order()])
