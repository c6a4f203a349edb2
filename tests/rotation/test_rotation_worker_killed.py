"""A PostgreSQL rotation whose activity worker is SIGKILLed after each step: not one login fails.

The workflow worker (with the observe queue: policy, Governor, ledger) runs in the test's process;
the kubernetes and data activities run in `zerotouch worker`, its own OS process as a pod would run
it. Each time the rotation reaches a new stage that process is killed (no shutdown hook runs) and a
fresh one started: the step in flight misses its heartbeat and is retried on the new worker under
the same token, so a retry finds the pending credential it made instead of generating another.
A probe logs in every 100 ms with whatever the Secret holds and must never be refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.backups.conftest import running_workers
from tests.rotation.support import (
    CONSUMER,
    NAMESPACE,
    ROLES,
    AppDatabase,
    LoginProbe,
    app_database,
    core,
    rotation_document,
    rotation_policy,
    secret_data,
    seed_secret,
)
from tests.support.processes import ChildProcess, zerotouch_command
from zerotouch.names import DATA_QUEUE, KUBERNETES_QUEUE, OBSERVE_QUEUE, QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.rotation_models import RotationResult, RotationStatus
from zerotouch.rotation_secret import STAGE
from zerotouch.rotations import ROTATION_WORKFLOW, RotationInput, rotation_workflow_id
from zerotouch.settings import WorkerSettings

NAME = "checkout-db"
REPO = Path(__file__).resolve().parents[2]  # `python -m cli` imports the project from its working directory
PENDING_VERSION = "rotation.zerotouch.io/pending-version"
CURRENT_VERSION = "rotation.zerotouch.io/current-version"
# The order a rotation goes through. The Secret's annotation shows pending, finished, moved, revoked;
# the workflow's status also shows set and tested (steps that change only the database).
ORDER = ("idle", "pending", "set", "tested", "finished", "moved", "revoked")
EVERY_STEP = ("pending", "set", "tested", "finished", "moved")
# Five kills, each noticed after a 5 s heartbeat timeout plus a worker start: minutes on a loaded machine.
DEADLINE = 240.0


def rank(stage: str) -> int:
    return ORDER.index(stage) if stage in ORDER else -1


@dataclass
class Scene:
    client: Client
    cluster: str
    policy: Policy
    worker: ChildProcess
    api: k8s.CoreV1Api

    async def start(self) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            ROTATION_WORKFLOW, RotationInput(rotation=NAME, cluster=self.cluster, requested_by="alice", reason="test"),
            id=rotation_workflow_id(self.policy.rotations.secrets[NAME].secret, self.cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))


@asynccontextmanager
async def scene(env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Scene]:
    """Workflows and observe in this process; kubernetes and data in a `zerotouch worker` the test kills."""
    cluster = f"k{uuid.uuid4().hex[:8]}"
    connection = f"kill-{cluster}"
    dsn_variable = f"ZEROTOUCH_PG_{connection.upper().replace('-', '_')}_DSN"
    monkeypatch.setenv(dsn_variable, database.admin_dsn)
    policy = rotation_policy(tmp_path, {NAME: rotation_document(connection, database.database)}, automatic=True)
    policy_path = tmp_path / "workers-policy.yaml"  # JSON is YAML
    policy_path.write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))
    seed_secret(core(sandbox.url), ROLES[0], database.initial_password)
    worker = ChildProcess(
        zerotouch_command("worker", "--queue", KUBERNETES_QUEUE, "--queue", DATA_QUEUE, "--cluster", cluster,
                          "--address", env.client.service_client.config.target_host, "--policy", str(policy_path),
                          "--kubernetes-url", sandbox.url),
        tmp_path / "activity-worker.log", name="activity worker", cwd=REPO, new_session=True,
        env={dsn_variable: database.admin_dsn, "ZEROTOUCH_STATE_DIR": str(tmp_path)})
    settings = WorkerSettings(kubernetes_url=sandbox.url, prometheus_url=None, policy_path=str(policy_path),
                              ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", state_dir=str(tmp_path))
    try:
        await worker.spawn()
        async with running_workers(env.client, settings, cluster, queues=(WORKFLOWS_QUEUE, OBSERVE_QUEUE)):
            yield Scene(env.client, cluster, policy, worker, core(sandbox.url))
    finally:
        await worker.stop()


@dataclass
class Watch:
    """What the test saw of the rotation while it killed the worker (pending values stay in the test)."""

    kills: list[str] = field(default_factory=list)  # the stage each kill followed, in order
    pending_versions: set[str] = field(default_factory=set)
    pending_passwords: set[str] = field(default_factory=set)


async def stage_now(handle: WorkflowHandle[Any, Any], api: k8s.CoreV1Api, watch: Watch) -> str:
    """The furthest stage the Secret or the workflow's status shows; notes the pending credential seen."""
    data, annotations = await asyncio.to_thread(secret_data, api)
    if PENDING_VERSION in annotations:
        watch.pending_versions.add(annotations[PENDING_VERSION])
    if "pending.password" in data:
        watch.pending_passwords.add(data["pending.password"])
    raw = await handle.query(QUERY_STATUS)
    workflow_stage = RotationStatus.model_validate(raw).stage if raw else "idle"
    return max(annotations.get(STAGE, "idle"), workflow_stage, key=rank)


async def rotate_killing(s: Scene, handle: WorkflowHandle[Any, Any], kill_at: tuple[str, ...],
                         limit: int = len(EVERY_STEP)) -> tuple[RotationResult, Watch]:
    """Poll every ~20 ms; at the first sight of each stage in ``kill_at`` (up to ``limit`` times) SIGKILL the
    activity worker and start a fresh one. A stage that passes between two polls is missed: the next kills."""
    watch = Watch()
    result = asyncio.ensure_future(handle.result())
    deadline = time.monotonic() + DEADLINE
    try:
        while not result.done():
            s.worker.check_alive()
            stage = await stage_now(handle, s.api, watch)
            if stage in kill_at and len(watch.kills) < limit and rank(stage) > max(map(rank, watch.kills), default=0):
                await s.worker.kill()
                watch.kills.append(stage)
                await s.worker.spawn()
            if time.monotonic() > deadline:
                pytest.fail(f"the rotation did not end within {DEADLINE}s (kills after {watch.kills}); "
                            f"worker log:\n{s.worker.tail()}")
            await asyncio.wait({result}, timeout=0.02)
    finally:
        if not result.done():
            result.cancel()
    return RotationResult.model_validate(result.result()), watch


async def retried_steps(handle: WorkflowHandle[Any, Any]) -> int:
    """How many activities needed more than one attempt (the kills that landed mid-step)."""
    history = await handle.fetch_history()
    return sum(1 for event in history.events
               if event.HasField("activity_task_started_event_attributes")
               and event.activity_task_started_event_attributes.attempt > 1)


def logs_in(database: AppDatabase, role: str, password: str) -> bool:
    try:
        with psycopg.connect(database.login_dsn(role, password)) as connection:
            connection.execute("SELECT count(*) FROM orders").fetchone()
    except psycopg.OperationalError:
        return False
    return True


def consumer_annotations(sandbox: SandboxCluster) -> dict[str, str]:
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.AppsV1Api(k8s.ApiClient(configuration))
    deployment = api.api_client.sanitize_for_serialization(api.read_namespaced_deployment(CONSUMER, NAMESPACE))
    return dict(deployment["spec"]["template"]["metadata"].get("annotations") or {})


@pytest.fixture
def database() -> Any:
    with app_database() as db:
        yield db


async def test_a_worker_killed_after_every_step_rotates_once_with_zero_failed_logins(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch) as s:
        with LoginProbe(core(sandbox.url), database) as probe:
            handle = await s.start()
            result, watch = await rotate_killing(s, handle, EVERY_STEP)
        assert result.outcome == "rotated", result
        # Stages that pass between two polls are missed (a loaded machine polls slower): three kills at the
        # least, one of them mid-step (below), is what the test needs to have exercised.
        assert len(watch.kills) >= 3, watch.kills
        assert await retried_steps(handle) >= 1, "no kill landed while a step ran"
        assert probe.failures == [], probe.failures
        assert probe.users == set(ROLES), probe.users  # the probe moved to the new login before the revoke
        data, annotations = secret_data(s.api)
        assert data["username"] == ROLES[1] and annotations[CURRENT_VERSION] == result.token
        # One pending credential in all: every retry found it instead of generating another.
        assert watch.pending_versions == {result.token}, watch.pending_versions
        assert watch.pending_passwords == {data["password"]}
        assert not [key for key in data if key.startswith("pending.")]
        assert annotations[STAGE] == "revoked"
        assert logs_in(database, ROLES[1], data["password"])
        assert not logs_in(database, ROLES[0], database.initial_password) and not database.can_login(ROLES[0])
        assert result.token in consumer_annotations(sandbox).values()  # the consumer was rolled onto it
        status = RotationStatus.model_validate(await handle.query(QUERY_STATUS))
        kinds = [entry.kind for entry in status.timeline]
        assert kinds.index("moved") < kinds.index("revoked"), kinds
        history = (await handle.fetch_history()).to_json()
        for secret in (data["password"], database.initial_password):
            assert secret not in history, "a credential reached the workflow history"
            assert secret not in s.worker.log.read_text(errors="replace"), "a credential reached the worker's log"


async def test_a_worker_killed_while_the_pending_credential_is_set_reuses_it(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch) as s:
        with LoginProbe(core(sandbox.url), database) as probe:
            handle = await s.start()
            # The first sight of a pending credential (before it is finished) kills, once.
            result, watch = await rotate_killing(s, handle, ("pending", "set", "tested"), limit=1)
        assert result.outcome == "rotated", result
        assert len(watch.kills) == 1, watch.kills
        assert probe.failures == [], probe.failures
        data, annotations = secret_data(s.api)
        assert watch.pending_passwords == {data["password"]}, "the retry generated another password"
        assert watch.pending_versions == {result.token} and annotations[CURRENT_VERSION] == result.token
        assert data["username"] == ROLES[1] and logs_in(database, ROLES[1], data["password"])
        assert not database.can_login(ROLES[0])
