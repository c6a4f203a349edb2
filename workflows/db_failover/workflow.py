"""DatabaseFailoverWorkflow: fail a PostgreSQL primary over to its replica, never losing more than the policy allows.

One workflow per database (`recovery_id("database", name)`). The primary must really be down
(several probes); the replica's measured lag must be within ``max_lag_bytes`` — over the bound or
unknown, it refuses and escalates with nothing changed: an outage is better than lost data. Then
the Governor, a human's approval of the plan, fence (confirmed stopped before anything is
promoted), promote, repoint the consumers, verify a write and the canary, and — approved
separately — rejoin the old primary with pg_rewind as a standby of the new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.db_failover_models import FailoverStep, FailoverStepResult
    from zerotouch.governor_models import OutcomeReport
    from zerotouch.models import AbortInput, ApproveInput
    from zerotouch.names import UPDATE_ABORT, UPDATE_APPROVE
    from zerotouch.policy import Policy
    from zerotouch.recovery import (
        DATABASE_FAILOVER_WORKFLOW,
        QUERY_RECOVERY_STATUS,
        DatabaseFailoverInput,
        RecoveryStatus,
    )

from workflows.approver_checks import SpentProofs, spend
from workflows.db_failover import calls, decisions
from workflows.db_failover.guard import ask_governor, escalate
from workflows.db_failover.state import FailoverRun

_PROBE_SLACK = timedelta(seconds=30)


class StepFailed(Exception):
    """A step answered not ok (or kept failing): the failover stops where it is."""


@workflow.defn(name=DATABASE_FAILOVER_WORKFLOW)
class DatabaseFailoverWorkflow:
    def __init__(self) -> None:
        self._run: FailoverRun | None = None
        self._policy: Policy | None = None
        self._spent: SpentProofs = {}

    @workflow.run
    async def run(self, params: DatabaseFailoverInput) -> RecoveryStatus:
        """Probe → lag → (refuse) → Governor → approve → fence → promote → repoint → verify → approve → rejoin."""
        policy = self._policy = await calls.load_policy(params.cluster)
        target = policy.recovery.databases.get(params.database)
        if target is None:
            raise ApplicationError(f"no database {params.database!r} in the policy's recovery.databases",
                                   type="UnknownDatabase", non_retryable=True)
        run = self._run = FailoverRun(params, target, token=f"f{workflow.uuid4().hex[:12]}")
        run.status.plan = decisions.promote_plan(params.database, target)
        run.note("started", "ok", f"requested by {params.requested_by or '-'}: {params.reason or '-'}")
        try:
            await self._failover(run, policy)
        except StepFailed as failed:
            await escalate(run, policy, f"failover of {params.database} stopped", str(failed))
            run.end("failed", f"{failed}; stopped there, escalated")
        await calls.append_record(run.record(), params.cluster)
        return run.status

    async def _failover(self, run: FailoverRun, policy: Policy) -> None:
        target, name = run.target, run.params.database
        probing = target.probe_interval * target.probes + _PROBE_SLACK
        down = await self._step(run, names.CONFIRM_PRIMARY_DOWN, "confirm_primary_down", probing, must=False)
        if not down.ok:
            await self._refuse(run, policy, f"the primary of {name} is not down: {down.detail}")
            return
        lag = await self._step(run, names.MEASURE_REPLICA_LAG, "measure_lag", _PROBE_SLACK * 4, must=False)
        if lag.lag_bytes is None or lag.lag_bytes > target.max_lag_bytes:
            measured = "unknown" if lag.lag_bytes is None else f"{lag.lag_bytes} bytes"
            await self._refuse(run, policy, f"replica lag {measured} is over the bound of {target.max_lag_bytes} "
                                            f"bytes: not promoting (an outage is better than lost data). "
                                            f"{lag.detail}")
            return
        if run.params.dry_run:
            run.end("planned", f"dry run: the primary is down and the replica is {lag.lag_bytes} bytes behind; "
                               "the plan would run")
            return
        decision = await ask_governor(run, policy)
        if decision.code == "observe":
            run.end("planned", f"{decision.reason}; the plan was not run")
            return
        if decision.needs_approval or target.approvals.promote:
            if not await self._approved(run, policy, "promote"):
                return
            decision = await ask_governor(run, policy, approved=True)
        if not decision.granted:
            await self._refuse(run, policy, f"the Governor refused: {decision.reason}")
            return
        if run.aborted_by is not None:
            run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
            return
        verified = False
        try:
            run.status.stage = "running"
            await self._step(run, names.FENCE_OLD_PRIMARY, "fence", target.fence.stop_timeout * 2)
            promoted = await self._step(run, names.PROMOTE_REPLICA, "promote", target.promote_timeout,
                                        lag_bytes=lag.lag_bytes)
            await self._step(run, names.REPOINT_DATABASE_CONSUMERS, "repoint", timedelta(minutes=2))
            until = promoted.after.get("at")
            await self._step(run, names.VERIFY_NEW_PRIMARY, "verify", timedelta(minutes=1),
                             canary_until=datetime.fromisoformat(until) if until else None)
            verified = True
        finally:
            if decision.grant_id:
                await calls.report_outcome(OutcomeReport(grant_id=decision.grant_id, verified=verified,
                                                         detail=run.status.stage), run.params.cluster)
        await self._rejoin(run, policy)

    async def _rejoin(self, run: FailoverRun, policy: Policy) -> None:
        target, new = run.target, run.target.replica.describe()
        failed_over = (f"{run.params.database} failed over to {new}; swap primary and replica in the policy "
                       "before the next failover")
        if target.rejoin == "none":
            run.end("recovered", f"{failed_over}; the old primary stays fenced (rejoin: none)")
            return
        if target.approvals.rejoin:
            run.status.plan = [*run.status.plan, *decisions.rejoin_plan(target)]
            if not await self._approved(run, policy, "rejoin", final=False):
                run.end("recovered", f"{failed_over}; the rejoin was not approved: the old primary stays fenced")
                return
        try:
            rejoined = await self._step(run, names.REJOIN_OLD_PRIMARY, "rejoin", target.promote_timeout * 3)
        except StepFailed as failed:  # the failover itself stands: consumers write to the new primary
            await escalate(run, policy, f"old primary of {run.params.database} did not rejoin", str(failed))
            run.end("recovered", f"{failed_over}; the rejoin failed ({failed}): escalated, the old primary stays "
                                 "fenced")
            return
        run.end("recovered", f"{failed_over}; the old primary streams from it as a standby ({rejoined.detail})")

    async def _step(self, run: FailoverRun, activity: str, step: str, deadline: timedelta, *, must: bool = True,
                    lag_bytes: int | None = None, canary_until: datetime | None = None) -> FailoverStepResult:
        arg = FailoverStep(database=run.params.database, target=run.target, token=run.token, lag_bytes=lag_bytes,
                           canary_until=canary_until)
        try:
            result = run.stepped(step, await calls.step(activity, arg, run.params.cluster, deadline))
        except ActivityError as error:
            why = str(error.cause or error)
            run.note(step, "failed", why)
            raise StepFailed(f"{step} kept failing: {why}") from None
        if must and not result.ok:
            raise StepFailed(f"{step}: {result.detail}")
        return result

    async def _refuse(self, run: FailoverRun, policy: Policy, why: str) -> None:
        await escalate(run, policy, f"failover of {run.params.database} refused", why)
        run.end("refused", f"{why}; nothing was changed")

    async def _approved(self, run: FailoverRun, policy: Policy, step: str, *, final: bool = True) -> bool:
        """True once approved; False when aborted or timed out (a timeout never approves)."""
        timeout = run.target.approvals.timeout
        if run.aborted_by is not None:  # aborted while an earlier step ran: ask nothing more
            if final:
                run.end("aborted", f"aborted by {run.aborted_by}")
            return False
        run.ask(step, workflow.now() + timeout)
        try:
            await workflow.wait_condition(lambda: run.answered, timeout=timeout)
        except TimeoutError:
            run.timed_out()
            if final:
                await escalate(run, policy, f"failover of {run.params.database} not approved",
                               f"no approval of the {step} plan within {timeout}")
                run.end("aborted", f"no approval within {timeout}; nothing was done")
            return False
        if run.aborted_by is not None:
            if final:
                run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
            return False
        return True

    @workflow.query(name=QUERY_RECOVERY_STATUS)
    def recovery_status(self) -> RecoveryStatus | None:
        return self._run.status if self._run else None

    @workflow.update(name=UPDATE_APPROVE)
    def approve(self, decision: ApproveInput) -> str:
        accepted = decisions.check_approve(self._run, self._policy, decision, self._spent)
        assert self._run is not None
        self._run.approve(decision.by, decision.note, decision.proof, spend(self._spent, accepted))
        return f"approved by {decision.by}"

    @approve.validator
    def _check_approve(self, decision: ApproveInput) -> None:
        decisions.check_approve(self._run, self._policy, decision, self._spent)

    @workflow.update(name=UPDATE_ABORT)
    def abort(self, decision: AbortInput) -> str:
        decisions.check_abort(self._run)
        assert self._run is not None
        self._run.abort(decision.by, decision.reason)
        return f"aborted by {decision.by}"

    @abort.validator
    def _check_abort(self, decision: AbortInput) -> None:
        decisions.check_abort(self._run)
