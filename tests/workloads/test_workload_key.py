"""The relay's cheap workload key and the incident IDs it makes, for the awkward pod names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.workloads import needs_resolution, owner_from_pod_name, resolution_query, workload_key

GROUP_BY = ["alertname", "namespace", "workload"]


def _incident(**labels: str) -> str:
    all_labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", **labels}
    event = AlertEvent(fingerprint="f", status="firing", labels=all_labels, starts_at=datetime.now(UTC))
    return incident_id_for(event, GROUP_BY)


@pytest.mark.parametrize(("pod", "owner"), [
    ("web-7d9c5fb8d4-x2kqz", ("web", "Deployment")),
    ("web-api-6f8b9c7d5b-qwrtz", ("web-api", "Deployment")),
    ("db-0", ("db", "StatefulSet")),
    ("db-12", ("db", "StatefulSet")),
    ("node-agent-x2kqz", ("node-agent", "DaemonSet")),
    ("backup-28912345-x2kqz", ("backup", "CronJob")),
    ("debug", None),
    ("web-7d9c5fb8d4-X2KQZ", None),  # not a name a controller makes
])
def test_pod_names_point_to_their_controllers_owner(pod: str, owner: tuple[str, str] | None) -> None:
    assert owner_from_pod_name(pod) == owner


def test_pods_of_one_deployment_share_an_incident_and_a_prefix_does_not() -> None:
    first, second = _incident(pod="web-7d9c5fb8d4-x2kqz"), _incident(pod="web-7d9c5fb8d4-b5lmn")
    replaced = _incident(pod="web-6b8f9d7c4z-hhq2w")  # a pod of the next ReplicaSet
    assert first == second == replaced
    assert _incident(pod="web-api-6f8b9c7d5b-qwrtz") != first
    assert _incident(deployment="web") == first  # KubeDeploymentReplicasMismatch names it outright


def test_statefulset_daemonset_and_bare_pods_get_their_own_keys() -> None:
    assert workload_key({"pod": "db-0"}) == workload_key({"pod": "db-1"}) == "db"
    assert workload_key({"pod": "debug"}) == "debug"
    assert workload_key({"statefulset": "db", "pod": "db-0"}) == "db"
    assert workload_key({"node": "sandbox-node-1"}) == "sandbox-node-1"
    assert workload_key({"service": "kube-state-metrics", "job": "kube-state-metrics"}) == ""


def test_only_alerts_that_do_not_name_the_deployment_are_resolved() -> None:
    assert needs_resolution({"namespace": "shop", "pod": "web-7d9c5fb8d4-x2kqz"})
    assert needs_resolution({"namespace": "shop", "job_name": "backup-28912345"})
    assert not needs_resolution({"namespace": "shop", "deployment": "web", "pod": "web-7d9c5fb8d4-x2kqz"})
    assert not needs_resolution({"namespace": "shop", "statefulset": "db"})
    query = resolution_query({"namespace": "shop", "pod": "db-0", "service": "kube-state-metrics",
                              "instance": "10.0.0.1:8443", "container": "db"})
    assert query.labels == {"namespace": "shop", "pod": "db-0"}  # the exporter's labels never reach the API
