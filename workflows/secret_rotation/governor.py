"""Asking the cluster's Governor before a rotation changes anything.

Rotations share the guardrails of every other operation: the kill switch, observe mode, the
global rate and the per-namespace blast radius (which is what bounds a wave of rotations), and
the policy's risk for `credential_rotation` (approval by default). A refusal that passes by
itself (rate, blast radius, cooldown, a pause) is waited out, a bounded number of times.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import DEFAULT_RISK, Policy
    from zerotouch.rotations import GRANT_ACTION, RISK_CLASS, ROTATION_FAILED_ALERT

from workflows.secret_rotation import calls
from workflows.secret_rotation.state import RotationRun

RUNBOOK = "secret-rotation"
_WAIT_CODES = {"cooldown", "rate_limit", "blast_radius", "paused"}
_MAX_ASKS = 500  # a wave of rotations may wait its turn many times; a refusal that never lifts ends it
_DEFAULT_WAIT = timedelta(seconds=5)


async def ask_governor(run: RotationRun, policy: Policy, cluster: str, *, approved: bool = False) -> GrantDecision:
    """The Governor's answer; waits out refusals that pass by themselves (returns early if a human steps in)."""
    secret = run.rotation.secret
    decision: GrantDecision | None = None
    for ask in range(_MAX_ASKS):
        request = GrantRequest(
            request_id=f"{run.token}-{'approved' if approved else 'ask'}-{ask}",
            incident_id=workflow.info().workflow_id, runbook=RUNBOOK, alert_class=ROTATION_FAILED_ALERT,
            action=GRANT_ACTION, namespace=secret.namespace, target=f"secret/{secret.name}", risk_class=RISK_CLASS,
            risk=policy.risk.get(RISK_CLASS, DEFAULT_RISK[RISK_CLASS]),
            labels={"rotation": run.params.rotation, "kind": run.rotation.target.kind},
            approved_by=run.status.approved_by or None if approved else None,
            approval_note=run.approval_note, approval_proof=run.approval_proof if approved else None,
        )
        decision = await calls.request_grant(request, governor_settings(policy), cluster)
        if decision.code not in _WAIT_CODES:
            return decision
        wait = timedelta(seconds=decision.retry_after_seconds) if decision.retry_after_seconds else _DEFAULT_WAIT
        if ask == 0:
            run.note("waiting", f"the Governor says wait: {decision.reason}")
        run.status.state = "waiting_for_governor"
        if await _interrupted_within(run, wait):
            return decision
    assert decision is not None
    return decision


async def _interrupted_within(run: RotationRun, wait: timedelta) -> bool:
    try:
        await workflow.wait_condition(lambda: run.interrupted, timeout=wait)
    except TimeoutError:
        return False
    return True
