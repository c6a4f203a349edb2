"""Reading a namespace's object backup for a restore: which backup, checked against its manifest, validated.

The backup file is untrusted input by the time it is restored (a disk, a copy, a person may have
changed it): its files must still match the manifest's sha256, and every object must be of a kind
the backup writes with a valid name, before anything of it reaches the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from activities.backup_kubernetes import RESTORED_KINDS, file_for
from activities.kube_export import Obj, object_name
from zerotouch import activity_errors as errors
from zerotouch.activity_errors import fail
from zerotouch.backup_models import BackupRecord
from zerotouch.backup_repository import BackupRepository, open_repository
from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.namespace_restore_models import RestoreSource


@dataclass(frozen=True)
class NamespaceBackup:
    record: BackupRecord
    items: list[Obj]  # Deployments, Services, ConfigMaps, PVCs as exported
    secrets: list[Obj]  # references only: name, type, keys


def choose(repository: BackupRepository, source: RestoreSource) -> BackupRecord:
    """The named backup, else the newest verified one: an unverified backup is never picked by default."""
    if source.backup_id:
        record = repository.find(source.backup_target, source.backup_id)
        if record is None:
            raise fail(f"no backup {source.backup_id!r} of target {source.backup_target!r}; "
                       "`zerotouch backups list` shows them", errors.NOT_FOUND)
        return record
    verified = [r for r in repository.backups(source.backup_target) if r.verified]
    if not verified:
        raise fail(f"target {source.backup_target!r} has no verified backup; verify one "
                   "(`zerotouch backups verify`) or name a backup explicitly", errors.NOT_FOUND)
    return verified[-1]


def read_backup(location: str, state_dir: Path, source: RestoreSource) -> NamespaceBackup:
    """The chosen backup's objects for ``source.namespace``; refused (non-retryable) when unusable."""
    try:
        require_namespace(source.namespace)
        require_namespace(source.into)
        repository = open_repository(location, state_dir)
        record = choose(repository, source)
    except (InvalidName, ValueError) as error:
        raise fail(str(error), errors.INVALID_TARGET) from None
    manifest = record.manifest
    if manifest.engine != "kubernetes":
        raise fail(f"backup {manifest.id} is a {manifest.engine} backup, not Kubernetes objects", errors.INVALID_TARGET)
    problems = repository.check_files(manifest)
    if problems:
        raise fail(f"backup {manifest.id} no longer matches its manifest: {'; '.join(problems[:3])}",
                   errors.INVALID_TARGET)
    path = repository.data_path(manifest.target, manifest.id) / file_for(source.namespace)
    if not path.is_file():
        raise fail(f"backup {manifest.id} holds no namespace {source.namespace}", errors.NOT_FOUND)
    try:
        document = json.loads(path.read_text())
        items, secrets = list(document["items"]), list(document["secrets"])
        for obj in items:
            if obj.get("kind") not in RESTORED_KINDS or not isinstance(obj.get("metadata"), dict):
                raise ValueError(f"an item of kind {obj.get('kind')!r} is not one a restore writes")
            require_object_name(object_name(obj), obj["kind"])
        for ref in secrets:
            require_object_name(object_name(ref), "secret")
    except (OSError, ValueError, KeyError, TypeError, InvalidName) as error:
        raise fail(f"backup {manifest.id}: {file_for(source.namespace)} is unusable: {error}",
                   errors.INVALID_TARGET) from None
    if len(items) > source.max_objects:
        raise fail(f"backup {manifest.id} holds {len(items)} objects for {source.namespace}; the policy's "
                   f"recovery.namespaces.max_objects is {source.max_objects}", errors.BOUND_EXCEEDED)
    return NamespaceBackup(record=record, items=items, secrets=secrets)
