# The typed client declares model bodies; it validates plain manifests into them at run time.
# mypy: disable-error-code="arg-type"
"""The rotation's Secret store against the sandbox API over real HTTP: reads, guarded writes, no lost update."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError

from activities.secret_store import CONFLICT_ATTEMPTS, SecretStore
from zerotouch import activity_errors as errors
from zerotouch import rotation_secret as rs
from zerotouch.rotation_secret import ANNOTATION, RotationStateError, SecretContent
from zerotouch.rotations import KubernetesTarget, SecretRef

APP = SecretRef(namespace="shop", name="app-creds")
DEMO = SecretRef(namespace="shop", name="checkout-db")  # seeded by the sandbox with username/password
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(api_client: client.ApiClient) -> SecretStore:
    return SecretStore(api_client=api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def raw(core: client.CoreV1Api, ref: SecretRef) -> dict[str, Any]:
    """The Secret as the API stores it (what kubectl would show)."""
    plain: dict[str, Any] = core.api_client.sanitize_for_serialization(core.read_namespaced_secret(ref.name,
                                                                                                   ref.namespace))
    return plain


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def with_data(**values: str) -> Callable[[SecretContent], SecretContent]:
    return lambda content: replace(content, data={**content.data, **values})


def test_read_decodes_data_and_keeps_the_resource_version(store: SecretStore, core: client.CoreV1Api) -> None:
    content = store.read(DEMO)
    assert content.exists
    assert content.data == {"username": "shop", "password": "sandbox-only"}
    assert content.resource_version == raw(core, DEMO)["metadata"]["resourceVersion"]


def test_a_missing_secret_reads_as_not_existing(store: SecretStore) -> None:
    assert store.read(APP) == SecretContent(exists=False)


def test_update_creates_a_missing_secret_as_opaque(store: SecretStore, core: client.CoreV1Api) -> None:
    def create(content: SecretContent) -> SecretContent:
        assert not content.exists
        return replace(content, data={"token": "t0"}, annotations={f"{ANNOTATION}stage": "pending",
                                                                   "someone.else/note": "dropped on create"})

    written, changed = store.update(APP, create)
    assert changed and written.exists and written.data == {"token": "t0"}
    stored = raw(core, APP)
    assert stored["type"] == "Opaque"
    assert stored["data"] == {"token": b64(b"t0")}
    assert stored["metadata"]["annotations"] == {f"{ANNOTATION}stage": "pending"}
    assert written.resource_version == stored["metadata"]["resourceVersion"]


def test_update_keeps_what_the_rotation_does_not_own(store: SecretStore, core: client.CoreV1Api) -> None:
    keystore = bytes(range(256))  # not UTF-8: must survive the decode/encode round trip byte for byte
    core.create_namespaced_secret("shop", {
        "metadata": {"name": APP.name, "labels": {"team": "payments"},
                     "annotations": {"owner.example/contact": "payments", f"{ANNOTATION}stage": "moved",
                                     f"{ANNOTATION}previous-version": "r000000000001"}},
        "type": "example.com/credentials",
        "data": {"token": b64(b"old"), "keystore.p12": b64(keystore)},
    })

    def rotate(content: SecretContent) -> SecretContent:
        kept = {k: v for k, v in content.annotations.items() if k != f"{ANNOTATION}previous-version"}
        # A change may hand back foreign annotations altered: the server's version of them wins.
        return replace(content, data={**content.data, "token": "new"},
                       annotations={**kept, f"{ANNOTATION}stage": "finished", "owner.example/contact": "forged"})

    written, changed = store.update(APP, rotate)
    stored = raw(core, APP)
    assert changed
    assert stored["type"] == "example.com/credentials"
    assert stored["metadata"]["labels"] == {"team": "payments"}
    assert stored["metadata"]["annotations"] == {"owner.example/contact": "payments",
                                                 f"{ANNOTATION}stage": "finished"}
    assert stored["data"] == {"token": b64(b"new"), "keystore.p12": b64(keystore)}
    assert written.annotations == stored["metadata"]["annotations"]


def test_nothing_to_write_writes_nothing(store: SecretStore) -> None:
    before = store.read(DEMO)
    current, changed = store.update(DEMO, lambda content: None)
    assert not changed
    assert current == before
    assert store.read(DEMO).resource_version == before.resource_version


def test_a_refused_transition_is_a_non_retryable_rotation_state_error(store: SecretStore) -> None:
    def refuse(content: SecretContent) -> SecretContent:
        raise RotationStateError("rotation r000000000001 left a pending credential; roll it back first")

    with pytest.raises(ApplicationError) as caught:
        store.update(DEMO, refuse)
    assert caught.value.type == errors.ROTATION_STATE and caught.value.non_retryable
    assert "shop/checkout-db" in caught.value.message and "roll it back first" in caught.value.message
    assert "sandbox-only" not in caught.value.message


def test_two_concurrent_writers_both_land(store: SecretStore, core: client.CoreV1Api) -> None:
    """Both read the same resourceVersion before either writes; the loser's 409 re-reads and re-applies."""
    core.create_namespaced_secret("shop", {"metadata": {"name": APP.name}, "data": {"token": b64(b"t0")}})
    both_read = threading.Barrier(2, timeout=10)
    calls: list[str] = []
    outcomes: dict[str, Any] = {}

    def writer(key: str) -> None:
        def change(content: SecretContent) -> SecretContent:
            calls.append(key)
            if calls.count(key) == 1:
                both_read.wait()  # the other writer has read the same version too
            return replace(content, data={**content.data, key: "written"})

        try:
            outcomes[key] = store.update(APP, change)
        except Exception as error:  # reported below; a thread's exception would be lost otherwise
            outcomes[key] = error

    threads = [threading.Thread(target=writer, args=(key,)) for key in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert all(isinstance(outcome, tuple) and outcome[1] for outcome in outcomes.values()), outcomes
    assert store.read(APP).data == {"token": "t0", "first": "written", "second": "written"}
    assert sorted(set(calls)) == ["first", "second"]
    assert len(calls) == 3  # exactly one writer lost the race and applied its change again


def test_two_concurrent_creators_both_land(store: SecretStore) -> None:
    """Both see no Secret; the second create answers AlreadyExists, which re-reads and replaces."""
    both_read = threading.Barrier(2, timeout=10)
    seen: list[bool] = []
    errors_seen: list[BaseException] = []

    def writer(key: str) -> None:
        def change(content: SecretContent) -> SecretContent:
            seen.append(content.exists)
            if len(seen) <= 2:
                both_read.wait()
            return replace(content, data={**content.data, key: "written"})

        try:
            store.update(APP, change)
        except Exception as error:
            errors_seen.append(error)

    threads = [threading.Thread(target=writer, args=(key,)) for key in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors_seen
    assert seen == [False, False, True]
    assert store.read(APP).data == {"first": "written", "second": "written"}


def test_a_writer_that_always_loses_gives_up_retryably(store: SecretStore, core: client.CoreV1Api) -> None:
    calls: list[int] = []

    def meddle(content: SecretContent) -> SecretContent:
        calls.append(1)
        # Someone else writes between every read and our write.
        core.patch_namespaced_secret(DEMO.name, DEMO.namespace, {"metadata": {"labels": {"n": str(len(calls))}}})
        return replace(content, data={**content.data, "token": "mine"})

    with pytest.raises(ApplicationError) as caught:
        store.update(DEMO, meddle)
    assert caught.value.type == errors.CONFLICT and not caught.value.non_retryable
    assert len(calls) == CONFLICT_ATTEMPTS
    assert "token" not in store.read(DEMO).data


def test_rotation_transitions_through_the_store_are_idempotent(store: SecretStore) -> None:
    target = KubernetesTarget(keys=["token"])
    token = "r0123456789ab"
    store.update(APP, lambda content: replace(content, data={"token": "old"}))
    _, added = store.update(APP, lambda c: rs.add_pending(c, target, "api-token", token, {"token": "new"}, AT))
    _, again = store.update(APP, lambda c: rs.add_pending(c, target, "api-token", token, {"token": "other"}, AT))
    assert added and not again
    _, promoted = store.update(APP, lambda c: rs.promote(c, target, token, AT))
    _, repeated = store.update(APP, lambda c: rs.promote(c, target, token, AT))
    assert promoted and not repeated
    content = store.read(APP)
    assert content.data == {"token": "new", "previous.token": "old"}
    shown = rs.view(APP, content, target)
    assert shown.stage == "finished" and shown.current and shown.current.version == token
    assert shown.previous and shown.previous.version == rs.INITIAL
