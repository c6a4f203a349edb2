"""Asking the cluster's Governor before a restore writes anything.

Restores share the guardrails of every other operation: the kill switch, observe mode, the rate
and the destination namespace's blast radius, and the policy's risk for `namespace_restore`
(`auto` by default: what needs a human is decided by the restore itself, overwriting always does).
A refusal that passes by itself (rate, blast radius, cooldown, a pause) is waited out, a bounded
number of times, unless a human aborts meanwhile.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.namespace_restore_alerts import RESTORE_FAILED_ALERT
    from zerotouch.policy import Policy

from workflows.grant_waits import until_settled
from workflows.namespace_restore import calls
from workflows.namespace_restore.state import RestoreRun

RUNBOOK = "namespace-restore"
ACTION = "restore_namespace"
RISK_CLASS = "namespace_restore"
_MAX_ASKS = 60


async def ask_governor(run: RestoreRun, policy: Policy, cluster: str, *, approved: bool = False) -> GrantDecision:
    """The Governor's answer; waits out refusals that pass by themselves (returns early on an abort)."""
    async def ask(n: int) -> GrantDecision:
        request = GrantRequest(
            request_id=f"{run.token}-{'approved' if approved else 'ask'}-{n}",
            incident_id=workflow.info().workflow_id, runbook=RUNBOOK, alert_class=RESTORE_FAILED_ALERT,
            action=ACTION, namespace=run.into, target=f"namespace/{run.into}", risk_class=RISK_CLASS,
            risk=policy.risk.get(RISK_CLASS, "auto"),
            labels={"backup_target": run.params.backup_target, "backup_id": run.backup_id},
            approved_by=run.approved_by or None if approved else None,
            approval_note=run.approval_note, approval_proof=run.approval_proof if approved else None,
        )
        return await calls.request_grant(request, governor_settings(policy), cluster)

    return await until_settled(
        ask, max_asks=_MAX_ASKS, aborted=lambda: bool(run.aborted_by),
        waiting=lambda d: run.note("governor", "waiting", f"the Governor says wait: {d.reason}"))
