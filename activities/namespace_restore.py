"""Namespace restore activities (zerotouch-kubernetes queue): plan the diff, apply the approved plan, verify.

Each one re-reads the backup from the repository (checked against its manifest), so object bodies
never travel through workflow history. `apply` writes exactly what was planned: an object to
overwrite must still have the digest the approver saw, an object to create must still be absent
(or already be the backed-up one: a retry), and every replace carries the live resourceVersion and
is re-read and re-checked on 409.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller
from activities.kube_export import KINDS, Kind, Obj, deployment_ready, managed_by_cluster, object_name
from activities.kubernetes_actions import api_error
from activities.namespace_restore_diff import comparable, digest, field_diff, in_namespace, replacement
from activities.namespace_restore_source import NamespaceBackup, read_backup
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.activity_errors import fail
from zerotouch.namespace_restore_models import (
    ChangeAction,
    ObjectChange,
    RestoreApplied,
    RestoreApply,
    RestoreCheck,
    RestorePlan,
    RestoreSource,
    RestoreVerified,
)

CONFLICT_ATTEMPTS = 5
RESTORE_LABEL = "zerotouch.io/restored-by"
_KIND = {kind.name: kind for kind in KINDS}
_ORDER = [kind.name for kind in KINDS]  # ConfigMaps and claims before the Deployments that mount them


class NamespaceRestoreActivities:
    """Args:
        api_client: the cluster's client (the sandbox in tests); never created here.
        repository: the backup repository the worker uses when the policy names none.
        state_dir: where a relative repository location is resolved.
    """

    def __init__(self, *, api_client: ApiClient, repository: str, state_dir: Path) -> None:
        self._apis: dict[str, Any] = {"core": CoreV1Api(api_client), "apps": AppsV1Api(api_client)}
        self._core: CoreV1Api = self._apis["core"]
        self._call = KubeCaller(DEFAULT_REQUEST_TIMEOUT)
        self._repository, self._state_dir = repository, state_dir

    def _method(self, kind: Kind, verb: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self._apis[kind.api], f"{verb}_namespaced_{kind.suffix}")
        return method

    def _backup(self, source: RestoreSource) -> NamespaceBackup:
        return read_backup(source.repository or self._repository, self._state_dir, source)

    def _exists(self, namespace: str) -> bool:
        try:
            self._call(self._core.read_namespace, namespace, what=f"namespace {namespace}")
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return False
            raise
        return True

    def _read(self, kind: Kind, name: str, namespace: str) -> Obj | None:
        try:
            return self._call(self._method(kind, "read"), name, namespace, what=f"{kind.name} {namespace}/{name}")
        except ApplicationError as error:
            if error.type == errors.NOT_FOUND:
                return None
            raise

    def _wanted(self, backup: NamespaceBackup, into: str) -> list[Obj]:
        items = [in_namespace(obj, into) for obj in backup.items]
        return sorted(items, key=lambda o: (_ORDER.index(o["kind"]), object_name(o)))

    # --- plan ----------------------------------------------------------------------------

    @activity.defn(name=names.PLAN_NAMESPACE_RESTORE)
    @keeps_alive
    def plan_namespace_restore(self, source: RestoreSource) -> RestorePlan:
        """Compare the backup with the destination: per object create, unchanged or overwrite (with a diff)."""
        backup = self._backup(source)
        exists = self._exists(source.into)
        changes: list[ObjectChange] = []
        for wanted in self._wanted(backup, source.into):
            kind, name = _KIND[wanted["kind"]], object_name(wanted)
            live = self._read(kind, name, source.into) if exists else None
            action: ChangeAction = "create"
            live_digest, diff = "", []
            if live is not None:
                now = comparable(kind.name, live, source.into)
                live_digest = digest(now)
                diff = field_diff(now, wanted)
                action = "unchanged" if live_digest == digest(wanted) else "overwrite"
            changes.append(ObjectChange(kind=kind.name, name=name, action=action, backup_digest=digest(wanted),
                                        live_digest=live_digest, diff=diff if action == "overwrite" else []))
        planned = {(c.kind, c.name) for c in changes}
        left_alone = []
        for kind in KINDS if exists else ():
            if kind.name == "Secret":
                continue  # never listed: a restore neither reads nor writes Secrets
            listed = self._call(self._method(kind, "list"), source.into, what=f"{kind.name}s in {source.into}")
            left_alone += [f"{kind.name} {object_name(o)}" for o in listed.get("items") or []
                           if not managed_by_cluster(kind.name, o) and (kind.name, object_name(o)) not in planned]
        manifest = backup.record.manifest
        return RestorePlan(
            backup_id=manifest.id, backup_taken_at=manifest.started_at, backup_verified=backup.record.verified,
            destination_exists=exists, changes=changes, left_alone=left_alone,
            secrets=[f"{object_name(ref)} (keys {', '.join(ref.get('keys') or []) or 'unknown'})"
                     for ref in backup.secrets])

    # --- apply ---------------------------------------------------------------------------

    @activity.defn(name=names.APPLY_NAMESPACE_RESTORE)
    @keeps_alive
    def apply_namespace_restore(self, request: RestoreApply) -> RestoreApplied:
        """Create the missing objects and replace the changed ones, exactly as planned."""
        source = request.source
        backup = self._backup(source)
        wanted = {(o["kind"], object_name(o)): o for o in self._wanted(backup, source.into)}
        if request.create_namespace:
            self._ensure_namespace(source.into, request.token)
        done = RestoreApplied()
        for change in sorted(request.changes, key=lambda c: (_ORDER.index(c.kind), c.name)):
            body = wanted.get((change.kind, change.name))
            if body is None or digest(body) != change.backup_digest:
                raise fail(f"{change.ref} in backup {backup.record.manifest.id} is not what was planned",
                           errors.INVALID_TARGET)
            if change.action == "create":
                self._create(_KIND[change.kind], source.into, body, change, done)
            elif change.action == "overwrite":
                self._replace(_KIND[change.kind], source.into, body, change, done)
        return done

    def _ensure_namespace(self, namespace: str, token: str) -> None:
        body: Obj = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": namespace, "labels": {RESTORE_LABEL: token}}}
        try:
            create: Callable[..., Any] = self._core.create_namespace
            create(body, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status != 409:
                raise api_error(error, f"namespace {namespace}") from None
            # Ours from an earlier attempt, or created meanwhile: each object below is checked on its own.

    def _create(self, kind: Kind, namespace: str, body: Obj, change: ObjectChange, done: RestoreApplied) -> None:
        try:
            self._method(kind, "create")(namespace, body, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
            done.created.append(change.ref)
            return
        except ApiException as error:
            if error.status != 409:
                raise api_error(error, f"{change.ref} in {namespace}") from None
        live = self._read(kind, change.name, namespace)
        if live is not None and digest(comparable(kind.name, live, namespace)) == change.backup_digest:
            done.already.append(change.ref)  # created by an earlier attempt of this restore
            return
        raise fail(f"{change.ref} appeared in {namespace} after the plan; nothing of it was overwritten: "
                   "plan again", errors.INVALID_TARGET)

    def _replace(self, kind: Kind, namespace: str, body: Obj, change: ObjectChange, done: RestoreApplied) -> None:
        for _ in range(CONFLICT_ATTEMPTS):
            live = self._read(kind, change.name, namespace)
            if live is None:
                raise fail(f"{change.ref} was deleted from {namespace} after the plan; plan again",
                           errors.INVALID_TARGET)
            now = digest(comparable(kind.name, live, namespace))
            if now == change.backup_digest:
                done.already.append(change.ref)  # a retry after the replace landed
                return
            if now != change.live_digest:
                raise fail(f"{change.ref} in {namespace} changed after the plan was approved; nothing of it "
                           "was overwritten: plan again", errors.INVALID_TARGET)
            try:
                self._method(kind, "replace")(change.name, namespace, replacement(kind.name, body, live),
                                              _request_timeout=DEFAULT_REQUEST_TIMEOUT)
                done.replaced.append(change.ref)
                return
            except ApiException as error:
                if error.status != 409:
                    raise api_error(error, f"{change.ref} in {namespace}") from None
        raise fail(f"{change.ref} in {namespace} kept changing ({CONFLICT_ATTEMPTS} conflicts)", errors.CONFLICT)

    # --- verify --------------------------------------------------------------------------

    @activity.defn(name=names.VERIFY_NAMESPACE_RESTORE)
    @keeps_alive
    def verify_namespace_restore(self, check: RestoreCheck) -> RestoreVerified:
        """Every planned object now matches the backup, and the restored Deployments are available."""
        into = check.source.into
        deadline = time.monotonic() + check.timeout_seconds
        while True:
            digests: dict[str, str] = {}
            problems: list[str] = []
            for change in check.changes:
                live = self._read(_KIND[change.kind], change.name, into)
                digests[change.ref] = digest(comparable(change.kind, live, into)) if live else "absent"
                if digests[change.ref] != change.backup_digest:
                    problems.append(f"{change.ref} does not match the backup")
                elif change.kind == "Deployment" and live is not None and not deployment_ready(live):
                    problems.append(f"{change.ref} not available yet")
            if not problems or time.monotonic() > deadline:
                return RestoreVerified(ok=not problems, digests=digests, problems=problems)
            activity.heartbeat("; ".join(problems[:3]))
            time.sleep(check.poll_seconds)
