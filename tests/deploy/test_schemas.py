"""Every variant `kubectl kustomize` builds, and docker-compose.yml, valid against the real schemas, offline."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import KUSTOMIZE, REPO, VARIANTS, built
from tests.deploy.crd_schema import object_schemas
from tests.deploy.schema_checks import KUBERNETES_VERSIONS, SCHEMAS, compose_errors, crd_validators, object_errors

Obj = dict[str, Any]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_of_every_variant_is_valid(variant: str, version: str) -> None:
    objects = built(variant)
    assert objects, f"deploy/{variant} builds to nothing"
    errors = [error for doc in objects for error in object_errors(doc, version)]
    assert not errors, f"deploy/{variant} on Kubernetes {version}:\n" + "\n".join(errors)


def test_each_variant_adds_to_the_base_without_changing_it() -> None:
    def key(doc: Obj) -> tuple[str, str, str]:
        return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]

    base = {key(doc): doc for doc in built("kubernetes")}
    for variant in VARIANTS[1:]:
        objects = {key(doc): doc for doc in built(variant)}
        assert len(objects) == len(built(variant)), f"{variant}: two objects with one name"
        assert {k: objects[k] for k in base} == base, variant


def test_the_crd_kinds_are_checked_against_their_schema_not_skipped() -> None:
    kinds = {doc["kind"] for variant in VARIANTS for doc in built(variant)}
    assert {"PrometheusRule", "ServiceMonitor", "AlertmanagerConfig", "ScaledObject"} <= kinds
    checked = {kind for _, kind in crd_validators()}
    assert kinds - checked <= {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                               "ClusterRoleBinding", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                               "NetworkPolicy", "PersistentVolumeClaim", "HorizontalPodAutoscaler"}


@pytest.mark.parametrize(("doc", "wrong"), [
    ({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "w"},
      "spec": {"scaleTargetRef": {"name": "w"}, "minReplicas": 1, "triggers": []}}, "'minReplicas' was unexpected"),
    ({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "w"},
      "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": "often"}]}}, "does not match"),
    ({"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig", "metadata": {"name": "w"},
      "spec": {"route": {"matchers": [{"name": "a", "matchType": "=="}]}}}, "is not one of"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
      "spec": {"replica": 1, "selector": {}, "template": {}}}, "'replica' was unexpected"),
    ({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "w"},
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": "5"}}, "is not of type"),
    ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "no schema"),
])
def test_the_checks_refuse_what_the_api_server_would(doc: Obj, wrong: str) -> None:
    errors = object_errors(doc, KUBERNETES_VERSIONS[0])
    assert any(wrong in error for error in errors), errors


def test_a_misspelt_field_in_a_shipped_scaled_object_is_caught() -> None:
    (scaled,) = [doc for doc in built("kustomize/overlays/keda")
                 if doc["kind"] == "ScaledObject" and doc["metadata"]["name"].endswith("-kubernetes")]
    broken = copy.deepcopy(scaled)
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")
    assert any("'maxReplicas' was unexpected" in error for error in object_errors(broken, "1.32"))


def test_crd_conversion_makes_int_or_string_nullable_and_unknown_fields_explicit() -> None:
    crd = {"spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": [
        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "description": "dropped", "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            }}}}}},
        {"name": "v0", "served": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
    ]}}
    (name, schema), = object_schemas(crd).items()
    assert name == "widget-example-v1.json"
    spec = schema["properties"]["spec"]
    assert "description" not in spec and spec["additionalProperties"] is False
    assert spec["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert "additionalProperties" not in spec["properties"]["extra"]
    assert schema["properties"]["kind"] == {"const": "Widget"}
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata"}


def test_vendored_schemas_carry_their_license_and_provenance() -> None:
    upstream = (SCHEMAS / "UPSTREAM.md").read_text(encoding="utf-8")
    for directory in (p for p in SCHEMAS.iterdir() if p.is_dir()):
        assert (directory / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
        for path in directory.iterdir():
            assert f"`{directory.name}/{path.name}`" in upstream, f"{path} is not listed in schemas/UPSTREAM.md"
    # The files copied verbatim are the upstream blobs UPSTREAM.md names.
    for name, blob in re.findall(r"^\| `([^`]+)` \| copied \| .* \| `([0-9a-f]{40})` \|$", upstream, re.MULTILINE):
        content = (SCHEMAS / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest() == blob, name


def test_docker_compose_is_valid_against_the_compose_specification(compose: Obj) -> None:
    errors = compose_errors(compose)
    assert not errors, "\n".join(errors)


def test_the_compose_check_refuses_a_misspelt_key(compose: Obj) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["relay"]["enviroment"] = {"A": "b"}
    assert any("'enviroment' does not match" in error for error in compose_errors(broken))


def test_the_alertmanager_patch_is_a_valid_alertmanager_spec() -> None:
    patch = yaml.safe_load((KUSTOMIZE / "components" / "prometheus-operator" / "alertmanager-patch.yaml").read_text())
    patched = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
               "metadata": {"name": "main", "namespace": "monitoring"}, **patch}
    assert object_errors(patched, KUBERNETES_VERSIONS[0]) == []
    strategy = patch["spec"]["alertmanagerConfigMatcherStrategy"]
    assert patch["spec"].keys() == {"alertmanagerConfigMatcherStrategy"}
    assert strategy == {"type": "OnNamespaceExceptForAlertmanagerNamespace"}


def test_readme_says_what_was_only_validated() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "deploy/kustomize/overlays/kube-prometheus" in readme
    assert "never run" in readme.lower()
