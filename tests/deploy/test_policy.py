"""The shipped policy: valid, and remediating each incident class the seeds name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

import pytest
import yaml

from embedded.stock_rules import stock_groups
from tests.deploy.conftest import POLICY_FILE
from zerotouch.action_params import PARAMS_OF_ACTION, ActionName, ScaleDeploymentParams
from zerotouch.policy import Policy, PolicyError, parse_policy, policy_schema
from zerotouch.quantities import parse_memory
from zerotouch.triage import approval_reason, match_runbook, render_promql, triage

# (alert labels beyond alertname) per seed class → runbook's first action
SEED_CLASSES = [
    ("KubePodCrashLooping", {}, "restart_deployment"),
    ("KubeDeploymentReplicasMismatch", {}, "restart_deployment"),
    ("KubePodOOMKilled", {}, "raise_memory_limit"),
    ("KubeContainerMemoryNearLimit", {}, "raise_memory_limit"),
    ("HighErrorRateAfterDeploy", {}, "rollback_deployment"),
    ("PostgresConnectionsHigh", {}, "terminate_idle_connections"),
    ("KafkaConsumerLagHigh", {"consumergroup": "email-worker"}, "scale_deployment"),
    ("DiskSpaceHigh", {}, "run_job"),
    ("CertificateExpiringSoon", {}, "run_job"),
]


def _labels(alertname: str, extra: dict[str, str], severity: str = "warning") -> dict[str, str]:
    return {"alertname": alertname, "namespace": "shop", "deployment": "web", "severity": severity, **extra}


@pytest.mark.parametrize(("alertname", "extra", "action"), SEED_CLASSES)
def test_each_seed_class_has_a_runbook_with_a_valid_target(
    policy: Policy, alertname: str, extra: dict[str, str], action: str
) -> None:
    result = triage(policy, _labels(alertname, extra))
    assert result.runbook is not None, f"no runbook for {alertname}"
    assert result.runbook.steps[0].action == action
    assert result.target_error is None
    assert result.confidence >= policy.confidence_threshold


def test_targets_come_from_the_right_labels(policy: Policy) -> None:
    lag = triage(policy, _labels("KafkaConsumerLagHigh", {"consumergroup": "email-worker"}))
    assert (lag.namespace, lag.deployment) == ("shop", "email-worker")
    postgres = triage(policy, _labels("PostgresConnectionsHigh", {"deployment": "checkout-db"}))
    assert (postgres.namespace, postgres.deployment) == ("shop", "main")  # the connection reference


def test_oom_raises_memory_then_scales(policy: Policy) -> None:
    runbook = triage(policy, _labels("KubePodOOMKilled", {})).runbook
    assert runbook is not None
    assert [s.action for s in runbook.steps] == ["raise_memory_limit", "scale_deployment"]
    assert float(runbook.steps[0].params["factor"]) <= policy.guardrails.memory_factor


def test_parameters_carry_the_seed_thresholds(policy: Policy) -> None:
    postgres = triage(policy, _labels("PostgresConnectionsHigh", {})).runbook
    assert postgres is not None and postgres.steps[0].params["idle_for_seconds"] == 600
    lag = triage(policy, _labels("KafkaConsumerLagHigh", {"consumergroup": "c"})).runbook
    assert lag is not None and lag.steps[0].params["factor"] == 2
    disk = triage(policy, _labels("DiskSpaceHigh", {})).runbook
    assert disk is not None and disk.steps[0].params["template"] == "log-cleanup"


def test_rollback_is_tried_once(policy: Policy) -> None:
    """A second `rollout undo` would undo the rollback itself."""
    runbook = triage(policy, _labels("HighErrorRateAfterDeploy", {})).runbook
    assert runbook is not None and runbook.max_attempts == 1


def test_certificate_renewal_waits_for_a_human(policy: Policy) -> None:
    runbook = triage(policy, _labels("CertificateExpiringSoon", {})).runbook
    assert runbook is not None
    step = runbook.steps[0]
    assert step.approval and step.risk_class == "credential_rotation"
    assert approval_reason(policy, step) is not None


def test_zero_touch_steps_need_no_approval(policy: Policy) -> None:
    for alertname, extra, _ in SEED_CLASSES:
        if alertname == "CertificateExpiringSoon":
            continue
        result = triage(policy, _labels(alertname, extra))
        assert result.runbook is not None
        for step in result.runbook.steps:
            assert approval_reason(policy, step) is None, (alertname, step.action)


def test_unknown_alerts_have_no_runbook(policy: Policy) -> None:
    assert triage(policy, _labels("KubePodRestartingOccasionally", {}, "info")).runbook is None
    assert triage(policy, _labels("SomethingNobodyPlannedFor", {})).runbook is None


@pytest.mark.parametrize(
    ("alertname", "severity", "expected"),
    [
        ("KubePodCrashLooping", "", "P1"),  # the seed's "Critical (immediate)", even without a label
        ("KubePodOOMKilled", "warning", "P1"),
        ("KafkaConsumerLagHigh", "high", "P2"),
        ("DiskSpaceHigh", "warning", "P3"),
        ("KubePodRestartingOccasionally", "info", "P4"),
        ("SomethingElse", "page", "P0"),
        ("SomethingElse", "critical", "P1"),
    ],
)
def test_severity_mapping(policy: Policy, alertname: str, severity: str, expected: str) -> None:
    labels = _labels(alertname, {"consumergroup": "c"}, severity)
    if not severity:
        labels.pop("severity")
    assert triage(policy, labels).severity == expected


def test_escalation_pages_p0_now_and_p1_after_five_minutes(policy: Policy) -> None:
    ladder = policy.escalation
    assert any(r.after == timedelta(0) and "pagerduty" in r.notify and r.when == "unresolved" for r in ladder["P0"])
    p1_pages = [r for r in ladder["P1"] if "pagerduty" in r.notify and r.when == "unresolved"]
    assert p1_pages and min(r.after for r in p1_pages) == timedelta(minutes=5)
    for severity in ("P2", "P3", "P4"):
        rungs = ladder[severity]
        assert not any("pagerduty" in r.notify for r in rungs), f"{severity} must not page"
        assert any(r.when == "unresolved" and r.notify == ["dashboard"] for r in rungs)
        assert any(r.when == "failed" and "slack" in r.notify for r in rungs)


def test_channels_keep_secrets_in_the_environment(policy: Policy) -> None:
    channels = policy.channels
    assert channels["pagerduty"].type == "pagerduty" and channels["pagerduty"].routing_key_env
    assert channels["slack"].type == "slack" and channels["slack"].url_env and not channels["slack"].url
    assert channels["dashboard"].type == "dashboard"


def test_guardrails_and_global_settings(policy: Policy) -> None:
    guard = policy.guardrails
    assert guard.target_cooldown == timedelta(minutes=5)
    assert (guard.min_replicas, guard.max_replicas) == (1, 10)
    assert (guard.scale_up_max_factor, guard.scale_down_min_factor) == (3.0, 0.5)
    assert guard.memory_factor == 2.0 and parse_memory(guard.memory_cap) == 2 * 2**30
    assert policy.mode == "auto" and policy.four_eyes
    assert policy.group_by == ["alertname", "namespace", "workload"]
    assert policy.resolution_cooldown == timedelta(minutes=10)
    assert policy.confidence_threshold == 0.8
    assert policy.approvers.names and policy.approvers.groups
    for excluded in ("schema_change", "data_deletion", "security_policy", "credential_rotation",
                     "customer_visible_config"):
        assert policy.risk[excluded] == "approval"


def test_job_templates_run_without_a_shell(policy: Policy) -> None:
    for name, template in policy.job_templates.items():
        assert template.args, name
        assert template.args[0] not in ("sh", "/bin/sh", "bash", "/bin/bash", "-c"), name
        assert "-c" not in template.args, name
        assert template.active_deadline <= timedelta(minutes=30), name


def test_verification_placeholders_are_the_only_substitutions(policy: Policy) -> None:
    for runbook in policy.runbooks:
        if runbook.verify.promql:
            rendered = render_promql(runbook.verify.promql, "shop", "web")
            assert "{namespace}" not in rendered and "{deployment}" not in rendered, runbook.name


# --- typed step parameters ---------------------------------------------------------------


def _runbook(*steps: dict[str, Any], name: str = "scale-on-overload") -> dict[str, Any]:
    return {"runbooks": [{"name": name, "match": {"alertname": ["Overload"]}, "steps": list(steps)}],
            "job_templates": {"log-cleanup": {"image": "busybox:1.36", "args": ["true"]}}}


GOOD_STEPS: list[dict[str, Any]] = [
    {"action": "restart_deployment"},
    {"action": "scale_deployment", "params": {"factor": 2}},
    {"action": "scale_deployment", "params": {"replicas": 4}},
    {"action": "scale_deployment", "params": {"delta": -1}},
    {"action": "raise_memory_limit", "params": {"factor": 1.5, "container": "web"}},
    {"action": "raise_memory_limit"},
    {"action": "rollback_deployment"},
    {"action": "evict_pod"},
    {"action": "run_job", "params": {"template": "log-cleanup"}},
    {"action": "terminate_idle_connections", "params": {"idle_for_seconds": 600, "max_terminate": 200,
                                                        "database": "shop"}},
    {"action": "escalate"},
]
BAD_STEPS: list[tuple[dict[str, Any], str]] = [
    ({"action": "scale_deployment", "params": {"factr": 2}}, "params.factr: Extra inputs are not permitted"),
    ({"action": "scale_deployment", "params": {"factor": "lots"}}, "params.factor: Input should be a valid number"),
    ({"action": "scale_deployment", "params": {}}, "params: scale_deployment needs exactly one of"),
    ({"action": "scale_deployment", "params": {"factor": 2, "delta": 1}}, "needs exactly one of"),
    ({"action": "scale_deployment", "params": {"replicas": -1}}, "params.replicas: Input should be greater"),
    ({"action": "raise_memory_limit", "params": {"factor": 0.5}}, "params.factor: Input should be greater than 1"),
    ({"action": "raise_memory_limit", "params": {"cap": "4Gi"}}, "params.cap: Extra inputs are not permitted"),
    ({"action": "restart_deployment", "params": {"factor": 2}}, "params.factor: Extra inputs are not permitted"),
    ({"action": "run_job", "params": {}}, "params.template: Field required"),
    ({"action": "run_job", "params": {"template": "Bad Name"}}, "params.template: String should match pattern"),
    ({"action": "terminate_idle_connections", "params": {"max_terminate": 5000}},
     "params.max_terminate: Input should be less than or equal to 500"),
    ({"action": "terminate_idle_connections", "params": {"idle_seconds": 60}},
     "params.idle_seconds: Extra inputs are not permitted"),
    ({"action": "escalate", "params": {"to": "sre"}}, "params.to: Extra inputs are not permitted"),
]


def test_policy_check_names_the_runbook_the_step_and_the_parameter() -> None:
    data = _runbook({"action": "restart_deployment"}, {"action": "scale_deployment", "params": {"factr": 2}})
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "policy.yaml")
    assert str(caught.value) == ("policy.yaml: runbook scale-on-overload step 2 (scale_deployment): "
                                 "params.factr: Extra inputs are not permitted")


@pytest.mark.parametrize(("step", "message"), BAD_STEPS, ids=[f"{s['action']}-{m[:30]}" for s, m in BAD_STEPS])
def test_parameters_that_do_not_fit_the_action_fail_the_check(step: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_runbook(step), "p.yaml")
    assert f"p.yaml: runbook scale-on-overload step 1 ({step['action']}): " in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize("step", GOOD_STEPS, ids=[s["action"] for s in GOOD_STEPS])
def test_each_action_takes_its_parameters(step: dict[str, Any]) -> None:
    parsed = parse_policy(_runbook(step)).runbooks[0].steps[0]
    assert isinstance(parsed.typed_params, PARAMS_OF_ACTION[step["action"]])
    assert parsed.params == step.get("params", {})  # kept as written: workflow histories carry it


def test_the_step_keeps_its_mapping_and_offers_the_typed_model(policy: Policy) -> None:
    lag = triage(policy, _labels("KafkaConsumerLagHigh", {"consumergroup": "c"})).runbook
    assert lag is not None
    step = lag.steps[0]
    assert dict(step.params) == {"factor": 2}
    assert step.typed_params == ScaleDeploymentParams(factor=2)
    assert step.model_dump(mode="json")["params"] == {"factor": 2}  # the JSON shape is unchanged


def test_every_action_has_one_parameter_model() -> None:
    assert set(PARAMS_OF_ACTION) == set(get_args(ActionName))
    for model in PARAMS_OF_ACTION.values():
        assert model.model_config.get("extra") == "forbid", model


def _schema_validator() -> Any:
    import jsonschema  # a dev dependency (pyproject.toml)

    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_policy_matches_the_schema() -> None:
    validator = _schema_validator()
    data = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    assert [error.message for error in validator.iter_errors(data)] == []


@pytest.mark.parametrize("step", GOOD_STEPS, ids=[s["action"] for s in GOOD_STEPS])
def test_the_schema_accepts_each_actions_parameters(step: dict[str, Any]) -> None:
    assert [error.message for error in _schema_validator().iter_errors(_runbook(step))] == []


@pytest.mark.parametrize(("step", "message"), BAD_STEPS, ids=[f"{s['action']}-{m[:30]}" for s, m in BAD_STEPS])
def test_the_schema_rejects_unknown_or_mistyped_parameters(step: dict[str, Any], message: str) -> None:
    assert not _schema_validator().is_valid(_runbook(step)), message


# The stock kube-prometheus alerts zerotouch covers (issue 11), with the labels they really carry: a pod
# or the workload as kubernetes-mixin names it, and kube-state-metrics' scrape labels.
_SCRAPE = {"job": "kube-state-metrics", "service": "kube-state-metrics", "instance": "10.0.0.7:8443"}
STOCK_AUTOMATED = {
    "KubePodCrashLooping": ("restart-crashlooping", {"pod": "web-7d9c5fb8d4-x2kqz", "container": "app"}),
    "KubeContainerWaiting": ("restart-stuck-pods", {"pod": "web-7d9c5fb8d4-x2kqz", "container": "app",
                                                    "reason": "ContainerCreating"}),
    "KubeDeploymentReplicasMismatch": ("restart-crashlooping", {"deployment": "web"}),
    "KubeDeploymentRolloutStuck": ("rollback-stuck-rollout", {"deployment": "web"}),
}
STOCK_UNPULLABLE = {"pod": "web-7d9c5fb8d4-x2kqz", "container": "app", "reason": "ImagePullBackOff"}
STOCK_ESCALATED = {
    "KubePodNotReady": {"pod": "web-7d9c5fb8d4-x2kqz"},
    "KubeStatefulSetReplicasMismatch": {"statefulset": "db"},
    "KubeDaemonSetRolloutStuck": {"daemonset": "node-agent"},
    "KubeJobFailed": {"job_name": "backup-28912345"},
    "KubeHpaMaxedOut": {"horizontalpodautoscaler": "web"},
    "KubePersistentVolumeFillingUp": {"persistentvolumeclaim": "data-db-0"},
    "KubeNodeNotReady": {"node": "sandbox-node-1"},
    "CPUThrottlingHigh": {"pod": "web-7d9c5fb8d4-x2kqz", "container": "app"},
    "NodeFilesystemSpaceFillingUp": {"mountpoint": "/", "device": "/dev/vda1"},
}


def test_stock_alerts_are_remediated_or_escalated_with_a_reason(policy: Policy) -> None:
    stock = {rule["alert"] for group in stock_groups() for rule in group["rules"] if "alert" in rule}
    assert set(STOCK_AUTOMATED) | set(STOCK_ESCALATED) <= stock, "names as upstream spells them"
    for alertname, (runbook_name, labels) in STOCK_AUTOMATED.items():
        runbook = match_runbook(policy, {"alertname": alertname, "namespace": "shop", **_SCRAPE, **labels})
        assert runbook is not None and runbook.name == runbook_name, alertname
        assert all(step.action != "escalate" for step in runbook.steps)
    for alertname, labels in STOCK_ESCALATED.items():
        runbook = match_runbook(policy, {"alertname": alertname, "namespace": "shop", **_SCRAPE, **labels})
        assert runbook is not None, f"{alertname}: the policy must say why it is not automated"
        assert [step.action for step in runbook.steps] == ["escalate"] and runbook.description, alertname
    unpullable = match_runbook(policy, {"alertname": "KubeContainerWaiting", "namespace": "shop", **STOCK_UNPULLABLE})
    assert unpullable is not None and unpullable.name == "rollback-unpullable-image"
    other = match_runbook(policy, {"alertname": "KubeContainerWaiting", "namespace": "shop", "reason": "Other"})
    assert other is not None and other.name == "pod-not-ready-needs-a-human"


def test_heartbeats_and_exporter_labels(policy: Policy) -> None:
    assert policy.alerts.is_heartbeat({"alertname": "Watchdog", "severity": "none"})
    assert policy.alerts.is_heartbeat({"alertname": "InfoInhibitor", "namespace": "shop"})
    assert not policy.alerts.is_heartbeat({"alertname": "KubePodCrashLooping"})
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "auth-7d9c5fb8d4-x2kqz", **_SCRAPE}
    assert policy.alerts.application_labels(labels) == {
        "alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "auth-7d9c5fb8d4-x2kqz"}
