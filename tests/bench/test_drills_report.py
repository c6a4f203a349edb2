"""Scenario 12's pure parts: how a drill's MTTR is split, which drills run, and when the run counts as failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import CORRECTNESS
from bench.scenarios.drills import healthy_after
from bench.scenarios.drills_report import Cycles, DrillRun, section
from bench.scenarios.drills_setup import QUICK, chosen, deployments, drills_policy
from zerotouch.drills import FALSE_POSITIVES, NODE_FAULT, SANDBOX_FAULTS
from zerotouch.policy import load_policy


def test_the_mttr_splits_into_detection_zerotouch_and_the_sandbox() -> None:
    run = DrillRun(fault="crashloop", expect="auto_resolved", outcome="auto_resolved", passed=True,
                   detect=0.1, first_action=0.4, recovered=3.4, sandbox=0.5)
    assert run.deciding == pytest.approx(0.3)  # alert → first write
    assert run.verifying == pytest.approx(2.5)  # healthy → verified: 3.4 - 0.4 - 0.5
    assert run.zerotouch == pytest.approx(2.8)
    assert run.share == pytest.approx(2.8 / 3.4)
    assert sum(part or 0.0 for part in (run.detect, run.deciding, run.sandbox, run.verifying)) == pytest.approx(3.4)


@pytest.mark.parametrize("missing", ["detect", "first_action", "recovered", "sandbox"])
def test_a_drill_without_every_moment_has_no_share(missing: str) -> None:
    times: dict[str, float | None] = {"detect": 0.1, "first_action": 0.4, "recovered": 3.4, "sandbox": 0.5,
                                      missing: None}
    run = DrillRun(fault="oom", expect="auto_resolved", outcome="escalated", passed=False, detect=times["detect"],
                   first_action=times["first_action"], recovered=times["recovered"], sandbox=times["sandbox"])
    assert run.zerotouch is None and run.share is None


def test_healthy_is_the_first_healthy_sample_after_the_action() -> None:
    samples = [(9.0, True), (10.0, False), (10.5, False), (10.9, True), (11.0, True)]
    assert healthy_after(samples, 10.2) == 10.9  # the healthy sample before the fault does not count
    assert healthy_after(samples, 11.5) is None


def test_quick_runs_a_fault_and_a_false_positive_and_full_runs_every_class() -> None:
    assert [d["fault"] for d in chosen(quick=True)] == list(QUICK)
    assert {d["expect"] for d in chosen(quick=True)} == {"auto_resolved", "no_action"}
    full = [d["fault"] for d in chosen(quick=False)]
    assert sorted(full) == sorted([*SANDBOX_FAULTS, NODE_FAULT, *FALSE_POSITIVES])
    targets = deployments(chosen(quick=False))
    assert len(targets) == len(set(targets)), "each class breaks a workload of its own"


def test_the_drills_policy_is_valid_and_declares_every_drill(tmp_path: Path) -> None:
    path = drills_policy(tmp_path / "policy.yaml", chosen(quick=False), relay_url="http://127.0.0.1:1")
    policy = load_policy(path)
    assert [d.fault for d in policy.drills.drills] == [d["fault"] for d in chosen(quick=False)]
    assert policy.watchdog.relay_url == "http://127.0.0.1:1"


def test_a_drill_that_missed_its_expectation_fails_the_quick_run() -> None:
    runs = [DrillRun(fault="healthy_workload_alert", expect="no_action", outcome="acted", passed=False,
                     actions=["patch deployments drills/healthy-workload-alert"])]
    cycles = Cycles(count=1, checks=["crash-loops"], queries=[1], workflow_seconds=[0.4], round_trip=[0.5],
                    findings=[2], silence_probe=True, check_ms={"crash-loops": [5.0]}, worker_cpu=0.1,
                    temporal_cpu=0.1, wall=0.5)
    goals = section(runs, cycles, quick=True, drills_seconds=10.0).goals
    failed = [g for g in goals if g.met is False]
    assert len(failed) == 1 and "healthy_workload_alert" in failed[0].detail
    assert any(word in failed[0].text for word in CORRECTNESS), "`python -m bench --quick` must exit 1 on it"


def test_a_drill_resolved_before_the_sandbox_was_healthy_has_no_zerotouch_time() -> None:
    run = DrillRun(fault="disk_pressure", expect="auto_resolved", outcome="auto_resolved", passed=True,
                   detect=0.0, first_action=0.2, recovered=0.2, sandbox=0.6)
    assert run.early and run.zerotouch is None and run.share is None
    goals = section([run], None, quick=False, drills_seconds=1.0).goals
    assert [g.met for g in goals if g.text.startswith("auto-resolved drills were resolved")] == [False]
    sampled = DrillRun(fault="crashloop", expect="auto_resolved", outcome="auto_resolved", passed=True,
                       detect=0.0, first_action=0.2, recovered=2.95, sandbox=2.8)
    assert not sampled.early and sampled.verifying == 0.0, "a lead within the poll's resolution is sampling"
