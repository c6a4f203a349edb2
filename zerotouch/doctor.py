"""What `zerotouch up` and `zerotouch doctor` report: which pieces work, and what a missing one disables.

The probes that touch the network live with the clients they probe (`workers/doctor_probes.py`);
here is only what is decided without I/O: the checks' model, the words for what each missing piece
disables, which connection references and channels a policy uses, whether a channel's URL is usable,
and the report as text. A check never carries a secret: no DSN, no password, no webhook URL.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from zerotouch.policy import Channel, Policy

Status = Literal["ok", "missing", "failing"]
Kind = Literal["policy", "kubernetes", "prometheus", "postgres", "mongodb", "channel"]

KUBERNETES_DISABLES = ("remediation actions (restart, scale, rollback, raise memory, evict, run job), CronJob "
                       "imports and Kubernetes backups are disabled; incidents escalate to a human instead")
PROMETHEUS_MISSING_DISABLES = ("PromQL verification is skipped: a remediation is judged by its rollout alone, "
                               "and Prometheus alerts reach zerotouch only if something else sends them")
PROMETHEUS_FAILING_DISABLES = ("every PromQL verification waits until its timeout and fails, so each "
                               "remediation ends escalated to a human")
POLICY_DISABLES = "nothing can start: `zerotouch up` and the workers refuse a policy that does not load"


class Check(BaseModel):
    """One piece: its state, what was found (or why not), and in plain words what its absence disables."""

    kind: Kind
    name: str = Field(description="what the line is about, e.g. `PostgreSQL demo` or `channel slack`")
    status: Status
    detail: str = Field(description="what was found, or why not; never a secret")
    disables: str = Field(default="", description="empty when ok")
    required: bool = Field(default=False, description="the policy: nothing runs without it")


class DoctorReport(BaseModel):
    """Every check; `ok` unless something configured (or required) is failing."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        # Missing means not configured: a choice, reported with its consequence but never an error.
        return not self.failing

    @property
    def failing(self) -> list[Check]:
        return [check for check in self.checks if check.status == "failing"]

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [check.model_dump() for check in self.checks]}


class Reference(BaseModel):
    """A connection reference (`demo`) the workers resolve from their environment, and what uses it."""

    engine: Literal["postgres", "mongodb"]
    name: str
    backup_targets: list[str] = Field(default_factory=list)
    runbooks: list[str] = Field(default_factory=list)

    def disables(self) -> str:
        parts = []
        if self.backup_targets:
            parts.append(f"backups and test restores of {', '.join(self.backup_targets)} fail (each failure "
                         "opens an incident)")
        if self.runbooks:
            parts.append(f"runbook {', '.join(self.runbooks)} cannot act, so its incidents escalate to a human")
        return "; ".join(parts)


def references(policy: Policy) -> list[Reference]:
    """The references the policy's backup targets and runbooks name, in the policy's order.

    A runbook acting on PostgreSQL uses its target's fixed name as the reference (the data worker
    resolves it); one that takes the name from an alert label cannot be checked before the alert.
    """
    found: dict[tuple[str, str], Reference] = {}

    def reference(engine: Literal["postgres", "mongodb"], name: str) -> Reference:
        return found.setdefault((engine, name), Reference(engine=engine, name=name))

    for target in policy.backups.targets:
        if target.engine in ("postgres", "mongodb") and target.connection:
            reference(target.engine, target.connection).backup_targets.append(target.name)
    for runbook in policy.runbooks:
        acts_on_postgres = any(step.action == "terminate_idle_connections" for step in runbook.steps)
        if acts_on_postgres and runbook.target.deployment:
            reference("postgres", runbook.target.deployment).runbooks.append(runbook.name)
    return list(found.values())


def kubernetes_disables(policy: Policy | None) -> str:
    targets = [t.name for t in policy.backups.targets if t.engine == "kubernetes"] if policy else []
    return KUBERNETES_DISABLES + (f" (backup targets: {', '.join(targets)})" if targets else "")


def _ladders(policy: Policy, channel: str) -> list[str]:
    """The severities whose escalation ladder notifies ``channel``."""
    return [severity for severity, rungs in sorted(policy.escalation.items())
            if any(channel in rung.notify for rung in rungs)]


def _usable_url(url: str) -> str:
    """Why ``url`` cannot be posted to, or "" when it can (the URL itself is never repeated: it may be secret)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "has no host"
    return "" if port is None or port > 0 else "has port 0"


def check_channel(name: str, channel: Channel, policy: Policy) -> Check:
    """Configured and syntactically usable; nothing is sent."""
    ladders = _ladders(policy, name)
    where = f" (escalations of {', '.join(ladders)})" if ladders else " (on no escalation ladder)"
    disables = (f"notifications to {name}{where} are not delivered; incidents still show on the dashboard "
                "(`zerotouch incidents`)")

    def result(status: Status, detail: str) -> Check:
        return Check(kind="channel", name=f"channel {name}", status=status, detail=detail,
                     disables="" if status == "ok" else disables)

    if channel.type == "dashboard":
        return result("ok", "dashboard: recorded with the incident")
    url = channel.url or (os.environ.get(channel.url_env) if channel.url_env else None)
    if not url:
        return result("missing", f"{channel.type}: ${channel.url_env} is not set")
    source = "the policy's url" if channel.url else f"${channel.url_env}"
    problem = _usable_url(url)
    if problem:
        return result("failing", f"{channel.type}: {source} {problem}")
    if channel.type == "pagerduty":
        if not channel.routing_key_env:
            return result("failing", "pagerduty: no routing_key_env in the policy")
        if not os.environ.get(channel.routing_key_env):
            return result("missing", f"pagerduty: ${channel.routing_key_env} is not set")
    return result("ok", f"{channel.type}: URL from {source} (not sent to: doctor sends nothing)")


def check_channels(policy: Policy) -> list[Check]:
    return [check_channel(name, channel, policy) for name, channel in policy.channels.items()]


_MARK: dict[Status, str] = {"ok": "ok", "missing": "missing", "failing": "FAILING"}


def render(report: DoctorReport, indent: str = "") -> list[str]:
    """One line per check, and under each that is not ok the line saying what it disables."""
    width = max((len(check.name) for check in report.checks), default=0)
    lines = []
    for check in report.checks:
        lines.append(f"{indent}{_MARK[check.status]:<8} {check.name:<{width}}  {check.detail}")
        if check.disables:
            lines.append(f"{indent}{'':<8} {'':<{width}}  → {check.disables}")
    return lines


def summary(report: DoctorReport) -> str:
    counts = {status: sum(c.status == status for c in report.checks) for status in ("ok", "missing", "failing")}
    text = f"{counts['ok']} ok, {counts['missing']} missing (optional), {counts['failing']} failing"
    return text + ("" if report.ok else ": fix what is failing (it is configured but does not work)")
