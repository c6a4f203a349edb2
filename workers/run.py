"""Workers: one per task queue, each registering only what runs on that queue.

`zerotouch worker --queue NAME` runs one; the embedded default runs all four in
one process. Blocking client libraries run as sync activities on a thread pool
sized to the worker's activity slots, so they never stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.alertmanager_source import AlertmanagerActivities
from activities.backups import BackupActivities
from activities.cronjobs import CronJobActivities, ScheduleStateActivities
from activities.db_failover import DatabaseFailoverActivities
from activities.db_failover_record import DatabaseFailoverLedger
from activities.drill_faults import DrillFaultActivities, relay_of_state_dir
from activities.drill_pods import DrillPods
from activities.drill_postgres import DrillPostgresActivities
from activities.drills import DrillLedgerActivities, DrillWatchActivities
from activities.gdpr import GdprActivities
from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from activities.gdpr_retention import RetentionActivities
from activities.gdpr_suppression import SuppressionActivities
from activities.governor import GovernorActivities
from activities.incidents import IncidentActivities
from activities.kubernetes import KubernetesActivities
from activities.ledger import LedgerActivities
from activities.mongo_users import MongoUsers
from activities.namespace_restore import NamespaceRestoreActivities
from activities.namespace_restore_ledger import NamespaceRestoreLedger
from activities.node_leases import NodeLeaseActivities
from activities.node_provider import NodeProviderActivities, sandbox_provider
from activities.node_recovery import NodeRecoveryActivities
from activities.node_recovery_ledger import NodeRecoveryLedgerActivities
from activities.notify import NotifyActivities
from activities.oauth_clients import OktaClientSecrets
from activities.policy import PolicyActivities
from activities.postgres import PostgresActivities
from activities.postgres_roles import PostgresRoles
from activities.prometheus import PrometheusActivities
from activities.rotation_consumers import SecretConsumerActivities
from activities.rotation_secrets import RotationSecretActivities
from activities.rotation_targets import RotationTargetActivities
from activities.secret_consumers import SecretConsumers
from activities.secret_store import SecretStore
from activities.watchdog import WatchdogActivities
from activities.workloads import WorkloadActivities
from workers.backup_engines import engines
from workers.clients import kubernetes_api_client, mongo_url_for, postgres_dsn_for
from workflows.backup import BackupRetentionWorkflow, BackupVerificationWorkflow, BackupWorkflow
from workflows.cronjob_run import CronJobHandoverWorkflow, CronJobRunWorkflow
from workflows.db_failover import DatabaseFailoverWorkflow
from workflows.drill import DrillWorkflow
from workflows.gdpr import DataSubjectRequestWorkflow
from workflows.gdpr_retention import DataRetentionWorkflow
from workflows.governor import GovernorWorkflow
from workflows.incident import IncidentWorkflow
from workflows.namespace_restore import NamespaceRestoreWorkflow
from workflows.node_recovery import NodeRecoveryWorkflow
from workflows.scheduled_job import ScheduledJobWorkflow
from workflows.secret_rotation import ScheduledRotationWorkflow, SecretRotationWorkflow
from workflows.watchdog import WatchdogWorkflow
from zerotouch.activity_names import queue_of
from zerotouch.ledger_store import open_ledger
from zerotouch.models import PolicyRequest
from zerotouch.names import (
    ALL_QUEUES,
    BACKUP_QUEUE,
    DATA_QUEUE,
    KUBERNETES_QUEUE,
    OBSERVE_QUEUE,
    WAITS_QUEUE_OF,
    WORKFLOWS_QUEUE,
    queue_for,
)
from zerotouch.settings import WorkerSettings

WORKFLOWS: list[type] = [IncidentWorkflow, GovernorWorkflow, ScheduledJobWorkflow, CronJobRunWorkflow,
                         CronJobHandoverWorkflow, BackupWorkflow, BackupVerificationWorkflow, BackupRetentionWorkflow,
                         SecretRotationWorkflow, ScheduledRotationWorkflow, DataSubjectRequestWorkflow,
                         DataRetentionWorkflow, NamespaceRestoreWorkflow, DatabaseFailoverWorkflow,
                         NodeRecoveryWorkflow, DrillWorkflow, WatchdogWorkflow]
ACTIVITY_QUEUES = (KUBERNETES_QUEUE, DATA_QUEUE, OBSERVE_QUEUE, BACKUP_QUEUE)

# The sandbox re-imports a workflow's modules for every new workflow instance; these helpers
# keep no module state, so they are imported once and shared (a third of the worker's CPU per
# new incident went to re-importing them: BENCHMARKS.md, scenario 2). The workflow definition
# modules themselves stay sandboxed, and the golden-history replays guard determinism.
PASSTHROUGH_MODULES = (
    "workflows.incident.calls",
    "workflows.incident.decisions",
    "workflows.incident.grant",
    "workflows.incident.human_waits",
    "workflows.incident.ladder",
    "workflows.incident.metrics",
    "workflows.incident.remediation",
    "workflows.incident.report",
    "workflows.incident.source",
    "workflows.incident.state",
    "workflows.incident.symptom",
    "workflows.scheduled_job.calls",
    "workflows.scheduled_job.state",
    "workflows.cronjob_run.calls",
    "workflows.backup.calls",
    "workflows.backup.failures",
    "workflows.backup.targets",
    "workflows.approver_checks",
    "workflows.secret_rotation.calls",
    "workflows.secret_rotation.decisions",
    "workflows.secret_rotation.governor",
    "workflows.secret_rotation.record",
    "workflows.secret_rotation.state",
    "workflows.secret_rotation.steps",
    "workflows.gdpr.calls",
    "workflows.gdpr.deadlines",
    "workflows.gdpr.decisions",
    "workflows.gdpr.erasure",
    "workflows.gdpr.state",
    "workflows.gdpr_retention.calls",
    "workflows.gdpr_retention.governor",
    "workflows.db_failover.calls",
    "workflows.db_failover.decisions",
    "workflows.db_failover.guard",
    "workflows.db_failover.state",
    "workflows.namespace_restore.calls",
    "workflows.namespace_restore.decisions",
    "workflows.namespace_restore.governor",
    "workflows.namespace_restore.state",
    "workflows.node_recovery.calls",
    "workflows.node_recovery.decisions",
    "workflows.node_recovery.governor",
    "workflows.node_recovery.plan",
    "workflows.node_recovery.state",
    "workflows.drill.calls",
    "workflows.watchdog.calls",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def activity_name(method: Callable[..., Any]) -> str:
    """The name an activity method registers under."""
    name = activity._Definition.must_from_callable(method).name
    assert name is not None, f"{method} is a dynamic activity"
    return name


def activity_methods(instance: object) -> list[Callable[..., Any]]:
    """The @activity.defn methods of an activities object."""
    found = []
    for name in dir(type(instance)):
        attribute = getattr(type(instance), name)
        if callable(attribute) and hasattr(attribute, "__temporal_activity_definition"):
            found.append(getattr(instance, name))
    return found


def activities_for(
    queue: str, settings: WorkerSettings, http: httpx.AsyncClient, client: Client
) -> list[Callable[..., Any]]:
    """The activities a worker of ``queue`` registers (tests/activities/test_registration.py checks
    them against `zerotouch.activity_names`, the names workflows call)."""
    if queue == KUBERNETES_QUEUE:
        api_client = kubernetes_api_client(settings)
        return [*activity_methods(KubernetesActivities(api_client=api_client)),
                *activity_methods(CronJobActivities(api_client=api_client)),
                *activity_methods(WorkloadActivities(api_client=api_client)),
                *activity_methods(SecretConsumerActivities(consumers=SecretConsumers(api_client=api_client))),
                *activity_methods(NodeRecoveryActivities(api_client=api_client)),
                *activity_methods(NodeProviderActivities(provider=sandbox_provider(settings.kubernetes_url))),
                *activity_methods(NamespaceRestoreActivities(
                    api_client=api_client, repository=settings.backup_repository, state_dir=Path(settings.state_dir)))]
    if queue == DATA_QUEUE:
        sync_http = httpx.Client(timeout=10.0)  # the OAuth provider's admin API and token endpoint

        def secret_store() -> SecretStore:  # built on first use: a data worker that never rotates needs no Kubernetes
            return SecretStore(api_client=kubernetes_api_client(settings))

        return [*activity_methods(PostgresActivities(dsn_for=postgres_dsn_for)),
                *activity_methods(DatabaseFailoverActivities(
                    dsn_for=postgres_dsn_for, api_client=lambda: kubernetes_api_client(settings))),
                *activity_methods(DrillPostgresActivities(dsn_for=postgres_dsn_for, client=client)),
                *activity_methods(RotationSecretActivities(secret_store=secret_store)),
                *activity_methods(GdprActivities(postgres=PostgresSubjects(dsn_for=postgres_dsn_for),
                                                 mongodb=MongoSubjects.from_urls(mongo_url_for),
                                                 state_dir=Path(settings.state_dir))),
                *activity_methods(SuppressionActivities(postgres=PostgresSubjects(dsn_for=postgres_dsn_for),
                                                        mongodb=MongoSubjects.from_urls(mongo_url_for),
                                                        state_dir=Path(settings.state_dir))),
                *activity_methods(RetentionActivities(postgres=PostgresSubjects(dsn_for=postgres_dsn_for),
                                                      mongodb=MongoSubjects.from_urls(mongo_url_for))),
                *activity_methods(RotationTargetActivities(
                    secret_store=secret_store,
                    postgres=PostgresRoles(dsn_for=postgres_dsn_for), mongodb=MongoUsers.from_urls(mongo_url_for),
                    oauth=OktaClientSecrets(http=sync_http), http=sync_http))]
    if queue == OBSERVE_QUEUE:
        ledger = open_ledger(settings.ledger_url)  # one store for every kind of record: one chain, one writer
        policies = PolicyActivities(default_path=settings.policy_path)
        # delete_pod drills: the namespaces come from this worker's own policy file, never from the workflow.
        drill_pods = DrillPods(api_client=lambda: kubernetes_api_client(settings),
                               drills=lambda: policies.load_policy(PolicyRequest()).drills,
                               on_sandbox=bool(settings.kubernetes_url))
        return [
            *activity_methods(PrometheusActivities(url=settings.prometheus_url)),
            *activity_methods(NotifyActivities(http=http)),
            *activity_methods(AlertmanagerActivities(http=http)),
            *activity_methods(policies),
            *activity_methods(GovernorActivities(client=client)),
            *activity_methods(IncidentActivities(client=client)),
            *activity_methods(ScheduleStateActivities(client=client)),
            *activity_methods(LedgerActivities(store=ledger)),
            *activity_methods(DatabaseFailoverLedger(store=ledger)),
            *activity_methods(NamespaceRestoreLedger(store=ledger)),
            *activity_methods(NodeRecoveryLedgerActivities(store=ledger)),
            *activity_methods(NodeLeaseActivities(client=client)),
            *activity_methods(WatchdogActivities(prometheus_url=settings.prometheus_url, client=client, http=http)),
            *activity_methods(DrillFaultActivities(sandbox_url=settings.kubernetes_url, http=http, pods=drill_pods,
                                                   relay=relay_of_state_dir(Path(settings.state_dir)))),
            *activity_methods(DrillWatchActivities(client=client, sandbox_url=settings.kubernetes_url, http=http,
                                                   pods=drill_pods)),
            *activity_methods(DrillLedgerActivities(store=ledger)),
        ]
    if queue == BACKUP_QUEUE:
        return activity_methods(BackupActivities(repository=settings.backup_repository, engine_for=engines(settings),
                                         scratch_root=Path(settings.scratch_dir), state_dir=Path(settings.state_dir)))
    return []


def build_workers(
    client: Client,
    queues: Sequence[str],
    settings: WorkerSettings,
    *,
    http: httpx.AsyncClient,
    executor: ThreadPoolExecutor,
    cluster: str = "",
) -> list[Worker]:
    """Workers for the given queues of one cluster scope (see `zerotouch.names.queue_for`)."""
    unknown = [q for q in queues if q not in ALL_QUEUES]
    if unknown:
        raise ValueError(f"unknown task queue(s) {unknown}; choose from {list(ALL_QUEUES)}")
    workers = []
    for queue in queues:
        kwargs: dict[str, Any] = {}
        if queue == WORKFLOWS_QUEUE:
            kwargs["workflows"] = WORKFLOWS
            kwargs["workflow_runner"] = workflow_runner()
            # An incident reads the policy as a local activity, inside its first workflow task.
            kwargs["activities"] = [PolicyActivities(default_path=settings.policy_path).load_policy]
            kwargs["activity_executor"] = executor
        else:
            methods = activities_for(queue, settings, http, client)
            # The main queue keeps the waits too: one scheduled there before they had a queue of their
            # own still finds a worker.
            kwargs["activities"] = methods
            kwargs["activity_executor"] = executor
            kwargs["max_concurrent_activities"] = settings.max_concurrent_activities
            waits_queue = WAITS_QUEUE_OF.get(queue)
            waits = [method for method in methods if queue_of(activity_name(method)) == waits_queue]
            if waits_queue is not None and waits:
                workers.append(Worker(client, task_queue=queue_for(waits_queue, cluster), activities=waits,
                                      max_concurrent_activities=settings.max_concurrent_waits))
        workers.append(Worker(client, task_queue=queue_for(queue, cluster), **kwargs))
    return workers


async def run_workers(
    client: Client, queues: Sequence[str], settings: WorkerSettings, stop: asyncio.Event, cluster: str = ""
) -> None:
    """Run workers until ``stop`` is set, then shut them down gracefully.

    Each queue gets threads of its own for its blocking activities: with one pool shared by all, a
    queue's long calls (a base backup, a drain) could take every thread while another queue's actions
    held free slots and waited, so the queues did not scale independently as their slots suggest.
    """
    async with httpx.AsyncClient(timeout=10.0) as http:
        with contextlib.ExitStack() as pools:
            workers: list[Worker] = []
            for queue in queues:
                executor = pools.enter_context(ThreadPoolExecutor(
                    max_workers=settings.max_concurrent_activities, thread_name_prefix=queue))
                workers += build_workers(client, [queue], settings, http=http, executor=executor, cluster=cluster)
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            try:
                await stop.wait()
            finally:
                await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
                await asyncio.gather(*tasks, return_exceptions=True)
