"""Drills on the sandbox with the real relay and workers: a fault met, a false positive left alone,
a cancelled drill that still removes its fault, and the report that reads them from the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime

import pytest
from temporalio.client import WorkflowFailureError

from cli.main import main
from tests.drills.conftest import DrillStack
from tests.support.waiting import eventually
from workflows.drill import DrillWorkflow
from zerotouch.drill_models import DRILL_WORKFLOW, DrillInput, drill_workflow_id
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
    failed = await drills.run("crashloop-too-fast")
    assert not failed.passed and failed.outcome in ("undetected", "unresolved")
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
