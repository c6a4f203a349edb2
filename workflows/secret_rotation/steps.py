"""The moves of one rotation: each an idempotent activity keyed by the rotation's token.

`Steps` knows how to do, undo and prove each move; the workflow's `run` decides the order.
Failures of the target are facts to act on (roll back, open an incident), so the methods
answer what happened instead of raising, except for a cancelled workflow, which stops here.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.models import PromQLCheck, RolloutCheck
    from zerotouch.rotation_models import ConsumerRollout, RotationStep, RotationView, Stage, StageMark, StepResult

from workflows.secret_rotation import calls
from workflows.secret_rotation.state import RotationRun

ROLLOUT_HOLD_SECONDS = 5.0  # the new pods must stay healthy this long before the move counts
_POLL_CEILING = timedelta(seconds=30)


def failure_of(error: ActivityError) -> str:
    """What went wrong, for the timeline and the incident; re-raises a cancellation (not a verdict)."""
    if isinstance(error.cause, CancelledError):
        raise error
    return str(error.cause or error)


class Steps:
    def __init__(self, run: RotationRun, cluster: str) -> None:
        self._run, self._cluster = run, cluster

    def step(self, token: str | None = None) -> RotationStep:
        run = self._run
        return RotationStep(rotation=run.params.rotation, secret=run.rotation.secret, target=run.rotation.target,
                            token=token or run.token, at=workflow.now())

    async def read(self) -> RotationView:
        return await calls.read_state(self.step(), self._cluster)

    async def do(self, activity: str, stage: Stage | None = None, token: str | None = None) -> StepResult:
        result = await calls.step(activity, self.step(token), self._cluster)
        if stage is not None:
            self._run.reached(stage, result.detail or activity)
        return result

    async def mark(self, stage: Stage, message: str, verified: bool = False) -> None:
        await calls.mark(StageMark(step=self.step(), stage=stage, verified=verified), self._cluster)
        self._run.reached(stage, message)

    async def clear_leftover(self, view: RotationView) -> None:
        """A pending credential left by a rotation that never finished must not block this one."""
        if view.pending is None or view.pending.version == self._run.token:
            return
        leftover = view.pending.version
        await self.do(names.UNDO_PENDING_CREDENTIAL, token=leftover)
        await self.do(names.ROLLBACK_ROTATION, token=leftover)
        self._run.note("leftover", f"rotation {leftover} had left a pending credential; it was discarded")

    async def consumers(self) -> list[str]:
        declared = self._run.rotation.consumers
        if declared is not None:
            return list(declared)
        found = await calls.find_consumers(self._run.rotation.secret, self._cluster)
        return [consumer.deployment for consumer in found.consumers]

    async def undo_before_finish(self, why: str) -> None:
        """The pending credential never became current: forget it at the target, then in the Secret."""
        self._run.status.state = "rolling_back"
        await self.do(names.UNDO_PENDING_CREDENTIAL)
        await self.do(names.ROLLBACK_ROTATION)
        self._run.reached("rolled_back", f"pending credential discarded: {why}")

    async def roll_back_after_finish(self, consumers: list[str], why: str, token: str | None = None) -> None:
        """The previous credential (still valid) becomes current again and the consumers move back.
        ``token``: the version to roll back (default: this rotation's)."""
        self._run.status.state = "rolling_back"
        result = await self.do(names.ROLLBACK_ROTATION, token=token)
        await self.do(names.RESTORE_CURRENT_CREDENTIAL, token=token)
        current = result.view.current.version if result.view.current else "previous"
        await self.move_consumers(consumers, current)
        self._run.reached("rolled_back", f"previous credential current again: {why}")

    async def move_consumers(self, consumers: list[str], version: str) -> str | None:
        """Roll the consumers onto ``version`` and wait until they run healthy; None, or what went wrong."""
        if not consumers:
            return None
        secret, verify = self._run.rotation.secret, self._run.rotation.verify
        rolled = await calls.roll_consumers(ConsumerRollout(secret=secret, deployments=consumers, version=version),
                                            self._cluster)
        self._run.note("consumers", f"rolling out {', '.join(rolled.changed) or 'nothing new'}"
                                    f"{'; already on it: ' + ', '.join(rolled.unchanged) if rolled.unchanged else ''}")
        for deployment in consumers:
            status = await calls.wait_for_rollout(RolloutCheck(
                namespace=secret.namespace, deployment=deployment, hold_for_seconds=ROLLOUT_HOLD_SECONDS,
                timeout_seconds=verify.rollout_timeout.total_seconds(), poll_seconds=verify.poll.total_seconds(),
            ), self._cluster)
            if not status.healthy:
                return f"deployment {deployment} did not come up on the new credential: {status.detail}"
        return None

    async def healthy_after_move(self) -> str | None:
        """The policy's health expression (an auth-error rate) holds; None, or why not."""
        verify = self._run.rotation.verify
        if not verify.healthy_promql:
            return None
        result = await calls.wait_for_promql(PromQLCheck(
            expression=verify.healthy_promql, hold_for_seconds=ROLLOUT_HOLD_SECONDS,
            timeout_seconds=verify.rollout_timeout.total_seconds(), poll_seconds=verify.poll.total_seconds(),
        ), self._cluster)
        return None if result.holds else f"{verify.healthy_promql} does not hold: {result.detail}"

    async def wait_unused(self) -> bool | None:
        """Poll until the previous credential has no sessions: True; False at the timeout; None if a human
        stepped in. Not measurable for the target (single strategy, MongoDB, OAuth): True on the rollout alone."""
        run, verify = self._run, self._run.rotation.verify
        deadline = workflow.now() + verify.unused_timeout
        interval = verify.poll
        noted = False
        while True:
            use = await calls.count_sessions(self.step(), self._cluster)
            if not use.measurable or use.sessions == 0:
                run.note("unused", use.detail or f"no session of {use.login or 'the old login'} left")
                return True
            if not noted:
                run.note("in_use", f"{use.login} still has {use.sessions} session(s); waiting for them to end")
                noted = True
            left = deadline - workflow.now()
            if left <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(lambda: run.interrupted, timeout=min(interval, left))
                return None
            except TimeoutError:
                interval = min(interval * 2, _POLL_CEILING)
