# The typed client declares model bodies; it validates plain manifests into them at run time.
# mypy: disable-error-code="arg-type"
"""`zerotouch secrets`: where each rotation stands (Secret, schedule, workflow), and starting and steering one.

Against the Temporal dev server and the sandbox's Kubernetes API. The steering tests run the real
SecretRotationWorkflow with stand-in activities that stop it at its approval (what the CLI steers),
so the refusals and the signed approval are the workflow's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.main import main
from sandbox import SandboxCluster
from tests.security.approval_keys import ApproverKey
from tests.workflows.policies import make_policy
from workers.run import workflow_runner
from workflows.secret_rotation.workflow import SecretRotationWorkflow
from zerotouch import activity_names as names
from zerotouch.governor_models import GrantDecision
from zerotouch.governor_policy import GrantCall
from zerotouch.ledger_models import LedgerReceipt
from zerotouch.models import PolicyRequest
from zerotouch.names import QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.rotation_models import RotationRecord, RotationResult, RotationStatus, RotationStep, RotationView
from zerotouch.rotations import SecretRef, rotation_workflow_id

TOKEN_VALUE = "tok-" + "x" * 40  # a credential: must never appear in any output
PREVIOUS_VALUE = "old-" + "y" * 40
APP = SecretRef(namespace="shop", name="app-token")
ROTATIONS = {"secrets": {
    "app-token": {"secret": APP.model_dump(), "target": {"kind": "kubernetes", "keys": ["token"]}, "consumers": []},
    "checkout-db": {"secret": {"namespace": "shop", "name": "checkout-db"}, "consumers": [],
                    "target": {"kind": "postgres", "connection": "main", "strategy": "single", "roles": ["shop"]}},
}}
SCHEDULES = [{"name": "rotate-app-token", "workflow": "ScheduledRotationWorkflow",
              "arguments": {"rotation": "app-token"}, "interval": "1h"}]


def _policy(**overrides: Any) -> Policy:
    return make_policy(rotations=ROTATIONS, schedules=SCHEDULES, **overrides)


def _write(policy: Policy, path: Path) -> str:
    path.write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))  # JSON is YAML
    return str(path)


async def _zerotouch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI (it runs its own event loop, so in a thread); its exit status, stdout and stderr."""
    status = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@pytest.fixture
def core(sandbox: SandboxCluster) -> Iterator[k8s.CoreV1Api]:
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    api = k8s.ApiClient(configuration)
    try:
        yield k8s.CoreV1Api(api)
    finally:
        api.close()


def _annotated_secret(core: k8s.CoreV1Api, current_since: datetime) -> None:
    """A Secret as a finished rotation leaves it: current r…1, previous (revoked) r…0, verified."""
    prefix = "rotation.zerotouch.io/"
    annotations = {
        f"{prefix}current-version": "r000000000001", f"{prefix}current-since": current_since.isoformat(),
        f"{prefix}previous-version": "r000000000000",
        f"{prefix}previous-since": (current_since - timedelta(days=30)).isoformat(),
        f"{prefix}previous-revoked": "true", f"{prefix}stage": "revoked",
        f"{prefix}last-verified": (current_since + timedelta(minutes=5)).isoformat(),
    }
    core.create_namespaced_secret(APP.namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": APP.name, "namespace": APP.namespace, "annotations": annotations},
        "data": {"token": _b64(TOKEN_VALUE), "previous.token": _b64(PREVIOUS_VALUE)},
    })


def _options(env: WorkflowEnvironment, tmp_path: Path, cluster: str, policy_file: str) -> tuple[str, ...]:
    return ("--address", env.client.service_client.config.target_host, "--state-dir", str(tmp_path / "state"),
            "--cluster", cluster, "--policy", policy_file)


async def test_list_and_show_read_the_secret_the_schedule_and_the_running_workflow(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, core: k8s.CoreV1Api, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = f"cli{uuid.uuid4().hex[:8]}"
    policy_file = _write(_policy(), tmp_path / "policy.yaml")
    options = _options(dev_env, tmp_path, cluster, policy_file)
    kube = ("--kubernetes-url", sandbox.url)
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    _annotated_secret(core, since)
    status, _, err = await _zerotouch(capsys, "schedules", "apply", *options)
    assert status == 0, err

    status, out, err = await _zerotouch(capsys, "secrets", "list", "--json", *options, *kube)
    assert status == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    app, db = rows["app-token"], rows["checkout-db"]
    assert (app["kind"], app["secret"], app["state"]["stage"]) == ("kubernetes", "shop/app-token", "revoked")
    assert app["state"]["current"]["version"] == "r000000000001"
    assert datetime.fromisoformat(app["state"]["current"]["since"]) == since
    assert app["state"]["previous"]["version"] == "r000000000000" and app["state"]["previous_revoked"] is True
    assert app["state"]["pending"] is None and app["running"] is None
    next_run = datetime.fromisoformat(app["next_scheduled_rotation"])
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(hours=1)
    # The sandbox seeds checkout-db with a credential zerotouch never rotated, and no schedule runs it.
    assert db["state"]["current"]["version"] == "initial" and db["state"]["current"]["login"] == "shop"
    assert db["next_scheduled_rotation"] is None

    status, out, err = await _zerotouch(capsys, "secrets", "list", *options, *kube)
    assert status == 0, err
    line = next(row for row in out.splitlines() if row.startswith("app-token"))
    assert "r000000000001 (3d ago)" in line and "r000000000000 (33d ago) revoked" in line, out
    status, out, err = await _zerotouch(capsys, "secrets", "show", "app-token", *options, *kube)
    assert status == 0, err
    assert "stage      revoked" in out and "previous   r000000000000" in out and "(revoked)" in out
    assert "running    no rotation workflow" in out

    # A rotation started (no worker runs it here): list and show see it without waiting on a worker.
    status, out, err = await _zerotouch(capsys, "secrets", "rotate", "app-token", "--by", "alice", *options)
    assert status == 0, err
    workflow_id = rotation_workflow_id(APP, cluster)
    assert out.strip() == f"app-token: started {workflow_id}"
    status, out, err = await _zerotouch(capsys, "secrets", "show", "app-token", "--json", *options, *kube)
    assert status == 0, err
    assert json.loads(out)["running"]["workflow_id"] == workflow_id
    everything = capsys.readouterr()
    for text in (out, err, everything.out, everything.err):
        assert TOKEN_VALUE not in text and PREVIOUS_VALUE not in text

    status, _, err = await _zerotouch(capsys, "secrets", "show", "nope", *options, *kube)
    assert status == 1 and err.startswith("zerotouch secrets: no rotation 'nope' in the policy"), err
    assert len(err.strip().splitlines()) == 1
    await dev_env.client.get_workflow_handle(workflow_id).terminate("test over")


async def _input_of(client: Client, workflow_id: str) -> dict[str, Any]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [value] = await client.data_converter.decode(started.input.payloads)
    found: dict[str, Any] = value if isinstance(value, dict) else value.model_dump()
    return found


async def test_rotate_starts_one_workflow_per_secret_and_rollback_starts_a_rollback(
    dev_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = f"cli{uuid.uuid4().hex[:8]}"
    options = _options(dev_env, tmp_path, cluster, _write(_policy(), tmp_path / "policy.yaml"))
    workflow_id = rotation_workflow_id(APP, cluster)
    handle = dev_env.client.get_workflow_handle(workflow_id)

    status, out, err = await _zerotouch(capsys, "secrets", "rotate", "app-token", "--now", "--by", "alice",
                                        "--reason", "key in a public gist", *options)
    assert status == 0, err
    assert out.strip() == f"app-token: started {workflow_id} (emergency)"
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.task_queue == queue_for(WORKFLOWS_QUEUE, cluster)
    assert {key: value for key, value in (await _input_of(dev_env.client, workflow_id)).items()
            if key in ("rotation", "action", "cluster", "requested_by", "reason", "emergency")} == {
        "rotation": "app-token", "action": "rotate", "cluster": cluster, "requested_by": "alice",
        "reason": "key in a public gist", "emergency": True}

    status, out, err = await _zerotouch(capsys, "secrets", "rotate", "app-token", "--by", "bob", *options)
    assert status == 0, err
    assert f"a rotation is already running as {workflow_id} (starting); not starting another" in out
    assert (await handle.describe()).run_id == description.run_id, "a second rotation was started"

    await handle.terminate("test: the next one rolls back")
    status, out, err = await _zerotouch(capsys, "secrets", "rollback", "app-token", "--by", "bob", "--reason",
                                        "consumers broke", *options)
    assert status == 0, err
    assert out.strip() == f"app-token: rollback started by bob ({workflow_id})"
    assert (await _input_of(dev_env.client, workflow_id))["action"] == "rollback"
    await handle.terminate("test over")

    status, _, err = await _zerotouch(capsys, "secrets", "rotate", "nope", *options)
    assert status == 1 and "no rotation 'nope' in the policy's rotations.secrets (known: app-token, checkout-db)" \
        in err


# --- steering the real workflow, stopped at its approval by stand-in activities ------------------------------


@contextlib.asynccontextmanager
async def _rotation_worker(client: Client, cluster: str, policy: Policy) -> AsyncIterator[None]:
    """SecretRotationWorkflow plus stand-ins for what it calls before and after its approval."""

    @activity.defn(name=names.LOAD_POLICY)
    async def load_policy(request: PolicyRequest) -> Policy:
        return policy

    @activity.defn(name=names.READ_ROTATION_STATE)
    async def read_state(step: RotationStep) -> RotationView:
        return RotationView(secret=step.secret)

    @activity.defn(name=names.REQUEST_GRANT)
    async def request_grant(call: GrantCall) -> GrantDecision:
        # Approval first; once approved, refused, so the rotation ends without touching anything.
        approved = call.request.approved_by is not None
        return GrantDecision(request_id=call.request.request_id, granted=False,
                             code="forbidden" if approved else "policy_approval", needs_approval=not approved,
                             reason="test: stop here" if approved else "test: ask a human",
                             decided_at=datetime.now(UTC))

    @activity.defn(name=names.APPEND_ROTATION_RECORD)
    async def append_record(record: RotationRecord) -> LedgerReceipt:
        return LedgerReceipt(seq=1, hash="0" * 64)

    queues: dict[str, list[Any]] = {}
    for name, function in ((names.LOAD_POLICY, load_policy), (names.READ_ROTATION_STATE, read_state),
                           (names.REQUEST_GRANT, request_grant), (names.APPEND_ROTATION_RECORD, append_record)):
        queues.setdefault(queue_for(names.queue_of(name), cluster), []).append(function)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(Worker(client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
                                               workflows=[SecretRotationWorkflow], workflow_runner=workflow_runner()))
        for queue, functions in queues.items():
            await stack.enter_async_context(Worker(client, task_queue=queue, activities=functions))
        yield


async def _status(client: Client, workflow_id: str, state: str, timeout: float = 30.0) -> RotationStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    status: RotationStatus | None = None
    while asyncio.get_running_loop().time() < deadline:
        status = await client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=RotationStatus)
        if status is not None and status.state == state:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {state} within {timeout}s: {status}")


async def test_approve_and_abort_show_the_workflows_refusals_in_one_line(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = f"cli{uuid.uuid4().hex[:8]}"
    policy = _policy()
    options = _options(dev_env, tmp_path, cluster, _write(policy, tmp_path / "policy.yaml"))
    workflow_id = rotation_workflow_id(APP, cluster)
    async with _rotation_worker(dev_env.client, cluster, policy):
        status, _, err = await _zerotouch(capsys, "secrets", "rotate", "app-token", "--by", "alice", *options)
        assert status == 0, err
        pending = (await _status(dev_env.client, workflow_id, "awaiting_approval")).pending_approval
        assert pending is not None

        status, out, err = await _zerotouch(capsys, "secrets", "show", "app-token", *options,
                                            "--kubernetes-url", sandbox.url)
        assert status == 0, err
        assert f"running    {workflow_id}: awaiting_approval (rotate " in out
        assert f"approval   request {pending.request_id} by alice" in out
        assert "plan       generate a new kubernetes credential" in out

        status, _, err = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "alice", *options)
        assert (status, err.strip()) == (1, "zerotouch secrets: app-token: 'alice' requested this rotation and may "
                                            "not approve it; another approver must")
        status, _, err = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "mallory", *options)
        assert status == 1 and "'mallory' is not an approver in the policy" in err and len(err.splitlines()) == 1

        status, out, err = await _zerotouch(capsys, "secrets", "abort", "app-token", "--by", "bob", "--reason",
                                            "not now", *options)
        assert (status, out.strip()) == (0, "app-token: aborted by bob"), err
        result = await dev_env.client.get_workflow_handle(workflow_id, result_type=RotationResult).result()
        assert result.outcome == "aborted"

        status, _, err = await _zerotouch(capsys, "secrets", "abort", "app-token", "--by", "bob", "--reason",
                                          "again", *options)
        assert (status, err.strip()) == (1, "zerotouch secrets: no rotation of app-token is running (see "
                                            "`zerotouch secrets show app-token`)")


async def test_approve_signs_the_rotations_request_with_a_key(
    dev_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    alice, bob = ApproverKey.generate("alice@laptop"), ApproverKey.generate("bob@laptop")
    bob_file = bob.write(tmp_path, "bob")
    policy = _policy(approvers={"names": ["alice", "bob"]},
                     approvals={"identity": "verified",
                                "keys": {"alice": [alice.public_line], "bob": [bob.public_line]}})
    cluster = f"cli{uuid.uuid4().hex[:8]}"
    options = _options(dev_env, tmp_path, cluster, _write(policy, tmp_path / "policy.yaml"))
    workflow_id = rotation_workflow_id(APP, cluster)
    async with _rotation_worker(dev_env.client, cluster, policy):
        status, _, err = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "bob", "--key",
                                          str(bob_file), *options)
        assert (status, err.strip()) == (1, "zerotouch secrets: no rotation of app-token is running (see "
                                            "`zerotouch secrets show app-token`)")
        status, _, err = await _zerotouch(capsys, "secrets", "rotate", "app-token", "--by", "alice", *options)
        assert status == 0, err
        pending = (await _status(dev_env.client, workflow_id, "awaiting_approval")).pending_approval
        assert pending is not None

        status, _, err = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "bob", *options)
        assert status == 1 and "approve needs a proof signed by 'bob'" in err, err
        status, message, _ = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "bob",
                                              "--print-message", *options)
        claim = json.loads(message)
        assert status == 0 and (claim["workflow_id"], claim["request_id"], claim["decision"], claim["approver"]) \
            == (workflow_id, pending.request_id, "approve", "bob")
        status, out, err = await _zerotouch(capsys, "secrets", "approve", "app-token", "--by", "bob", "--key",
                                            str(bob_file), "--note", "ok", *options)
        assert (status, out.strip()) == (0, "app-token: approved by bob"), err
        handle = dev_env.client.get_workflow_handle(workflow_id)
        await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
