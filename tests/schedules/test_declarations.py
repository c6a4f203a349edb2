"""Schedule declarations in the policy: validation with messages naming the schedule, cron compilation, schema."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from starters.schedules import ScheduleMetrics, build_schedule
from tests.deploy.conftest import run_tool, tool
from zerotouch.policy import PolicyError, parse_policy, policy_schema
from zerotouch.schedules import cron_calendar, schedule_id, scheduled_job_key, scheduled_workflow_id

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"


def _policy(**schedule: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "nightly", "workflow": "ScheduledJobWorkflow",
                            "arguments": {"template": "log-cleanup", "namespace": "shop"}, "cron": "0 3 * * *"}
    base.update(schedule)
    return {"job_templates": {"log-cleanup": {"image": "busybox"}}, "schedules": [base]}


def test_a_declaration_parses_and_derives_stable_ids() -> None:
    schedule = parse_policy(_policy(overlap="BUFFER_ALL", jitter="30s")).schedules[0]
    assert schedule.cron == ["0 3 * * *"] and schedule.overlap == "BUFFER_ALL"
    assert schedule_id("nightly") == "zerotouch-schedule-nightly"
    assert schedule_id("nightly", "eu") == "zerotouch-schedule-eu-nightly"
    assert scheduled_workflow_id("nightly") == "zerotouch-scheduled-nightly"
    assert build_schedule(schedule) == build_schedule(schedule)  # same declaration, same schedule


@pytest.mark.parametrize(("fields", "message"), [
    ({"workflow": "NoSuchWorkflow"}, "schedule nightly: workflow: Input should be 'ScheduledJobWorkflow'"),
    ({"cron": "61 * * * *"}, "schedule nightly: cron: Value error, minute value '61' is not in 0-59"),
    ({"cron": "0 3 * *"}, "expected 5 fields"),
    ({"cron": "0 3 1 * MON"}, "restrict day-of-month or day-of-week, not both"),
    ({"cron": [], "interval": None}, "schedule nightly: Value error, give `cron` or `interval`"),
    ({"interval": "1h", "offset": "2h"}, "offset needs an interval and must be shorter than it"),
    ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"overlap": "SOMETIMES"}, "schedule nightly: overlap: Input should be 'SKIP'"),
    ({"arguments": {"template": "log-cleanup"}}, "namespace"),
    ({"arguments": {"template": "nope", "namespace": "shop"}},
     "schedule nightly: template 'nope' not in job_templates"),
    ({"name": "Bad_Name"}, "schedule Bad_Name: name: String should match pattern"),
])
def test_bad_declarations_are_refused_naming_the_schedule(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(_policy(**fields), "policy.yaml")
    assert message in str(refused.value)


def test_duplicate_names_are_refused() -> None:
    data = _policy()
    data["schedules"].append(dict(data["schedules"][0]))
    with pytest.raises(PolicyError, match=r"schedule names must be unique: \['nightly'\]"):
        parse_policy(data)


def test_a_catchup_window_below_ten_seconds_is_clamped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="zerotouch.schedules"):
        schedule = parse_policy(_policy(catchup_window="3s")).schedules[0]
    assert schedule.catchup_window.total_seconds() == 10
    assert schedule.warnings == ["catchup_window 3s is below Temporal's minimum; using 10s"]
    assert "schedule nightly: catchup_window 3s" in caplog.text


@pytest.mark.parametrize(("cron", "expected"), [
    ("*/15 * * * *", {"minute": [(0, 59, 15)], "hour": [(0, 23, 1)]}),
    ("0 9-17 * * MON-FRI", {"minute": [(0, 0, 1)], "hour": [(9, 17, 1)], "day_of_week": [(1, 5, 1)]}),
    ("30 2 1,15 * *", {"day_of_month": [(1, 1, 1), (15, 15, 1)]}),
    ("0 0 * JAN,jul 7", {"month": [(1, 1, 1), (7, 7, 1)], "day_of_week": [(0, 0, 1)]}),
    ("@daily", {"minute": [(0, 0, 1)], "hour": [(0, 0, 1)], "day_of_month": [(1, 31, 1)]}),
    ("5/20 * * * *", {"minute": [(5, 59, 20)]}),
])
def test_cron_compiles_to_calendar_ranges(cron: str, expected: dict[str, list[tuple[int, int, int]]]) -> None:
    calendar = cron_calendar(cron)
    for field, ranges in expected.items():
        assert calendar[field] == ranges, field


def test_the_idempotency_key_is_per_schedule_and_utc_time() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    at = datetime(2026, 1, 5, 3, 10, tzinfo=UTC)
    assert scheduled_job_key("nightly", at) == "nightly@20260105T031000Z"
    assert scheduled_job_key("nightly", at.astimezone(timezone(timedelta(hours=2)))) == "nightly@20260105T031000Z"


def test_the_policy_schema_and_check_cover_schedules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = policy_schema()
    assert "schedules" in schema["properties"]
    declaration = schema["$defs"]["ScheduleDeclaration"]
    assert declaration["properties"]["overlap"]["enum"] == ["SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER",
                                                            "TERMINATE_OTHER", "ALLOW_ALL"]
    bad = tmp_path / "policy.yaml"
    bad.write_text(json.dumps(_policy(overlap="SOMETIMES")))
    assert main(["policy", "check", str(bad)]) != 0
    assert "schedule nightly: overlap" in capsys.readouterr().err


def test_the_alert_rules_fire_on_missed_and_skipped_runs() -> None:
    """promtool checks the rules and runs their unit test; the rules read series ScheduleMetrics exports."""
    rules = RULES / "zerotouch-schedules.rules.yml"
    for argv in (("check", "rules", str(rules)), ("test", "rules", str(rules.with_name(
            "zerotouch-schedules.rules.test.yml")))):
        result = run_tool(tool("promtool"), *argv)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    exported = {family.name for family in ScheduleMetrics().collect()}
    text = rules.read_text()
    assert "zerotouch_schedule_skipped_overlap" in exported and "zerotouch_schedule_skipped_overlap" in text
    assert "zerotouch_schedule_missed_catchup_window" in exported and "zerotouch_schedule_missed_catchup_window" in text
