"""What counts as a symptom on a deployment's pods (activities/kubernetes_symptoms.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.kubernetes_symptoms import symptom_report
from zerotouch.models import SymptomCheck

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEPLOY = {"metadata": {"name": "web", "namespace": "shop", "generation": 2},
          "spec": {"replicas": 1},
          "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}


def _pod(*, waiting: str | None = None, last_reason: str | None = None, finished: datetime | None = None,
         restarts: int = 0, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    last: dict[str, Any] = {}
    if last_reason:
        last = {"terminated": {"reason": last_reason,
                               **({"finishedAt": finished.isoformat().replace("+00:00", "Z")} if finished else {})}}
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    meta: dict[str, Any] = {"name": "web-abc12-xyz34"}
    if deleting:
        meta["deletionTimestamp"] = NOW.isoformat()
    return {"metadata": meta, "status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "app", "state": state, "lastState": last, "restartCount": restarts}]}}


def _check(symptom: str) -> SymptomCheck:
    return SymptomCheck(namespace="shop", deployment="web", symptom=symptom,  # type: ignore[arg-type]
                        window_seconds=600)


@pytest.mark.parametrize("symptom", ["unhealthy", "oom_killed", "crash_looping"])
def test_a_healthy_deployment_shows_no_symptom(symptom: str) -> None:
    report = symptom_report(_check(symptom), DEPLOY, [_pod()], NOW)
    assert not report.present and "last 10 min" in report.detail


def test_an_oom_kill_counts_only_within_the_window() -> None:
    recent = _pod(last_reason="OOMKilled", finished=NOW - timedelta(minutes=3), restarts=1)
    old = _pod(last_reason="OOMKilled", finished=NOW - timedelta(hours=2), restarts=1)
    assert symptom_report(_check("oom_killed"), DEPLOY, [recent], NOW).present
    assert "OOMKilled" in symptom_report(_check("oom_killed"), DEPLOY, [recent], NOW).detail
    assert not symptom_report(_check("oom_killed"), DEPLOY, [old], NOW).present
    # A termination without its time yet is new.
    assert symptom_report(_check("oom_killed"), DEPLOY, [_pod(last_reason="OOMKilled")], NOW).present


def test_a_crash_loop_is_a_back_off_or_a_recent_restart_not_an_old_one() -> None:
    assert symptom_report(_check("crash_looping"), DEPLOY, [_pod(waiting="CrashLoopBackOff")], NOW).present
    recent = _pod(last_reason="Error", finished=NOW - timedelta(minutes=1), restarts=4)
    assert symptom_report(_check("crash_looping"), DEPLOY, [recent], NOW).present
    old = _pod(last_reason="Error", finished=NOW - timedelta(days=1), restarts=4)
    assert not symptom_report(_check("crash_looping"), DEPLOY, [old], NOW).present
    # A crash loop is no evidence of an OOM kill.
    assert not symptom_report(_check("oom_killed"), DEPLOY, [_pod(waiting="CrashLoopBackOff")], NOW).present


def test_unhealthy_covers_waiting_unready_and_missing_replicas() -> None:
    assert symptom_report(_check("unhealthy"), DEPLOY, [_pod(waiting="ImagePullBackOff", ready=False)], NOW).present
    assert symptom_report(_check("unhealthy"), DEPLOY, [_pod(ready=False)], NOW).present
    short = {**DEPLOY, "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                                  "availableReplicas": 0}}
    report = symptom_report(_check("unhealthy"), short, [_pod()], NOW)
    assert report.present and "0/1 available" in report.detail


def test_pods_being_deleted_are_not_evidence() -> None:
    gone = _pod(waiting="CrashLoopBackOff", deleting=True)
    assert not symptom_report(_check("crash_looping"), DEPLOY, [gone, _pod()], NOW).present
