"""The vendored kube-prometheus rules: unmodified, loadable as a plain rule file, and complete for the policy."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from embedded.monitoring import binary
from embedded.scrape import sandbox_jobs
from embedded.stock_rules import KUBE_PROMETHEUS, metric_names, series_read, stock_groups, write_rule_file
from tests.deploy.conftest import run_tool
from tests.support.kube_prometheus import POLICY_ALERTS, policy_alert_metric_names


def _ok(result: Any) -> None:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


def _promtool() -> str:
    try:
        return binary("promtool")
    except FileNotFoundError as error:
        pytest.fail(f"{error}; CI installs it (.ci/run)")


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_vendored_files_are_the_upstream_blobs_named_in_upstream_md() -> None:
    upstream = (KUBE_PROMETHEUS / "UPSTREAM.md").read_text()
    assert re.search(r"commit `[0-9a-f]{40}`", upstream)
    rows = re.findall(r"^\| `([^`]+)` \| .* \| `([0-9a-f]{40})` \|$", upstream, re.MULTILINE)
    assert {name for name, _ in rows} == {path.name for path in KUBE_PROMETHEUS.iterdir()} - {"UPSTREAM.md"}
    for name, blob in rows:
        content = (KUBE_PROMETHEUS / name).read_bytes()
        git_blob = hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()
        assert git_blob == blob, f"{name} was modified"


def test_unshortened_output_is_exactly_the_upstream_groups(tmp_path: Path) -> None:
    written = yaml.safe_load(write_rule_file(tmp_path / "stock.yml").read_text())
    upstream = [group for path in sorted(KUBE_PROMETHEUS.glob("*-prometheusRule.yaml"))
                for group in yaml.safe_load(path.read_text())["spec"]["groups"]]
    assert written == {"groups": upstream}


@pytest.mark.parametrize(("hold", "window", "interval"), [(None, None, None), ("1s", "10s", "1s"),
                                                           ("30s", "1m", None)])
def test_promtool_accepts_the_rule_file(tmp_path: Path, hold: str | None, window: str | None,
                                        interval: str | None) -> None:
    rule_file = write_rule_file(tmp_path / "stock.yml", hold=hold, window=window, interval=interval)
    _ok(run_tool(_promtool(), "check", "rules", str(rule_file)))


def test_shortening_changes_for_windows_and_interval_only(tmp_path: Path) -> None:
    stock = _rules(write_rule_file(tmp_path / "stock.yml"))
    short_file = write_rule_file(tmp_path / "short.yml", hold="1s", window="10s", interval="2s")
    short = _rules(short_file)
    assert {group["interval"] for group in yaml.safe_load(short_file.read_text())["groups"]} == {"2s"}
    assert [r.get("alert", r.get("record")) for r in stock] == [r.get("alert", r.get("record")) for r in short]
    for before, after in zip(stock, short, strict=True):
        assert ("for" in after) == ("for" in before) and after.get("for", "1s") == "1s"
        assert re.sub(r"\[\d+[smhdwy]\]", "[10s]", before["expr"]) == after["expr"]
        assert {k: v for k, v in before.items() if k not in ("for", "expr")} == \
               {k: v for k, v in after.items() if k not in ("for", "expr")}


def test_every_alert_the_policy_targets_is_in_the_stock_rules() -> None:
    alerts = {rule.get("alert") for group in stock_groups() for rule in group["rules"]}
    assert set(POLICY_ALERTS) <= alerts, set(POLICY_ALERTS) - alerts


def test_a_directory_with_something_else_than_prometheus_rules_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x-prometheusRule.yaml").write_text("kind: ConfigMap\n")
    with pytest.raises(ValueError, match="not a PrometheusRule"):
        stock_groups(tmp_path)


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (namespace, pod) (rate(kube_pod_container_status_restarts_total{job="x"}[5m])) > 0',
     {"kube_pod_container_status_restarts_total"}),
    ('label_replace(kube_pod_owner, "workload", "$1", "pod", "(.+)") * on (pod) group_left(owner_name) '
     "namespace_workload_pod:kube_pod_owner:relabel offset 5m", {"kube_pod_owner",
                                                                  "namespace_workload_pod:kube_pod_owner:relabel"}),
    ("vector(1)", set()),
    ("predict_linear(node_filesystem_avail_bytes[6h], 4 * 24 * 3600) < 1e3 and up == 0",
     {"node_filesystem_avail_bytes", "up"}),
])
def test_series_read(expr: str, names: set[str]) -> None:
    assert series_read(expr) == names


def test_metric_names_follow_recording_rules_and_leave_out_prometheus_own_series() -> None:
    groups = [{"name": "g", "rules": [
        {"record": "ns:restarts:rate", "expr": "sum by (namespace) (rate(restarts_total[5m]))"},
        {"alert": "A", "expr": "ns:restarts:rate > 1 and on (namespace) up == 1"},
        {"alert": "B", "expr": "other_series > 0"},
    ]}]
    assert metric_names(groups, ["A"]) == ["restarts_total"]


def test_the_policy_alerts_read_kube_state_metrics_kubelet_cadvisor_and_node_exporter_series() -> None:
    names = policy_alert_metric_names()
    assert {"kube_pod_container_status_waiting_reason", "kube_deployment_status_condition", "kube_job_failed",
            "kubelet_volume_stats_available_bytes", "container_cpu_cfs_throttled_periods_total",
            "node_filesystem_avail_bytes", "kube_node_status_condition"} <= set(names)
    assert names == sorted(names) and not any(":" in name for name in names)


def test_promtool_accepts_the_kube_prometheus_shaped_scrape_config(tmp_path: Path) -> None:
    config = {"scrape_configs": [job.config() for job in sandbox_jobs("127.0.0.1:6443")]}
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    _ok(run_tool(_promtool(), "check", "config", str(config_file)))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    cadvisor = jobs["cadvisor"]["static_configs"][0]["labels"]
    assert cadvisor == {"job": "kubelet", "service": "kubelet", "endpoint": "https-metrics",
                        "namespace": "kube-system", "metrics_path": "/metrics/cadvisor"}
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    assert jobs["sandbox"]["metric_relabel_configs"][0]["action"] == "drop"
