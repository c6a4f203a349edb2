"""Prometheus rules and config, Alertmanager config: checked by the real promtool/amtool."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from embedded.stock_rules import stock_groups
from tests.deploy.conftest import DEPLOY, RULES_FILE, run_tool, tool
from zerotouch.backup_alerts import ALERT_NAMES as BACKUP_ALERT_NAMES
from zerotouch.policy import Policy
from zerotouch.triage import match_runbook, render_promql

# Alerts that deliberately have no runbook: a human decides (see the policy's comments).
ESCALATE_ONLY = {"KubePodRestartingOccasionally", "ZerotouchRelayDown"}
BACKUP_RULES = RULES_FILE.with_name("zerotouch-backups.rules.yml")
SEVERITIES = {"page", "critical", "high", "warning", "info"}


def _ok(result: Any) -> None:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


def test_promtool_accepts_the_rules() -> None:
    _ok(run_tool(tool("promtool"), "check", "rules", str(RULES_FILE)))


def test_promtool_accepts_the_prometheus_config() -> None:
    _ok(run_tool(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")))


def test_backup_rules_check_and_their_unit_tests_pass() -> None:
    _ok(run_tool(tool("promtool"), "check", "rules", str(BACKUP_RULES)))
    _ok(run_tool(tool("promtool"), "test", "rules", str(BACKUP_RULES.with_name("zerotouch-backups.rules.test.yml"))))


def test_prometheus_loads_the_backup_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    assert "rules/zerotouch-backups.rules.yml" in config["rule_files"]


def test_rule_unit_tests_pass() -> None:
    """Crash loop, OOM, lag > 15k, PG > 85%, disk > 85% fire on sandbox-shaped series with a target."""
    test_file = RULES_FILE.with_name("zerotouch.rules.test.yml")
    _ok(run_tool(tool("promtool"), "test", "rules", str(test_file)))


def test_amtool_accepts_the_alertmanager_config() -> None:
    _ok(run_tool(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")))


def test_every_alert_is_remediated_or_explicitly_escalate_only(policy: Policy, rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        name = rule["alert"]
        labels = {"alertname": name, "namespace": "shop", "deployment": "web", "consumergroup": "web"}
        runbook = match_runbook(policy, labels)
        if name in ESCALATE_ONLY:
            assert runbook is None, f"{name} is listed as escalate-only but a runbook matches it"
        else:
            assert runbook is not None, f"alert {name} has no runbook and is not listed as escalate-only"


def test_every_runbook_alert_exists_in_the_rules(policy: Policy, rules: list[dict[str, Any]]) -> None:
    stock = {rule["alert"] for group in stock_groups() for rule in group["rules"] if "alert" in rule}
    backups = yaml.safe_load(BACKUP_RULES.read_text(encoding="utf-8"))
    backup_rules = {rule["alert"] for group in backups["groups"] for rule in group["rules"] if "alert" in rule}
    # Backup workflows raise these themselves, through the same incident path (zerotouch/backup_alerts.py).
    raised_by_zerotouch = set(BACKUP_ALERT_NAMES)
    alert_names = {rule["alert"] for rule in rules} | stock | backup_rules | raised_by_zerotouch
    for runbook in policy.runbooks:
        missing = set(runbook.match.alertname) - alert_names
        assert not missing, f"runbook {runbook.name} waits for alerts no rule fires: {missing}"


def test_alerts_carry_severity_target_and_annotations(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        expr = rule["expr"]
        # The target labels: from the series, from the pod name, or fixed on the rule.
        assert "namespace" in expr or "namespace" in rule["labels"], name
        assert "deployment" in expr or "deployment" in rule["labels"], name


def test_verification_queries_parse(policy: Policy, tmp_path: Path) -> None:
    """Rendered as the workflow renders them, every verification query is valid PromQL."""
    records = [
        {"record": f"zerotouch:verify:{re.sub('[^a-z0-9]', '_', runbook.name)}",
         "expr": render_promql(runbook.verify.promql, "shop", "web")}
        for runbook in policy.runbooks if runbook.verify.promql
    ]
    assert records
    rules_file = tmp_path / "verify.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "verify", "rules": records}]}))
    _ok(run_tool(tool("promtool"), "check", "rules", str(rules_file)))


@pytest.mark.parametrize("runbook_name", ["restart-crashlooping", "scale-consumers-on-lag", "cleanup-old-logs"])
def test_verification_is_non_empty_when_healthy_and_empty_when_not(
    policy: Policy, runbook_name: str, tmp_path: Path
) -> None:
    runbook = next(r for r in policy.runbooks if r.name == runbook_name)
    assert runbook.verify.promql
    expr = render_promql(runbook.verify.promql, "shop", "web")
    if runbook_name == "restart-crashlooping":
        pod = 'namespace="shop",pod="web-5d8f7c9b4a-x2k9q",container="web"'
        healthy = [(f"kube_pod_container_status_waiting_reason{{{pod},reason=\"ContainerCreating\"}}", "1x5")]
        broken = [(f"kube_pod_container_status_waiting_reason{{{pod},reason=\"CrashLoopBackOff\"}}", "1x5")]
    elif runbook_name == "scale-consumers-on-lag":
        lag = 'kafka_consumergroup_lag{namespace="shop",deployment="web",consumergroup="web",topic="web-events"}'
        healthy, broken = [(lag, "100x5")], [(lag, "20000x5")]
    else:
        pvc = 'namespace="shop",deployment="web",persistentvolumeclaim="web-data"'
        capacity = (f"kubelet_volume_stats_capacity_bytes{{{pvc}}}", "1000x5")
        healthy = [(f"kubelet_volume_stats_used_bytes{{{pvc}}}", "350x5"), capacity]
        broken = [(f"kubelet_volume_stats_used_bytes{{{pvc}}}", "900x5"), capacity]

    def case(series: list[tuple[str, str]], non_empty: bool) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "promql_expr_test": [{
                "expr": f"count({expr}) > 0",
                "eval_time": "3m",
                "exp_samples": [{"labels": "{}", "value": 1}] if non_empty else [],
            }],
        }

    test_file = tmp_path / "verify.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [], "tests": [case(healthy, True), case(broken, False)]}))
    _ok(run_tool(tool("promtool"), "test", "rules", str(test_file)))


def test_alertmanager_sends_everything_to_the_relay_with_a_token_file() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    route = config["route"]
    assert route["receiver"] == "zerotouch"
    assert route["group_by"] == ["alertname", "namespace", "deployment"]
    receiver = next(r for r in config["receivers"] if r["name"] == "zerotouch")
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://relay:9095/alertmanager"
    assert hook["send_resolved"] is True and hook["max_alerts"] == 0
    authorization = hook["http_config"]["authorization"]
    assert authorization["credentials_file"] and "credentials" not in authorization


def test_prometheus_evaluates_the_shipped_rules_and_scrapes_the_relay() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    shipped = sorted(path.name for path in (DEPLOY / "prometheus" / "rules").glob("*.rules.yml"))
    assert sorted(config["rule_files"]) == [f"rules/{name}" for name in shipped]  # every shipped rules file
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert {"relay:9095", "localhost:9090"} <= targets
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
