"""Scenario 12's drills: one declaration per drill class, each on a workload of its own, and their policy.

Each class gets its own deployment in NAMESPACE (`create_deployments`), so no drill joins another's
incident or meets another's target cooldown: the rows measure one class each, not the order they ran
in. The PVC and node classes use the sandbox's own `shop/pvc/data-db-0` and `sandbox-node-2`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.policy import bench_policy
from zerotouch.policy import load_policy

NAMESPACE = "drills"
NODE = "sandbox-node-2"
QUIET_FOR = "6s"  # a false positive passes when nothing was written this long after its alert
DEADLINE = "90s"
# The sandbox's node provider reboots in 1 s; the rest as the node-drill test runs it.
RECOVERY_NODES: dict[str, Any] = {
    "min_schedulable": "51%", "max_concurrent_node_actions": 2, "lease_ttl": "30s", "drain_timeout": "60s",
    "eviction_retry": "300ms", "healthy_timeout": "60s", "provider": "sandbox", "action": "reboot",
    "provider_delay": "1s", "ready_timeout": "60s"}
# (class, alertname, expectation, extra alert labels); the order they run in. node_not_ready last: its
# drain moves pods of every namespace.
CLASSES: list[tuple[str, str, str, dict[str, str]]] = [
    ("crashloop", "KubePodCrashLooping", "auto_resolved", {}),
    ("oom", "KubePodOOMKilled", "auto_resolved", {}),
    ("bad_deploy", "HighErrorRateAfterDeploy", "auto_resolved", {}),
    ("overload", "KafkaConsumerLagHigh", "auto_resolved", {"consumergroup": "overload"}),
    ("stuck_rollout", "KubeDeploymentRolloutStuck", "auto_resolved", {}),
    ("disk_pressure", "DiskSpaceHigh", "auto_resolved", {}),
    ("stuck_pending", "KubeContainerWaiting", "auto_resolved", {"reason": "ContainerCreating"}),
    ("volume_filling", "KubePersistentVolumeFillingUp", "escalated", {"persistentvolumeclaim": "data-db-0"}),
    ("unfixable", "KubePodCrashLooping", "escalated", {}),
    # False positives, each on a healthy workload of its own.
    ("flapping_alert", "KubePodCrashLooping", "no_action", {}),
    ("watchdog_alert", "Watchdog", "no_action", {}),
    ("duplicate_storm", "KubePodCrashLooping", "no_action", {}),
    ("healthy_workload_alert", "KubePodOOMKilled", "no_action", {}),
    ("node_not_ready", "KubeNodeNotReady", "auto_resolved", {"node": NODE}),
]
QUICK = ("crashloop", "watchdog_alert")
POLICY_CHANGES = [
    "the bench policy with the full loop's short waits (verification holds 2 s, timeout 12 s, resolution "
    "cooldown 3 s) and, as the tests' `fast_policy`, `retry_cooldown: 1s` and `target_cooldown: 2s`",
    "runbooks that confirm the symptom first (`confirm:`) look again after 1 s instead of 30 s (`recheck`): "
    "the drill delivers its alert the moment it injects the fault, before the pods show it, where "
    "Prometheus would alert only after the rule's `for:`",
    "`recovery.nodes`: provider sandbox, provider_delay 1s, eviction_retry 300ms",
    "no Prometheus: each drill delivers its alert through the relay right after injecting its fault "
    "(`drills.deliver_alerts`), and the runbooks' PromQL verification is skipped (rollout health only)",
]


def workload(fault: str) -> str:
    """The deployment a class breaks: its name with dashes (a Kubernetes name)."""
    return fault.replace("_", "-")


def target(fault: str) -> str:
    if fault == "node_not_ready":
        return f"node/{NODE}"
    if fault == "volume_filling":
        return "shop/pvc/data-db-0"
    if fault == "watchdog_alert":
        return "monitoring/alertmanager"
    return f"{NAMESPACE}/{workload(fault)}"


def declare(fault: str, alertname: str, expect: str, extra: dict[str, str]) -> dict[str, Any]:
    """The policy's drill for one class, named after it (`zerotouch drill run <class>` would run it)."""
    namespace, _, name = target(fault).partition("/")
    labels = dict(extra)
    if fault == "watchdog_alert":
        labels["namespace"] = namespace
    elif fault != "node_not_ready":
        labels.update({"namespace": namespace, "deployment": name.rsplit("/", 1)[-1]})
    timing = {"quiet_for": QUIET_FOR} if expect == "no_action" else {"deadline": DEADLINE}
    return {"name": workload(fault), "fault": fault, "target": target(fault), "expect": expect, **timing,
            "alert": {"alertname": alertname, "labels": labels}}


def chosen(quick: bool) -> list[dict[str, Any]]:
    return [declare(*spec) for spec in CLASSES if not quick or spec[0] in QUICK]


def deployments(drills: list[dict[str, Any]]) -> list[str]:
    """The workloads NAMESPACE needs: one per drill that targets it."""
    return [d["target"].split("/", 1)[1] for d in drills if d["target"].startswith(NAMESPACE + "/")]


def drills_policy(path: Path, drills: list[dict[str, Any]], *, relay_url: str | None = None) -> Path:
    """The bench policy (fast verification) with these drills, node recovery, and the watchdog's relay."""
    bench_policy(path, fast_verify=True)
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    document["guardrails"]["target_cooldown"] = "2s"
    for runbook in document["runbooks"]:
        runbook["retry_cooldown"] = "1s"
        if isinstance(runbook.get("confirm"), dict):
            # A drill's alert arrives with its fault, before the pods show it: look again soon.
            runbook["confirm"]["recheck"] = "1s"
    document["drills"] = {"environment": "sandbox", "deliver_alerts": True, "drills": drills}
    document.setdefault("recovery", {})["nodes"] = RECOVERY_NODES
    if relay_url:
        document["watchdog"] = {"relay_url": relay_url}  # every shipped check, and the silence probe
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(path)
    return path
