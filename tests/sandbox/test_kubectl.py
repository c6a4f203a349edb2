"""The stock kubectl binary against the sandbox (`--server`, empty kubeconfig)."""

from __future__ import annotations

import json
from typing import Any

from sandbox import SandboxCluster

from .conftest import Kubectl, wait_until

REVISION = "deployment.kubernetes.io/revision"


def _json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl(*args, "-o", "json").stdout)
    return out


def test_get_deployments_and_pods_json(kubectl: Kubectl) -> None:
    listing = _json(kubectl, "get", "deployments,pods", "-n", "shop")
    kinds = [item["kind"] for item in listing["items"]]
    # web 3, checkout 2, email-worker 1, web-api 1; db-0, db-1; the bare debug pod
    assert kinds.count("Deployment") == 4 and kinds.count("Pod") == 10
    web = next(i for i in listing["items"] if i["metadata"]["name"] == "web")
    assert web["apiVersion"] == "apps/v1" and web["status"]["availableReplicas"] == 3


def test_get_tables_and_nodes(kubectl: Kubectl) -> None:
    nodes = kubectl("get", "nodes").stdout
    assert "sandbox-node-1" in nodes and "Ready" in nodes
    pods = kubectl("get", "pods", "-n", "shop", "-l", "app=web").stdout.splitlines()
    assert pods[0].split()[:4] == ["NAME", "READY", "STATUS", "RESTARTS"]
    assert len(pods) == 4 and all("Running" in line for line in pods[1:])
    assert "web" in kubectl("get", "deploy", "-A").stdout


def test_scale(cluster: SandboxCluster, kubectl: Kubectl) -> None:
    out = kubectl("scale", "deployment", "web", "-n", "shop", "--replicas=5").stdout
    assert "scaled" in out
    wait_until(lambda: cluster.is_healthy("shop", "web")
               and _json(kubectl, "get", "deployment", "web", "-n", "shop")["status"]
               .get("availableReplicas") == 5)
    assert [a["kind"] for a in cluster.actions("shop", "web")] == ["scale"]


def test_rollout_restart_is_one_restart(cluster: SandboxCluster, kubectl: Kubectl) -> None:
    before = {p["metadata"]["name"] for p in
              _json(kubectl, "get", "pods", "-n", "shop", "-l", "app=web")["items"]}
    assert "restarted" in kubectl("rollout", "restart", "deployment/web", "-n", "shop").stdout
    wait_until(lambda: cluster.is_healthy("shop", "web"))
    after = {p["metadata"]["name"] for p in
             _json(kubectl, "get", "pods", "-n", "shop", "-l", "app=web")["items"]}
    assert len(after) == 3 and not before & after
    restarts = cluster.actions(namespace="shop", name="web", kind="restart")
    assert len(restarts) == 1
    assert restarts[0]["method"] == "PATCH" and restarts[0]["resource"] == "deployments"
    assert len(cluster.actions()) == 1  # nothing else was recorded for that command


def test_rollout_undo_after_bad_deploy(cluster: SandboxCluster, kubectl: Kubectl) -> None:
    cluster.inject("bad-deploy", namespace="shop", deployment="web")
    wait_until(lambda: _json(kubectl, "get", "deployment", "web", "-n", "shop")["metadata"]
               ["annotations"][REVISION] == "2")
    assert not cluster.is_healthy("shop", "web")
    kubectl("rollout", "undo", "deployment/web", "-n", "shop")
    wait_until(lambda: cluster.is_healthy("shop", "web"), timeout=8)
    deploy = _json(kubectl, "get", "deployment", "web", "-n", "shop")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.local/shop/web:1.4.2"
    assert deploy["metadata"]["annotations"][REVISION] == "3"
    replicasets = _json(kubectl, "get", "rs", "-n", "shop", "-l", "app=web")["items"]
    assert len(replicasets) == 2  # the old ReplicaSet was reused, not a third one made
    assert [a["kind"] for a in cluster.actions("shop", "web")] == ["rollback"]


def test_rollout_status_and_history(cluster: SandboxCluster, kubectl: Kubectl) -> None:
    out = kubectl("rollout", "status", "deployment/web", "-n", "shop", "--timeout=10s").stdout
    assert "successfully rolled out" in out
    assert "REVISION" in kubectl("rollout", "history", "deployment/web", "-n", "shop").stdout


def test_not_found_message(kubectl: Kubectl) -> None:
    proc = kubectl("get", "deployment", "missing", "-n", "shop", check=False)
    assert proc.returncode != 0
    assert 'deployments.apps "missing" not found' in proc.stderr
