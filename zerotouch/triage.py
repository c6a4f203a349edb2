"""Triage as pure functions of the policy and the alert labels.

Pure so the incident workflow can call them deterministically and tests can call
them without a server.
"""

from __future__ import annotations

from pydantic import BaseModel

from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.models import ActionBounds
from zerotouch.policy import Policy
from zerotouch.quantities import parse_memory
from zerotouch.runbooks import Runbook, Severity, Step
from zerotouch.workloads import WorkloadRef


class Triage(BaseModel):
    severity: Severity
    runbook: Runbook | None = None
    confidence: float = 0.0
    namespace: str | None = None
    deployment: str | None = None
    pod: str | None = None
    target_error: str | None = None
    service: str = ""
    # The alert's labels without an exporter's scrape labels, naming the resolved workload: what the
    # mandatory escalations read (a crash-looping pod of `auth` is about auth, not kube-state-metrics).
    subject_labels: dict[str, str] = {}

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


def _uses_workload(runbook: Runbook, labels: dict[str, str]) -> bool:
    """Whether the runbook's Deployment comes from owner resolution (the alert names a pod, not it)."""
    target = runbook.target
    return target.deployment is None and target.deployment_label == "deployment" and "deployment" not in labels


def _workload_problem(runbook: Runbook, workload: WorkloadRef) -> str | None:
    if not workload.found:
        return f"no workload to act on: {workload.describe()}"
    if workload.kind == "Pod":
        return f"{workload.describe()} has no owner: runbook {runbook.name} never acts on a bare pod"
    if workload.kind != "Deployment":
        return f"runbook {runbook.name} acts on Deployments, and {workload.describe()}"
    return None


def subject_labels(policy: Policy, labels: dict[str, str], workload: WorkloadRef | None) -> dict[str, str]:
    """The labels an incident is about: no exporter scrape labels, plus the resolved workload's name."""
    subject = policy.alerts.application_labels(labels)
    if workload is not None and workload.found and workload.kind is not None:
        subject.setdefault(workload.kind.lower(), workload.name)
    return subject


def triage(policy: Policy, labels: dict[str, str], workload: WorkloadRef | None = None) -> Triage:
    """Severity, runbook, confidence and a validated target for one alert's labels.

    ``workload`` is what owner resolution found for an alert that names a pod rather than its
    Deployment (`zerotouch.workloads`); alerts that name the Deployment need none.
    """
    runbook = match_runbook(policy, labels)
    subject = subject_labels(policy, labels, workload)
    result = Triage(severity=severity_of(policy, labels, runbook), runbook=runbook, subject_labels=subject)
    named = workload.name if workload is not None and workload.found else ""
    if runbook is None:
        result.service = subject.get("service") or named or subject.get("deployment") or subject.get("job", "")
        return result
    target = runbook.target
    namespace = target.namespace or labels.get(target.namespace_label)
    deployment = target.deployment or labels.get(target.deployment_label)
    if workload is not None and _uses_workload(runbook, labels):
        result.target_error = _workload_problem(runbook, workload)
        deployment = workload.name if result.target_error is None else None
        namespace = namespace or workload.namespace or None
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
    # No Deployment to act on (a CronJob's failed run, a StatefulSet's pod): the workload is still what broke.
    result.service = subject.get("service") or (result.target if result.deployment else named) or result.target
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
    """The seeds' conditions that stop automation whatever the runbook says, or None.

    ``labels`` are the incident's `subject_labels`: the resolved workload counts, the exporter's name does not.
    """
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
