"""The floor: the least a Temporal workflow can do between an alert and zerotouch's first action.

Started by signal-with-start, as the relay starts an incident; its one activity is zerotouch's own
`restart_deployment` (read, then the same PATCH). No policy, no triage, no grant: what it takes is
what the dev server, the SDK and the worker settings cost, which zerotouch's latency is judged
against (BENCHMARKS.md, scenario 2). Registered only by the bench's floor worker, never shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.models import ActionRequest, ActionResult

FLOOR_WORKFLOW = "BenchFloor"
FLOOR_SIGNAL = "alert_fired"
# Separate queues, as zerotouch's incident (workflows) and its action (kubernetes) are.
FLOOR_WORKFLOW_QUEUE = "bench-floor-workflows"
FLOOR_ACTIVITY_QUEUE = "bench-floor-kubernetes"


@dataclass
class FloorInput:
    namespace: str
    name: str
    activity_queue: str = FLOOR_ACTIVITY_QUEUE


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    def __init__(self) -> None:
        self._fired = False

    @workflow.signal(name=FLOOR_SIGNAL)
    def alert_fired(self, _: str) -> None:
        self._fired = True

    @workflow.run
    async def run(self, floor: FloorInput) -> ActionResult:
        await workflow.wait_condition(lambda: self._fired)
        request = ActionRequest(action=names.RESTART_DEPLOYMENT, namespace=floor.namespace, name=floor.name,
                                idempotency_key=f"floor-{workflow.info().workflow_id}",
                                incident_id=workflow.info().workflow_id)
        # The incident's timeouts and retry for an action (workflows/incident/calls.py).
        return await workflow.execute_activity(
            names.RESTART_DEPLOYMENT, request, task_queue=floor.activity_queue, result_type=ActionResult,
            start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3))
