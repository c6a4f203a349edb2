# The typed client declares model bodies; it validates plain manifests into them at run time.
# mypy: disable-error-code="arg-type"
"""Finding and rolling a Secret's consumers against the sandbox API over real HTTP."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError

from activities.kubernetes_actions import selector_string
from activities.kubernetes_rollout import rollout_status
from activities.secret_consumers import SecretConsumers, version_annotation
from tests.support.waiting import wait_until
from zerotouch import activity_errors as errors
from zerotouch.models import RolloutStatus
from zerotouch.rotation_models import Consumer
from zerotouch.rotations import SecretRef

REF = SecretRef(namespace="shop", name="app-creds")
KEY = version_annotation(REF.name)
# An annotation key's name part, as the API server validates it.
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def consumers(api_client: client.ApiClient) -> SecretConsumers:
    return SecretConsumers(api_client=api_client)


def deployment(name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    container = {"name": "app", "image": f"registry.local/shop/{name}:1"}
    spec = {"containers": [{**container, **pod_spec.pop("container", {})}], **pod_spec}
    return {"metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


@pytest.fixture
def readers(apps: client.AppsV1Api) -> list[str]:
    """One Deployment per way of reading app-creds, one reading another Secret; returns the readers."""
    manifests = [
        deployment("api", {
            "container": {"env": [{"name": "TOKEN",
                                   "valueFrom": {"secretKeyRef": {"name": REF.name, "key": "token"}}}]},
            "initContainers": [{"name": "migrate", "image": "registry.local/shop/migrate:1",
                                "envFrom": [{"secretRef": {"name": REF.name}}]}],
        }),
        deployment("files", {"volumes": [{"name": "creds", "secret": {"secretName": REF.name}}]}),
        deployment("bundle", {"volumes": [{"name": "all", "projected": {"sources": [
            {"configMap": {"name": "settings"}}, {"secret": {"name": REF.name}}]}}]}),
        deployment("unrelated", {"volumes": [{"name": "creds", "secret": {"secretName": "other-creds"}}],
                                 "container": {"envFrom": [{"secretRef": {"name": "app-creds-old"}}]}}),
    ]
    for manifest in manifests:
        apps.create_namespaced_deployment("shop", manifest)
    return ["api", "bundle", "files"]


def raw(apps: client.AppsV1Api, name: str) -> dict[str, Any]:
    read = apps.read_namespaced_deployment(name, "shop")
    plain: dict[str, Any] = apps.api_client.sanitize_for_serialization(read)
    return plain


def template_annotations(apps: client.AppsV1Api, name: str) -> dict[str, str]:
    return raw(apps, name)["spec"]["template"]["metadata"].get("annotations") or {}


def status(api_client: client.ApiClient, name: str) -> tuple[RolloutStatus, list[dict[str, Any]]]:
    """The verdict `get_rollout_status` gives, plus the pods it judged."""
    deploy = raw(client.AppsV1Api(api_client), name)
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        "shop", label_selector=selector_string(deploy["spec"]["selector"])).items
    plain = [api_client.sanitize_for_serialization(pod) for pod in pods]
    return rollout_status(deploy, plain), plain


def healthy(api_client: client.ApiClient, name: str, version: str | None = None) -> bool:
    """Healthy by `get_rollout_status`'s rules, and (given a version) every pod started on that version."""
    verdict, pods = status(api_client, name)
    on_version = version is None or all(
        (pod["metadata"].get("annotations") or {}).get(KEY) == version for pod in pods)
    return verdict.healthy and bool(pods) and on_version


def test_find_names_each_reader_and_how_it_reads(consumers: SecretConsumers, readers: list[str]) -> None:
    assert consumers.find(REF) == [
        Consumer(deployment="api", via=["env", "envFrom"]),
        Consumer(deployment="bundle", via=["projected"]),
        Consumer(deployment="files", via=["volume"]),
    ]
    assert consumers.find(SecretRef(namespace="shop", name="checkout-db")) == [
        Consumer(deployment="checkout", via=["env"])]  # the sandbox's own demo workload
    assert consumers.find(SecretRef(namespace="default", name=REF.name)) == []


def test_roll_changes_each_template_once_and_the_pods_follow(
        api_client: client.ApiClient, apps: client.AppsV1Api, consumers: SecretConsumers, readers: list[str]) -> None:
    for name in readers:
        wait_until(partial(healthy, api_client, name), timeout=15)
    generations = {name: raw(apps, name)["metadata"]["generation"] for name in [*readers, "unrelated"]}

    first = consumers.roll(REF, readers, "r0123456789ab")
    again = consumers.roll(REF, list(reversed(readers)), "r0123456789ab")

    assert first.changed == readers and first.unchanged == []
    assert again.changed == [] and again.unchanged == readers
    for name in readers:
        assert template_annotations(apps, name)[KEY] == "r0123456789ab"
        assert raw(apps, name)["metadata"]["generation"] == generations[name] + 1
    assert raw(apps, "unrelated")["metadata"]["generation"] == generations["unrelated"]

    for name in readers:
        wait_until(partial(healthy, api_client, name, "r0123456789ab"), timeout=20)

    later = consumers.roll(REF, ["files"], "r00000000000f")
    assert later.changed == ["files"] and template_annotations(apps, "files")[KEY] == "r00000000000f"


def test_a_missing_deployment_stops_the_roll_before_any_restart(
        apps: client.AppsV1Api, consumers: SecretConsumers, readers: list[str]) -> None:
    with pytest.raises(ApplicationError) as caught:
        consumers.roll(REF, [*readers, "gone"], "r0123456789ab")
    assert caught.value.type == errors.NOT_FOUND and caught.value.non_retryable
    assert "shop/gone" in caught.value.message
    assert all(KEY not in template_annotations(apps, name) for name in readers)


def test_an_invalid_deployment_name_is_refused(consumers: SecretConsumers) -> None:
    with pytest.raises(ApplicationError) as caught:
        consumers.roll(REF, ["../web"], "r0123456789ab")
    assert caught.value.type == errors.INVALID_TARGET


class _Contended(SecretConsumers):
    """Another writer changes each Deployment right after our first read of it (a 409 for our write)."""

    def __init__(self, *, api_client: client.ApiClient) -> None:
        super().__init__(api_client=api_client)
        self._other = client.AppsV1Api(api_client)
        self.reads: list[str] = []

    def _read(self, namespace: str, name: str) -> dict[str, Any]:
        deploy = super()._read(namespace, name)
        self.reads.append(name)
        if self.reads.count(name) == 1:
            self._other.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": {"edited": "yes"}}})
        return deploy


def test_a_concurrent_edit_is_kept_and_the_roll_retried(api_client: client.ApiClient, apps: client.AppsV1Api,
                                                        readers: list[str]) -> None:
    contended = _Contended(api_client=api_client)
    rolled = contended.roll(REF, ["files"], "r0123456789ab")
    assert rolled.changed == ["files"]
    assert contended.reads == ["files", "files"]  # the first write answered 409 and was read again
    deploy = raw(apps, "files")
    assert deploy["metadata"]["labels"]["edited"] == "yes"
    assert deploy["spec"]["template"]["metadata"]["annotations"][KEY] == "r0123456789ab"


@pytest.mark.parametrize("secret", ["a", "app-creds", "x" * 56, "x" * 57, "db.example." + "y" * 242])
def test_the_version_annotation_is_a_valid_key(secret: str) -> None:
    key = version_annotation(secret)
    prefix, name = key.split("/")
    assert prefix == "rotation.zerotouch.io"
    assert len(name) <= 63 and _NAME_PART.match(name)
    assert key == version_annotation(secret)
    if len("secret-" + secret) <= 63:
        assert name == "secret-" + secret


def test_long_secret_names_sharing_a_head_get_different_keys() -> None:
    head = "payments-service-database-credentials-for-the-reporting-replica"
    assert version_annotation(head + "-a") != version_annotation(head + "-b")
