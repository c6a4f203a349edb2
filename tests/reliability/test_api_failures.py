"""A failing Kubernetes API on the action path: retried with backoff, never applied twice.

Each case breaks the PATCH of one deployment in its own namespace, all incidents at once:
500s, an answer lost after the write applied (longer than the client's read timeout), a write
the apiserver applies only after the client gave up and retried, and 409 conflicts — each
incident still resolves with exactly one applied restart. 403, 404 and 422 cannot be fixed by
retrying: the incident escalates at once, saying why, and nothing is applied.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.reliability.cluster import add_deployments, last_seq, reliability_policy
from tests.reliability.history import activity_attempts
from tests.reliability.workers import in_process_workers
from tests.support.zt import alert, open_incident, until_closed, wait_for
from workflows.incident import IncidentWorkflow
from zerotouch.models import AbortInput, IncidentStatus
from zerotouch.names import ALL_QUEUES

READ_TIMEOUT = 3.0  # the Kubernetes client's read timeout in this test (30 s in production)
RETRYABLE: dict[str, dict[str, Any]] = {
    "api-500": {"status": 500, "count": 3},
    "api-lost": {"status": None, "delay_after_seconds": READ_TIMEOUT + 2},
    "api-late": {"status": None, "delay_seconds": READ_TIMEOUT + 5},
    "api-409": {"status": 409, "count": 4},
}
NON_RETRYABLE = {"api-403": (403, "lacks this permission"), "api-422": (422, "the API server rejected the request")}
BACKOFF = [1.0, 2.0, 4.0]  # workflows/incident/calls.py ACTION_RETRY: 1 s, doubling


class Writes:
    """The mutating requests the sandbox received after the test created its workloads."""

    def __init__(self, sandbox: SandboxCluster) -> None:
        self._sandbox = sandbox
        self._after = last_seq(sandbox)

    def of(self, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(applied, failed) in the namespace."""
        writes = [a for a in self._sandbox.actions(namespace=namespace, include_failed=True) if a["seq"] > self._after]
        return [w for w in writes if w["ok"]], [w for w in writes if not w["ok"]]


def _escalation(status: IncidentStatus) -> str:
    return next((e.message for e in status.timeline if e.message.startswith("escalated and frozen")), "")


async def test_api_failures_are_retried_or_escalated_never_doubled(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path
) -> None:
    client, cluster = dev_env.client, f"a{uuid.uuid4().hex[:8]}"
    namespaces = [*RETRYABLE, *NON_RETRYABLE]
    await asyncio.to_thread(add_deployments, sandbox, namespaces, ["svc"])
    writes = Writes(sandbox)
    for ns in namespaces:
        sandbox.inject("crashloop", namespace=ns, deployment="svc")
    for ns, rule in RETRYABLE.items():
        sandbox.fail_requests(**{"count": 1, **rule}, path_contains=f"/namespaces/{ns}/deployments/svc",
                              method="PATCH")
    for ns, (code, _) in NON_RETRYABLE.items():
        sandbox.fail_requests(status=code, count=1, path_contains=f"/namespaces/{ns}/deployments/svc", method="PATCH")
    policy = reliability_policy()

    async def start(namespace: str, deployment: str = "svc") -> WorkflowHandle[Any, IncidentStatus]:
        return await open_incident(client, cluster, alert("KubePodCrashLooping", namespace=namespace,
                                                          deployment=deployment), policy)

    async with in_process_workers(client, cluster, queues=ALL_QUEUES, kubernetes_url=sandbox.url,
                                  ledger_url=f"sqlite:///{tmp_path}/ledger.db",
                                  kubernetes_timeout=(2.0, READ_TIMEOUT)):
        retried = dict(zip(RETRYABLE, await asyncio.gather(*(start(ns) for ns in RETRYABLE)), strict=True))
        refused = dict(zip(NON_RETRYABLE, await asyncio.gather(*(start(ns) for ns in NON_RETRYABLE)), strict=True))
        refused["api-404"] = await start("shop", "ghost")  # a real 404: no such deployment
        escalated = {ns: await wait_for(h, lambda s: s.state == "escalated", timeout=60) for ns, h in refused.items()}
        for handle in retried.values():
            await until_closed(handle, timeout=120)
        resolved = {ns: await h.result() for ns, h in retried.items()}
        attempts = {ns: await activity_attempts(h, "restart_deployment") for ns, h in {**retried, **refused}.items()}
        for handle in refused.values():
            await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
            await until_closed(handle)

    # Retryable failures: resolved, one applied restart each, after the expected number of attempts.
    for ns, status in resolved.items():
        applied, _ = writes.of(ns)
        assert status.state == "resolved", (ns, status.timeline[-3:])
        assert [w["kind"] for w in applied] == ["restart"], (ns, applied)
        assert len(status.actions) == 1, (ns, status.actions)
    applied, failed = writes.of("api-500")
    assert [w["status"] for w in failed] == [500, 500, 500] and attempts["api-500"] == [4]
    times = [w["timestamp"] for w in [*failed, *applied]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.95 * wait for gap, wait in zip(gaps, BACKOFF, strict=True)), f"no backoff: {gaps}"
    assert resolved["api-500"].actions[0].outcome == "applied"
    # The answer was lost after the write applied: the retry found the key and did not write again.
    assert attempts["api-lost"] == [2] and resolved["api-lost"].actions[0].outcome == "already applied"
    assert writes.of("api-lost")[1] == []
    # The apiserver applied the first write late, after the client gave up: whichever of the two
    # writes came second was refused, by the resourceVersion guard (409) or by the stored key.
    _, late_failed = writes.of("api-late")
    late_outcome = resolved["api-late"].actions[0].outcome
    assert attempts["api-late"] == [2]
    assert ([w["status"] for w in late_failed] == [409] and late_outcome == "applied") or (
        late_failed == [] and late_outcome == "already applied"), (late_failed, late_outcome)
    # Conflicts: three re-reads inside the first attempt, then one more in the second.
    assert [w["status"] for w in writes.of("api-409")[1]] == [409] * 4 and attempts["api-409"] == [2]

    # Non-retryable: escalated on the first attempt, the reason in the timeline, nothing applied.
    for ns, (code, reason) in NON_RETRYABLE.items():
        applied, failed = writes.of(ns)
        assert applied == [] and [w["status"] for w in failed] == [code], (ns, failed)
        assert escalated[ns].frozen and attempts[ns] == [1]
        assert reason in _escalation(escalated[ns]) and f"HTTP {code}" in _escalation(escalated[ns]), escalated[ns]
    assert "deployment shop/ghost not found" in _escalation(escalated["api-404"]), escalated["api-404"].timeline
    assert sandbox.actions(namespace="shop", include_failed=True) == [] and attempts["api-404"] == [1]
    print(f"\napi failures: late write refused by {'resourceVersion (409)' if late_failed else 'the stored key'}; "
          f"500 backoff gaps {[round(g, 2) for g in gaps]}s; attempts {attempts}")
