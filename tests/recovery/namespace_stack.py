"""What the namespace restore tests share: every worker on the dev server, the sandbox, a real object backup.

Each stack has its own cluster scope (task queues), repository, ledger and policy file, so tests
sharing the session's dev server never see each other's workflows, backups or records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowHandle

from sandbox import SandboxCluster
from tests.support.kube import retry_on_conflict
from tests.support.policies import fast_policy
from tests.support.waiting import eventually
from workers.run import build_workers
from zerotouch.backup_models import BackupSummary
from zerotouch.backups import BACKUP_WORKFLOW, BackupArgs, BackupInput
from zerotouch.ledger_models import LedgerRecord
from zerotouch.ledger_store import open_ledger
from zerotouch.names import ALL_QUEUES, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy
from zerotouch.recovery import (
    NAMESPACE_RESTORE_WORKFLOW,
    QUERY_RECOVERY_STATUS,
    NamespaceRestoreInput,
    RecoveryStatus,
    recovery_id,
)
from zerotouch.settings import WorkerSettings

SOURCE = "shop"
TARGET = "shop-objects"


@dataclass
class RestoreStack:
    client: Client
    cluster: str
    root: Path
    sandbox: SandboxCluster
    api: k8s.ApiClient

    @property
    def policy_path(self) -> Path:
        return self.root / "policy.yaml"

    @property
    def core(self) -> Any:  # Any: the tests hand the client plain dicts, as kubectl would
        return k8s.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return k8s.AppsV1Api(self.api)

    def records(self) -> list[LedgerRecord]:
        return [r for r in open_ledger(f"sqlite:///{self.root / 'ledger.db'}").all() if r.kind == "namespace_restore"]

    async def backup(self, *, verify: bool = False) -> BackupSummary:
        handle = await self.client.start_workflow(
            BACKUP_WORKFLOW, BackupInput(cluster=self.cluster, scheduled_time=datetime.now(UTC),
                                         arguments=BackupArgs(target=TARGET, verify=verify)),
            id=f"backup-{self.cluster}-{uuid.uuid4().hex[:6]}", task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))
        return BackupSummary.model_validate(await handle.result())

    async def start(self, *, into: str = "", backup_id: str = "", dry_run: bool = False,
                    requested_by: str = "alice") -> WorkflowHandle[Any, Any]:
        params = NamespaceRestoreInput(cluster=self.cluster, namespace=SOURCE, backup_target=TARGET,
                                       backup_id=backup_id, into_namespace=into, dry_run=dry_run,
                                       requested_by=requested_by)
        workflow_id = recovery_id("namespace", self.cluster, into or SOURCE)
        return await self.client.start_workflow(
            NAMESPACE_RESTORE_WORKFLOW, params, id=workflow_id + ("-dry-run" if dry_run else ""),
            task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))

    def objects(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every Deployment, Service and ConfigMap of ``namespace`` by "Kind name", as the API returns them."""
        found: dict[str, dict[str, Any]] = {}
        for kind, method in (("Deployment", self.apps.list_namespaced_deployment),
                             ("Service", self.core.list_namespaced_service),
                             ("ConfigMap", self.core.list_namespaced_config_map)):
            for item in json.loads(method(namespace, _preload_content=False).data)["items"]:
                found[f"{kind} {item['metadata']['name']}"] = item
        return found

    def versions(self, namespace: str) -> dict[str, str]:
        return {ref: obj["metadata"]["resourceVersion"] for ref, obj in self.objects(namespace).items()}


async def status_of(handle: WorkflowHandle[Any, Any]) -> RecoveryStatus | None:
    raw = await handle.query(QUERY_RECOVERY_STATUS)
    return RecoveryStatus.model_validate(raw) if raw else None


async def wait_stage(handle: WorkflowHandle[Any, Any], stage: str, timeout: float = 90) -> RecoveryStatus:
    async def probe() -> RecoveryStatus | None:
        status = await status_of(handle)
        return status if status is not None and status.stage == stage else None
    return await eventually(probe, timeout=timeout, interval=0.2, what=f"the restore reaching {stage}")


def write_policy(root: Path, **namespaces: Any) -> Path:
    path = fast_policy(root / "policy.yaml")
    document = yaml.safe_load(path.read_text())
    backups = document.setdefault("backups", {})
    backups["repository"] = str(root / "repository")
    backups["targets"] = [*backups.get("targets", []), {"name": TARGET, "engine": "kubernetes", "namespaces": [SOURCE]}]
    document.setdefault("recovery", {})["namespaces"] = {"into": [SOURCE], "rollout_timeout": "60s", **namespaces}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(path)
    return path


def seed_objects(core: Any) -> None:
    """A Service and a ConfigMap beside the demo's Deployments, so every kind a backup writes is there."""
    core.create_namespaced_service(SOURCE, {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    core.create_namespaced_config_map(SOURCE, {"metadata": {"name": "web-config"}, "data": {"LOG_LEVEL": "info"}})


def damage(stack: RestoreStack) -> None:
    """What an accident does after the backup: a value changed, a scale-down, a Service gone; plus an addition."""
    def change_config() -> None:
        config = stack.core.read_namespaced_config_map("web-config", SOURCE)
        config.data["LOG_LEVEL"] = "debug"
        stack.core.replace_namespaced_config_map("web-config", SOURCE, config)

    def scale_down() -> None:
        deployment = stack.apps.read_namespaced_deployment("checkout", SOURCE)
        deployment.spec.replicas = 1
        stack.apps.replace_namespaced_deployment("checkout", SOURCE, deployment)

    retry_on_conflict(change_config)
    retry_on_conflict(scale_down)
    stack.core.delete_namespaced_service("web", SOURCE)
    stack.core.create_namespaced_config_map(SOURCE, {"metadata": {"name": "added-later"}, "data": {"k": "v"}})


@contextlib.asynccontextmanager
async def restore_stack(client: Client, sandbox: SandboxCluster, root: Path,
                        **namespaces: Any) -> AsyncIterator[RestoreStack]:
    """The workers of every queue for a fresh cluster scope, on the sandbox, stopped even on failure."""
    cluster = f"ns{uuid.uuid4().hex[:8]}"
    policy_path = write_policy(root, **namespaces)
    settings = WorkerSettings(kubernetes_url=sandbox.url, prometheus_url=None,
                              ledger_url=f"sqlite:///{root / 'ledger.db'}", policy_path=str(policy_path),
                              state_dir=str(root), backup_repository=str(root / "repository"),
                              scratch_dir=str(root / "scratch"))
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.ApiClient(configuration)
    seed_objects(k8s.CoreV1Api(api))
    try:
        with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
            async with httpx.AsyncClient(timeout=10.0) as http:
                workers = build_workers(client, ALL_QUEUES, settings, http=http, executor=executor, cluster=cluster)
                tasks = [asyncio.create_task(worker.run()) for worker in workers]
                try:
                    yield RestoreStack(client, cluster, root, sandbox, api)
                finally:
                    await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
                    await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        api.close()
