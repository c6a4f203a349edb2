"""Reading the ledger from the command line: verify it, print a post-mortem, the zero-ops report.

Client-side only: these open the ledger database directly and need no Temporal server,
so an auditor can check the chain with nothing else running.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from zerotouch.ledger_models import LedgerRecord, VerifyResult
from zerotouch.ledger_store import open_ledger

LEDGER_URL_ENV = "ZEROTOUCH_LEDGER_URL"


def default_ledger_url(state_dir: str | Path) -> str:
    """`$ZEROTOUCH_LEDGER_URL`, or the SQLite file in the state directory."""
    return os.environ.get(LEDGER_URL_ENV) or f"sqlite:///{Path(state_dir).resolve() / 'ledger.db'}"


def verify_ledger(url: str) -> VerifyResult:
    return open_ledger(url).verify()


def render_verify(result: VerifyResult) -> str:
    if result.ok:
        return f"ledger intact: {result.records} record(s), hash chain verified"
    lines = [f"ledger TAMPERED: {len(result.problems)} problem(s) in {result.records} record(s)"]
    return "\n".join(lines + [f"- {problem}" for problem in result.problems])


def postmortem_for(url: str, incident_id: str) -> str:
    """The post-mortem of the incident's latest run; LookupError when it was never recorded."""
    records = open_ledger(url).get(incident_id)
    if not records:
        raise LookupError(f"incident {incident_id!r} is not in the ledger; `zerotouch report` lists recorded ones")
    return records[-1].postmortem


class Percentiles(BaseModel):
    p50: float | None = None
    p95: float | None = None


class RunbookStats(BaseModel):
    incidents: int = 0
    resolved: int = 0
    success_rate: float | None = None


class Report(BaseModel):
    """The zero-ops dashboard: how much ran without people, and how fast."""

    since: datetime
    incidents: int = 0
    by_outcome: dict[str, int] = Field(default_factory=dict)
    automation_rate: float | None = Field(default=None, description="records with no human step / all records")
    human_intervention_rate: float | None = None
    mttd_seconds: Percentiles = Field(default_factory=Percentiles)
    mttr_seconds: Percentiles = Field(default_factory=Percentiles)
    actions: dict[str, dict[str, int]] = Field(default_factory=dict, description="action name → result → count")
    escalations: int = Field(default=0, description="records that escalated at least once")
    refusals: dict[str, int] = Field(default_factory=dict, description="Governor refusals by reason")
    runbooks: dict[str, RunbookStats] = Field(default_factory=dict)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def refusal_reason(message: str) -> str | None:
    """The reason of a refusal noted as a "grant" timeline entry; None for grants."""
    if message.startswith("granted"):
        return None
    return message.split(":", 1)[0].strip()


def report(url: str, since: timedelta, *, now: datetime | None = None) -> Report:
    start = (now or datetime.now(UTC)) - since
    return build_report(open_ledger(url).all(since=start), since=start)


def build_report(records: list[LedgerRecord], *, since: datetime) -> Report:
    records = [r for r in records if r.kind == "incident"]  # backup evidence is not an incident
    total = len(records)
    automated = sum(r.automated for r in records)
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    refusals: Counter[str] = Counter()
    runbooks: dict[str, RunbookStats] = defaultdict(RunbookStats)
    for record in records:
        for action in record.actions:
            actions[action.action][action.outcome] += 1
        for entry in record.timeline:
            reason = refusal_reason(entry.message) if entry.kind == "grant" else None
            if reason:
                refusals[reason] += 1
        if record.runbook:
            stats = runbooks[record.runbook]
            stats.incidents += 1
            stats.resolved += record.outcome == "resolved"
    for stats in runbooks.values():
        stats.success_rate = stats.resolved / stats.incidents
    mttd = [r.mttd_seconds for r in records if r.mttd_seconds is not None]
    mttr = [r.mttr_seconds for r in records if r.mttr_seconds is not None]
    return Report(
        since=since,
        incidents=total,
        by_outcome=dict(Counter(r.outcome for r in records)),
        automation_rate=automated / total if total else None,
        human_intervention_rate=(total - automated) / total if total else None,
        mttd_seconds=Percentiles(p50=percentile(mttd, 50), p95=percentile(mttd, 95)),
        mttr_seconds=Percentiles(p50=percentile(mttr, 50), p95=percentile(mttr, 95)),
        actions={name: dict(results) for name, results in sorted(actions.items())},
        escalations=sum(any(e.kind == "escalation" for e in r.timeline) for r in records),
        refusals=dict(refusals.most_common()),
        runbooks=dict(sorted(runbooks.items())),
    )


def render_report(result: Report) -> str:
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}s"

    lines = [
        f"Zero-ops report since {result.since.isoformat(timespec='seconds')}",
        f"incidents: {result.incidents}  " + "  ".join(f"{k}: {v}" for k, v in sorted(result.by_outcome.items())),
        f"automation rate: {rate(result.automation_rate)}  "
        f"human intervention: {rate(result.human_intervention_rate)}  escalations: {result.escalations}",
        f"MTTD p50 {secs(result.mttd_seconds.p50)} p95 {secs(result.mttd_seconds.p95)}  "
        f"MTTR p50 {secs(result.mttr_seconds.p50)} p95 {secs(result.mttr_seconds.p95)}",
    ]
    if result.actions:
        lines.append("actions:")
        lines += [f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(results.items()))
                  for name, results in result.actions.items()]
    if result.refusals:
        lines.append("Governor refusals:")
        lines += [f"  {reason}: {count}" for reason, count in result.refusals.items()]
    if result.runbooks:
        lines.append("runbooks:")
        lines += [f"  {name}: {s.resolved}/{s.incidents} resolved ({rate(s.success_rate)})"
                  for name, s in result.runbooks.items()]
    return "\n".join(lines)
