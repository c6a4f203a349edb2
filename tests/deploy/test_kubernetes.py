"""Kubernetes manifests: parse, wire up, and grant each worker only what it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.workloads import READ_KINDS as RESOLVER_READS
from cli.main import CommandLineParser as build_parser
from tests.deploy.conftest import KUBERNETES, POLICY_FILE, manifests
from zerotouch.names import ALL_QUEUES, BACKUP_QUEUE, KUBERNETES_QUEUE

Obj = dict[str, Any]
RESOURCE_OF_KIND = {
    "Pod": ("pods", ""), "ReplicaSet": ("replicasets", "apps"), "Deployment": ("deployments", "apps"),
    "StatefulSet": ("statefulsets", "apps"), "DaemonSet": ("daemonsets", "apps"), "Job": ("jobs", "batch"),
    "CronJob": ("cronjobs", "batch"), "HorizontalPodAutoscaler": ("horizontalpodautoscalers", "autoscaling"),
}


@pytest.fixture(scope="module")
def objects() -> list[tuple[Path, Obj]]:
    return manifests()


def _of(objects: list[tuple[Path, Obj]], kind: str) -> list[Obj]:
    return [doc for _, doc in objects if doc["kind"] == kind]


def _rules_bound_to(objects: list[tuple[Path, Obj]], account: str) -> list[Obj]:
    """Every RBAC rule that reaches a ServiceAccount through any (Cluster)RoleBinding."""
    roles = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _of(objects, "Role") + _of(objects, "ClusterRole")}
    found = []
    for binding in _of(objects, "RoleBinding") + _of(objects, "ClusterRoleBinding"):
        if any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"]):
            role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
            found.extend(role["rules"])
    return found


def _allows(rules: list[Obj], resource: str, verb: str, group: str = "") -> bool:
    return any(
        group in rule.get("apiGroups", []) and (resource in rule["resources"] or "*" in rule["resources"])
        and (verb in rule["verbs"] or "*" in rule["verbs"])
        for rule in rules
    )


def _worker_account(objects: list[tuple[Path, Obj]], queue: str) -> str:
    for deploy in _of(objects, "Deployment"):
        spec = deploy["spec"]["template"]["spec"]
        if spec["containers"][0]["command"][-1] == queue:
            return str(spec["serviceAccountName"])
    raise AssertionError(f"no worker Deployment for {queue}")


def test_manifests_parse_and_have_kind_and_name(objects: list[tuple[Path, Obj]]) -> None:
    assert objects
    for path, doc in objects:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), path


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_kubernetes_worker_can_remediate(objects: list[tuple[Path, Obj]]) -> None:
    rules = _rules_bound_to(objects, _worker_account(objects, KUBERNETES_QUEUE))
    assert _allows(rules, "pods/eviction", "create")
    assert _allows(rules, "deployments", "patch", "apps")
    assert _allows(rules, "deployments/scale", "patch", "apps")
    assert _allows(rules, "replicasets", "list", "apps")
    assert _allows(rules, "jobs", "create", "batch")
    for verb in ("get", "list", "watch"):
        assert _allows(rules, "pods", verb)


def test_kubernetes_worker_can_resolve_owners_and_only_read_them(objects: list[tuple[Path, Obj]]) -> None:
    rules = _rules_bound_to(objects, _worker_account(objects, KUBERNETES_QUEUE))
    for kind in RESOLVER_READS:
        plural, group = RESOURCE_OF_KIND[kind]
        assert _allows(rules, plural, "get", group), f"owner resolution reads {kind}s"
    read_only = (("statefulsets", "apps"), ("daemonsets", "apps"), ("horizontalpodautoscalers", "autoscaling"))
    for plural, group in read_only:
        for verb in ("patch", "update", "delete", "create", "list"):
            assert not _allows(rules, plural, verb, group), f"{verb} {plural}"


def test_kubernetes_worker_cannot_delete_pods_or_touch_secrets(objects: list[tuple[Path, Obj]]) -> None:
    rules = _rules_bound_to(objects, _worker_account(objects, KUBERNETES_QUEUE))
    assert not _allows(rules, "pods", "delete") and not _allows(rules, "pods", "deletecollection")
    for rule in rules:
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
        assert "*" not in rule["verbs"], rule


def test_secret_rotation_is_limited_to_named_secrets(objects: list[tuple[Path, Obj]]) -> None:
    for role in _of(objects, "Role") + _of(objects, "ClusterRole"):
        for rule in role["rules"]:
            if "secrets" in rule["resources"] and role["metadata"]["name"] == "zerotouch-backup-verify":
                # Backup verification writes empty placeholders into its scratch namespace; it reads none.
                assert rule["verbs"] == ["create"] and rule["resources"] == ["secrets"]
                continue
            if "secrets" in rule["resources"]:
                assert role["kind"] == "Role", "secret access must be namespaced"
                assert rule.get("resourceNames"), f"{role['metadata']['name']}: secrets without resourceNames"
                assert not {"list", "watch", "delete", "create"} & set(rule["verbs"])


def test_workers_without_api_calls_get_no_token(objects: list[tuple[Path, Obj]]) -> None:
    for deploy in _of(objects, "Deployment"):
        spec = deploy["spec"]["template"]["spec"]
        account = spec["serviceAccountName"]
        if not _rules_bound_to(objects, account):
            assert spec.get("automountServiceAccountToken") is False, deploy["metadata"]["name"]


def test_one_worker_deployment_per_queue_with_a_valid_command(objects: list[tuple[Path, Obj]]) -> None:
    queues = []
    for deploy in _of(objects, "Deployment"):
        command = deploy["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[0] == "zerotouch"
        args = build_parser().parse_args(command[1:])
        if args.command == "worker":
            queues.extend(args.queue)
        else:
            assert args.command == "relay" and args.host == "0.0.0.0" and args.token_file
    assert sorted(queues) == sorted(ALL_QUEUES)


def test_every_zerotouch_pod_encrypts_payloads_with_the_mounted_keys(objects: list[tuple[Path, Obj]]) -> None:
    for deploy in _of(objects, "Deployment"):
        spec = deploy["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        keys_file = Path(env["ZEROTOUCH_CODEC_KEYS_FILE"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert mounts["codec-keys"] == str(keys_file.parent), deploy["metadata"]["name"]
        secret = volumes["codec-keys"]["secret"]
        assert secret["secretName"] == "zerotouch-codec-keys" and secret["defaultMode"] == 0o400
        if container["command"][1] == "worker":
            assert env["ZEROTOUCH_METRICS_PORT"] == "9464" and env["ZEROTOUCH_METRICS_HOST"] == "0.0.0.0"
            assert {"name": "metrics", "containerPort": 9464} in container["ports"]


def test_references_resolve(objects: list[tuple[Path, Obj]]) -> None:
    accounts = {doc["metadata"]["name"] for doc in _of(objects, "ServiceAccount")}
    deployments = {doc["metadata"]["name"] for doc in _of(objects, "Deployment")}
    config_maps = {doc["metadata"]["name"] for doc in _of(objects, "ConfigMap")}
    for deploy in _of(objects, "Deployment"):
        spec = deploy["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] in accounts
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        selector = deploy["spec"]["selector"]["matchLabels"]
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    for hpa in _of(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert hpa["spec"]["minReplicas"] >= 1
    for service in _of(objects, "Service"):
        assert any(service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in _of(objects, "Deployment"))


def test_policy_config_map_matches_the_shipped_policy(objects: list[tuple[Path, Obj]]) -> None:
    (config_map,) = [c for c in _of(objects, "ConfigMap") if c["metadata"]["name"] == "zerotouch-policy"]
    shipped = yaml.safe_load(POLICY_FILE.read_text())
    assert yaml.safe_load(config_map["data"]["zerotouch.yaml"]) == shipped, (
        "deploy/kubernetes/policy-configmap.yaml is out of date with deploy/policy/zerotouch.yaml"
    )


def test_backup_worker_reads_exactly_the_kinds_it_exports_and_never_secrets(objects: list[tuple[Path, Obj]]) -> None:
    from activities.kube_export import KINDS

    rules = _rules_bound_to(objects, _worker_account(objects, BACKUP_QUEUE))
    groups = {"core": "", "apps": "apps"}
    plurals = {"ConfigMap": "configmaps", "PersistentVolumeClaim": "persistentvolumeclaims", "Service": "services",
               "Deployment": "deployments", "Secret": "secrets"}
    for kind in KINDS:
        plural, group = plurals[kind.name], groups[kind.api]
        assert _allows(rules, plural, "create", group), f"verification re-creates {kind.name}s"
        if kind.name == "Secret":
            for verb in ("get", "list", "watch", "update", "patch", "delete"):
                assert not _allows(rules, plural, verb, group), f"{verb} secrets"
        else:
            assert _allows(rules, plural, "list", group), f"backups export {kind.name}s"
    assert _allows(rules, "namespaces", "create") and _allows(rules, "namespaces", "delete")
