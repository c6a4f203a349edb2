"""A namespace restored from a real object backup: the dev server, every worker, the sandbox over HTTP.

The `shop` namespace is backed up by the backup workflow itself, then changed; the restore shows
its diff, writes nothing until a human approves an overwrite, and leaves what the backup does not
know alone. A restore into a fresh namespace only creates, so it runs without a human.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.namespace_restore_diff import field_diff, replacement
from sandbox import SandboxCluster
from tests.recovery.namespace_stack import SOURCE, RestoreStack, damage, restore_stack, wait_stage
from tests.support.histories import replay_and_record
from workflows.namespace_restore import NamespaceRestoreWorkflow
from zerotouch.models import AbortInput, ApproveInput
from zerotouch.recovery import RecoveryStatus
from zerotouch.recovery_namespaces import NamespaceRestorePolicy

HISTORIES = Path(__file__).resolve().parent / "histories"


async def _replay(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Today's workflow code replays the finished run (ZEROTOUCH_RECORD_HISTORIES=1 keeps it)."""
    await replay_and_record(handle, f"namespace-{name}", [NamespaceRestoreWorkflow], HISTORIES)


def test_a_diff_names_changed_data_keys_without_their_values() -> None:
    live = {"kind": "ConfigMap", "data": {"PASSWORD_HINT": "hunter2", "LOG_LEVEL": "debug"}, "spec": {"replicas": 1}}
    wanted = {"kind": "ConfigMap", "data": {"LOG_LEVEL": "info", "NEW": "x"}, "spec": {"replicas": 2}}
    assert field_diff(live, wanted) == ["data.LOG_LEVEL: changed", "data.NEW: added", "data.PASSWORD_HINT: removed",
                                        "spec.replicas: 1 → 2"]


def test_a_replaced_service_keeps_its_allocated_cluster_ip() -> None:
    live = {"metadata": {"name": "web", "resourceVersion": "7"}, "spec": {"clusterIP": "10.0.0.9", "type": "ClusterIP"}}
    body = replacement("Service", {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP"}}, live)
    assert body["spec"]["clusterIP"] == "10.0.0.9" and body["metadata"]["resourceVersion"] == "7"


@pytest.mark.parametrize(("namespace", "exists", "allowed"), [
    ("shop", True, True), ("other", True, False), ("brand-new", False, True), ("kube-system", False, False)])
def test_the_policy_allows_listed_or_fresh_namespaces_only(namespace: str, exists: bool, allowed: bool) -> None:
    assert (NamespaceRestorePolicy(into=["shop"]).refusal(namespace, exists=exists) == "") is allowed


@pytest_asyncio.fixture
async def restore_scene(dev_env: WorkflowEnvironment, sandbox: SandboxCluster,
                        tmp_path: Path) -> AsyncIterator[RestoreStack]:
    async with restore_stack(dev_env.client, sandbox, tmp_path) as stack:
        yield stack


async def _refused(handle: WorkflowHandle[Any, Any], decision: ApproveInput) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", decision)
    return str(refused.value.cause)


def _config_value(stack: RestoreStack) -> str:
    return str(stack.core.read_namespaced_config_map("web-config", SOURCE).data["LOG_LEVEL"])


async def test_a_restore_into_a_fresh_namespace_creates_everything_without_a_human(
        restore_scene: RestoreStack) -> None:
    stack = restore_scene
    backup = await stack.backup(verify=True)  # the newest verified backup is the default
    handle = await stack.start(into="shop-restored")
    result = RecoveryStatus.model_validate(await handle.result())
    assert result.stage == "recovered", (result.outcome, result.timeline)
    assert result.approval == "" and result.plan[0].startswith(f"backup {backup.id}")
    source, restored = stack.objects(SOURCE), stack.objects("shop-restored")
    assert set(restored) == set(source) and "Deployment checkout" in restored and "Service web" in restored
    assert restored["ConfigMap web-config"]["data"] == {"LOG_LEVEL": "info"}
    assert restored["Deployment web"]["spec"]["replicas"] == source["Deployment web"]["spec"]["replicas"]
    secrets = [line for line in result.plan if line.startswith("Secret checkout-db (keys")]
    assert secrets and "not restored" in secrets[0], result.plan
    (record,) = stack.records()
    assert record.outcome == "resolved" and record.evidence is not None
    assert record.evidence["before"]["Deployment web"] == "absent"
    assert record.evidence["after"]["Deployment web"] != "absent"
    assert "sandbox-only" not in json.dumps(record.model_dump(mode="json"))  # the Secret's value, never read
    await _replay(handle, "fresh")


async def test_a_restore_over_changed_objects_shows_its_diff_and_waits_for_approval(
        restore_scene: RestoreStack) -> None:
    stack = restore_scene
    backup = await stack.backup()
    damage(stack)
    damaged = stack.versions(SOURCE)

    dry = await stack.start(backup_id=backup.id, dry_run=True)
    planned = RecoveryStatus.model_validate(await dry.result())
    assert planned.stage == "planned" and planned.dry_run
    assert stack.versions(SOURCE) == damaged, "a dry run wrote something"

    handle = await stack.start(backup_id=backup.id, requested_by="alice")
    status = await wait_stage(handle, "awaiting_approval")
    assert status.approval == "pending" and status.plan == planned.plan
    assert "overwrite ConfigMap web-config: data.LOG_LEVEL: changed" in status.plan, status.plan
    assert "overwrite Deployment checkout: spec.replicas: 1 → 2" in status.plan, status.plan
    assert "create Service web" in status.plan and "unchanged Deployment web" in status.plan
    assert "leave alone ConfigMap added-later (not in the backup)" in status.plan
    assert not any("debug" in line or "info" in line for line in status.plan)  # ConfigMap values never shown
    assert "may not approve" in await _refused(handle, ApproveInput(by="alice"))  # four eyes
    assert "not an approver" in await _refused(handle, ApproveInput(by="mallory"))
    assert stack.versions(SOURCE) == damaged, "something was written while the approval was pending"

    await handle.execute_update("approve", ApproveInput(by="bob", note="restore after the bad deploy"))
    result = RecoveryStatus.model_validate(await handle.result())
    assert result.stage == "recovered", (result.outcome, result.timeline)
    assert result.approval == "approved by bob"
    assert _config_value(stack) == "info"
    assert stack.apps.read_namespaced_deployment("checkout", SOURCE).spec.replicas == 2
    assert "Service web" in stack.objects(SOURCE) and "ConfigMap added-later" in stack.objects(SOURCE)
    (record,) = stack.records()
    assert record.humans and {h.actor for h in record.humans} == {"alice", "bob"}
    evidence = record.evidence or {}
    assert evidence["before"]["ConfigMap web-config"] != evidence["after"]["ConfigMap web-config"]
    assert evidence["before"]["Service web"] == "absent"
    await _replay(handle, "approved")


async def test_an_aborted_or_unanswered_restore_leaves_the_namespace_untouched(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path) -> None:
    async with restore_stack(dev_env.client, sandbox, tmp_path, approval_timeout="4s") as stack:
        backup = await stack.backup()
        damage(stack)
        damaged = stack.versions(SOURCE)

        handle = await stack.start(backup_id=backup.id)
        await wait_stage(handle, "awaiting_approval")
        await handle.execute_update("abort", AbortInput(by="carol", reason="wrong backup"))
        aborted = RecoveryStatus.model_validate(await handle.result())
        assert (aborted.stage, aborted.approval) == ("aborted", "aborted by carol")
        assert stack.versions(SOURCE) == damaged

        handle = await stack.start(backup_id=backup.id)  # nobody answers: the timeout aborts, never approves
        timed_out = RecoveryStatus.model_validate(await handle.result())
        assert (timed_out.stage, timed_out.approval) == ("aborted", "timed out"), timed_out.timeline
        assert stack.versions(SOURCE) == damaged and _config_value(stack) == "debug"
        assert [r.outcome for r in stack.records()] == ["aborted", "aborted"]
        await _replay(handle, "timed-out")

        handle = await stack.start(into="kube-public", backup_id=backup.id)  # the cluster's own: refused
        refused = RecoveryStatus.model_validate(await handle.result())
        assert refused.stage == "refused" and "belongs to the cluster" in refused.outcome
        assert refused.incident_id, refused.timeline  # escalated
        await stack.client.get_workflow_handle(refused.incident_id).describe()
