# The typed Kubernetes client wants its model classes; the API takes the same plain manifests.
# mypy: disable-error-code="arg-type"
"""Workloads, faults and policies for the reliability tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from sandbox import SandboxCluster
from sandbox.demo import deployment, namespace
from zerotouch.policy import Policy, parse_policy

# Guardrails out of the way: these tests are about crashes and API failures, not the Governor's limits.
ROOMY_GUARDRAILS = {
    "target_cooldown": "1s",
    "global_rate_per_minute": 1000,
    "max_in_flight_per_namespace": 100,
    "breaker_failures": 100,
}


def add_deployments(sandbox: SandboxCluster, namespaces: list[str], names: list[str]) -> list[tuple[str, str]]:
    """Create each namespace with one single-replica deployment per name, through the API; (ns, name) pairs."""
    configuration = k8s.Configuration()
    configuration.host = sandbox.url
    with k8s.ApiClient(configuration) as api:
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        targets = []
        for ns in namespaces:
            core.create_namespace(namespace(ns))
            for name in names:
                body = deployment(name, 1, f"registry.local/{ns}/{name}:1.0.0", "64Mi", 8080)
                body["metadata"]["namespace"] = ns
                apps.create_namespaced_deployment(ns, body)
                targets.append((ns, name))
    return targets


def restart_runbook(name: str, alertname: str, *, hold_for: str = "300ms", timeout: str = "30s") -> dict[str, Any]:
    return {
        "name": name,
        "match": {"alertname": [alertname]},
        "steps": [{"action": "restart_deployment"}],
        "verify": {"rollout": True, "hold_for": hold_for, "timeout": timeout},
        "retry_cooldown": "1s",
        "max_attempts": 1,
    }


def reliability_policy(receiver_url: str = "http://127.0.0.1:9/unused", **overrides: Any) -> Policy:
    data: dict[str, Any] = {
        "mode": "auto",
        "resolution_cooldown": "1s",
        "confidence_threshold": 0.5,
        "approvers": {"names": ["alice"], "groups": {"sre": ["bob", "carol"]}},
        "channels": {"dashboard": {"type": "dashboard"}, "pager": {"type": "webhook", "url": f"{receiver_url}/pager"}},
        "escalation": {},
        "guardrails": ROOMY_GUARDRAILS,
        "runbooks": [restart_runbook("restart-crashlooping", "KubePodCrashLooping")],
    }
    data.update(overrides)
    return parse_policy(data, "reliability-test-policy")


def last_seq(sandbox: SandboxCluster) -> int:
    """The action log's high-water mark: later entries are what the code under test did."""
    return max((a["seq"] for a in sandbox.actions(include_failed=True)), default=0)
