"""DrillWorkflow: one declared drill, from fault to verdict, recorded in the ledger.

phase-66: "if it cannot be safely tested, it cannot be automated". The drill breaks its target (or,
for a false positive, only delivers an alert), watches what zerotouch does, and takes its fault out
again whatever happened, also when the drill is cancelled halfway.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from zerotouch.drill_models import (
        DRILL_WORKFLOW,
        DrillDelivery,
        DrillFault,
        DrillInput,
        DrillObservation,
        DrillResult,
        DrillWatch,
    )
    from zerotouch.drills import POSTGRES_FAULT, Drill
    from zerotouch.governor_models import DrillOutcomeReport
    from zerotouch.policy import Policy

from workflows.drill import calls

# Drills that were running before the Governor heard of failed drills replay as they ran.
TRUST_PATCH = "drill-failure-costs-trust"


def _drill(policy: Policy, params: DrillInput) -> Drill:
    if params.drill is not None:
        return params.drill
    try:
        return policy.drills.named(params.name)
    except KeyError as error:
        raise ApplicationError(str(error.args[0]), type="UnknownDrill", non_retryable=True) from None


@workflow.defn(name=DRILL_WORKFLOW)
class DrillWorkflow:
    def __init__(self) -> None:
        self._stage = "starting"
        self._result: DrillResult | None = None

    @workflow.run
    async def run(self, params: DrillInput) -> DrillResult:
        """Inject → deliver the alert (no Prometheus) → watch → remove the fault → verdict → ledger."""
        policy = await calls.load_policy(params.cluster)
        drill = _drill(policy, params)
        started = workflow.now()
        fault = DrillFault(drill=drill, cluster=params.cluster, database=policy.recovery.databases.get(
            drill.target_name) if drill.fault == POSTGRES_FAULT else None)
        delivered = drill.alert is not None and policy.drills.deliver_alerts
        observation = DrillObservation(outcome="failed")
        cleaned = False
        try:
            self._stage = "injecting"
            injection = await calls.inject_fault(fault)
            incident_ids: list[str] = []
            if delivered:
                self._stage = "delivering"
                incident_ids = (await calls.deliver_alert(DrillDelivery(drill=drill, cluster=params.cluster))
                                ).incident_ids
            self._stage = "watching"
            observation = await calls.watch(
                DrillWatch(drill=drill, cluster=params.cluster, injection=injection, delivered=delivered,
                           incident_ids=incident_ids, group_by=policy.group_by),
                drill.deadline + drill.quiet_for)
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                raise  # cancelled: the finally below still removes the fault
            observation = DrillObservation(outcome="failed", detail=str(error.cause or error))
        finally:
            self._stage = "cleaning up"
            # Shielded: a cancellation (even a second one) must not stop the fault's removal.
            cleaned = await asyncio.shield(asyncio.ensure_future(self._clean_up(fault, delivered)))
        result = self._verdict(drill, observation, started, delivered=delivered, cleaned=cleaned)
        if not result.passed and workflow.patched(TRUST_PATCH):
            await self._cost_trust(result, params.cluster)
        self._stage, self._result = "recorded", result
        await calls.append_record(result, params.cluster)
        return result

    async def _cost_trust(self, result: DrillResult, cluster: str) -> None:
        """phase-66: a runbook that failed its drill is trusted less; the Governor asks a human sooner."""
        for exercised in result.exercised:
            report = DrillOutcomeReport(drill_id=f"{result.workflow_id}/{result.run_id}", runbook=exercised.runbook,
                                        alert_class=exercised.alert_class, passed=False,
                                        detail=f"drill {result.name}: expected {result.expect}, got {result.outcome}")
            try:
                await calls.record_drill_outcome(report, cluster)
            except FailureError as error:  # no Governor running: the ledger still says it
                workflow.logger.warning("drill %s: the Governor did not take the failure: %s", result.name, error)

    async def _clean_up(self, fault: DrillFault, delivered: bool) -> bool:
        """Remove the fault; then tell the incident its alert resolved, as Alertmanager would."""
        try:
            await calls.remove_fault(fault)
            if delivered and fault.drill.fault != "flapping_alert":  # a flap resolved itself already
                await calls.deliver_alert(DrillDelivery(drill=fault.drill, cluster=fault.cluster, resolved=True))
        except ActivityError as error:
            workflow.logger.warning("drill %s: cleanup failed: %s", fault.drill.name, error.cause or error)
            return False
        return True

    def _verdict(self, drill: Drill, seen: DrillObservation, started: datetime, *,
                 delivered: bool, cleaned: bool) -> DrillResult:
        passed = seen.outcome == drill.expect and not seen.outside_target and cleaned
        info = workflow.info()
        return DrillResult(
            workflow_id=info.workflow_id, run_id=info.run_id, name=drill.name, fault=drill.fault,
            target=drill.target, expect=drill.expect, outcome=seen.outcome, passed=passed,
            severity_weight=drill.severity_weight, delivered_alert=delivered, started_at=started,
            finished_at=workflow.now(), detect_seconds=seen.detect_seconds,
            first_action_seconds=seen.first_action_seconds, recover_seconds=seen.recover_seconds,
            incident_ids=seen.incident_ids, actions=seen.actions, outside_target=seen.outside_target,
            exercised=seen.exercised, cleaned_up=cleaned, detail=seen.detail)

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.query
    def result(self) -> DrillResult | None:
        return self._result

