"""Data-subject requests against the stores: resolve, export, erase, re-query, suppress.

Every activity reads the subject from the request vault (never from its input), works from the
manifest kept there, and returns counts and hashes. The manifest is resolved once, before anything
is erased, and never replaced: a resumed or retried erasure works from the rows it found first,
not from a re-query of stores whose upstream rows it may already have deleted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from temporalio import activity

from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.keepalive import keeps_alive
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.gdpr import Store
from zerotouch.gdpr_models import (
    ExportManifest,
    StoreErased,
    StoreExported,
    StoreManifest,
    StoreRequery,
    StoreStep,
    Subject,
    SuppressStep,
    TableCount,
    VaultRef,
)
from zerotouch.gdpr_vault import RequestVault, VaultUnavailable

Manifest = dict[str, list[Any]]


class SubjectStore(Protocol):
    """What the PostgreSQL and MongoDB engines both offer."""

    def resolve(self, store: Store, subject: Subject) -> Manifest: ...
    def export(self, store: Store, manifest: Manifest) -> dict[str, list[dict[str, Any]]]: ...
    def erase(self, store: Store, manifest: Manifest, pseudonymise: Any) -> dict[str, int]: ...
    def count(self, store: Store, subject: Subject) -> int: ...


class GdprActivities:
    def __init__(self, *, postgres: PostgresSubjects, mongodb: MongoSubjects, state_dir: Path,
                 environ: Mapping[str, str] = os.environ) -> None:
        self._engines: dict[str, SubjectStore] = {"postgres": postgres, "mongodb": mongodb}
        self._state_dir, self._environ = state_dir, environ

    def _vault(self, ref: VaultRef) -> RequestVault:
        try:
            return RequestVault.open(ref, self._state_dir, self._environ)
        except VaultUnavailable as error:
            raise errors.fail(str(error), errors.MISSING_SECRET) from None

    def _manifest(self, vault: RequestVault, step: StoreStep) -> Manifest:
        manifest = vault.manifest(step.request_id, step.store_name)
        if manifest is None:
            raise errors.fail(f"request {step.request_id} has no manifest for store {step.store_name}: resolve it "
                              "first", errors.INVALID)
        return manifest

    @activity.defn(name=names.RESOLVE_SUBJECT)
    @keeps_alive
    def resolve_subject(self, step: StoreStep) -> StoreManifest:
        """Find the subject's rows in one store and keep their keys in the vault (once per request and store)."""
        vault = self._vault(step.vault)
        manifest = vault.manifest(step.request_id, step.store_name)
        if manifest is None:
            manifest = self._engines[step.store.kind].resolve(step.store, vault.subject(step.request_id))
        digest = vault.write_manifest(step.request_id, step.store_name, manifest)
        return StoreManifest(store_name=step.store_name, sha256=digest, tables=[
            TableCount(table=table, matched=len(manifest.get(table, [])), method=step.store.tables[table].erase.method)
            for table in step.store.erasure_order()])

    @activity.defn(name=names.EXPORT_SUBJECT)
    @keeps_alive
    def export_subject(self, step: StoreStep) -> StoreExported:
        """Export the manifest's rows of one store, encrypted in the vault; returns where and their hash."""
        vault = self._vault(step.vault)
        rows = self._engines[step.store.kind].export(step.store, self._manifest(vault, step))
        location, digest = vault.write_export(step.request_id, step.store_name, rows)
        return StoreExported(store_name=step.store_name, location=location, sha256=digest,
                             rows=sum(len(table) for table in rows.values()))

    @activity.defn(name=names.WRITE_EXPORT_MANIFEST)
    def write_export_manifest(self, manifest: ExportManifest) -> str:
        """Write the exports' manifest (per store: file, rows, sha256); returns its own sha256."""
        entries = {s.store_name: {"file": Path(s.location).name, "rows": s.rows, "sha256": s.sha256}
                   for s in manifest.stores}
        return self._vault(manifest.vault).write_export_manifest(manifest.request_id, entries)[1]

    @activity.defn(name=names.ERASE_SUBJECT)
    @keeps_alive
    def erase_subject(self, step: StoreStep) -> StoreErased:
        """Erase the subject's rows of one store, children before parents; a rerun erases what is left."""
        vault = self._vault(step.vault)
        engine = self._engines[step.store.kind]
        # The kept manifest reaches rows whose parents a first attempt already erased; the fresh query
        # reaches rows written since the manifest (an order placed during the grace period).
        kept, fresh = self._manifest(vault, step), engine.resolve(step.store, vault.subject(step.request_id))
        rows = {table: list(dict.fromkeys([*kept.get(table, []), *fresh.get(table, [])]))
                for table in {*kept, *fresh}}
        erased = engine.erase(step.store, rows, vault.field_pseudonym)
        return StoreErased(store_name=step.store_name, already=not any(erased.values()), tables=[
            TableCount(table=table, erased=erased.get(table, 0), method=step.store.tables[table].erase.method)
            for table in step.store.erasure_order()])

    @activity.defn(name=names.REQUERY_SUBJECT)
    @keeps_alive
    def requery_subject(self, step: StoreStep) -> StoreRequery:
        """The access query again, after erasure: how many rows still match the subject."""
        vault = self._vault(step.vault)
        matches = self._engines[step.store.kind].count(step.store, vault.subject(step.request_id))
        return StoreRequery(store_name=step.store_name, matches=matches)

    @activity.defn(name=names.SUPPRESS_SUBJECT)
    def suppress_subject(self, step: SuppressStep) -> None:
        """Put the erased subject on the suppression list, so a restore of an older backup erases it again."""
        self._vault(step.vault).suppress(step.subject, step.request_id)
