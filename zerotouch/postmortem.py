"""Post-mortems written from ledger records, and the redaction that keeps secrets out of both.

Ledger records are kept forever and read by many people, so no secret or
personal value may reach them: `redact` runs on every free-text field before a
record is stored, and again here (cheap, and safe for records built elsewhere).
"""

from __future__ import annotations

import re
from datetime import datetime

from zerotouch.ledger_models import LedgerRecord

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"token|passw|secret|key|auth|credential|cookie|session", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[^\s,;\"']+", re.IGNORECASE)
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@]+@")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ASSIGNMENT = re.compile(
    r"\b([\w.-]*(?:token|passw\w*|secret|api[_-]?key|auth\w*|credential\w*|cookie|session)[\w.-]*)"
    r"(\s*[=:]\s*)(?!\[redacted|Bearer |Basic )([^\s,;&\"']+)",
    re.IGNORECASE,
)
_LONG = re.compile(r"[A-Za-z0-9+/_=-]{24,}")
_HEX = re.compile(r"[0-9a-fA-F]{24,}")


def _looks_like_credential(word: str) -> bool:
    # Random tokens of this length are all-hex or mix cases and digits; Kubernetes
    # names (lowercase, digits, hyphens) and run IDs stay readable for forensics.
    if _HEX.fullmatch(word):
        return True
    core = word.rstrip("=")
    return any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)


def redact(text: str) -> str:
    """Remove credentials, URL userinfo, e-mail addresses and secret-named assignments from text."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _EMAIL.sub("[redacted email]", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _LONG.sub(lambda m: REDACTED if _looks_like_credential(m.group(0)) else m.group(0), text)


def redact_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels with secret-looking names blanked and every other value redacted as text."""
    return {name: REDACTED if _SECRET_NAME.search(name) else redact(value) for name, value in labels.items()}


def postmortem_markdown(record: LedgerRecord) -> str:
    """A blameless post-mortem in Markdown; every free-text value passes through `redact`."""
    sections = [
        f"# Post-mortem: incident {redact(record.incident_id)}",
        "## Summary\n\n" + _summary(record),
        "## Impact\n\n" + _impact(record),
        "## Timeline\n\n" + _timeline(record),
        "## Root-cause class\n\n" + _root_cause(record),
        "## Actions\n\n" + _actions(record),
        "## What verified recovery\n\n" + _verification(record),
        "## Follow-ups\n\n" + "\n".join(f"- {item}" for item in follow_ups(record)),
    ]
    return "\n\n".join(sections) + "\n"


def _at(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _summary(record: LedgerRecord) -> str:
    how = "fully automated" if record.automated else "with human involvement"
    names = ", ".join(sorted({redact(a.alertname) for a in record.alerts})) or "unknown alert"
    return (
        f"Outcome **{record.outcome}** ({how}). Alert(s): {names}. Severity {record.severity or '-'}, "
        f"runbook {redact(record.runbook or 'none')}, target {redact(record.target or '-')}."
    )


def _impact(record: LedgerRecord) -> str:
    lines = [
        f"- User impact estimate: {redact(record.user_impact or 'not estimated')}",
        f"- Alert started: {_at(record.alert_started_at)}; detected: {_at(record.detected_at)} "
        f"(MTTD {_seconds(record.mttd_seconds)})",
        f"- Recovered: {_at(record.recovered_at)} (MTTR {_seconds(record.mttr_seconds)}); "
        f"closed: {_at(record.closed_at)}",
    ]
    return "\n".join(lines)


def _timeline(record: LedgerRecord) -> str:
    if not record.timeline:
        return "No timeline entries."
    return "\n".join(
        f"- {_at(e.at)} **{e.kind}** ({redact(e.actor)}): {redact(e.message)}" for e in record.timeline
    )


def _root_cause(record: LedgerRecord) -> str:
    source = "the matched runbook" if record.runbook else "the alert name (no runbook matched)"
    confidence = "-" if record.confidence is None else f"{record.confidence:.2f}"
    return f"`{redact(record.root_cause_class)}`, from {source}; triage confidence {confidence}."


def _actions(record: LedgerRecord) -> str:
    if not record.actions:
        return "No remediation action was executed."
    return "\n".join(
        f"- {_at(a.at)} attempt {a.attempt}: {a.action} on {redact(a.target)} → {a.outcome}"
        + (f" — {redact(a.detail)}" if a.detail else "")
        + (f" (grant: {redact(a.grant)})" if a.grant else "")
        for a in record.actions
    )


def _verification(record: LedgerRecord) -> str:
    if not record.verifications:
        return "Nothing verified recovery" + (" (it recovered at the source)." if record.recovered_at else ".")
    return "\n".join(
        f"- {_at(v.at)} {'verified' if v.verified else 'not verified'}: {redact(v.detail)}"
        for v in record.verifications
    )


def follow_ups(record: LedgerRecord) -> list[str]:
    """What someone should do next; always at least one line, so the section is never empty."""
    items: list[str] = []
    if record.outcome == "escalated":
        items.append("A human must investigate and resolve the incident: automation gave up and froze it.")
    if record.outcome == "aborted":
        items.append("A human aborted the automation: review why and whether the runbook should change.")
    if record.outcome == "taken_over":
        items.append("A human took over: record the manual fix and consider encoding it in a runbook.")
    if record.runbook is None:
        items.append(f"No runbook matches `{redact(record.root_cause_class)}`: write one if this recurs.")
    if record.confidence is not None and record.confidence < 0.8:
        items.append(f"Triage confidence was low ({record.confidence:.2f}): tighten the runbook's match.")
    failed = [a for a in record.actions if a.outcome == "failed"]
    unverified = [v for v in record.verifications if not v.verified]
    if len(failed) + len(unverified) >= 2:
        items.append(f"Repeated failures ({len(failed)} failed actions, {len(unverified)} failed verifications): "
                     "the runbook may not fix this cause.")
    if any(e.kind == "grant" and not e.message.startswith("granted") for e in record.timeline):
        items.append("The Governor refused or delayed actions: check guardrail settings against this incident.")
    return items or ["None: recovered automatically and verified."]
