"""SIGKILL the Kubernetes worker between the API applying a write and the activity completing.

The Kubernetes-queue worker runs as its own OS process (`zerotouch worker --queue
zerotouch-kubernetes`). The sandbox applies every deployment PATCH, logs it, and then holds the
answer back for STALL_SECONDS ("apply then stall"); the test kills the worker as soon as a write
shows in the action log, restarts it, and does so again for every wave of incidents. Temporal
retries the lost activities on the new worker; the idempotency key stored on the deployment
turns each retry into "already applied", so every incident completes with its action applied
exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.reliability.cluster import add_deployments, last_seq, reliability_policy
from tests.reliability.history import retry_causes
from tests.reliability.workers import in_process_workers
from tests.support.processes import KubernetesWorkerProcess
from tests.support.zt import alert, open_incident
from zerotouch.models import IncidentStatus
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE

INCIDENTS = 60  # at least 50, across NAMESPACES namespaces
NAMESPACES = 5
WAVES = 5  # one kill per wave
STALL_SECONDS = 4.0  # how long the sandbox holds a write's answer after applying it
# A lost action comes back after apply_action's heartbeat timeout (10 s); the bound is generous
# because the machine is shared, and being late is not what this test is about.
CLOSE_TIMEOUT = 240.0


@dataclass
class KillLog:
    """When the worker was killed, and which applied writes were still waiting for their answer then."""

    kills: list[float] = field(default_factory=list)
    interrupted: dict[int, dict[str, Any]] = field(default_factory=dict)  # action seq -> log entry

    def record(self, killed_at: float, writes: list[dict[str, Any]]) -> None:
        self.kills.append(killed_at)
        for write in writes:
            # The sandbox logs a write, then stalls STALL_SECONDS before answering: a write logged
            # less than that before the kill had not been answered, so its activity could not complete.
            if write["timestamp"] <= killed_at < write["timestamp"] + STALL_SECONDS:
                self.interrupted[write["seq"]] = write

    @property
    def landed(self) -> int:
        return sum(any(w["timestamp"] <= k < w["timestamp"] + STALL_SECONDS for w in self.interrupted.values())
                   for k in self.kills)


def _writes(sandbox: SandboxCluster) -> list[dict[str, Any]]:
    return [a for a in sandbox.actions() if a["method"] == "PATCH" and a["resource"] == "deployments"]


async def _fresh_write(sandbox: SandboxCluster, seen: int, worker: KubernetesWorkerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(w["seq"] > seen for w in _writes(sandbox)):
        assert (exited := worker.exited_early()) is None, exited
        assert time.monotonic() < deadline, f"no write reached the sandbox in {timeout}s; see {worker.log_file}"
        await asyncio.sleep(0.05)


async def _closed(handles: list[WorkflowHandle[Any, IncidentStatus]]) -> list[IncidentStatus]:
    deadline = time.monotonic() + CLOSE_TIMEOUT
    open_ = list(handles)
    while open_:
        described = await asyncio.gather(*(h.describe() for h in open_))
        open_ = [h for h, d in zip(open_, described, strict=True) if d.status == WorkflowExecutionStatus.RUNNING]
        assert time.monotonic() < deadline, f"{len(open_)} incidents still open after {CLOSE_TIMEOUT}s"
        await asyncio.sleep(0.5)
    return list(await asyncio.gather(*(h.result() for h in handles)))


async def test_worker_killed_mid_action_acts_exactly_once(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client: Client = dev_env.client
    address = client.service_client.config.target_host
    cluster = f"k{uuid.uuid4().hex[:8]}"
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.1).start()
    workers: list[KubernetesWorkerProcess] = []
    started, started_wall = time.monotonic(), time.time()

    async def new_worker() -> KubernetesWorkerProcess:
        worker = KubernetesWorkerProcess(address=address, cluster=cluster, kubernetes_url=sandbox.url,
                                         workdir=tmp_path, index=len(workers))
        workers.append(worker)
        await worker.spawn()
        return worker

    try:
        worker = await new_worker()  # it starts up while the workloads are created
        per_namespace = INCIDENTS // NAMESPACES
        targets = await asyncio.to_thread(
            add_deployments, sandbox, [f"rel-{i}" for i in range(NAMESPACES)],
            [f"svc-{j:02d}" for j in range(per_namespace)])
        assert len(targets) == INCIDENTS >= 50
        for ns, name in targets:
            sandbox.inject("crashloop", namespace=ns, deployment=name)
        setup_seq = last_seq(sandbox)
        sandbox.fail_requests(status=None, count=100 * INCIDENTS, path_contains="/deployments/", method="PATCH",
                              delay_after_seconds=STALL_SECONDS)
        policy = reliability_policy()
        kills = KillLog()
        handles: list[WorkflowHandle[Any, IncidentStatus]] = []
        async with in_process_workers(client, cluster, queues=[WORKFLOWS_QUEUE, OBSERVE_QUEUE, DATA_QUEUE],
                                      kubernetes_url=sandbox.url, ledger_url=f"sqlite:///{tmp_path}/ledger.db"):
            size = -(-INCIDENTS // WAVES)
            for wave in range(WAVES):
                seen = max((w["seq"] for w in _writes(sandbox)), default=0)
                handles += await asyncio.gather(*(
                    open_incident(client, cluster, alert("KubePodCrashLooping", namespace=ns, deployment=name),
                                  policy, incident_id=f"incident-{cluster}-{ns}-{name}")
                    for ns, name in targets[wave * size:(wave + 1) * size]))
                await _fresh_write(sandbox, seen, worker, timeout=60)
                killed_at = time.time()
                await worker.kill()
                kills.record(killed_at, _writes(sandbox))
                worker = await new_worker()
            finals = await _closed(handles)
            await worker.stop()
        stall_rule_left = sandbox.core.failures.describe()
    finally:
        for process in workers:
            await process.kill()
        sandbox.stop()

    # Every incident completed: its restart applied, verified, resolved.
    assert Counter(f.state for f in finals) == {"resolved": INCIDENTS}, [f.timeline[-2:] for f in finals]
    # Each action applied exactly once, as the sandbox saw it: one write per target, and it was the restart.
    writes = _writes(sandbox)
    requests = [a for a in sandbox.actions(include_failed=True) if a["seq"] > setup_seq]
    assert [a for a in requests if a["ok"]] == writes, "no other mutating request changed anything"
    # A kill can also cut a PATCH off while its body is still being sent: the API rejects the
    # truncated request (400) and nothing changes.
    cut_off = [a for a in requests if not a["ok"]]
    assert all(a["status"] == 400 and any(0 <= a["timestamp"] - k < 5 for k in kills.kills) for a in cut_off), cut_off
    per_target = Counter((w["namespace"], w["name"]) for w in writes)
    assert per_target == dict.fromkeys(targets, 1), {t: n for t, n in per_target.items() if n != 1}
    assert {w["kind"] for w in writes} == {"restart"}
    assert stall_rule_left, "the stall rule was never used up: every write was held back after applying"
    # The kills landed mid-action, and the retries found the key the lost attempt had stored.
    assert len(kills.kills) == WAVES
    assert kills.landed > 0, "no kill fell between a write and its answer"
    outcome = {f.target: f.actions[0].outcome for f in finals}
    assert all(len(f.actions) == 1 for f in finals), [f.actions for f in finals if len(f.actions) != 1]
    for write in kills.interrupted.values():
        assert outcome[f"{write['namespace']}/{write['name']}"] == "already applied", write
    # The dead worker's attempts were given up on because their heartbeats stopped, not after
    # the action's whole start_to_close: that is what keeps a crash from adding a minute.
    by_target = {h.id.removeprefix(f"incident-{cluster}-"): h for h in handles}
    for write in kills.interrupted.values():
        causes = await retry_causes(by_target[f"{write['namespace']}-{write['name']}"], "restart_deployment")
        assert "TIMEOUT_TYPE_HEARTBEAT" in causes and "TIMEOUT_TYPE_START_TO_CLOSE" not in causes, (write, causes)
    for incident in finals:
        assert incident.actions[0].idempotency_key.startswith(f"incident-{cluster}-"), incident.actions[0]
    already = sum(o == "already applied" for o in outcome.values())
    print(f"\nworker kills: {INCIDENTS} incidents, {len(kills.kills)} SIGKILLs, {kills.landed} landed mid-action, "
          f"{len(kills.interrupted)} applied writes lost their answer, {already} retries found the key "
          f"('already applied'), {len(cut_off)} PATCHes cut off mid-send (400, not applied), "
          f"{len(writes)} writes applied for {len(targets)} targets, "
          f"kills at {[round(k - started_wall, 1) for k in kills.kills]}s, {time.monotonic() - started:.0f}s in all")
