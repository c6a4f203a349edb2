"""`zerotouch drill report`: the drills' history from the ledger, per fault class, and the resilience score.

The resilience score is the severity-weighted share of drills that met their expectation, over the
last N results of every fault class: sum(weight x passed) / sum(weight), 0..1 (None without drills).
A fault class whose latest drill failed is "not safe for zero-touch" (phase-66: what cannot be
safely tested cannot be automated).
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

from zerotouch.drill_models import DRILL_LEDGER_KIND, DrillResult
from zerotouch.ledger_report import percentile
from zerotouch.ledger_store import open_ledger


class ClassReport(BaseModel):
    fault: str
    safe: bool = Field(description="its latest drill met its expectation")
    runs: int
    passed: int
    mttr_p50_seconds: float | None = None
    mttr_p95_seconds: float | None = None
    last: list[DrillResult] = Field(default_factory=list, description="newest first")


class DrillReport(BaseModel):
    resilience_score: float | None = Field(description="severity-weighted share of drills that met expectations")
    classes: list[ClassReport] = Field(default_factory=list)

    @property
    def unsafe(self) -> list[str]:
        return [c.fault for c in self.classes if not c.safe]


def summarize(results: list[DrillResult], last: int = 5) -> DrillReport:
    """The report of these results (any order): the last `last` of each class count."""
    by_class: dict[str, list[DrillResult]] = defaultdict(list)
    for result in sorted(results, key=lambda r: r.finished_at, reverse=True):
        if len(by_class[result.fault]) < last:
            by_class[result.fault].append(result)
    classes, weighted, weights = [], 0.0, 0.0
    for fault, recent in sorted(by_class.items()):
        recovered = [r.recover_seconds for r in recent if r.passed and r.recover_seconds is not None]
        classes.append(ClassReport(fault=fault, safe=recent[0].passed, runs=len(recent),
                                   passed=sum(r.passed for r in recent), mttr_p50_seconds=percentile(recovered, 50),
                                   mttr_p95_seconds=percentile(recovered, 95), last=recent))
        weighted += sum(r.severity_weight for r in recent if r.passed)
        weights += sum(r.severity_weight for r in recent)
    return DrillReport(resilience_score=round(weighted / weights, 4) if weights else None, classes=classes)


def drill_results(url: str) -> list[DrillResult]:
    """Every drill the ledger holds (kind `drill`)."""
    return [DrillResult.model_validate(record.evidence) for record in open_ledger(url).all()
            if record.kind == DRILL_LEDGER_KIND and record.evidence]


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render(report: DrillReport) -> str:
    if not report.classes:
        return "no drills in the ledger yet (start one with `zerotouch drill run NAME`)"
    score = report.resilience_score
    lines = [f"resilience score {score:.0%}  (severity-weighted share of drills that met their expectation)"
             if score is not None else "resilience score -", ""]
    for c in report.classes:
        verdict = "safe" if c.safe else "NOT SAFE for zero-touch"
        lines.append(f"{c.fault}: {c.passed}/{c.runs} passed, MTTR p50 {seconds(c.mttr_p50_seconds)} "
                     f"p95 {seconds(c.mttr_p95_seconds)}  {verdict}")
        for r in c.last:
            lines.append(f"  {r.finished_at:%Y-%m-%d %H:%M:%S} {r.name:<20} {'pass' if r.passed else 'FAIL'} "
                         f"{r.outcome:<13} detect {seconds(r.detect_seconds)} action "
                         f"{seconds(r.first_action_seconds)} recovered {seconds(r.recover_seconds)}"
                         + (f" outside target: {', '.join(r.outside_target)}" if r.outside_target else ""))
    return "\n".join(lines)
