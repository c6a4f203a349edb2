"""The Kubernetes objects engine against the sandbox over real HTTP, with the official client.

The demo `shop` namespace (Deployments, the `checkout-db` Secret, the StatefulSet's claims) gets a
Service and a ConfigMap, is backed up, and is restored into `verify-<id>`, which is gone after.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from activities.backup_kubernetes import KubernetesObjectsEngine
from activities.kube_export import (
    VERIFICATION_LABEL,
    export,
    placeholder_secret,
    referenced_secrets,
    verify_namespaces,
)
from sandbox import SandboxCluster
from zerotouch.backup_models import BackupManifest
from zerotouch.backups import BackupTarget

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TARGET = BackupTarget(name="shop-objects", engine="kubernetes", namespaces=["shop"])
SECRET_VALUE = "sandbox-only"  # the seeded shop/checkout-db password


@pytest.fixture
def cluster(sandbox: SandboxCluster) -> SandboxCluster:
    """The suite's sandbox (tests/conftest.py), by the name these tests use for it."""
    return sandbox


@pytest.fixture
def api(cluster: SandboxCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = cluster.url
    api_client = client.ApiClient(configuration)
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service("shop", {  # type: ignore[arg-type]
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],  # allocated: must not be restored
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}})
    core.create_namespaced_config_map("shop", {"metadata": {"name": "web-config"}, "data": {"LOG_LEVEL": "info"}})  # type: ignore[arg-type]
    try:
        yield api_client
    finally:
        api_client.close()


def namespaces(api: client.ApiClient) -> set[str]:
    listed = json.loads(client.CoreV1Api(api).list_namespace(_preload_content=False).data)  # type: ignore[attr-defined]
    return {ns["metadata"]["name"] for ns in listed["items"]}


def back_up(engine: KubernetesObjectsEngine, tmp_path: Path) -> tuple[BackupManifest, Path]:
    data = tmp_path / "data"
    data.mkdir()
    backup = engine.backup(TARGET, data)
    return BackupManifest(**backup.model_dump(), id="shop-objects-20261130T120000Z", target="shop-objects",
                          engine="kubernetes", started_at=NOW, finished_at=NOW), data


def failures(result: Any) -> dict[str, str]:
    return {check.name: check.output for check in result.checks if not check.ok}


def test_backup_exports_shop_with_secrets_as_references(api: client.ApiClient, tmp_path: Path) -> None:
    manifest, data = back_up(KubernetesObjectsEngine(api), tmp_path)

    assert {k: v.rows for k, v in manifest.tables.items()} == {
        "shop/ConfigMap": 1, "shop/Secret": 1, "shop/PersistentVolumeClaim": 2, "shop/Service": 1, "shop/Deployment": 4}
    text = (data / "shop.json").read_text()
    assert SECRET_VALUE not in text and base64.b64encode(SECRET_VALUE.encode()).decode() not in text
    document = json.loads(text)
    assert document["secrets"] == [{"name": "checkout-db", "namespace": "shop", "type": "Opaque",
                                    "keys": ["password", "username"]}]
    for server_set in ('"uid"', '"resourceVersion"', '"creationTimestamp"', '"status"', "10.96.12.34", "30080",
                       '"volumeName"', "deployment.kubernetes.io/revision", '"generation"'):
        assert server_set not in text, server_set


def test_verify_restores_into_a_verify_namespace_and_deletes_it(api: client.ApiClient, tmp_path: Path) -> None:
    core = client.CoreV1Api(api)
    seen: dict[str, Any] = {}

    def heartbeat(detail: str) -> None:
        """Look into the scratch namespace while the restore runs."""
        if detail == "restore into verify-shop-objects-v1: Secret checkout-db":
            seen["placeholder"] = json.loads(core.read_namespaced_secret(  # type: ignore[arg-type]
                "checkout-db", "verify-shop-objects-v1", _preload_content=False).data)
        if detail == "restore into verify-shop-objects-v1: Service web":
            seen["service"] = json.loads(core.read_namespaced_service(  # type: ignore[attr-defined]
                "web", "verify-shop-objects-v1", _preload_content=False).data)

    engine = KubernetesObjectsEngine(api, heartbeat=heartbeat)
    manifest, data = back_up(engine, tmp_path)

    result = engine.verify(TARGET, manifest, data, scratch=tmp_path / "shop-objects-v1", recovery_target_time=None)

    assert failures(result) == {}
    names = {check.name for check in result.checks}
    assert {"restored shop/Deployment", "restored shop/Secret", "restored shop/PersistentVolumeClaim",
            "restored shop/Service", "restored shop/ConfigMap", "deployments available shop"} <= names
    assert "7 pods ready" in next(c.output for c in result.checks if c.name == "deployments available shop")
    assert result.rto_seconds is not None and result.rpo_seconds is None
    placeholder = seen["placeholder"]
    assert placeholder["data"] == {"password": "", "username": ""}
    assert placeholder["metadata"]["labels"]["zerotouch.io/placeholder"] == "true"
    assert seen["service"]["spec"]["type"] == "ClusterIP"  # no node ports opened for a scratch copy
    assert "nodePort" not in seen["service"]["spec"]["ports"][0]
    assert not any(name.startswith("verify-") for name in namespaces(api))
    # The source is untouched: its Secret keeps its value, its objects their number.
    original = json.loads(core.read_namespaced_secret("checkout-db", "shop", _preload_content=False).data)  # type: ignore[arg-type]
    assert base64.b64decode(original["data"]["password"]).decode() == SECRET_VALUE


def test_an_object_missing_from_the_backup_file_is_detected(api: client.ApiClient, tmp_path: Path) -> None:
    engine = KubernetesObjectsEngine(api)
    manifest, data = back_up(engine, tmp_path)
    document = json.loads((data / "shop.json").read_text())
    document["items"] = [o for o in document["items"] if (o["kind"], o["metadata"]["name"]) != ("Deployment", "web")]
    (data / "shop.json").write_text(json.dumps(document))

    result = engine.verify(TARGET, manifest, data, scratch=tmp_path / "v-missing", recovery_target_time=None)

    failed = failures(result)
    assert set(failed) == {"backup file shop.json", "restored shop/Deployment"}
    assert "missing ['web']" in failed["restored shop/Deployment"]
    assert not any(name.startswith("verify-") for name in namespaces(api))


def test_an_object_the_cluster_refuses_is_detected(api: client.ApiClient, cluster: SandboxCluster,
                                                   tmp_path: Path) -> None:
    """The file is intact; the restore is partial (velero's PartiallyFailed), and says which object and why."""
    engine = KubernetesObjectsEngine(api)
    manifest, data = back_up(engine, tmp_path)
    cluster.fail_requests(422, count=1, path_contains="/namespaces/verify-v-refused/configmaps", method="POST")

    result = engine.verify(TARGET, manifest, data, scratch=tmp_path / "v-refused", recovery_target_time=None)

    failed = failures(result)
    assert set(failed) == {"restore into verify-v-refused", "restored shop/ConfigMap"}
    assert "ConfigMap web-config: HTTP 422" in failed["restore into verify-v-refused"]


def test_deployments_that_never_become_available_fail_the_check(api: client.ApiClient, cluster: SandboxCluster,
                                                                tmp_path: Path) -> None:
    def break_web(detail: str) -> None:
        if detail == "restore into verify-v-crash: Deployment web":
            cluster.inject("crashloop", namespace="verify-v-crash", deployment="web")

    engine = KubernetesObjectsEngine(api, heartbeat=break_web, ready_timeout=1.5)
    manifest, data = back_up(engine, tmp_path)

    result = engine.verify(TARGET, manifest, data, scratch=tmp_path / "v-crash", recovery_target_time=None)

    assert list(failures(result)) == ["deployments available shop"]
    assert "web 0/3" in failures(result)["deployments available shop"]
    assert "verify-v-crash" not in namespaces(api)


def test_a_leftover_of_the_same_verification_is_reused_and_its_objects_replaced(
        api: client.ApiClient, cluster: SandboxCluster, tmp_path: Path) -> None:
    """A killed attempt left the namespace with a stale object: re-created by read-modify-write, through a 409."""
    core = client.CoreV1Api(api)
    engine = KubernetesObjectsEngine(api)
    manifest, data = back_up(engine, tmp_path)
    core.create_namespace({"metadata": {"name": "verify-v-again", "labels": {VERIFICATION_LABEL: "v-again"}}})  # type: ignore[arg-type]
    core.create_namespaced_config_map("verify-v-again", {"metadata": {"name": "web-config"}, "data": {"stale": "1"}})  # type: ignore[arg-type]
    cluster.fail_requests(409, count=1, path_contains="/namespaces/verify-v-again/configmaps/web-config", method="PUT")

    result = engine.verify(TARGET, manifest, data, scratch=tmp_path / "v-again", recovery_target_time=None)

    assert failures(result) == {}
    actions = cluster.actions(namespace="verify-v-again", name="web-config", include_failed=True)
    puts = [action for action in actions if action["method"] == "PUT"]
    assert [a["status"] for a in puts] == [409, 200]
    assert "verify-v-again" not in namespaces(api)


def test_a_namespace_of_that_name_that_is_not_ours_is_left_alone(api: client.ApiClient, tmp_path: Path) -> None:
    core = client.CoreV1Api(api)
    engine = KubernetesObjectsEngine(api)
    manifest, data = back_up(engine, tmp_path)
    core.create_namespace({"metadata": {"name": "verify-v-taken"}})  # type: ignore[arg-type]

    engine.sweep(TARGET, tmp_path / "v-taken")
    with pytest.raises(ValueError, match="is not this verification's"):
        engine.verify(TARGET, manifest, data, scratch=tmp_path / "v-taken", recovery_target_time=None)
    assert "verify-v-taken" in namespaces(api)


def test_sweep_removes_a_leftover_verify_namespace(api: client.ApiClient, cluster: SandboxCluster,
                                                   tmp_path: Path) -> None:
    core = client.CoreV1Api(api)
    engine = KubernetesObjectsEngine(api)
    core.create_namespace({"metadata": {"name": "verify-v-killed", "labels": {VERIFICATION_LABEL: "v-killed"}}})  # type: ignore[arg-type]
    core.create_namespaced_config_map("verify-v-killed", {"metadata": {"name": "left"}, "data": {}})  # type: ignore[arg-type]

    engine.sweep(TARGET, tmp_path / "v-killed")
    engine.sweep(TARGET, tmp_path / "v-never-started")  # nothing to remove is fine

    assert "verify-v-killed" not in namespaces(api)
    left = json.loads(core.list_config_map_for_all_namespaces(_preload_content=False).data)["items"]  # type: ignore[attr-defined]
    assert not [cm for cm in left if cm["metadata"]["namespace"] == "verify-v-killed"]


# --- the pure rules ---------------------------------------------------------------------


def test_export_keeps_a_headless_service_headless() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "uid": "u", "ownerReferences": [{}],
                                                                     "finalizers": ["x"], "managedFields": [{}]},
               "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432}]}, "status": {}}
    assert export("Service", service) == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                                          "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                                                   "ports": [{"port": 5432}]}}


def test_secret_references_come_from_the_workloads_and_placeholders_carry_no_values() -> None:
    template = {"spec": {"template": {"spec": {
        "imagePullSecrets": [{"name": "registry"}],
        "volumes": [{"name": "tls", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "c"}]}},
                    {"name": "all", "projected": {"sources": [{"secret": {"name": "bundle"}}]}}],
        "containers": [{"name": "app", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db",
                                                                                           "key": "password"}}},
                                               {"name": "PLAIN", "value": "x"}],
                        "envFrom": [{"secretRef": {"name": "api"}}, {"configMapRef": {"name": "cfg"}}]}],
        "initContainers": [{"name": "init", "env": [{"name": "U", "valueFrom": {"secretKeyRef": {
            "name": "db", "key": "username"}}}]}]}}}}
    references = referenced_secrets([template], "shop")
    assert references == [
        {"name": "api", "namespace": "shop", "type": "Opaque", "keys": []},
        {"name": "bundle", "namespace": "shop", "type": "Opaque", "keys": []},
        {"name": "db", "namespace": "shop", "type": "Opaque", "keys": ["password", "username"]},
        {"name": "registry", "namespace": "shop", "type": "kubernetes.io/dockerconfigjson",
         "keys": [".dockerconfigjson"]},
        {"name": "tls", "namespace": "shop", "type": "Opaque", "keys": ["tls.crt"]},
    ]
    placeholder = placeholder_secret(references[3])
    assert placeholder["type"] == "Opaque" and placeholder["data"] == {".dockerconfigjson": ""}
    assert placeholder["metadata"]["annotations"] == {"zerotouch.io/original-type": "kubernetes.io/dockerconfigjson"}


@pytest.mark.parametrize("scratch", ["v1", "shop-objects-20261130T120000Z-verify-1", "X" * 300, "__odd name!__"])
def test_verify_namespaces_are_dns_labels(scratch: str) -> None:
    for sources in (["shop"], ["shop", "billing", "default"]):
        for name in verify_namespaces(scratch, sources).values():
            assert len(name) <= 63 and name.startswith("verify-")
            assert name.replace("-", "").isalnum() and name == name.lower() and not name.endswith("-")
