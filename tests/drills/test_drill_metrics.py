"""The zerotouch_drill_* gauges: what `drill report` says, per fault class, read off the ledger on scrape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from activities.drills import drill_record
from zerotouch import metric_names as names
from zerotouch.drill_metrics import DrillMetrics
from zerotouch.drill_models import DrillResult
from zerotouch.ledger_store import open_ledger

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def result(n: int, fault: str, passed: bool, recover: float | None, weight: float = 1.0) -> DrillResult:
    at = START + timedelta(minutes=n)
    return DrillResult(workflow_id=f"drill-{fault}-{n}", run_id=f"r{n}", name=fault, fault=fault, target="shop/web",
                       expect="auto_resolved", outcome="auto_resolved" if passed else "unresolved", passed=passed,
                       severity_weight=weight, started_at=at, finished_at=at + timedelta(seconds=30),
                       recover_seconds=recover)


def append(url: str, *results: DrillResult) -> None:
    store = open_ledger(url)
    for r in results:
        store.append(drill_record(r, recorded_at=r.finished_at))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_gauges_show_each_class_last_result_mttr_and_the_score(tmp_path: Path) -> None:
    url, clock = f"sqlite:///{tmp_path / 'ledger.db'}", Clock()
    append(url, result(1, "crashloop", True, 30.0, weight=3), result(2, "crashloop", True, 10.0, weight=3),
           result(3, "crashloop", True, 20.0, weight=3), result(4, "oom", True, 5.0), result(5, "oom", False, None))
    registry = CollectorRegistry()
    registry.register(DrillMetrics(url, cache_for=15, clock=clock))
    value = registry.get_sample_value
    assert value(names.DRILL_LAST_PASSED, {"fault": "crashloop"}) == 1.0
    assert value(names.DRILL_LAST_PASSED, {"fault": "oom"}) == 0.0, "its latest drill failed"
    assert value(names.DRILL_MTTR_MEDIAN, {"fault": "crashloop"}) == pytest.approx(20.0)
    assert value(names.DRILL_MTTR_MEDIAN, {"fault": "oom"}) == pytest.approx(5.0), "passed drills only"
    assert value(names.DRILL_RESILIENCE_SCORE) == pytest.approx((9 + 1) / (9 + 2), abs=1e-4)
    # Cached: a new failure shows only once the cache is older than cache_for.
    append(url, result(6, "crashloop", False, None, weight=3))
    assert value(names.DRILL_LAST_PASSED, {"fault": "crashloop"}) == 1.0
    clock.now = 15.0
    assert value(names.DRILL_LAST_PASSED, {"fault": "crashloop"}) == 0.0
    assert value(names.DRILL_RESILIENCE_SCORE) == pytest.approx((9 + 1) / (12 + 2), abs=1e-4)


def test_no_drills_export_no_samples_and_an_unreadable_ledger_does_not_break_the_scrape(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(DrillMetrics(f"sqlite:///{tmp_path / 'empty.db'}"))
    assert registry.get_sample_value(names.DRILL_RESILIENCE_SCORE) is None
    broken = CollectorRegistry()
    broken.register(DrillMetrics(f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 'ledger.db'}"))
    assert names.DRILL_LAST_PASSED in generate_latest(broken).decode(), "the families are there, empty"
