"""Asking the cluster's Governor once per retention run before expired rows are erased.

As for a subject's erasure (workflows/gdpr/erasure.py), the kill switch and the limits that pass
by themselves are waited out and observe mode turns the run into a count. The approval is the
policy itself: its reviewed `retention.keep` periods say what may go, so the run asks under the
class `data_retention`, `auto` unless the policy's `risk.data_retention` says otherwise (a
scheduled run has no approver: `approval` there stops unattended retention, on purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.gdpr_retention import RETENTION_GRANT_ACTION, RETENTION_RUNBOOK
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import Policy

from workflows.gdpr_retention import calls

RETENTION_RISK_CLASS = "data_retention"  # not one of the classes excluded from zero-touch: the policy approved it

_WAIT_CODES = {"cooldown", "rate_limit", "blast_radius", "paused"}
_MAX_ASKS = 1000  # a paused Governor holds the run; the schedule's execution timeout ends it
_DEFAULT_WAIT = timedelta(seconds=30)


async def ask_governor(policy: Policy, stores: Sequence[str], cluster: str) -> GrantDecision:
    """The Governor's answer, once any refusal that passes by itself (the kill switch too) has passed."""
    info = workflow.info()
    decision: GrantDecision | None = None
    for ask in range(_MAX_ASKS):
        decision = await calls.request_grant(GrantRequest(
            request_id=f"{info.workflow_id}-{info.run_id[:8]}-expire-{ask}", incident_id=info.workflow_id,
            runbook=RETENTION_RUNBOOK, alert_class="DataRetention", action=RETENTION_GRANT_ACTION, namespace="gdpr",
            target=f"retention/{','.join(stores)}"[:200], risk_class=RETENTION_RISK_CLASS,
            risk=policy.risk.get(RETENTION_RISK_CLASS, "auto"),
        ), governor_settings(policy), cluster)
        if decision.code not in _WAIT_CODES:
            return decision
        if ask == 0:
            workflow.logger.info("retention waits for the Governor: %s", decision.reason)
        await workflow.sleep(timedelta(seconds=decision.retry_after_seconds) if decision.retry_after_seconds
                             else _DEFAULT_WAIT)
    assert decision is not None
    return decision
