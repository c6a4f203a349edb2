"""A workflow that runs one activity by name with a heartbeat timeout and a single attempt.

Kept apart from the test module so the workflow sandbox imports nothing but temporalio.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@dataclass
class ProbeInput:
    activity: str
    seconds: float  # how long the activity blocks without reporting anything
    heartbeat_seconds: float


@workflow.defn
class HeartbeatProbe:
    @workflow.run
    async def run(self, probe: ProbeInput) -> str:
        result: str = await workflow.execute_activity(
            probe.activity,
            probe.seconds,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=probe.heartbeat_seconds),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result
