"""Pure helpers: selectors, patches, template hashing, quantities, classification."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.actions import classify
from sandbox.errors import ApiError
from sandbox.patch import apply_patch, json_patch, merge_patch
from sandbox.quantity import parse_quantity
from sandbox.selectors import parse_field_selector, parse_label_selector
from sandbox.templates import memory_limit, template_hash
from zerotouch import quantities


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


# The whole Kubernetes quantity grammar, in the one parser zerotouch and the sandbox share.
VALID_QUANTITIES = [
    ("0", Decimal(0)), ("256Mi", Decimal(256 * 2**20)), ("1Gi", Decimal(2**30)), ("1.5Ki", Decimal(1536)),
    ("2Ti", Decimal(2 * 2**40)), ("1Pi", Decimal(2**50)), ("1Ei", Decimal(2**60)),
    ("100n", Decimal("1e-7")), ("250u", Decimal("0.00025")), ("500m", Decimal("0.5")), ("1k", Decimal(1000)),
    ("512M", Decimal(512 * 10**6)), ("1G", Decimal(10**9)), ("3T", Decimal(3 * 10**12)), ("1P", Decimal(10**15)),
    ("1E", Decimal(10**18)),  # exa, not an exponent
    ("1e3", Decimal(1000)), ("1E3", Decimal(1000)), ("1.5e-3", Decimal("0.0015")), ("2e+2", Decimal(200)),
    (".5", Decimal("0.5")), ("5.", Decimal(5)), ("+1k", Decimal(1000)), ("-1k", Decimal(-1000)),
    (" 64Mi ", Decimal(64 * 2**20)), (128, Decimal(128)), (0.25, Decimal("0.25")),
]
INVALID_QUANTITIES = ["", "junk", "Mi", "1K", "1ki", "1mi", "1 Gi", "1e", "1e3Mi", "1.2.3", "1Gib", "--1", "1e1.5",
                      "0x10", "1_000", True]


@pytest.mark.parametrize(("text", "value"), VALID_QUANTITIES, ids=[str(t) for t, _ in VALID_QUANTITIES])
def test_the_kubernetes_quantity_grammar(text: str | int | float, value: Decimal) -> None:
    assert quantities.parse_quantity(text) == value
    assert parse_quantity(text) == pytest.approx(float(value))  # the sandbox accepts exactly the same


@pytest.mark.parametrize("text", INVALID_QUANTITIES, ids=[repr(t) for t in INVALID_QUANTITIES])
def test_what_is_not_a_quantity(text: Any) -> None:
    with pytest.raises(ValueError, match="quantity"):
        quantities.parse_quantity(text)
    assert parse_quantity(text) is None  # the sandbox's controller shrugs instead of crashing


def test_memory_is_whole_bytes_rounded_up() -> None:
    assert quantities.parse_memory("256Mi") == 256 * 2**20
    assert quantities.parse_memory("1e9") == quantities.parse_memory("1G") == 10**9
    assert quantities.parse_memory("1.5") == 2 and quantities.parse_memory("500m") == 1
    with pytest.raises(ValueError, match="negative"):
        quantities.parse_memory("-1Mi")
    with pytest.raises(ValueError, match="bad memory quantity"):
        quantities.parse_memory("1K")
    assert quantities.format_memory(quantities.parse_memory("384Mi")) == "384Mi"


def test_the_sandbox_reads_memory_limits_with_the_shared_parser() -> None:
    template = {"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "1e9"}}},
                                        {"name": "b", "resources": {"limits": {"memory": "512Mi"}}},
                                        {"name": "c", "resources": {"limits": {"memory": "odd"}}}]}}
    assert memory_limit(template) == 10**9


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
