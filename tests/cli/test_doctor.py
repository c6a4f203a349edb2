"""`zerotouch doctor` against real servers: each piece present is ok, each missing or broken one says what it disables.

The servers (the sandbox Kubernetes API, Debian's Prometheus, a throwaway PostgreSQL) run on
127.0.0.1 on free ports and are stopped by their handles even when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import SandboxCluster
from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.support.prometheus import running_prometheus
from zerotouch.doctor import DoctorReport, check_channel
from zerotouch.policy import Channel, parse_policy
from zerotouch.ports import free_port

SECRET = "s3cret-pw"  # a test password: no output may contain it

POLICY: dict[str, Any] = {
    "version": 1,
    "channels": {
        "dashboard": {"type": "dashboard"},
        "slack": {"type": "slack", "url_env": "ZT_DOCTOR_SLACK_URL"},
        "pagerduty": {"type": "pagerduty", "url": "https://events.pagerduty.com/v2/enqueue",
                      "routing_key_env": "ZT_DOCTOR_PD_KEY"},
    },
    "escalation": {"P1": [{"notify": ["dashboard", "slack"]}],
                   "P2": [{"notify": ["pagerduty"], "when": "failed"}]},
    "backups": {"targets": [{"name": "orders", "engine": "postgres", "method": "logical",
                             "connection": "orders", "database": "shop"}]},
    "runbooks": [{"name": "clean-idle", "match": {"alertname": ["PostgresConnectionsHigh"]},
                  "target": {"deployment": "main"},
                  "steps": [{"action": "terminate_idle_connections",
                             "params": {"idle_for_seconds": 600, "max_terminate": 10}}]}],
}
# What the environment could bring in from outside the test: every variable the checks read.
_OURS = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "PROMETHEUS_URL", "ZT_DOCTOR_", "ZEROTOUCH_PG_",
         "ZEROTOUCH_MONGO_", "ZEROTOUCH_POLICY", "ZEROTOUCH_STATE_DIR")


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    """Debian's Prometheus with nothing to scrape: the check only asks who it is."""
    with running_prometheus({"global": {"scrape_interval": "15s"}}) as url:
        yield url


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=20) as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig naming ``server`` with no credentials (the sandbox needs none)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


def doctor(tmp_path: Path, env: dict[str, str], *args: str, policy: dict[str, Any] | None = None,
           ) -> tuple[int, dict[str, Any], str]:
    """`zerotouch doctor --json` and `zerotouch doctor` with only ``env`` set of what the checks read."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy or POLICY))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    clean.update({"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "ZEROTOUCH_STATE_DIR": str(tmp_path / "state"),
                  **env})
    command = [sys.executable, "-m", "cli", "doctor", "--policy", str(policy_file), "--timeout", "2", *args]
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60, env=clean)
    as_text = subprocess.run(command, capture_output=True, text=True, timeout=60, env=clean)
    assert as_json.returncode == as_text.returncode, as_text.stderr
    assert SECRET not in as_json.stdout + as_json.stderr + as_text.stdout + as_text.stderr
    report = json.loads(as_json.stdout)
    DoctorReport.model_validate(report)  # the JSON is the report's own shape
    return as_json.returncode, report, as_text.stdout


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_every_piece_present_is_ok(tmp_path: Path, sandbox: SandboxCluster, prometheus: str,
                                   postgres: Postgres) -> None:
    env = {"KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", sandbox.url)), "PROMETHEUS_URL": prometheus,
           "ZEROTOUCH_PG_ORDERS_DSN": postgres.dsn(), "ZEROTOUCH_PG_MAIN_DSN": postgres.dsn(),
           "ZT_DOCTOR_SLACK_URL": "https://hooks.slack.example/services/T0/B0/x", "ZT_DOCTOR_PD_KEY": "key"}
    code, report, text = doctor(tmp_path, env)
    assert code == 0 and report["ok"]
    assert {name: check["status"] for name, check in by_name(report).items()} == {
        "policy": "ok", "Kubernetes API": "ok", "Prometheus": "ok", "PostgreSQL orders": "ok", "PostgreSQL main": "ok",
        "channel dashboard": "ok", "channel slack": "ok", "channel pagerduty": "ok"}
    assert all(check["disables"] == "" for check in report["checks"])
    checks = by_name(report)
    assert sandbox.url in checks["Kubernetes API"]["detail"] and "kubeconfig" in checks["Kubernetes API"]["detail"]
    assert "Prometheus 2." in checks["Prometheus"]["detail"] or "Prometheus 3." in checks["Prometheus"]["detail"]
    assert f"127.0.0.1:{postgres.port}/postgres: connects" in checks["PostgreSQL orders"]["detail"]
    assert "hooks.slack.example" not in text, "a webhook URL is a credential"
    assert "8 ok, 0 missing (optional), 0 failing" in text


def test_nothing_configured_is_reported_with_what_it_disables_and_is_not_an_error(tmp_path: Path) -> None:
    code, report, text = doctor(tmp_path, {})
    assert code == 0 and report["ok"]
    checks = by_name(report)
    assert {name for name, c in checks.items() if c["status"] == "missing"} == {
        "Kubernetes API", "Prometheus", "PostgreSQL orders", "PostgreSQL main", "channel slack", "channel pagerduty"}
    assert "incidents escalate to a human instead" in checks["Kubernetes API"]["disables"]
    assert "restart, scale, rollback" in checks["Kubernetes API"]["disables"]
    assert "PromQL verification is skipped" in checks["Prometheus"]["disables"]
    assert "ZEROTOUCH_PG_ORDERS_DSN" in checks["PostgreSQL orders"]["detail"]
    assert "backups and test restores of orders" in checks["PostgreSQL orders"]["disables"]
    assert "runbook clean-idle cannot act" in checks["PostgreSQL main"]["disables"]
    assert "$ZT_DOCTOR_SLACK_URL is not set" in checks["channel slack"]["detail"]
    assert "escalations of P1" in checks["channel slack"]["disables"]
    assert "→ PromQL verification is skipped" in text and "6 missing (optional), 0 failing" in text


def test_configured_but_broken_pieces_fail_with_what_they_disable(tmp_path: Path) -> None:
    closed = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    policy = {**POLICY, "backups": {"targets": [
        *POLICY["backups"]["targets"],
        {"name": "docs", "engine": "mongodb", "connection": "docs", "database": "app"}]}}
    env = {"KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", f"http://{closed[0]}")),
           "PROMETHEUS_URL": f"http://{closed[1]}",
           "ZEROTOUCH_PG_ORDERS_DSN": f"host=127.0.0.1 port={closed[2].split(':')[1]} user=zt password={SECRET}",
           "ZEROTOUCH_PG_MAIN_DSN": "not a dsn = =",
           "ZEROTOUCH_MONGO_DOCS_URL": f"mongodb://zt:{SECRET}@{closed[2]}/app",
           "ZT_DOCTOR_SLACK_URL": "hooks.slack.example/no-scheme", "ZT_DOCTOR_PD_KEY": "key"}
    code, report, text = doctor(tmp_path, env, policy=policy)
    assert code == 1 and not report["ok"]
    checks = by_name(report)
    failing = {name for name, c in checks.items() if c["status"] == "failing"}
    assert failing == {"Kubernetes API", "Prometheus", "PostgreSQL orders", "PostgreSQL main", "MongoDB docs",
                       "channel slack"}
    assert "Connection refused" in checks["Kubernetes API"]["detail"]
    assert "incidents escalate to a human" in checks["Kubernetes API"]["disables"]
    assert "remediation ends escalated to a human" in checks["Prometheus"]["disables"]
    assert "cannot connect" in checks["PostgreSQL orders"]["detail"]
    assert "not a valid connection string" in checks["PostgreSQL main"]["detail"]
    assert "backups and test restores of docs" in checks["MongoDB docs"]["disables"]
    assert "is not an http(s) URL" in checks["channel slack"]["detail"]
    assert "no-scheme" not in text
    assert "FAILING  Prometheus" in text and "6 failing" in text


def test_a_policy_that_does_not_load_is_the_required_piece(tmp_path: Path) -> None:
    code, report, _ = doctor(tmp_path, {}, policy={"mode": "yolo"})
    assert code == 1
    policy = by_name(report)["policy"]
    assert policy["status"] == "failing" and policy["required"] and "mode" in policy["detail"]
    assert "nothing can start" in policy["disables"]
    assert by_name(report)["Kubernetes API"]["status"] == "missing", "the other checks still run"


@pytest.mark.parametrize(("url", "status", "says"), [
    ("https://hooks.slack.com/services/T/B/x", "ok", "URL from $URL"),
    ("http://10.0.0.1:8080/hook", "ok", "URL from $URL"),
    ("hooks.slack.com/services", "failing", "not an http(s) URL"),
    ("ftp://example.org/x", "failing", "not an http(s) URL"),
    ("https:///path-only", "failing", "has no host"),
    ("https://example.org:99999/x", "failing", "not a valid URL"),
    ("", "missing", "$URL is not set"),
])
def test_a_channel_url_is_checked_without_sending(monkeypatch: pytest.MonkeyPatch, url: str, status: str,
                                                  says: str) -> None:
    monkeypatch.setenv("URL", url)
    policy = parse_policy({"channels": {"hook": {"type": "webhook", "url_env": "URL"}}})
    check = check_channel("hook", Channel(type="webhook", url_env="URL"), policy)
    assert check.status == status and says in check.detail
    assert url not in check.detail or not url
    assert (check.disables == "") == (status == "ok")
