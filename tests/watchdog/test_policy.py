"""The policy's watchdog section: shipped checks, overrides, references; the pure rules of a cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from zerotouch.durations import parse_duration
from zerotouch.policy import PolicyError, parse_policy
from zerotouch.watchdog import (
    DEFAULT_SILENCE_AFTER,
    ConnectionReading,
    RelayReading,
    WatchdogCheck,
    WatchdogPolicy,
    alertmanager_fingerprint,
    finding_event,
    postgres_series,
    silence_episode,
)


def test_the_shipped_checks_cover_the_seed_and_name_the_rules_alerts() -> None:
    checks = WatchdogPolicy().checks
    assert {name: c.alertname for name, c in checks.items() if c.enabled} == {
        "consumer-lag": "KafkaConsumerLagHigh", "postgres-connections": "PostgresConnectionsHigh",
        "oom-kills": "KubePodOOMKilled", "crash-loops": "KubePodCrashLooping", "restart-loops": "KubePodCrashLooping",
        "disk": "DiskSpaceHigh", "stuck-rollouts": "KubeDeploymentRolloutStuck"}
    assert not checks["generation-mismatch"].enabled
    assert checks["consumer-lag"].expression().endswith(") > 15000")
    assert checks["crash-loops"].expression().endswith(") >= 1")
    # The Watchdog alert reaches the relay every repeat_interval (at the next group_interval flush).
    route = yaml.safe_load(Path("deploy/alertmanager/alertmanager.yml").read_text())["route"]
    repeat, flush = parse_duration(route["repeat_interval"]), parse_duration(route["group_interval"])
    assert repeat + flush < DEFAULT_SILENCE_AFTER <= repeat + timedelta(minutes=5)


def test_a_shipped_check_is_overridden_field_by_field_and_new_ones_are_added() -> None:
    policy = WatchdogPolicy.model_validate({"checks": {
        "crash-loops": {"enabled": False}, "disk": {"threshold": 0.9},
        "queue-depth": {"alertname": "QueueDepthHigh", "query": "sum by (namespace, deployment) (queue_depth)",
                        "threshold": 1000, "labels": {"severity": "warning"}}}})
    assert not policy.checks["crash-loops"].enabled and policy.checks["crash-loops"].query
    assert policy.checks["disk"].expression().endswith(") > 0.9")
    assert policy.checks["queue-depth"].expression() == "(sum by (namespace, deployment) (queue_depth)) > 1000"
    assert policy.checks["oom-kills"].enabled  # the others as shipped


@pytest.mark.parametrize(("watchdog", "schedules", "message"), [
    ({"checks": {"x": {"alertname": "X"}}}, [], "a promql check needs `query`"),
    ({"checks": {"pg": {"alertname": "X", "kind": "postgres_connections"}}}, [], "needs `connection` and `threshold`"),
    ({"checks": {"Bad_Name": {"alertname": "X", "query": "up"}}}, [], "check names are lower-case"),
    ({"page": ["nowhere"]}, [], "watchdog.page: unknown channel(s) ['nowhere']"),
    ({}, [{"name": "wd", "workflow": "WatchdogWorkflow", "interval": "1m", "arguments": {"checks": ["nope"]}}],
     "schedule wd: check(s) ['nope'] not in watchdog.checks"),
    ({}, [{"name": "wd", "workflow": "WatchdogWorkflow", "interval": "1m", "arguments": {"check": ["disk"]}}],
     "check"),
])
def test_bad_watchdog_settings_are_refused_naming_what(watchdog: dict[str, Any], schedules: list[dict[str, Any]],
                                                       message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy({"watchdog": watchdog, "schedules": schedules})
    assert message in str(raised.value)


def test_a_finding_is_the_alert_the_rule_sends() -> None:
    check = WatchdogCheck(alertname="KubePodCrashLooping", query="q", threshold=1, op=">=",
                          labels={"severity": "warning"})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    event = finding_event(check, {"__name__": "x", "namespace": "shop", "pod": "web-5d9c7b8f6-abcde",
                                  "severity": "info"}, now)
    assert event.labels == {"namespace": "shop", "pod": "web-5d9c7b8f6-abcde", "severity": "warning",
                            "alertname": "KubePodCrashLooping"}
    assert event.source == "watchdog" and event.status == "firing"
    # Prometheus' model.LabelSet.Fingerprint of {alertname="Watchdog", severity="none"}.
    assert alertmanager_fingerprint({"alertname": "Watchdog", "severity": "none"}) == "448881ef475b9b26"


def test_postgres_usage_is_a_finding_only_past_the_threshold() -> None:
    check = WatchdogCheck(alertname="PostgresConnectionsHigh", kind="postgres_connections", connection="main",
                          threshold=0.85)
    assert postgres_series(check, ConnectionReading(used=17, max=20, percent=85.0)) == []
    assert [s.value for s in postgres_series(check, ConnectionReading(used=18, max=20, percent=90.0))] == [0.9]


def test_silence_pages_once_per_episode() -> None:
    after = timedelta(minutes=65)
    quiet = RelayReading(last_delivery=1000.0, read_at=1000.0 + 3600)
    assert silence_episode(quiet, after, None) == (False, False)
    silent = RelayReading(last_delivery=1000.0, read_at=1000.0 + 4000)
    assert silence_episode(silent, after, None) == (True, True)
    assert silence_episode(silent, after, 1000.0) == (True, False)  # paged for this silence already
    again = RelayReading(last_delivery=9000.0, read_at=9000.0 + 4000)
    assert silence_episode(again, after, 1000.0) == (True, True)  # a delivery came in between: a new silence
