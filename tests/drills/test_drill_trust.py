"""A failed drill costs its runbook trust (phase-66): the Governor's pure rule, once per drill run."""

from __future__ import annotations

from datetime import UTC, datetime

from zerotouch import governor_status, guardrails
from zerotouch.governor_models import DrillOutcomeReport, GovernorBook, GovernorSettings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def failed(drill_id: str = "drill-crashloop/run-1", passed: bool = False) -> DrillOutcomeReport:
    return DrillOutcomeReport(drill_id=drill_id, runbook="restart-crashlooping", alert_class="KubePodCrashLooping",
                              passed=passed, detail="drill crashloop: expected auto_resolved, got unresolved")


def test_a_failed_drill_lowers_the_confidence_the_status_shows() -> None:
    book, settings = GovernorBook(), GovernorSettings()
    before = guardrails.confidence(book, settings, "restart-crashlooping", "KubePodCrashLooping")
    assert "lowered" in guardrails.record_drill(book, failed(), NOW)
    row = governor_status.status(book, settings, NOW).trust[0]
    assert (row.runbook, row.alert_class, row.successes, row.failures) == (
        "restart-crashlooping", "KubePodCrashLooping", 0, 1)
    assert row.confidence < before
    assert book.journal[-1].what == "drill failed" and "expected auto_resolved" in book.journal[-1].detail


def test_the_same_drill_run_counts_once_and_a_passed_drill_changes_nothing() -> None:
    book = GovernorBook()
    guardrails.record_drill(book, failed(), NOW)
    assert "already recorded" in guardrails.record_drill(book, failed(), NOW), "a redelivered signal"
    guardrails.record_drill(book, failed("drill-crashloop/run-2", passed=True), NOW)
    assert book.trust["restart-crashlooping|KubePodCrashLooping"].failures == 1
    assert len(book.journal) == 1


def test_the_memory_of_recorded_drills_stays_bounded() -> None:
    book = GovernorBook()
    for n in range(guardrails.DRILLS_REMEMBERED + 50):
        guardrails.record_drill(book, failed(f"drill-{n}/r"), NOW)
    assert len(book.drills_recorded) == guardrails.DRILLS_REMEMBERED
    assert book.trust["restart-crashlooping|KubePodCrashLooping"].failures == guardrails.DRILLS_REMEMBERED + 50
