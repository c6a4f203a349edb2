"""Backups end to end: the real workers of every queue on the dev server, a real archiving PostgreSQL.

Each test gets its own cluster scope (task queues), repository, ledger and policy file, so tests
sharing the session's dev server never see each other's workflows or backups.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.backups.conftest_pg import create_app_database, scratch_root
from tests.support.pg_source import ArchivingSource, archiving_postgres
from workers.run import build_workers
from zerotouch.alerts import AlertEvent
from zerotouch.backup_alerts import failure_event, incident_for
from zerotouch.backup_models import BackupSummary, VerificationReport
from zerotouch.backup_repository import DirectoryRepository
from zerotouch.backups import (
    BACKUP_WORKFLOW,
    RETENTION_WORKFLOW,
    VERIFICATION_WORKFLOW,
    BackupArgs,
    BackupInput,
    BackupTarget,
    RetentionArgs,
    RetentionInput,
    VerifyArgs,
    VerifyInput,
)
from zerotouch.ledger_models import LedgerRecord
from zerotouch.ledger_store import open_ledger
from zerotouch.models import IncidentStatus
from zerotouch.names import ALL_QUEUES, QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.pg_canary import CanaryWriter
from zerotouch.policy import load_policy
from zerotouch.settings import WorkerSettings

T = TypeVar("T")


@pytest.fixture(scope="module")
def source() -> Iterator[ArchivingSource]:
    """One archiving PostgreSQL per module, with the `app` database."""
    with archiving_postgres(archive_timeout=1) as server:
        writer = CanaryWriter(create_app_database(server), table="zt_canary").start()  # the RPO probe
        try:
            yield server
        finally:
            writer.stop()


@dataclass
class BackupStack:
    client: Client
    cluster: str
    connection: str
    root: Path
    policy_path: Path
    source: ArchivingSource
    started: list[Any] = field(default_factory=list)  # handles of the workflows a test started, in order

    @property
    def repository(self) -> DirectoryRepository:
        return DirectoryRepository(self.root / "repository")

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.root / 'ledger.db'}"

    def target(self, name: str) -> BackupTarget:
        return load_policy(self.policy_path).backups.target(name)

    async def _start(self, workflow: str, params: Any, prefix: str) -> Any:
        handle = await self.client.start_workflow(
            workflow, params, id=f"{prefix}-{self.cluster}-{uuid.uuid4().hex[:8]}",
            task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))
        self.started.append(handle)
        return handle

    async def backup(self, target: str, *, verify: bool = False, at: datetime | None = None) -> BackupSummary:
        handle = await self._start(BACKUP_WORKFLOW, BackupInput(
            cluster=self.cluster, scheduled_time=at or datetime.now(UTC),
            arguments=BackupArgs(target=target, verify=verify)), "backup")
        return BackupSummary.model_validate(await handle.result())

    async def verify(self, target: str, backup_id: str = "", **args: Any) -> tuple[VerificationReport, str]:
        """The report and the workflow's failure message ('' when it succeeded)."""
        handle = await self._start(VERIFICATION_WORKFLOW, VerifyInput(
            cluster=self.cluster, arguments=VerifyArgs(target=target, backup_id=backup_id, **args)), "verify")
        failure = ""
        try:
            await handle.result()
        except WorkflowFailureError as error:
            failure = str(error.cause)
        report = await handle.query("report")
        return VerificationReport.model_validate(report), failure

    async def retention(self, *targets: str, dry_run: bool = False) -> dict[str, Any]:
        handle = await self._start(RETENTION_WORKFLOW, RetentionInput(
            cluster=self.cluster, arguments=RetentionArgs(targets=list(targets), dry_run=dry_run)), "retention")
        result: dict[str, Any] = await handle.result()
        return result

    def failure_incident_id(self, target: str, alertname: str) -> str:
        event: AlertEvent = failure_event(self.target(target), alertname=alertname, summary="", evidence="",
                                          at=datetime.now(UTC))
        return incident_for(event, load_policy(self.policy_path).group_by, self.cluster)

    async def incident(self, incident_id: str) -> IncidentStatus | None:
        try:
            status = await self.client.get_workflow_handle(incident_id).query(QUERY_STATUS)
        except RPCError:
            return None
        return IncidentStatus.model_validate(status)

    def evidence(self) -> list[LedgerRecord]:
        return [r for r in open_ledger(self.ledger_url).all() if r.kind == "backup_verification"]


def write_policy(path: Path, source: ArchivingSource, connection: str, repository: Path) -> Path:
    checks = {"tables": ["public.orders", "doomed"], "canary_table": "zt_canary",
              "assertions": [{"name": "orders restored", "sql": "SELECT count(*) >= 500 FROM orders"}]}
    path.write_text(yaml.safe_dump({
        "version": 1,
        "backups": {"repository": str(repository), "targets": [
            {"name": "app", "engine": "postgres", "method": "physical", "connection": connection,
             "database": "app", "wal_archive": str(source.archive), **checks,
             "retention": {"daily": 1, "weekly": 0, "monthly": 0}},
            {"name": "app-dump", "engine": "postgres", "method": "logical", "connection": connection,
             "database": "app", **checks, "objectives": {"rpo": "30d"},
             "retention": {"daily": 1, "weekly": 0, "monthly": 0}},
        ]},
    }))
    return path


@contextlib.asynccontextmanager
async def running_workers(client: Client, settings: WorkerSettings, cluster: str,
                          queues: tuple[str, ...] = ALL_QUEUES) -> AsyncIterator[None]:
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10.0) as http:
            workers = build_workers(client, queues, settings, http=http, executor=executor, cluster=cluster)
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            try:
                yield
            finally:
                await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
                await asyncio.gather(*tasks, return_exceptions=True)


def worker_settings(root: Path, policy_path: Path) -> WorkerSettings:
    return WorkerSettings(kubernetes_url="http://127.0.0.1:9", prometheus_url=None,
                          ledger_url=f"sqlite:///{root / 'ledger.db'}", policy_path=str(policy_path),
                          state_dir=str(root), backup_repository=str(root / "repository"),
                          scratch_dir=str(root / "scratch"))


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, source: ArchivingSource,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BackupStack]:
    cluster = f"b{uuid.uuid4().hex[:8]}"
    connection = f"wf-{cluster}"
    monkeypatch.setenv(f"ZEROTOUCH_PG_{connection.upper().replace('-', '_')}_DSN", source.server.admin_dsn)
    with scratch_root() as root:  # reachable by the scratch server's user (tmp_path is root-only)
        policy_path = write_policy(root / "policy.yaml", source, connection, root / "repository")
        async with running_workers(dev_env.client, worker_settings(root, policy_path), cluster):
            yield BackupStack(dev_env.client, cluster, connection, root, policy_path, source)
