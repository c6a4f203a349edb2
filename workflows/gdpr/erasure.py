"""Erasing a subject everywhere: the Governor first, then every store, then proof by re-query.

Each store is erased by one idempotent activity from the manifest kept in the vault (a rerun
reports what was already gone, never an error). Stores run side by side: one that keeps failing
is retried with backoff while the others finish, the request is `partial` meanwhile, and it never
completes while a store is pending. Erasure is a `data_deletion` action: the kill switch holds it,
observe mode records what would be erased and erases nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.gdpr import GRANT_ACTION, RISK_CLASS
    from zerotouch.gdpr_alerts import FAILED_ALERT, incident_for, request_event
    from zerotouch.gdpr_models import Outcome, StoreReceipt, StoreStep
    from zerotouch.governor_models import GrantDecision, GrantRequest, OutcomeReport
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import Policy

from workflows.gdpr import calls
from workflows.gdpr.state import DsrRun

_WAIT_CODES = {"cooldown", "rate_limit", "blast_radius", "paused"}
_MAX_ASKS = 1000  # a paused Governor holds an erasure for hours; the deadline watch escalates meanwhile
_DEFAULT_WAIT = timedelta(seconds=30)


async def erase_everywhere(run: DsrRun, policy: Policy, steps: dict[str, StoreStep],
                           receipts: dict[str, StoreReceipt]) -> Outcome:
    cluster = run.params.cluster
    decision = await _ask_governor(run, policy)
    if decision.code == "observe":
        would = ", ".join(f"{name}: {receipt.matched}" for name, receipt in sorted(receipts.items()))
        return run.end("planned", f"observe mode: would erase {would} row(s); nothing was erased")
    if not decision.granted:
        return run.end("failed", f"the Governor refused: {decision.reason}")
    run.status.state = "executing"
    for name in steps:
        run.store_state(name, "pending")

    async def erase(name: str, step: StoreStep) -> None:
        erased = await calls.erase(step, cluster)
        receipts[name].erased = sum(table.erased for table in erased.tables)
        run.store_state(name, "already erased" if erased.already else "erased")
        if any(state == "pending" for state in run.status.stores.values()):
            run.status.outcome = "partial"  # never complete while a store is pending
        run.note("erased", f"{name}: " + ", ".join(f"{t.table} {t.erased}" for t in erased.tables))

    try:
        await asyncio.gather(*(erase(name, step) for name, step in steps.items()))
    finally:
        if decision.grant_id:
            done = all(state != "pending" for state in run.status.stores.values())
            await calls.report_outcome(OutcomeReport(grant_id=decision.grant_id, verified=done,
                                                     detail="erased" if done else "partial"), cluster)
    run.status.state = "verifying"
    left = 0
    for requery in await asyncio.gather(*(calls.requery(step, cluster) for step in steps.values())):
        receipts[requery.store_name].requery_matches = requery.matches
        left += requery.matches
    if left:
        event = request_event(FAILED_ALERT, run.params.request_id, at=workflow.now(),
                              summary=f"request {run.params.request_id}: {left} row(s) still match after erasure")
        await calls.tell_incident(incident_for(event, policy.group_by, cluster), event, cluster)
        return run.end("failed", f"the access query still finds {left} row(s) after erasure")
    return run.end("complete", "erased from every store; the access query finds nothing")


async def _ask_governor(run: DsrRun, policy: Policy) -> GrantDecision:
    decision: GrantDecision | None = None
    for ask in range(_MAX_ASKS):
        decision = await calls.request_grant(GrantRequest(
            request_id=f"{run.params.request_id}-erase-{ask}", incident_id=workflow.info().workflow_id,
            runbook="gdpr-erasure", alert_class="DataSubjectRequest", action=GRANT_ACTION, namespace="gdpr",
            target=f"subject/{run.params.subject[:16]}", risk_class=RISK_CLASS, risk="auto",
            approved_by=run.approved_by or None, approval_note=run.decision_note, approval_proof=run.proof,
        ), governor_settings(policy), run.params.cluster)
        if decision.code not in _WAIT_CODES:
            return decision
        if ask == 0:
            run.note("waiting", f"the Governor says wait: {decision.reason}")
        await workflow.sleep(timedelta(seconds=decision.retry_after_seconds) if decision.retry_after_seconds
                             else _DEFAULT_WAIT)
    assert decision is not None
    return decision
