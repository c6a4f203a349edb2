"""Kubernetes objects backups, proven by re-creating them in a ``verify-<id>`` namespace.

A backup is one ``<namespace>.json`` per namespace: its Deployments, Services, ConfigMaps and PVC
specs as they can be re-created (`kube_export.export`), and the Secrets its workloads reference
(names and keys; a Secret is never read). Verification creates ``verify-<id>``, re-creates every
object there (Secrets as labelled placeholders with empty values), compares kinds, names and counts
with the manifest, and waits until the restored Deployments have their replicas available
(adr-037's check counted the restored pods); the namespace is deleted in ``finally``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, VersionApi
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.backup_engine import SelfContainedBackups
from activities.kube_api import DEFAULT_REQUEST_TIMEOUT, KubeCaller
from activities.kube_export import (
    KINDS,
    VERIFICATION_LABEL,
    Kind,
    Obj,
    available,
    deployment_ready,
    desired,
    export,
    managed_by_cluster,
    object_name,
    placeholder_key_problems,
    placeholder_secret,
    pod_ready,
    referenced_secrets,
    scratch_copy,
    table_key,
    table_stat,
    verification_id,
    verify_namespaces,
)
from activities.kubernetes_actions import api_error
from zerotouch import activity_errors as errors
from zerotouch.backup_models import BackupManifest, CheckResult, EngineBackup, EngineVerification, TableStat
from zerotouch.backups import BackupTarget
from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name

CONFLICT_ATTEMPTS = 5
POLL_SECONDS = 0.2
FORMAT = "zerotouch.io/v1 NamespaceBackup"
RESTORED_KINDS = {kind.name for kind in KINDS if kind.name != "Secret"}  # Secrets are references
DEPLOYMENTS = next(kind for kind in KINDS if kind.name == "Deployment")


def file_for(namespace: str) -> str:
    return f"{require_namespace(namespace)}.json"


class KubernetesObjectsEngine(SelfContainedBackups):
    """Per-namespace object exports and their test restores, through the official client. Args:
        api_client: the cluster's client (the sandbox in tests); never created here.
        heartbeat: told progress while objects are re-created and while Deployments become available.
        ready_timeout: seconds the restored Deployments get to become available, and a namespace to go.
    """

    def __init__(self, api_client: ApiClient, heartbeat: Callable[[str], None] | None = None,
                 ready_timeout: float = 60) -> None:
        self._apis: dict[str, Any] = {"core": CoreV1Api(api_client), "apps": AppsV1Api(api_client)}
        self._core: CoreV1Api = self._apis["core"]
        self._version = VersionApi(api_client)
        self._call = KubeCaller(DEFAULT_REQUEST_TIMEOUT)
        self._heartbeat, self._ready_timeout = heartbeat or (lambda _detail: None), ready_timeout

    def _method(self, kind: Kind, verb: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self._apis[kind.api], f"{verb}_namespaced_{kind.suffix}")
        return method

    def _list(self, kind: Kind, namespace: str) -> list[Obj]:
        items = self._call(self._method(kind, "list"), namespace, what=f"{kind.name}s in {namespace}")["items"]
        return [item for item in items or [] if not managed_by_cluster(kind.name, item)]

    # --- backup ------------------------------------------------------------------------

    def backup(self, target: BackupTarget, into: Path) -> EngineBackup:
        """Write ``<namespace>.json`` per namespace, and count and hash each kind."""
        tables: dict[str, TableStat] = {}
        names: dict[str, list[str]] = {}  # what a restore must re-create, by the manifest rather than the file
        for namespace in target.namespaces:
            require_namespace(namespace)
            self._call(self._core.read_namespace, namespace, what=f"namespace {namespace}")  # 404: not there
            items: list[Obj] = []
            secrets: list[Obj] = []
            for kind in KINDS:
                if kind.name == "Secret":
                    continue  # never read: the workloads' references are recorded below
                found = sorted(self._list(kind, namespace), key=object_name)
                names[table_key(namespace, kind.name)] = [object_name(obj) for obj in found]
                exported = [export(kind.name, obj) for obj in found]
                items.extend(exported)
                tables[table_key(namespace, kind.name)] = table_stat(exported)
            secrets = referenced_secrets([o for o in items if o.get("kind") == "Deployment"], namespace)
            names[table_key(namespace, "Secret")] = [object_name(ref) for ref in secrets]
            tables[table_key(namespace, "Secret")] = table_stat(secrets)
            document = {"format": FORMAT, "namespace": namespace, "items": items, "secrets": secrets}
            (into / file_for(namespace)).write_text(json.dumps(document, indent=1, sort_keys=True))
            self._heartbeat(f"backup {namespace}: {len(items) + len(secrets)} objects")
        server = self._server_version()
        return EngineBackup(
            method="objects",
            source={"namespaces": ",".join(target.namespaces), "server_version": server},
            tool_versions={"kubernetes": server},
            tables=tables,
            details={"kinds": [kind.name for kind in KINDS], "files": [file_for(n) for n in target.namespaces],
                     "secrets": "the ones the workloads reference: name and keys; never read", "objects": names},
        )

    # --- verification ------------------------------------------------------------------

    def verify(self, target: BackupTarget, manifest: BackupManifest, data: Path, *, scratch: Path,
               recovery_target_time: datetime | None) -> EngineVerification:
        """Re-create every object in ``verify-<id>``, compare with the manifest, wait for Deployments, delete."""
        del recovery_target_time  # an export has one recovery point: itself
        mapping = self._scratch_namespaces(target, scratch)
        checks: list[CheckResult] = []
        durations: dict[str, float] = {}
        owned: dict[str, str] = {}  # source → scratch namespace this attempt created or re-used as its own
        started = time.monotonic()
        try:
            documents = {source: self._read_file(data, source, manifest, checks) for source in mapping}
            for source, document in documents.items():
                if document is not None:
                    self._ensure_namespace(mapping[source], verification_id(scratch.name))
                    owned[source] = mapping[source]
                    checks.append(self._restore(document, mapping[source]))
            durations["restore"] = time.monotonic() - started
            for source, namespace in owned.items():
                checks.extend(self._compare(source, namespace, documents[source] or {}, manifest))
            waited = time.monotonic()
            checks.extend(self._wait_available(source, namespace) for source, namespace in owned.items())
            durations["available"] = time.monotonic() - waited
            rto = time.monotonic() - started
        finally:
            cleaned = time.monotonic()
            for namespace in owned.values():  # never one that is not ours
                self._delete_namespace(namespace, wait=True)
            durations["cleanup"] = time.monotonic() - cleaned
        return EngineVerification(
            checks=checks, rto_seconds=rto, rpo_seconds=None, durations=durations,
            recovery_target="the export itself (objects as listed at backup time; no point-in-time recovery, "
                            "so RPO is not measured for Kubernetes objects)",
            tool_versions={"kubernetes": self._server_version()},
        )

    def _server_version(self) -> str:
        return str(self._call(self._version.get_code, what="server version").get("gitVersion", "unknown"))

    def _scratch_namespaces(self, target: BackupTarget, scratch: Path) -> dict[str, str]:
        mapping = verify_namespaces(scratch.name, [require_namespace(n) for n in target.namespaces])
        for source, restored in mapping.items():
            require_namespace(restored)
            if restored in target.namespaces:
                raise InvalidName(f"the scratch namespace {restored} is a backed-up namespace; rename {source}")
        return mapping

    def _read_file(self, data: Path, namespace: str, manifest: BackupManifest,
                   checks: list[CheckResult]) -> dict[str, Any] | None:
        """The file must parse, hold valid names, and match the manifest's counts and hashes kind by kind."""
        name = file_for(namespace)
        try:
            document = json.loads((data / name).read_text())
            items, secrets = document["items"], document["secrets"]
            for obj in items:
                if obj.get("kind") not in RESTORED_KINDS or not isinstance(obj.get("metadata"), dict):
                    raise ValueError(f"an item of kind {obj.get('kind')!r} is not one this backup restores")
                require_object_name(object_name(obj), obj["kind"])
            for ref in secrets:
                require_object_name(object_name(ref), "secret")
                if not isinstance(ref.get("keys"), list) or not isinstance(ref.get("type"), str):
                    raise ValueError(f"secret reference {object_name(ref)!r} lacks its keys or type")
        except (OSError, ValueError, KeyError, TypeError, InvalidName) as error:
            checks.append(CheckResult(name=f"backup file {name}", ok=False, output=f"unusable: {error}"))
            return None
        problems = []
        for kind in KINDS:
            found = secrets if kind.name == "Secret" else [o for o in items if o.get("kind") == kind.name]
            recorded = manifest.tables.get(table_key(namespace, kind.name))
            if recorded is None or table_stat(found) != recorded:
                problems.append(f"{kind.name}: {len(found)} objects in the file, "
                                f"{recorded.rows if recorded else 'none'} in the manifest, or their hash differs")
        summary = f"{len(items) + len(secrets)} objects match the manifest"
        checks.append(CheckResult(name=f"backup file {name}", ok=not problems, output="; ".join(problems) or summary))
        return {"items": items, "secrets": secrets}

    def _restore(self, document: dict[str, Any], namespace: str) -> CheckResult:
        """Create every object in the scratch namespace; the API's refusals become a failed check."""
        refused: list[str] = []
        by_kind = {kind.name: kind for kind in KINDS}
        objects = [*(placeholder_secret(ref) for ref in document["secrets"]), *document["items"]]
        for obj in sorted(objects, key=lambda o: [k.name for k in KINDS].index(o["kind"])):
            body = scratch_copy(obj, namespace)
            error = self._create_or_replace(by_kind[body["kind"]], namespace, body)
            if error:
                refused.append(f"{body['kind']} {object_name(body)}: {error}")
            self._heartbeat(f"restore into {namespace}: {body['kind']} {object_name(body)}")
        return CheckResult(name=f"restore into {namespace}", ok=not refused,
                           output="; ".join(refused) or f"{len(objects)} objects created")

    def _ensure_namespace(self, namespace: str, label: str) -> None:
        """Create the scratch namespace; our own leftover (same label) is re-used, one being deleted waited for."""
        body: Obj = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {VERIFICATION_LABEL: label}}}
        deadline = time.monotonic() + self._ready_timeout
        while True:
            try:
                create: Callable[..., Any] = self._core.create_namespace  # a plain dict body, as the API takes
                create(body, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
                return
            except ApiException as error:
                if error.status != 409:
                    raise api_error(error, f"namespace {namespace}") from None
            existing = self._call(self._core.read_namespace, namespace, what=f"namespace {namespace}")
            if (existing["metadata"].get("labels") or {}).get(VERIFICATION_LABEL) != label:
                raise InvalidName(f"namespace {namespace} exists and is not this verification's; "
                                  "delete it or rename it")
            if not existing["metadata"].get("deletionTimestamp"):
                return  # a killed attempt of this same verification: its objects are replaced below
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {namespace} still terminating after {self._ready_timeout:.0f}s")
            time.sleep(POLL_SECONDS)

    def _create_or_replace(self, kind: Kind, namespace: str, body: Obj) -> str:
        """Create; if it exists (an earlier attempt), read-modify-write it, again on 409 Conflict.
        Returns the API's reason when it refuses the object, "" when it is in place."""
        name = object_name(body)
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                self._method(kind, "create")(namespace, body, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
                return ""
            except ApiException as error:
                if error.status != 409:
                    return _refusal(error, f"{kind.name} {namespace}/{name}")
            try:
                current = self._call(self._method(kind, "read"), name, namespace, what=f"{kind.name} {name}")
            except ApplicationError as error:
                if error.type == errors.NOT_FOUND:
                    continue  # deleted meanwhile: create it on the next pass
                raise
            body = {**body, "metadata": {**body["metadata"],
                                         "resourceVersion": current["metadata"]["resourceVersion"]}}
            try:
                self._method(kind, "replace")(name, namespace, body, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
                return ""
            except ApiException as error:
                if error.status != 409:
                    return _refusal(error, f"{kind.name} {namespace}/{name}")
        return f"still conflicting after {CONFLICT_ATTEMPTS} attempts"

    def _compare(self, source: str, namespace: str, document: dict[str, Any],
                 manifest: BackupManifest) -> list[CheckResult]:
        """Per kind: the restored names are exactly the backed-up ones, as many as the manifest counted."""
        results = []
        for kind in KINDS:
            began = time.monotonic()
            key = table_key(source, kind.name)
            backed = document["secrets"] if kind.name == "Secret" else \
                [o for o in document["items"] if o.get("kind") == kind.name]
            restored = self._list(kind, namespace)
            recorded = (manifest.details.get("objects") or {}).get(key)
            wanted = sorted(recorded if recorded is not None else map(object_name, backed))
            got = sorted(map(object_name, restored))
            rows = manifest.tables[key].rows
            problems = []
            if got != wanted or len(got) != rows:
                missing, extra = sorted(set(wanted) - set(got)), sorted(set(got) - set(wanted))
                problems.append(f"{len(got)} restored, {rows} backed up; missing {missing}, unexpected {extra}")
            if kind.name == "Secret":
                problems += placeholder_key_problems(backed, restored)
            results.append(CheckResult(name=f"restored {table_key(source, kind.name)}", ok=not problems,
                                       output="; ".join(problems) or f"{len(got)} {kind.name} objects: {got}",
                                       seconds=time.monotonic() - began))
        return results

    def _wait_available(self, source: str, namespace: str) -> CheckResult:
        """Poll until every restored Deployment has its replicas available, counting ready pods as adr-037 did."""
        began = time.monotonic()
        deadline = began + self._ready_timeout
        while True:
            deployments = self._list(DEPLOYMENTS, namespace)
            waiting = [f"{object_name(d)} {available(d)}/{desired(d)}" for d in deployments if not deployment_ready(d)]
            pods = self._call(self._core.list_namespaced_pod, namespace, what=f"pods in {namespace}")["items"] or []
            ready_pods = sum(1 for pod in pods if pod_ready(pod))
            wanted_pods = sum(desired(d) for d in deployments)
            if not waiting and ready_pods >= wanted_pods:
                return CheckResult(name=f"deployments available {source}", ok=True, seconds=time.monotonic() - began,
                                   output=f"{len(deployments)} deployments available, {ready_pods} pods ready")
            if time.monotonic() > deadline:
                return CheckResult(name=f"deployments available {source}", ok=False,
                                   seconds=time.monotonic() - began,
                                   output=f"not available after {self._ready_timeout:.0f}s: {waiting}; "
                                          f"{ready_pods} of {wanted_pods} pods ready")
            self._heartbeat(f"waiting for {namespace}: {waiting or f'{ready_pods}/{wanted_pods} pods'}")
            time.sleep(POLL_SECONDS)

    def _delete_namespace(self, namespace: str, *, wait: bool) -> None:
        try:
            self._core.delete_namespace(namespace, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status != 404:
                raise api_error(error, f"namespace {namespace}") from None
        deadline = time.monotonic() + self._ready_timeout
        while wait and time.monotonic() < deadline:
            try:
                self._core.read_namespace(namespace, _request_timeout=DEFAULT_REQUEST_TIMEOUT)
            except ApiException as error:
                if error.status == 404:
                    return
                raise api_error(error, f"namespace {namespace}") from None
            time.sleep(POLL_SECONDS)

    def sweep(self, target: BackupTarget, scratch: Path) -> None:
        """Delete the ``verify-<id>`` namespaces a killed verification left, and wait until they are gone."""
        label = verification_id(scratch.name)
        for namespace in self._scratch_namespaces(target, scratch).values():
            try:
                existing = self._call(self._core.read_namespace, namespace, what=f"namespace {namespace}")
            except ApplicationError as error:
                if error.type == errors.NOT_FOUND:
                    continue  # nothing left behind
                raise
            if (existing["metadata"].get("labels") or {}).get(VERIFICATION_LABEL) == label:
                self._delete_namespace(namespace, wait=True)


def _refusal(error: ApiException, what: str) -> str:
    """The API's own message (which field, why) when it refuses the object itself; other errors are raised
    as activity errors (retryable when the API was unavailable, not when forbidden)."""
    if error.status not in (400, 404, 422):
        raise api_error(error, what) from None
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except ValueError:
        message = ""
    return f"HTTP {error.status} {message or error.reason}".strip()

