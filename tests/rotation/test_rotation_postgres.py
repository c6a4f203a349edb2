"""A PostgreSQL credential rotated end to end: real Temporal, real PostgreSQL, the sandbox's consumer.

Alternating roles: checkout_a holds the credential in use, the new password goes to checkout_b,
the consumer (`shop/checkout`) is rolled onto it, and checkout_a is revoked only once nothing
uses it. A probe logs in every 100 ms with whatever the Secret holds: it must never fail.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.rotation.leaks import assert_absent, raw_histories
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
from tests.rotation.test_replay import replay_and_record
from tests.support.waiting import eventually
from tests.support.zt import running_workers
from zerotouch.models import ApproveInput
from zerotouch.names import QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.rotation_models import RollbackInput, RotationResult, RotationStatus
from zerotouch.rotations import ROTATION_WORKFLOW, RotationInput, rotation_workflow_id

NAME = "checkout-db"


@dataclass
class Scene:
    client: Client
    cluster: str
    database: AppDatabase
    sandbox: SandboxCluster
    policy: Policy

    @property
    def api(self) -> Any:
        return core(self.sandbox.url)

    async def assert_no_credential_anywhere(self, seen: set[str], logs: pytest.LogCaptureFixture) -> None:
        """Histories (every workflow of this cluster), the final status queries and the logs hold none."""
        data, _ = secret_data(self.api)
        credentials = seen | {v for k, v in data.items() if k.endswith("password")} | {self.database.initial_password}
        assert_absent(await raw_histories(self.client, self.cluster), credentials, "history")
        logged = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in logs.records)
        assert_absent({"worker logs": logged.encode()}, credentials, "logs")

    async def start(self, requested_by: str = "alice") -> WorkflowHandle[Any, Any]:
        secret = self.policy.rotations.secrets[NAME].secret
        return await self.client.start_workflow(
            ROTATION_WORKFLOW, RotationInput(rotation=NAME, cluster=self.cluster, requested_by=requested_by,
                                             reason="test"),
            id=rotation_workflow_id(secret, self.cluster), task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))


@pytest.fixture
def database() -> Iterator[AppDatabase]:
    with app_database() as db:
        yield db


@asynccontextmanager
async def scene(env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch, *, automatic: bool = True, consumers: list[str] | None = None,
                **verify: str) -> AsyncIterator[Scene]:
    cluster = f"r{uuid.uuid4().hex[:8]}"
    connection = f"rot-{cluster}"
    monkeypatch.setenv(f"ZEROTOUCH_PG_{connection.upper().replace('-', '_')}_DSN", database.admin_dsn)
    document = rotation_document(connection, database.database, **verify)
    if consumers is not None:
        document["consumers"] = consumers
    policy = rotation_policy(tmp_path, {NAME: document}, automatic=automatic)
    seed_secret(core(sandbox.url), ROLES[0], database.initial_password)
    async with running_workers(env.client, cluster, kubernetes_url=sandbox.url, policy=policy):
        yield Scene(env.client, cluster, database, sandbox, policy)


async def status_of(handle: WorkflowHandle[Any, Any]) -> RotationStatus | None:
    raw = await handle.query(QUERY_STATUS)
    return RotationStatus.model_validate(raw) if raw else None


async def wait_status(handle: WorkflowHandle[Any, Any], what: str, test: Any, timeout: float = 60.0) -> RotationStatus:
    async def probe() -> RotationStatus | None:
        status = await status_of(handle)
        return status if status is not None and test(status) else None
    return await eventually(probe, timeout=timeout, what=what)


async def result_of(handle: WorkflowHandle[Any, Any]) -> RotationResult:
    return RotationResult.model_validate(await handle.result())


async def test_an_approved_rotation_moves_the_consumer_then_revokes_with_zero_failed_logins(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch, automatic=False) as s:
        with LoginProbe(s.api, database) as probe:
            handle = await s.start(requested_by="alice")
            status = await wait_status(handle, "the approval request", lambda st: st.pending_approval is not None)
            assert any(CONSUMER in line for line in status.plan), status.plan
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update("approve", ApproveInput(by="alice"))  # four eyes
            await handle.execute_update("approve", ApproveInput(by="bob", note="scheduled window"))
            result = await result_of(handle)
        assert result.outcome == "rotated", result
        assert probe.failures == [], probe.failures
        assert probe.users == set(ROLES) and probe.logins >= 10
        data, annotations = secret_data(s.api)
        assert data["username"] == ROLES[1] and data["previous.username"] == ROLES[0]
        assert not [key for key in data if key.startswith("pending.")]
        assert annotations["rotation.zerotouch.io/stage"] == "revoked"
        assert annotations["rotation.zerotouch.io/current-version"] == result.token
        assert not database.can_login(ROLES[0]) and database.can_login(ROLES[1])
        deployment = sandbox_deployment(s.sandbox)
        assert result.token in deployment["spec"]["template"]["metadata"]["annotations"].values()
        await s.assert_no_credential_anywhere(probe.seen, caplog)
        final = await status_of(handle)
        assert final is not None and data["password"] not in final.model_dump_json()
        await replay_and_record(handle, "rotated-after-approval")


def sandbox_deployment(sandbox: SandboxCluster) -> Any:
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.AppsV1Api(k8s.ApiClient(configuration))
    return api.api_client.sanitize_for_serialization(api.read_namespaced_deployment(CONSUMER, NAMESPACE))


async def test_the_old_role_is_revoked_only_after_its_last_session_ends(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch) as s:
        # A consumer that has not moved: a session of the old role, open across the rotation.
        lingering = psycopg.connect(database.login_dsn(ROLES[0], database.initial_password))
        try:
            handle = await s.start()
            await wait_status(handle, "the wait for the old role's session",
                              lambda st: any(e.kind == "in_use" for e in st.timeline))
            assert database.can_login(ROLES[0]), "revoked while a session of the old role was open"
        finally:
            lingering.close()
        result = await result_of(handle)
        assert result.outcome == "rotated"
        assert not database.can_login(ROLES[0])


async def test_a_revoke_is_never_done_on_a_timeout(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch, unused_timeout="2s") as s:
        with psycopg.connect(database.login_dsn(ROLES[0], database.initial_password)):
            handle = await s.start()
            result = await result_of(handle)
        assert result.outcome == "revoke_held", result
        await replay_and_record(handle, "revoke-held")
        assert database.can_login(ROLES[0]) and database.can_login(ROLES[1])
        _, annotations = secret_data(s.api)
        assert annotations["rotation.zerotouch.io/stage"] == "moved"


async def test_a_rollback_before_the_revoke_makes_the_previous_credential_current_again(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch) as s:
        with LoginProbe(s.api, database) as probe, \
                psycopg.connect(database.login_dsn(ROLES[0], database.initial_password)):
            handle = await s.start()
            await wait_status(handle, "the wait for the old role's session",
                              lambda st: any(e.kind == "in_use" for e in st.timeline))
            await handle.execute_update("rollback", RollbackInput(by="carol", reason="errors in checkout"))
            result = await result_of(handle)
        assert result.outcome == "rolled_back", result
        await replay_and_record(handle, "rollback-update")
        assert probe.failures == [], probe.failures
        data, annotations = secret_data(s.api)
        assert (data["username"], data["password"]) == (ROLES[0], database.initial_password)
        assert data["previous.username"] == ROLES[1]
        assert annotations["rotation.zerotouch.io/stage"] == "rolled_back"
        assert database.can_login(ROLES[0]) and database.can_login(ROLES[1])
        await s.assert_no_credential_anywhere(probe.seen, caplog)


async def test_a_failed_test_step_rolls_back_and_does_not_block_the_next_rotation(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch) as s:
        database.set_hba([f"host all {ROLES[1]} 127.0.0.1/32 reject"])  # the new login will be refused
        with LoginProbe(s.api, database) as probe:
            handle = await s.start()
            failed = await result_of(handle)
        assert failed.outcome == "rolled_back", failed
        await replay_and_record(handle, "test-step-refused")
        assert probe.failures == []
        data, annotations = secret_data(s.api)
        assert (data["username"], data["password"]) == (ROLES[0], database.initial_password)
        assert not [key for key in data if key.startswith("pending.")]
        assert annotations["rotation.zerotouch.io/stage"] == "rolled_back"
        assert not database.can_login(ROLES[1]), "the refused pending login was left enabled"
        assert len(probe.seen) >= 2, "the probe never saw the refused pending password"
        await s.assert_no_credential_anywhere(probe.seen, caplog)
        database.set_hba([])
        again = await result_of(await s.start())
        assert again.outcome == "rotated", again
        assert secret_data(s.api)[0]["username"] == ROLES[1]


async def test_a_consumer_that_does_not_come_up_rolls_the_rotation_back(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch, rollout_timeout="4s") as s:
        with LoginProbe(s.api, database) as probe:
            handle = await s.start()
            await wait_status(handle, "the finish step", lambda st: st.stage == "finished")
            sandbox.inject("unfixable", NAMESPACE, CONSUMER)  # every pod of checkout crashes from now on
            result = await result_of(handle)
        assert result.outcome == "rolled_back", result
        assert probe.failures == []
        data, _ = secret_data(s.api)
        assert (data["username"], data["password"]) == (ROLES[0], database.initial_password)
        status = await status_of(handle)
        assert status is not None and any(e.kind == "incident" for e in status.timeline)
        await s.assert_no_credential_anywhere(probe.seen, caplog)


async def test_a_step_that_keeps_failing_stops_the_rotation_without_revoking_and_opens_an_incident(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, database: AppDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy names a consumer that does not exist: moving it fails for good after finish.
    async with scene(dev_env, sandbox, database, tmp_path, monkeypatch, consumers=[CONSUMER, "no-such-app"]) as s:
        with LoginProbe(s.api, database) as probe:
            handle = await s.start()
            result = await result_of(handle)
        assert result.outcome == "failed", result
        assert "no-such-app" in result.detail and "not revoked" in result.detail
        assert probe.failures == []
        assert database.can_login(ROLES[0]) and database.can_login(ROLES[1]), "something was revoked"
        status = await status_of(handle)
        assert status is not None and any(e.kind == "incident" for e in status.timeline)
