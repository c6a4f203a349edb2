"""The shipped policy: valid, and remediating each incident class the seeds name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from zerotouch.policy import Policy
from zerotouch.quantities import parse_memory
from zerotouch.triage import approval_reason, render_promql, triage

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
    assert policy.group_by == ["alertname", "namespace", "deployment"]
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
