"""`zerotouch recovery`: plan, start, show, approve and list against the dev server, the workers and the sandbox.

The namespace restore is the real NamespaceRestoreWorkflow over a real object backup. For a list
with several kinds, a stand-in registered as "NodeRecoveryWorkflow" (on a task queue of its own)
answers a RecoveryStatus, which is all the contract asks of it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.main import main
from sandbox import SandboxCluster
from tests.recovery.namespace_stack import SOURCE, TARGET, RestoreStack, damage, restore_stack
from tests.support.waiting import eventually
from zerotouch.recovery import NODE_RECOVERY_WORKFLOW, NodeRecoveryInput, RecoveryStatus, recovery_id


@workflow.defn(name=NODE_RECOVERY_WORKFLOW, sandboxed=False)
class StandInNodeRecovery:
    @workflow.run
    async def run(self, params: NodeRecoveryInput) -> RecoveryStatus:
        return RecoveryStatus(kind="node", target=params.node, cluster=params.cluster, stage="recovered",
                              outcome="stand-in: nothing done")


@pytest_asyncio.fixture
async def recovery_cli_stack(dev_env: WorkflowEnvironment, sandbox: SandboxCluster,
                             tmp_path: Path) -> AsyncIterator[RestoreStack]:
    async with restore_stack(dev_env.client, sandbox, tmp_path) as stack:
        yield stack


async def _zerotouch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI (it runs its own event loop, so in a thread); its exit status, stdout and stderr."""
    status = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _address(stack: RestoreStack, tmp_path: Path) -> tuple[str, ...]:
    return ("--address", stack.client.service_client.config.target_host, "--state-dir", str(tmp_path / "state"))


@pytest.mark.parametrize(("args", "complaint"), [
    (["plan", "namespace", "Shop_1", "--backup-target", TARGET], "not a DNS-1123 label"),
    (["start", "namespace", SOURCE, "--backup-target", TARGET, "--into", "../etc"], "not a DNS-1123 label"),
    (["plan", "node", "node;rm -rf /"], "not a DNS-1123 subdomain"),
])
def test_bad_names_are_refused_before_anything_starts(args: list[str], complaint: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["recovery", *args, "--address", "127.0.0.1:9"])  # never reached: refused first
    err = capsys.readouterr().err
    assert status == 2 and complaint in err and err.count("\n") == 1, err


async def test_plan_start_show_approve_and_list_a_namespace_restore(
        recovery_cli_stack: RestoreStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = recovery_cli_stack
    connection = _address(stack, tmp_path)
    backup = await stack.backup()
    damage(stack)
    restore = ("namespace", SOURCE, "--backup-target", TARGET, "--backup-id", backup.id, "--cluster", stack.cluster)

    status, out, err = await _zerotouch(capsys, "recovery", "plan", *restore, "--json", *connection)
    assert status == 0, err
    planned = json.loads(out)
    assert "-plan-" in planned["workflow_id"] and planned["status"]["stage"] == "planned"
    assert "overwrite ConfigMap web-config: data.LOG_LEVEL: changed" in planned["status"]["plan"]

    status, out, err = await _zerotouch(capsys, "recovery", "start", *restore, "--by", "alice", "--json", *connection)
    assert status == 0, err
    workflow_id = json.loads(out)["workflow_id"]
    assert workflow_id == recovery_id("namespace", stack.cluster, SOURCE)

    async def pending() -> dict[str, Any] | None:
        code, shown, _ = await _zerotouch(capsys, "recovery", "show", workflow_id, "--json", *connection)
        row = json.loads(shown) if code == 0 else None
        return row if row and row["status"] and row["status"]["approval"] == "pending" else None

    row = await eventually(pending, timeout=90, interval=0.3, what="the restore awaiting approval")
    assert row["stage"] == "awaiting_approval" and row["status"]["plan"] == planned["status"]["plan"]
    status, out, _ = await _zerotouch(capsys, "recovery", "show", workflow_id, *connection)
    assert f"zerotouch recovery approve {workflow_id}" in out and "overwrite ConfigMap web-config" in out

    async def refused_by_target() -> str | None:  # found by its target once visibility lists it
        code, _, refusal = await _zerotouch(capsys, "recovery", "approve", SOURCE, "--by", "alice", *connection)
        return refusal if code == 1 and "no recovery of" not in refusal else None

    assert "may not approve" in await eventually(refused_by_target, timeout=30, interval=0.5,
                                                 what="the restore listed")  # four eyes
    status, out, err = await _zerotouch(capsys, "recovery", "approve", workflow_id, "--by", "bob", "--json",
                                        *connection)
    assert status == 0 and json.loads(out)["answer"] == "approved by bob", err
    final = RecoveryStatus.model_validate(await stack.client.get_workflow_handle(workflow_id).result())
    assert final.stage == "recovered", final.timeline

    node_id = recovery_id("node", f"{stack.cluster}-standin", "node-1")
    queue = f"standin-{uuid.uuid4().hex[:8]}"
    async with Worker(stack.client, task_queue=queue, workflows=[StandInNodeRecovery]):
        await stack.client.execute_workflow(NODE_RECOVERY_WORKFLOW, NodeRecoveryInput(cluster="x", node="node-1"),
                                            id=node_id, task_queue=queue)

    async def listed() -> list[dict[str, Any]] | None:
        code, shown, _ = await _zerotouch(capsys, "recovery", "list", "--json", *connection)
        rows = [r for r in json.loads(shown) if r["workflow_id"] in (workflow_id, planned["workflow_id"], node_id)]
        return rows if code == 0 and len(rows) == 3 else None

    rows = await eventually(listed, timeout=60, interval=0.5, what="three recoveries listed")
    assert [(r["kind"], r["target"], r["stage"]) for r in rows] == [
        ("node", "node-1", "recovered"), ("namespace", SOURCE, "recovered"), ("namespace", SOURCE, "planned")]
    status, out, _ = await _zerotouch(capsys, "recovery", "list", *connection)
    assert node_id in out and "(dry run)" in out

    status, _, err = await _zerotouch(capsys, "recovery", "abort", workflow_id, "--by", "carol", "--reason", "late",
                                      *connection)
    assert status == 1 and "is over" in err, err
