"""`zerotouch recovery approve` when the policy verifies approvers: signing the request the recovery names.

Each of the three real recovery workflows runs on the dev server with stand-in activities that stop
it at its approval (what the CLI steers) and, once approved, have the Governor refuse, so nothing
acts. The refusals are the workflows' own validators: a missing proof, a proof for another request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.main import main
from starters.recovery import RecoveryInput, start_recovery
from tests.security.approval_keys import ApproverKey
from tests.support.waiting import eventually
from tests.workflows.policies import make_policy
from workers.run import workflow_runner
from workflows.db_failover.workflow import DatabaseFailoverWorkflow
from workflows.namespace_restore.workflow import NamespaceRestoreWorkflow
from workflows.node_recovery.workflow import NodeRecoveryWorkflow
from zerotouch import activity_names as names
from zerotouch.approval_proofs import APPROVE, Wanted
from zerotouch.db_failover_models import FailoverStepResult
from zerotouch.governor_models import GrantDecision
from zerotouch.governor_policy import GrantCall
from zerotouch.ledger_models import LedgerReceipt
from zerotouch.models import AlertForward, PolicyRequest
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.namespace_restore_models import ObjectChange, RestorePlan, RestoreSource
from zerotouch.node_recovery_models import NodeTarget, NodeView
from zerotouch.policy import Policy
from zerotouch.recovery import (
    QUERY_RECOVERY_STATUS,
    DatabaseFailoverInput,
    NamespaceRestoreInput,
    NodeRecoveryInput,
    RecoveryStatus,
)

DEADLINE = 60.0  # generous: two shared cores
SERVER = {"connection": "orders-admin", "host": "127.0.0.1", "port": 5432}


def _policy(alice: ApproverKey, bob: ApproverKey) -> Policy:
    return make_policy(
        approvers={"names": ["alice", "bob"]},
        approvals={"identity": "verified", "keys": {"alice": [alice.public_line], "bob": [bob.public_line]}},
        backups={"targets": [{"name": "shop-objects", "engine": "kubernetes", "namespaces": ["shop"]}]},
        recovery={"databases": {"orders": {"primary": SERVER, "replica": {**SERVER, "connection": "orders-replica",
                                                                            "port": 5433}}},
                  "namespaces": {"into": ["shop"]}},
    )


def _answering(name: str, answer: BaseModel) -> Callable[[Any], Awaitable[BaseModel]]:
    """A stand-in activity that always answers ``answer`` (the failover's probes, the ledger's receipts)."""

    @activity.defn(name=name)
    async def stand_in(arg: Any) -> BaseModel:
        return answer

    return stand_in


@contextlib.asynccontextmanager
async def _stopped_at_approval(client: Client, cluster: str, policy: Policy) -> AsyncIterator[None]:
    """The three recovery workflows, with stand-ins for what they call before and after their approval."""

    @activity.defn(name=names.LOAD_POLICY)
    async def load_policy(request: PolicyRequest) -> Policy:
        return policy

    @activity.defn(name=names.REQUEST_GRANT)
    async def request_grant(call: GrantCall) -> GrantDecision:
        # Ask a human first; once approved, refuse, so the recovery ends having changed nothing.
        approved = call.request.approved_by is not None
        return GrantDecision(request_id=call.request.request_id, granted=False,
                             code="forbidden" if approved else "policy_approval", needs_approval=not approved,
                             reason="test: stop here" if approved else "test: ask a human",
                             decided_at=datetime.now(UTC))

    @activity.defn(name=names.FORWARD_ALERTS)
    async def forward_alerts(forward: AlertForward) -> int:
        return len(forward.events)

    @activity.defn(name=names.READ_NODE)
    async def read_node(target: NodeTarget) -> NodeView:
        return NodeView(node=target.node, total_nodes=3, schedulable=["node-2", "node-3"])

    @activity.defn(name=names.PLAN_NAMESPACE_RESTORE)
    async def plan(source: RestoreSource) -> RestorePlan:
        return RestorePlan(backup_id="b1", backup_taken_at=datetime.now(UTC), backup_verified=True,
                           destination_exists=True, changes=[ObjectChange(
                               kind="ConfigMap", name="web-config", action="overwrite", backup_digest="a",
                               live_digest="b", diff=["data.LOG_LEVEL: changed"])])

    functions: list[tuple[str, Any]] = [
        (names.LOAD_POLICY, load_policy), (names.REQUEST_GRANT, request_grant),
        (names.FORWARD_ALERTS, forward_alerts), (names.READ_NODE, read_node),
        (names.PLAN_NAMESPACE_RESTORE, plan),
        *((name, _answering(name, FailoverStepResult(ok=True, detail="stand-in", lag_bytes=0)))
          for name in (names.CONFIRM_PRIMARY_DOWN, names.MEASURE_REPLICA_LAG)),
        *((name, _answering(name, LedgerReceipt(seq=1, hash="0" * 64))) for name in (
            names.APPEND_NODE_RECOVERY_RECORD, names.APPEND_DB_FAILOVER_RECORD,
            names.APPEND_NAMESPACE_RESTORE_RECORD)),
    ]
    queues: dict[str, list[Any]] = {}
    for name, function in functions:
        queues.setdefault(queue_for(names.queue_of(name), cluster), []).append(function)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(Worker(
            client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster), workflow_runner=workflow_runner(),
            workflows=[NodeRecoveryWorkflow, DatabaseFailoverWorkflow, NamespaceRestoreWorkflow]))
        for queue, registered in queues.items():
            await stack.enter_async_context(Worker(client, task_queue=queue, activities=registered))
        yield


def _input(kind: str, cluster: str) -> RecoveryInput:
    if kind == "node":
        return NodeRecoveryInput(cluster=cluster, node="node-1", requested_by="alice", reason="test")
    if kind == "database":
        return DatabaseFailoverInput(cluster=cluster, database="orders", requested_by="alice", reason="test")
    return NamespaceRestoreInput(cluster=cluster, namespace="shop", backup_target="shop-objects",
                                 requested_by="alice", reason="test")


async def _zerotouch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI (it runs its own event loop, so in a thread); its exit status, stdout and stderr."""
    status = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("kind", ["node", "database", "namespace"])
async def test_a_verified_approval_must_sign_the_request_the_recovery_names(
    kind: str, dev_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    alice, bob = ApproverKey.generate("alice@laptop"), ApproverKey.generate("bob@laptop")
    bob_file = bob.write(tmp_path, "bob")
    cluster = f"v{uuid.uuid4().hex[:8]}"
    connection = ("--address", dev_env.client.service_client.config.target_host, "--state-dir",
                  str(tmp_path / "state"))
    async with _stopped_at_approval(dev_env.client, cluster, _policy(alice, bob)):
        workflow_id = (await start_recovery(dev_env.client, _input(kind, cluster))).workflow_id
        handle = dev_env.client.get_workflow_handle(workflow_id)

        async def pending() -> RecoveryStatus | None:
            raw = await handle.query(QUERY_RECOVERY_STATUS)
            status = RecoveryStatus.model_validate(raw) if raw else None
            return status if status is not None and status.approval == "pending" else None

        status = await eventually(pending, timeout=DEADLINE, interval=0.2, what=f"the {kind} recovery's approval")
        request = status.approval_request
        assert request and request.startswith({"node": "recover-node-node-1", "database": "f",
                                               "namespace": "restore-n"}[kind]), status

        code, out, err = await _zerotouch(capsys, "recovery", "show", workflow_id, *connection)
        assert code == 0 and f"approval   pending (request {request})" in out and "--key" in out, err

        code, _, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob", *connection)
        assert code == 1 and len(err.splitlines()) == 1, err
        assert "approve needs a proof signed by 'bob' (the policy verifies approvers); sign it with --key" in err

        elsewhere = tmp_path / "other-request"  # bob's own key, but signed for another request of this workflow
        proof = bob.prove(Wanted(workflow_id, "another-request", APPROVE, "bob"))
        elsewhere.write_text(proof.message)
        elsewhere.with_suffix(".sig").write_text(proof.signature)
        code, _, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob",
                                        "--signature-file", str(elsewhere.with_suffix(".sig")),
                                        "--message-file", str(elsewhere), *connection)
        assert code == 1 and f"the proof is for request_id 'another-request', not {request!r}" in err, err

        code, message, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob",
                                              "--print-message", *connection)
        claim = json.loads(message)
        assert code == 0 and (claim["workflow_id"], claim["request_id"], claim["decision"], claim["approver"]) \
            == (workflow_id, request, "approve", "bob"), err

        code, out, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob", "--key",
                                          str(bob_file), "--note", "checked", "--json", *connection)
        assert code == 0 and json.loads(out) == {"workflow_id": workflow_id, "answer": "approved by bob"}, err
        final = RecoveryStatus.model_validate(await asyncio.wait_for(handle.result(), DEADLINE))
        assert (final.stage, final.approval, final.approval_request) == ("refused", "approved by bob", ""), final
        assert any("identity verified by SSH key SHA256:" in e.detail for e in final.timeline), final.timeline

        code, _, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob", "--key",
                                        str(bob_file), *connection)
        assert code == 1 and "is over (refused); nothing to approve" in err, err
