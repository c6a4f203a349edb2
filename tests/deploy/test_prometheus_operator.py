"""The prometheus-operator component: the same rules, scrape jobs and route as the plain configs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, KUSTOMIZE, built, run_tool, tool

Obj = dict[str, Any]
COMPONENT = KUSTOMIZE / "components" / "prometheus-operator"
VARIANT = "kustomize/overlays/kube-prometheus"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_rules", COMPONENT / "generate_rules.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _of(kind: str, variant: str = VARIANT) -> list[Obj]:
    return [doc for doc in built(variant) if doc["kind"] == kind]


def test_every_shipped_rule_file_is_a_prometheus_rule_with_the_same_groups() -> None:
    rule_files = sorted(p for p in (DEPLOY / "prometheus" / "rules").glob("*.rules.yml")
                        if not p.name.endswith(".test.yml"))
    shipped = {p.name.removesuffix(".rules.yml"): yaml.safe_load(p.read_text())["groups"] for p in rule_files}
    deployed = {doc["metadata"]["name"]: doc["spec"]["groups"] for doc in _of("PrometheusRule")}
    assert deployed == shipped, ("components/prometheus-operator/prometheusrules.yaml is out of date with "
                                 "deploy/prometheus/rules; run python "
                                 "deploy/kustomize/components/prometheus-operator/generate_rules.py")


def test_prometheusrules_yaml_is_exactly_what_the_generator_writes() -> None:
    assert (COMPONENT / "prometheusrules.yaml").read_text(encoding="utf-8") == _generator().render(), (
        "regenerate: python deploy/kustomize/components/prometheus-operator/generate_rules.py")


def test_promtool_accepts_the_rules_as_the_operator_hands_them_to_prometheus(tmp_path: Path) -> None:
    # The operator writes each PrometheusRule's spec as one rule file.
    for rule in _of("PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        result = run_tool(tool("promtool"), "check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_service_monitors_scrape_as_the_jobs_the_rules_and_prometheus_yml_name() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    plain_jobs = {job["job_name"] for job in config["scrape_configs"]}
    services = _of("Service")
    jobs = set()
    for monitor in _of("ServiceMonitor"):
        spec = monitor["spec"]
        (service,) = [s for s in services if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
        job = service["metadata"]["labels"][spec["jobLabel"]]
        ports = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in spec["endpoints"]} <= ports, monitor["metadata"]["name"]
        jobs.add(job)
    assert jobs == {"zerotouch-relay", "zerotouch-workers"} and jobs <= plain_jobs
    rules = (DEPLOY / "prometheus" / "rules" / "zerotouch.rules.yml").read_text()
    assert 'up{job="zerotouch-relay"}' in rules


def test_the_workers_service_reaches_every_worker_and_only_workers() -> None:
    (service,) = [s for s in _of("Service") if s["metadata"]["name"] == "zerotouch-workers"]
    selector = service["spec"]["selector"].items()
    for deployment in _of("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        is_worker = deployment["spec"]["template"]["spec"]["containers"][0]["command"][1] == "worker"
        assert (selector <= labels.items()) == is_worker, deployment["metadata"]["name"]
        if is_worker:
            assert "zerotouch.io/queue" in labels


def test_prometheus_may_discover_targets_in_the_namespace_but_only_read() -> None:
    (role,) = [r for r in _of("Role") if r["metadata"]["name"] == "prometheus-k8s"]
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in role["rules"])
    assert not any("secrets" in rule["resources"] for rule in role["rules"])
    (binding,) = [b for b in _of("RoleBinding") if b["metadata"]["name"] == "prometheus-k8s"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}]


def _matchers(matchers: list[str]) -> list[Obj]:
    """alertmanager.yml's `name="value"` strings as AlertmanagerConfig matcher objects."""
    found = []
    for text in matchers:
        for operator in ("=~", "!~", "!=", "="):
            if operator in text:
                name, value = text.split(operator, 1)
                found.append({"name": name, "matchType": operator, "value": value.strip('"')})
                break
    return found


@pytest.fixture(scope="module")
def plain_alertmanager() -> Obj:
    return yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())


def test_alertmanager_config_routes_to_the_relay_as_compose_does(plain_alertmanager: Obj) -> None:
    (config,) = _of("AlertmanagerConfig")
    route, plain_route = config["spec"]["route"], plain_alertmanager["route"]
    assert route["receiver"] == "zerotouch"
    assert route["groupBy"] == plain_route["group_by"]
    assert (route["groupWait"], route["groupInterval"], route["repeatInterval"]) == (
        plain_route["group_wait"], plain_route["group_interval"], plain_route["repeat_interval"])
    (hook,) = config["spec"]["receivers"][0]["webhookConfigs"]
    plain_hook = next(r for r in plain_alertmanager["receivers"] if r["name"] == "zerotouch")["webhook_configs"][0]
    assert hook["url"] == "http://relay.zerotouch.svc.cluster.local:9095/alertmanager"
    assert hook["url"].endswith(plain_hook["url"].removeprefix("http://relay:9095"))
    assert (hook["sendResolved"], hook["maxAlerts"]) == (plain_hook["send_resolved"], plain_hook["max_alerts"])
    assert route["matchers"] == [
        {"name": "alertname", "matchType": "!~", "value": "Watchdog|InfoInhibitor|ZerotouchRelayDown"}]


def test_alertmanager_config_inhibits_exactly_as_compose_does(plain_alertmanager: Obj) -> None:
    (config,) = _of("AlertmanagerConfig")
    expected = [{"sourceMatch": _matchers(rule["source_matchers"]), "targetMatch": _matchers(rule["target_matchers"]),
                 "equal": rule["equal"]} for rule in plain_alertmanager["inhibit_rules"]]
    assert config["spec"]["inhibitRules"] == expected


def test_the_webhook_token_is_the_relays_secret_in_the_alertmanagers_namespace() -> None:
    (config,) = _of("AlertmanagerConfig")
    authorization = config["spec"]["receivers"][0]["webhookConfigs"][0]["httpConfig"]["authorization"]
    assert authorization == {"type": "Bearer", "credentials": {"name": "zerotouch-relay-token", "key": "token"}}
    assert config["metadata"]["namespace"] == "monitoring"
    (relay,) = [d for d in _of("Deployment") if d["metadata"]["name"] == "zerotouch-relay"]
    volumes = {v["name"]: v for v in relay["spec"]["template"]["spec"]["volumes"]}
    assert volumes["token"]["secret"]["secretName"] == "zerotouch-relay-token"
    command = relay["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--token-file") + 1].endswith("/token")


def test_the_relay_network_policy_admits_the_monitoring_namespace() -> None:
    (policy,) = [p for p in _of("NetworkPolicy") if p["metadata"]["name"] == "zerotouch-relay"]
    (rule,) = policy["spec"]["ingress"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule["from"]
