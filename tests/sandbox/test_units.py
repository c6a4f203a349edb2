"""Pure helpers: selectors, patches, template hashing, quantities, classification."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.actions import classify
from sandbox.errors import ApiError
from sandbox.patch import apply_patch, json_patch, merge_patch
from sandbox.quantity import parse_quantity
from sandbox.selectors import parse_field_selector, parse_label_selector
from sandbox.templates import template_hash


def test_label_selectors() -> None:
    labels = {"app": "web", "tier": "frontend"}
    assert parse_label_selector("app=web,tier in (frontend, backend)")(labels)
    assert parse_label_selector("app==web,tier notin (db)")(labels)
    assert not parse_label_selector("app!=web")(labels)
    assert parse_label_selector("tier,!canary")(labels)
    assert not parse_label_selector("canary")(labels)
    assert parse_label_selector("")(labels)
    with pytest.raises(ApiError) as err:
        parse_label_selector("app in web")
    assert err.value.code == 400


def test_field_selector() -> None:
    obj = {"metadata": {"name": "a"}, "status": {"phase": "Running"}}
    assert parse_field_selector("metadata.name=a,status.phase!=Pending")(obj)
    assert not parse_field_selector("metadata.name=b")(obj)


def test_merge_and_strategic_patch() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
              "keep": 1, "drop": 2}
    patch = {"spec": {"containers": [{"name": "b", "image": "z"}]}, "drop": None}
    merged = merge_patch(target, patch)
    assert merged["spec"]["containers"] == [{"name": "b", "image": "z"}] and "drop" not in merged
    strategic = merge_patch(target, patch, strategic=True)
    assert [c["image"] for c in strategic["spec"]["containers"]] == ["x", "z"]
    assert target["drop"] == 2  # inputs are never mutated


def test_json_patch() -> None:
    doc = {"metadata": {}, "spec": {"replicas": 1, "list": [1, 2]}}
    out = json_patch(doc, [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "replace", "path": "/metadata/annotations", "value": {"a/b": "c"}},
        {"op": "test", "path": "/metadata/annotations/a~1b", "value": "c"},
    ])
    assert out == {"metadata": {"annotations": {"a/b": "c"}}, "spec": {"replicas": 3, "list": [2, 3]}}
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 9}])
    with pytest.raises(ApiError) as err:
        apply_patch(doc, {}, "text/plain")
    assert err.value.code == 415


def test_template_hash_ignores_go_noise() -> None:
    tpl = {"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "w:1"}]}}
    noisy = {"metadata": {"creationTimestamp": None, "labels": {"app": "web", "pod-template-hash": "x"}},
             "spec": {"containers": [{"name": "web", "image": "w:1", "resources": {}}]}}
    assert template_hash(tpl) == template_hash(noisy)
    assert len(template_hash(tpl)) == 10
    changed = {**tpl, "spec": {"containers": [{"name": "web", "image": "w:2"}]}}
    assert template_hash(changed) != template_hash(tpl)


def test_quantities() -> None:
    assert parse_quantity("256Mi") == 256 * 2**20
    assert parse_quantity("1G") == 10**9
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("junk") is None and parse_quantity(None) is None


def _deploy(replicas: int = 1, memory: str = "1Gi", restarted: str | None = None,
            image: str = "i:1") -> dict[str, Any]:
    meta = {"annotations": {"kubectl.kubernetes.io/restartedAt": restarted}} if restarted else {}
    return {"spec": {"replicas": replicas, "template": {"metadata": meta, "spec": {"containers": [
        {"name": "c", "image": image, "resources": {"limits": {"memory": memory}}}]}}}}


def test_classify() -> None:
    base = _deploy()
    assert classify("PATCH", "deployments", "", base, _deploy(replicas=2)) == "scale"
    assert classify("PATCH", "deployments", "", base, _deploy(restarted="t")) == "restart"
    assert classify("PATCH", "deployments", "", base, _deploy(memory="2Gi")) == "memory"
    old = _deploy(image="i:0")
    older = frozenset({template_hash(old["spec"]["template"])})
    assert classify("PATCH", "deployments", "", base, old, older) == "rollback"
    assert classify("PATCH", "deployments", "", base, _deploy(image="i:2"), older) == "other"
    assert classify("POST", "pods", "eviction") == "evict"
    assert classify("POST", "jobs", "") == "job"
    assert classify("PATCH", "deployments", "scale") == "scale"
