"""Drills on the sandbox with the real relay and workers: a fault met, a false positive left alone,
a cancelled drill that still removes its fault, and the report that reads them from the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import WorkflowFailureError

from cli.main import main
from tests.drills.conftest import DrillStack
from tests.support.waiting import eventually
from workflows.drill import DrillWorkflow
from zerotouch import metric_names
from zerotouch.drill_metrics import DrillMetrics
from zerotouch.drill_models import DRILL_WORKFLOW, DrillInput, drill_workflow_id
from zerotouch.governor_models import QUERY_GOVERNOR_STATUS, GovernorStatus, governor_id
from zerotouch.names import WORKFLOWS_QUEUE, queue_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_crashloop_drill_is_detected_acted_on_and_recovered(drills: DrillStack) -> None:
    result = await drills.run("crashloop")
    assert result.passed, result.model_dump_json(indent=1)
    assert result.outcome == "auto_resolved" and result.delivered_alert and result.cleaned_up
    assert result.detect_seconds is not None and result.first_action_seconds is not None
    assert result.recover_seconds is not None
    assert result.detect_seconds <= result.first_action_seconds <= result.recover_seconds < 60
    assert result.actions == ["restart deployments shop/web"], "one restart, of the drill's target only"
    assert result.outside_target == []
    assert drills.sandbox.faults()["active"] == []


async def test_the_watchdog_false_positive_passes_with_no_action(drills: DrillStack) -> None:
    before = len(drills.sandbox.actions())
    result = await drills.run("watchdog")
    assert result.passed and result.outcome == "no_action", result.model_dump_json(indent=1)
    assert result.actions == [] and len(drills.sandbox.actions()) == before
    assert result.incident_ids == [], "an always-firing heartbeat opens no incident"


async def test_a_drill_cancelled_midway_removes_its_fault(drills: DrillStack) -> None:
    workflow_id = drill_workflow_id("oom-unwatched", datetime.now(UTC)) + "-cancel"
    handle = await drills.client.start_workflow(
        DRILL_WORKFLOW, DrillInput(name="oom-unwatched", cluster=drills.cluster), id=workflow_id,
        task_queue=queue_for(WORKFLOWS_QUEUE, drills.cluster))

    async def watching() -> bool:
        with contextlib.suppress(Exception):
            return bool(await handle.query(DrillWorkflow.stage) == "watching" and drills.sandbox.faults()["active"])
        return False

    await eventually(watching, timeout=30, what="the drill's fault injected")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=30)
    assert drills.sandbox.faults()["active"] == [], "the cancelled drill took its fault out"


async def test_a_failed_drill_marks_its_class_not_safe_and_the_report_shows_the_score(drills: DrillStack) -> None:
    governor = drills.client.get_workflow_handle(governor_id(drills.cluster))
    before = await governor.query(QUERY_GOVERNOR_STATUS, result_type=GovernorStatus)
    failed = await drills.run("crashloop-too-fast")
    assert not failed.passed and failed.outcome in ("undetected", "unresolved")
    assert [(e.runbook, e.alert_class) for e in failed.exercised] == [("restart-crashlooping", "KubePodCrashLooping")]
    await _trust_dropped(drills, before, failed.exercised[0].runbook, failed.exercised[0].alert_class)
    assert failed.cleaned_up and not drills.sandbox.faults()["active"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["drill", "report", "--json", "--ledger", drills.ledger_url]) == 0
    report = json.loads(out.getvalue())
    classes = {c["fault"]: c for c in report["classes"]}
    assert set(classes) == {"crashloop", "watchdog_alert"}, "the cancelled drill recorded nothing"
    # crashloop: its passed run (weight 3) then the failed one (weight 1); the latest decides safety.
    assert classes["crashloop"]["runs"] == 2 and classes["crashloop"]["passed"] == 1
    assert not classes["crashloop"]["safe"] and report["unsafe"] == ["crashloop"]
    assert classes["crashloop"]["mttr_p50_seconds"] is not None
    assert classes["watchdog_alert"]["safe"]
    assert report["resilience_score"] == pytest.approx((3 + 1) / (3 + 1 + 1))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["drill", "report", "--ledger", drills.ledger_url]) == 0
    assert "crashloop: 1/2 passed" in out.getvalue() and "NOT SAFE for zero-touch" in out.getvalue()
    registry = CollectorRegistry()  # the relay's /metrics: the same numbers, as gauges
    registry.register(DrillMetrics(drills.ledger_url))
    assert registry.get_sample_value(metric_names.DRILL_LAST_PASSED, {"fault": "crashloop"}) == 0.0
    assert registry.get_sample_value(metric_names.DRILL_LAST_PASSED, {"fault": "watchdog_alert"}) == 1.0
    assert registry.get_sample_value(metric_names.DRILL_RESILIENCE_SCORE) == pytest.approx(report["resilience_score"])
    assert registry.get_sample_value(metric_names.DRILL_MTTR_MEDIAN, {"fault": "crashloop"}) == pytest.approx(
        classes["crashloop"]["mttr_p50_seconds"])


async def _trust_dropped(drills: DrillStack, before: GovernorStatus, runbook: str, alert_class: str) -> None:
    """The Governor counted the failed drill against the runbook its incident chose (phase-66)."""
    governor = drills.client.get_workflow_handle(governor_id(drills.cluster))
    old = next((r for r in before.trust if (r.runbook, r.alert_class) == (runbook, alert_class)), None)
    old_failures, old_confidence = (old.failures, old.confidence) if old else (0, 1.0)

    async def dropped() -> bool:
        now = await governor.query(QUERY_GOVERNOR_STATUS, result_type=GovernorStatus)
        row = next((r for r in now.trust if (r.runbook, r.alert_class) == (runbook, alert_class)), None)
        return row is not None and row.failures == old_failures + 1 and (
            row.confidence < old_confidence or row.successes > (old.successes if old else 0))

    await eventually(dropped, timeout=30, what="the Governor's trust in the failed drill's runbook lowered")
    journal = (await governor.query(QUERY_GOVERNOR_STATUS, result_type=GovernorStatus)).journal
    assert any(e.what == "drill failed" and "crashloop-too-fast" in e.detail for e in journal)


async def test_an_alert_for_a_healthy_workload_is_not_acted_on(drills: DrillStack) -> None:
    """The OOM runbook confirms an OOM kill on the pods first (`confirm: {pods: oom_killed}`): none, no write."""
    before = len(drills.sandbox.actions())
    result = await drills.run("healthy")
    assert result.passed and result.outcome == "no_action", result.model_dump_json(indent=1)
    assert result.actions == [] and len(drills.sandbox.actions()) == before
    assert result.incident_ids, "the alert opened an incident; it only did nothing to the workload"
