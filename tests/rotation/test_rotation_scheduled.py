"""Rotations on a Temporal Schedule: the policy declares it, `schedules apply` creates it, each run rotates.

A Kubernetes-only credential (an API token its consumer reads from a volume): no target system,
so the run is quick and what it proves is the path schedule → ScheduledRotationWorkflow → the
Secret's one SecretRotationWorkflow, and that a second trigger while one rotation runs starts none.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters import schedules
from tests.rotation.support import apps, core, rotation_policy
from tests.support.waiting import eventually
from tests.support.zt import running_workers
from zerotouch.rotation_models import RotationResult
from zerotouch.rotations import SecretRef, rotation_workflow_id
from zerotouch.schedules import ScheduleDeclaration, schedule_id

NAMESPACE, SECRET, CONSUMER = "shop", "search-token", "search"


def seed(sandbox: SandboxCluster) -> None:
    api = core(sandbox.url)
    api.create_namespaced_secret(NAMESPACE, {"metadata": {"name": SECRET, "namespace": NAMESPACE},
                                             "data": {"token": base64.b64encode(b"first-token-value").decode()}})
    labels = {"app": CONSUMER}
    apps(api).create_namespaced_deployment(NAMESPACE, {
        "metadata": {"name": CONSUMER, "namespace": NAMESPACE, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [{"name": "search", "image": "registry.local/shop/search:2.1",
                                     "volumeMounts": [{"name": "token", "mountPath": "/var/run/token"}]}],
                     "volumes": [{"name": "token", "secret": {"secretName": SECRET}}]}}}})


def token(sandbox: SandboxCluster) -> tuple[str, dict[str, str]]:
    secret = core(sandbox.url).read_namespaced_secret(SECRET, NAMESPACE)
    return base64.b64decode(secret.data["token"]).decode(), dict(secret.metadata.annotations or {})


async def runs(client: Client, prefix: str) -> list[Any]:
    return [w async for w in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}'")]


async def test_a_scheduled_rotation_rotates_and_a_second_trigger_while_it_runs_starts_none(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path) -> None:
    client, cluster = dev_env.client, f"s{uuid.uuid4().hex[:8]}"
    seed(sandbox)
    rotation = {"secret": {"namespace": NAMESPACE, "name": SECRET},
                "target": {"kind": "kubernetes", "keys": ["token"], "generated": {"length": 40, "alphabet": "hex"}},
                "verify": {"poll": "200ms", "rollout_timeout": "60s"}}
    # Approval required: the first rotation waits for it, so the second trigger finds it running.
    policy = rotation_policy(tmp_path, {"search-token": rotation}, automatic=False)
    declaration = ScheduleDeclaration.model_validate({
        "name": "rotate-search-token", "cron": ["0 3 * * 0"], "workflow": "ScheduledRotationWorkflow",
        "arguments": {"rotation": "search-token"}, "overlap": "ALLOW_ALL"})
    rotation_id = rotation_workflow_id(SecretRef(namespace=NAMESPACE, name=SECRET), cluster)
    async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy=policy):
        await schedules.apply(client, [declaration], cluster)
        try:
            schedule = client.get_schedule_handle(schedule_id("rotate-search-token", cluster))
            await schedule.trigger()
            handle = client.get_workflow_handle(rotation_id)

            async def awaiting() -> bool:
                try:
                    status = await handle.query("status")
                except Exception:  # not started yet
                    return False
                return bool(status and status.get("pending_approval"))

            await eventually(awaiting, timeout=60, what="the scheduled rotation waiting for approval")
            # A scheduled run's ID ends in its start second: the second trigger must fall in a later one.
            [first] = await runs(client, f"zerotouch-scheduled-{cluster}-rotate-search-token")

            async def next_second() -> bool:
                return datetime.now(UTC) >= first.start_time.replace(microsecond=0) + timedelta(seconds=1)

            await eventually(next_second, timeout=5, interval=0.05, what="the next second")
            await schedule.trigger()  # a second run while the first rotation runs

            async def both_scheduled_runs() -> list[Any] | None:
                found = await runs(client, f"zerotouch-scheduled-{cluster}-rotate-search-token")
                return found if len(found) == 2 else None

            scheduled = await eventually(both_scheduled_runs, timeout=60, what="two scheduled runs")
            await handle.execute_update("approve", {"by": "bob", "note": "weekly"})
            result = RotationResult.model_validate(await handle.result())
        finally:
            await schedules.apply(client, [], cluster)
    assert result.outcome == "rotated", result
    value, annotations = token(sandbox)
    assert value != "first-token-value" and len(value) == 40 and set(value) <= set("0123456789abcdef")
    assert annotations["rotation.zerotouch.io/stage"] == "revoked"
    rotations = await runs(client, rotation_id)
    assert len(rotations) == 1, "the second trigger started a second rotation of the same Secret"

    async def both_done() -> bool:
        states = [(await client.get_workflow_handle(r.id, run_id=r.run_id).describe()).status for r in scheduled]
        return all(state == WorkflowExecutionStatus.COMPLETED for state in states)

    await eventually(both_done, timeout=30, what="both scheduled runs completed")
    deployment = apps(core(sandbox.url)).read_namespaced_deployment(CONSUMER, NAMESPACE)
    assert result.token in (deployment.spec.template.metadata.annotations or {}).values()
