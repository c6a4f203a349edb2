"""A runbook whose fix is a Job (run_job) is verified by that Job finishing, even with no Prometheus."""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from zerotouch.policy import Policy


@pytest.fixture
def cluster() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _policy() -> Policy:
    runbook = {
        "name": "cleanup-old-logs",
        "match": {"alertname": ["DiskSpaceHigh"]},
        "steps": [{"action": "run_job", "params": {"template": "log-cleanup"}}],
        # PromQL only, and no Prometheus here: before the Job was awaited, this "verified" at once.
        "verify": {"rollout": False, "promql": "disk_used_ratio < 0.85", "timeout": "30s"},
        "max_attempts": 1,
    }
    templates = {"log-cleanup": {"image": "busybox:1.36.1", "args": ["find", "/var/log/app", "-delete"]}}
    return make_policy(runbooks=[runbook], job_templates=templates, resolution_cooldown="5s")


async def test_a_cleanup_job_must_finish_before_the_incident_counts_as_verified(
    time_env: WorkflowEnvironment, sandbox: SandboxCluster, cluster: str
) -> None:
    sandbox.inject("disk-pressure", namespace="shop", deployment="checkout")
    policy = _policy()
    event = alert("DiskSpaceHigh", severity="warning", namespace="shop", deployment="checkout")
    async with running_workers(time_env.client, cluster, kubernetes_url=sandbox.url, policy=policy):
        handle = await open_incident(time_env.client, cluster, event, policy)
        status = await wait_for(handle, lambda s: s.state == "resolved", timeout=60)
    assert len(sandbox.actions(namespace="shop", kind="job")) == 1
    verification = [e.message for e in status.timeline if e.kind == "verification"]
    assert len(verification) == 1 and verification[0].startswith("verified: ")
    assert "job shop/" in verification[0] and "no Prometheus configured" in verification[0], verification
    assert sandbox.is_healthy("shop", "checkout"), "verified means the cleanup really ran"
