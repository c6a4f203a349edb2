"""Triage as pure functions of the policy and the alert labels.

Pure so the incident workflow can call them deterministically and tests can call
them without a server.
"""

from __future__ import annotations

from pydantic import BaseModel

from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.models import ActionBounds
from zerotouch.policy import Policy, Runbook, Severity, Step
from zerotouch.quantities import parse_memory


class Triage(BaseModel):
    severity: Severity
    runbook: Runbook | None = None
    confidence: float = 0.0
    namespace: str | None = None
    deployment: str | None = None
    pod: str | None = None
    target_error: str | None = None
    service: str = ""

    @property
    def target(self) -> str:
        if self.namespace and self.deployment:
            return f"{self.namespace}/{self.deployment}"
        return self.deployment or self.namespace or ""


def match_runbook(policy: Policy, labels: dict[str, str]) -> Runbook | None:
    """The first runbook whose matcher accepts the labels; order in the file is priority."""
    return next((runbook for runbook in policy.runbooks if runbook.match.matches(labels)), None)


def severity_of(policy: Policy, labels: dict[str, str], runbook: Runbook | None) -> Severity:
    for rule in policy.severity.rules:
        if rule.match.matches(labels):
            return rule.severity
    if runbook is not None and runbook.severity is not None:
        return runbook.severity
    value = labels.get(policy.severity.label, "")
    if value in policy.severity.map:
        return policy.severity.map[value]
    if value in ("P0", "P1", "P2", "P3", "P4"):
        return value  # type: ignore[return-value]
    return policy.severity.default


def triage(policy: Policy, labels: dict[str, str]) -> Triage:
    """Severity, runbook, confidence and a validated target for one alert's labels."""
    runbook = match_runbook(policy, labels)
    result = Triage(severity=severity_of(policy, labels, runbook), runbook=runbook)
    if runbook is None:
        result.service = labels.get("service") or labels.get("deployment") or labels.get("job", "")
        return result
    target = runbook.target
    namespace = target.namespace or labels.get(target.namespace_label)
    deployment = target.deployment or labels.get(target.deployment_label)
    pod = labels.get(target.pod_label)
    try:
        # Labels are untrusted: a bad name must never reach an API call.
        result.namespace = require_namespace(namespace) if namespace is not None else None
        result.deployment = require_object_name(deployment, "deployment") if deployment is not None else None
        result.pod = require_object_name(pod, "pod") if pod is not None else None
    except InvalidName as error:
        result.namespace = result.deployment = result.pod = None
        result.target_error = str(error)
    if result.target_error is None and (result.namespace is None or result.deployment is None):
        result.target_error = (
            f"runbook {runbook.name} needs labels {target.namespace_label!r} and {target.deployment_label!r}"
        )
    result.confidence = runbook.confidence
    result.service = labels.get("service") or result.target
    return result


def approval_reason(policy: Policy, step: Step) -> str | None:
    """Why the policy itself wants a human to approve this step, or None.

    Trust (the measured confidence), breakers and the kill switch are the Governor's.
    """
    if step.approval:
        return f"the policy requires approval for {step.action}"
    risk = policy.risk_of(step)
    if risk == "approval":
        return f"{step.risk_class or step.action} is not pre-approved for zero-touch"
    if policy.mode == "approve-all":
        return "the policy mode is approve-all"
    return None


def is_forbidden(policy: Policy, step: Step) -> bool:
    return policy.risk_of(step) == "never"


def bounds_of(policy: Policy) -> ActionBounds:
    guard = policy.guardrails
    return ActionBounds(
        min_replicas=guard.min_replicas,
        max_replicas=guard.max_replicas,
        scale_up_max_factor=guard.scale_up_max_factor,
        scale_down_min_factor=guard.scale_down_min_factor,
        memory_factor=guard.memory_factor,
        memory_cap_bytes=parse_memory(guard.memory_cap),
    )


def render_promql(expression: str, namespace: str | None, deployment: str | None) -> str:
    """Fill the ``{namespace}``/``{deployment}`` placeholders with already-validated names."""
    return expression.replace("{namespace}", namespace or "").replace("{deployment}", deployment or "")


_SERVICE_LABELS = ("service", "app", "deployment", "namespace")


def mandatory_escalation(policy: Policy, labels: dict[str, str], step: Step) -> str | None:
    """The seeds' conditions that stop automation whatever the runbook says, or None."""
    conditions = policy.escalate_when
    for name, wanted in conditions.security_labels.items():
        value = labels.get(name)
        if value and (wanted == "*" or value == wanted):
            return f"security signal present (label {name}={value})"
    for name in _SERVICE_LABELS:
        value = labels.get(name, "")
        if value and value in conditions.protected_services:
            return f"a protected service is affected ({name}={value}: auth and billing go to a human)"
    if step.action in conditions.data_consistency_actions:
        return f"{step.action} risks data consistency; the policy wants a human"
    return None
