"""POST /v1/gdpr/requests: a portal files a data-subject request; the workflow gets a pseudonym, never the identity."""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from starters.relay.app import create_app
from starters.relay.config import RelayConfig
from tests.relay.conftest import AUTH, TOKEN
from zerotouch.binaries import temporal_cli
from zerotouch.gdpr import GdprPolicy, dsr_workflow_id
from zerotouch.gdpr_models import Subject, VaultRef
from zerotouch.gdpr_vault import RequestVault
from zerotouch.names import queue_for
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter

Relay = Callable[..., Any]
PATH = "/v1/gdpr/requests"
KEY_ENV = "ZT_TEST_RELAY_GDPR_KEY"
EMAIL = f"Carol.{uuid.uuid4().hex[:6]}@Example.test"


@pytest.fixture
def cluster() -> str:
    return f"gdpr{uuid.uuid4().hex[:8]}"


@pytest.fixture
def gdpr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GdprPolicy:
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    return GdprPolicy(storage=str(tmp_path / "vault"), key_env=KEY_ENV)


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _started(client: Client, workflow_id: str) -> tuple[dict[str, Any], str]:
    """The workflow's decoded input, and its whole history as text."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    attributes = history.events[0].workflow_execution_started_event_attributes
    [value] = await client.data_converter.decode(attributes.input.payloads)
    assert isinstance(value, dict)
    return value, history.to_json()


async def test_a_request_starts_one_workflow_with_the_subjects_pseudonym(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str, cluster: str, gdpr: GdprPolicy, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = dev_env.client
    async with relay(gdpr=gdpr, cluster=cluster, state_dir=str(tmp_path / "state")) as (_, http):
        first = await http.post(PATH, json={"kind": "erasure", "email": EMAIL, "verification": "e-mail link clicked",
                                            "requested_by": "privacy-portal"}, headers=AUTH)
        assert first.status_code == 202, first.text
        answer = first.json()
        request_id = answer["request_id"]
        assert re.fullmatch(r"dsr-\d{8}-[0-9a-f]{8}", request_id)
        workflow_id = dsr_workflow_id(request_id, cluster)
        assert answer == {"request_id": request_id, "workflow_id": workflow_id, "status": "started"}
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert (description.workflow_type, description.task_queue) == ("DataSubjectRequestWorkflow",
                                                                       queue_for(task_queue, cluster))
        params, history = await _started(client, workflow_id)
        vault = RequestVault.open(VaultRef(storage=gdpr.storage, key_env=KEY_ENV), tmp_path / "state")
        assert vault.subject(request_id) == Subject(email=EMAIL)
        pseudonym = vault.record_subject(request_id, Subject(email=EMAIL))  # the same subject again: a no-op
        assert {key: params[key] for key in ("request_id", "kind", "subject", "requested_by", "verification",
                                             "cluster")} == {
            "request_id": request_id, "kind": "erasure", "subject": pseudonym,
            "requested_by": "privacy-portal", "verification": "e-mail link clicked", "cluster": cluster}
        assert EMAIL.lower() not in history.lower() and EMAIL.lower() not in str(params).lower()

        # Filed again under its id (a portal's retry): the workflow already filed is the answer.
        again = await http.post(PATH, json={"kind": "erasure", "email": EMAIL.lower(), "verification": "retry",
                                            "request_id": request_id}, headers=AUTH)
        assert again.status_code == 202, again.text
        assert again.json() == {"request_id": request_id, "workflow_id": workflow_id, "status": "already filed"}
        assert (await client.get_workflow_handle(workflow_id).describe()).run_id == description.run_id
        other = await http.post(PATH, json={"kind": "erasure", "user_id": "u-other", "verification": "x",
                                            "request_id": request_id}, headers=AUTH)
        assert other.status_code == 409 and "already names a different subject" in other.json()["detail"]

        named = await http.post(PATH, json={"kind": "access", "user_id": "u-42", "verification": "signed in",
                                            "request_id": f"portal-{cluster}"}, headers=AUTH)
        assert named.status_code == 202 and named.json()["status"] == "started", named.text
        assert (await _started(client, dsr_workflow_id(f"portal-{cluster}", cluster)))[0]["requested_by"] == "relay"
    assert EMAIL.lower() not in caplog.text.lower() and "u-42" not in caplog.text
    for workflow in (workflow_id, dsr_workflow_id(f"portal-{cluster}", cluster)):
        await client.get_workflow_handle(workflow).terminate("test over")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"kind": "access", "email": "not-an-address@@x", "verification": "v"}, "email: not an e-mail address"),
        ({"kind": "access", "user_id": "two words", "verification": "v"}, "user_id: a user id is 1-128"),
        ({"kind": "access", "verification": "v"}, "subject: a subject needs an e-mail address or a user id"),
        ({"kind": "delete", "email": EMAIL, "verification": "v"}, "kind: Input should be 'access' or 'erasure'"),
        ({"kind": "access", "email": EMAIL}, "verification: Field required"),
        ({"kind": "access", "email": EMAIL, "verification": "two\nlines"}, "verification: String should match"),
        ({"kind": "access", "email": EMAIL, "verification": "v", "request_id": "Bad Id"}, "request_id: String should"),
        ({"kind": "access", "email": EMAIL, "verification": "v", "name": "Carol"}, "name: Extra inputs are not"),
        ({"kind": "access", "email": "x" * 300 + "@example.test", "verification": "v"}, "email: String should have"),
    ],
    ids=["bad-email", "bad-user-id", "no-subject", "bad-kind", "no-verification", "multiline", "bad-id", "extra",
         "long-email"],
)
async def test_a_malformed_request_is_refused_with_422_without_echoing_it(
    relay: Relay, dev_env: WorkflowEnvironment, cluster: str, gdpr: GdprPolicy, tmp_path: Path, body: Any,
    detail: str,
) -> None:
    async with relay(gdpr=gdpr, cluster=cluster) as (_, http):
        answer = await http.post(PATH, json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(detail), answer.json()
    for value in ("not-an-address", "two words", "Carol", EMAIL.lower(), "xxxx"):
        assert value not in answer.text.lower() or value.lower() in detail.lower()
    assert not (tmp_path / "vault" / "subjects").exists()


async def test_it_authenticates_and_bounds_the_body_as_the_other_routes(
    relay: Relay, dev_env: WorkflowEnvironment, cluster: str, gdpr: GdprPolicy, tmp_path: Path,
) -> None:
    body = {"kind": "access", "email": EMAIL, "verification": "v", "request_id": f"auth-{cluster}"}
    async with relay(gdpr=gdpr, cluster=cluster) as (_, http):
        anonymous = await http.post(PATH, json=body)
        wrong = await http.post(PATH, json=body, headers={"Authorization": "Bearer not-the-token"})
        broken = await http.post(PATH, content=b'{"kind": ', headers=AUTH | {"Content-Type": "application/json"})
        text = await http.post(PATH, content=b"access", headers=AUTH | {"Content-Type": "text/plain"})
        huge = await http.post(PATH, json=body | {"verification": "x" * 20_000}, headers=AUTH)
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="zerotouch-relay"'
    assert broken.status_code == 400 and broken.json()["detail"].startswith("body is not valid JSON")
    assert (text.status_code, huge.status_code) == (415, 413)
    assert not await _exists(dev_env.client, dsr_workflow_id(f"auth-{cluster}", cluster))
    assert not (tmp_path / "vault" / "subjects").exists()


async def test_a_relay_without_the_vault_key_says_which_variable_and_starts_nothing(
    relay: Relay, dev_env: WorkflowEnvironment, cluster: str, gdpr: GdprPolicy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV)
    async with relay(gdpr=gdpr, cluster=cluster) as (_, http):
        answer = await http.post(PATH, json={"kind": "access", "email": EMAIL, "verification": "v",
                                             "request_id": f"nokey-{cluster}"}, headers=AUTH)
    assert answer.status_code == 500, answer.text
    assert answer.json()["detail"].startswith(f"the relay is misconfigured: {KEY_ENV} is not set")
    assert EMAIL.lower() not in answer.text.lower()
    assert not await _exists(dev_env.client, dsr_workflow_id(f"nokey-{cluster}", cluster))


async def test_unreachable_temporal_answers_503_with_retry_after(gdpr: GdprPolicy) -> None:
    doomed = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=free_port(), data_converter=data_converter()
    )
    running = True
    try:
        app = create_app(client=doomed.client, config=RelayConfig(token=TOKEN, gdpr=gdpr, temporal_timeout_seconds=3))
        await doomed.shutdown()
        running = False
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as http:
            answer = await http.post(PATH, json={"kind": "access", "user_id": "u-1", "verification": "v"},
                                     headers=AUTH)
    finally:
        if running:
            await doomed.shutdown()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {"detail": "Temporal is unreachable; retry later"}
