"""Node recovery against the sandbox: drain by eviction, the provider's reboot, the capacity budget, a killed worker.

Real servers only: the Temporal dev server, the sandbox Kubernetes API (nodes fail through its
`/sandbox/v1/nodes/<name>/fail` route), zerotouch's own workers; in the last test the Kubernetes
worker is its own OS process, killed with SIGKILL mid-drain and started again.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from sandbox.client import fail_node_via_http
from tests.recovery.nodes import (
    add_guarded_deployment,
    node_policy,
    node_state,
    node_workers,
    pods_on,
    scale,
    start_recovery,
    status_of,
    steps_done,
)
from tests.support.policies import REPO
from tests.support.processes import KubernetesWorkerProcess
from tests.support.waiting import eventually
from zerotouch.governor_client import governor_status
from zerotouch.ledger_store import open_ledger
from zerotouch.models import AbortInput
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, UPDATE_ABORT, WORKFLOWS_QUEUE
from zerotouch.recovery import RecoveryStatus

DEADLINE = 120.0  # generous: two shared cores


def _cluster() -> str:
    return f"n{uuid.uuid4().hex[:8]}"


def _seq(sandbox: SandboxCluster) -> int:
    return max((int(a["seq"]) for a in sandbox.actions(include_failed=True)), default=0)


def _evictions(sandbox: SandboxCluster, since: int, name_prefix: str = "") -> list[dict[str, Any]]:
    return [a for a in sandbox.actions(kind="evict", include_failed=True)
            if int(a["seq"]) > since and str(a["name"]).startswith(name_prefix)]


def _pod_deletes(sandbox: SandboxCluster, since: int) -> list[dict[str, Any]]:
    return [a for a in sandbox.actions(include_failed=True)
            if int(a["seq"]) > since and a["method"] == "DELETE" and a["resource"] == "pods"]


async def _result(handle: WorkflowHandle[Any, RecoveryStatus]) -> RecoveryStatus:
    return await asyncio.wait_for(handle.result(), DEADLINE)


async def test_a_not_ready_node_is_drained_rebooted_and_back_in_service(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path,
) -> None:
    client: Client = dev_env.client
    cluster, node, ledger = _cluster(), "sandbox-node-2", f"sqlite:///{tmp_path}/ledger.db"
    before = [(ns, name) for ns, name, kind in pods_on(sandbox, node) if kind != "DaemonSet"]
    assert before, "the demo schedules pods on every node"
    seq = _seq(sandbox)
    fail_node_via_http(sandbox.url, node, "NotReady")
    async with node_workers(client, cluster, sandbox=sandbox, policy=node_policy(tmp_path), ledger=ledger):
        handle = await start_recovery(client, cluster, node)
        result = await _result(handle)
        leases = (await governor_status(client, cluster)).node_leases
    assert result.stage == "recovered", result.timeline
    assert {"grant", "lease", "cordon", "drain", "reschedule", "provider", "ready", "uncordon"} <= steps_done(result)
    state = node_state(sandbox, node)
    assert (state["ready"], state["unschedulable"], state["owner"]) == ("True", False, "")
    # Every pod left through the Eviction API (the web PDB stands over three of them); none was deleted.
    assert set(before) <= {(a["namespace"], a["name"]) for a in _evictions(sandbox, seq) if a["ok"]}
    assert _pod_deletes(sandbox, seq) == []
    for deployment in ("web", "checkout", "email-worker", "web-api"):
        assert sandbox.is_healthy("shop", deployment), deployment
    assert leases == [], "the lease was given back"
    records = open_ledger(ledger).get(handle.id)
    assert [r.kind for r in records] == ["node_recovery"]
    evidence = records[0].evidence or {}
    assert (evidence["before"]["ready"], evidence["after"]["ready"], evidence["after"]["unschedulable"]) == \
        ("false", "true", "false")


async def test_eviction_waits_until_the_pdb_allows(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path,
) -> None:
    # The sandbox evicts a pod that is not Ready whatever its budget says (it never lowers availability), so
    # the budget is shown holding the drain back on a node whose pods still run: a person's recovery.
    client: Client = dev_env.client
    cluster, ledger = _cluster(), f"sqlite:///{tmp_path}/ledger.db"
    node = await asyncio.to_thread(add_guarded_deployment, sandbox, "api", replicas=2, min_available=2)
    seq = _seq(sandbox)
    async with node_workers(client, cluster, sandbox=sandbox, policy=node_policy(tmp_path), ledger=ledger):
        handle = await start_recovery(client, cluster, node, reason="maintenance", requested_by="alice")
        await eventually(lambda: _async(any(a["status"] == 429 for a in _evictions(sandbox, seq, "api-"))),
                         timeout=DEADLINE, what="the budget refusing an eviction of api")
        state = node_state(sandbox, node)
        assert (state["unschedulable"], state["owner"]) == (True, handle.id)
        assert any(name.startswith("api-") for _, name, _ in pods_on(sandbox, node)), "the api pod stays meanwhile"
        await asyncio.to_thread(scale, sandbox, "api", 3)  # a third replica elsewhere gives the budget room
        result = await _result(handle)
    assert result.stage == "recovered", result.timeline
    api = [a["status"] for a in _evictions(sandbox, seq, "api-")]
    assert api[0] == 429 and api[-1] == 201 and set(api) == {429, 201}, api
    assert _pod_deletes(sandbox, seq) == []
    drain = next(e for e in result.timeline if e.step == "drain")
    assert "PDB refusal" in drain.detail and not drain.detail.endswith(" 0 PDB refusal(s) waited out"), drain
    state = node_state(sandbox, node)
    assert (state["ready"], state["unschedulable"], state["owner"]) == ("True", False, "")
    assert sandbox.is_healthy("shop", "api")


async def test_a_second_not_ready_node_beyond_the_capacity_budget_is_refused(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path,
) -> None:
    client: Client = dev_env.client
    cluster, ledger = _cluster(), f"sqlite:///{tmp_path}/ledger.db"
    # A provider slow enough that the first recovery still holds its node when the second asks.
    policy = node_policy(tmp_path, provider_delay="6s")
    fail_node_via_http(sandbox.url, "sandbox-node-2", "NotReady")
    async with node_workers(client, cluster, sandbox=sandbox, policy=policy, ledger=ledger):
        first = await start_recovery(client, cluster, "sandbox-node-2")
        await eventually(lambda: _cordoned(first), timeout=DEADLINE, what="the first node cordoned")
        fail_node_via_http(sandbox.url, "sandbox-node-3", "NotReady")
        seq = _seq(sandbox)
        on_third = pods_on(sandbox, "sandbox-node-3")
        plan = await _result(await start_recovery(client, cluster, "sandbox-node-3", dry_run=True))
        second = await start_recovery(client, cluster, "sandbox-node-3")
        refused = await _result(second)
        assert refused.incident_id
        incident = await client.get_workflow_handle(refused.incident_id).describe()
        recovered = await _result(first)
    assert plan.stage == "planned" and "capacity budget refuses" in plan.plan[-1], plan.plan
    assert refused.stage == "refused", refused.timeline
    assert "capacity budget" in refused.outcome and "at least 2" in refused.outcome, refused.outcome
    assert incident.status is not None
    # Refused means nothing changed on the second node: not cordoned, nothing evicted.
    state = node_state(sandbox, "sandbox-node-3")
    assert (state["unschedulable"], state["owner"]) == (False, "")
    assert [a for a in sandbox.actions(include_failed=True) if int(a["seq"]) > seq and a["name"] == "sandbox-node-3"] \
        == []
    assert set(on_third) <= set(pods_on(sandbox, "sandbox-node-3")), "the second node's pods were left alone"
    assert "cordon" not in steps_done(refused)
    assert recovered.stage == "recovered", recovered.timeline


async def test_a_worker_killed_mid_drain_leaves_the_node_owned_and_the_recovery_finishes(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path,
) -> None:
    client: Client = dev_env.client
    cluster, node, ledger = _cluster(), "sandbox-node-3", f"sqlite:///{tmp_path}/ledger.db"
    address = client.service_client.config.target_host
    workers: list[KubernetesWorkerProcess] = []

    async def new_worker() -> KubernetesWorkerProcess:
        worker = KubernetesWorkerProcess(address=address, cluster=cluster, kubernetes_url=sandbox.url,
                                         workdir=tmp_path, index=len(workers))
        worker.env["PYTHONPATH"] = str(REPO)  # it runs in tmp_path: find this checkout's packages
        workers.append(worker)
        await worker.spawn()
        return worker

    try:
        worker = await new_worker()
        fail_node_via_http(sandbox.url, node, "NotReady")
        # The first evictions are applied, then their answers held back: the kill lands between the two.
        sandbox.fail_requests(status=None, count=2, path_contains="/eviction", method="POST",
                              delay_after_seconds=3.0)
        seq = _seq(sandbox)
        async with node_workers(client, cluster, sandbox=sandbox, policy=node_policy(tmp_path), ledger=ledger,
                                queues=[WORKFLOWS_QUEUE, OBSERVE_QUEUE, DATA_QUEUE]):
            handle = await start_recovery(client, cluster, node)

            async def first_eviction() -> bool:
                worker.check_alive()
                return bool(_evictions(sandbox, seq))

            try:
                await eventually(first_eviction, timeout=60, what="the drain's first eviction")
            except BaseException:
                print(await status_of(handle), worker.tail())
                raise
            await worker.kill()
            # Mid-drain and without a worker: the node is cordoned and names the running workflow.
            state = node_state(sandbox, node)
            assert (state["unschedulable"], state["owner"]) == (True, handle.id)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            worker = await new_worker()
            result = await _result(handle)
            await worker.stop()
    finally:
        for process in workers:
            await process.kill()
    assert result.stage == "recovered", result.timeline
    state = node_state(sandbox, node)
    assert (state["ready"], state["unschedulable"], state["owner"]) == ("True", False, "")
    assert _pod_deletes(sandbox, seq) == []


async def _async(value: bool) -> bool:
    return value


async def _cordoned(handle: WorkflowHandle[Any, RecoveryStatus]) -> bool:
    return "cordon" in steps_done(await status_of(handle))


async def test_with_approval_configured_an_abort_before_the_cordon_changes_nothing(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path,
) -> None:
    client: Client = dev_env.client
    cluster, node, ledger = _cluster(), "sandbox-node-2", f"sqlite:///{tmp_path}/ledger.db"
    fail_node_via_http(sandbox.url, node, "NotReady")
    seq = _seq(sandbox)
    async with node_workers(client, cluster, sandbox=sandbox, policy=node_policy(tmp_path, approval="approval"),
                            ledger=ledger):
        handle = await start_recovery(client, cluster, node)

        async def awaiting() -> bool:
            status = await status_of(handle)
            return status is not None and status.stage == "awaiting_approval"

        await eventually(awaiting, timeout=DEADLINE, what="the plan waiting for a human")
        await handle.execute_update(UPDATE_ABORT, AbortInput(by="bob", reason="not now"), result_type=str)
        result = await _result(handle)
    assert (result.stage, result.approval) == ("aborted", "aborted by bob"), result.timeline
    assert result.plan and "cordon" not in steps_done(result)
    state = node_state(sandbox, node)
    assert (state["unschedulable"], state["owner"]) == (False, "")
    assert _evictions(sandbox, seq) == []
