"""The stock kube-prometheus alerts zerotouch's policy targets, and the series their rules read.

The sandbox serves these series so that the stock rules fire on it as on a real cluster.
"""

from __future__ import annotations

from embedded.stock_rules import metric_names, stock_groups

POLICY_ALERTS = (
    "KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "KubeDeploymentReplicasMismatch",
    "KubeDeploymentRolloutStuck", "KubeStatefulSetReplicasMismatch", "KubeDaemonSetRolloutStuck",
    "KubeJobFailed", "KubeHpaMaxedOut", "KubePersistentVolumeFillingUp", "KubeNodeNotReady",
    "CPUThrottlingHigh", "NodeFilesystemSpaceFillingUp", "Watchdog", "InfoInhibitor",
)


def policy_alert_metric_names() -> list[str]:
    """Every series the stock rules of `POLICY_ALERTS` read (through recording rules), sorted."""
    return metric_names(stock_groups(), POLICY_ALERTS)
