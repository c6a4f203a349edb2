"""POST /v1/secrets/leaked: a leak report starts the Secret's emergency rotation, once, and refuses what is wrong."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
from zerotouch.names import queue_for
from zerotouch.ports import free_port
from zerotouch.rotations import RotationsPolicy, SecretRef, rotation_workflow_id
from zerotouch.temporal import data_converter

Relay = Callable[..., Any]
PATH = "/v1/secrets/leaked"
API = SecretRef(namespace="shop", name="api-token")
DB = SecretRef(namespace="shop", name="checkout-db")
ROTATIONS = RotationsPolicy.model_validate({"secrets": {
    "api-token": {"secret": API.model_dump(), "target": {"kind": "kubernetes"}},
    "checkout-db": {"secret": DB.model_dump(),
                    "target": {"kind": "postgres", "connection": "main", "strategy": "single", "roles": ["shop"]}},
}})


@pytest.fixture
def cluster() -> str:
    """A cluster scope of its own, so each test's rotation workflow IDs are its own."""
    return f"leak{uuid.uuid4().hex[:8]}"


async def _exists(client: Client, workflow_id: str) -> bool:
    """Asked of the workflow itself, not of visibility, which may lag behind a start."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _started_input(client: Client, workflow_id: str) -> dict[str, Any]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    attributes = history.events[0].workflow_execution_started_event_attributes
    [value] = await client.data_converter.decode(attributes.input.payloads)
    assert isinstance(value, dict)
    return value


async def test_a_leak_report_starts_one_emergency_rotation(
    relay: Relay, dev_env: WorkflowEnvironment, task_queue: str, cluster: str,
) -> None:
    client = dev_env.client
    workflow_id = rotation_workflow_id(API, cluster)
    async with relay(rotations=ROTATIONS, cluster=cluster) as (_, http):
        first = await http.post(PATH, json={"rotation": "api-token", "reason": "found in a public repository"},
                                headers=AUTH)
        assert first.status_code == 202, first.text
        assert first.json() == {"rotation": "api-token", "workflow_id": workflow_id, "status": "started"}
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert (description.workflow_type, description.task_queue) == ("SecretRotationWorkflow",
                                                                       queue_for(task_queue, cluster))
        started = await _started_input(client, workflow_id)
        assert {key: started[key] for key in ("rotation", "action", "cluster", "requested_by", "reason",
                                              "emergency")} == {
            "rotation": "api-token", "action": "rotate", "cluster": cluster, "requested_by": "secret-scanner",
            "reason": "found in a public repository", "emergency": True}

        # The scanner reports it again, by its Secret this time: the running rotation is the answer.
        again = await http.post(PATH, json={"secret": {"namespace": "shop", "name": "api-token"}}, headers=AUTH)
        assert again.status_code == 202, again.text
        assert again.json() == {"rotation": "api-token", "workflow_id": workflow_id, "status": "already rotating"}
        assert (await client.get_workflow_handle(workflow_id).describe()).run_id == description.run_id

        named = await http.post(PATH, json={"rotation": "checkout-db", "source": "trufflehog"}, headers=AUTH)
        assert named.status_code == 202, named.text
        db_input = await _started_input(client, rotation_workflow_id(DB, cluster))
        assert (db_input["requested_by"], db_input["reason"]) == ("trufflehog", "credential reported leaked")
    for ref in (API, DB):
        await client.get_workflow_handle(rotation_workflow_id(ref, cluster)).terminate("test over")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"rotation": "nope"}, 404, "no rotation 'nope' in the policy's rotations.secrets"),
        ({"secret": {"namespace": "shop", "name": "web"}}, 404, "no rotation in the policy rotates Secret shop/web"),
        ({}, 422, "body: name either `rotation` or `secret`"),
        ({"rotation": "api-token", "secret": API.model_dump()}, 422, "body: name either `rotation` or `secret`"),
        ({"rotation": "api-token", "reason": "x" * 501}, 422, "reason: String should have at most 500 characters"),
        ({"rotation": "api-token", "reason": "two\nlines"}, 422, "body: `reason` must be one line"),
        ({"rotation": "api-token", "source": "evil\r\nX-Header: 1"}, 422, "source: String should match pattern"),
        ({"rotation": "api-token", "secret_value": "hunter2"}, 422, "secret_value: Extra inputs are not permitted"),
        ({"rotation": "Not A Name"}, 422, "rotation: String should match pattern"),
        ([1], 422, "body: Input should be an object"),
    ],
    ids=["unknown-rotation", "unknown-secret", "neither", "both", "long-reason", "multiline-reason", "bad-source",
         "extra-field", "bad-name", "not-an-object"],
)
async def test_what_names_no_rotation_or_is_malformed_is_refused_and_starts_nothing(
    relay: Relay, dev_env: WorkflowEnvironment, cluster: str, body: Any, status: int, detail: str,
) -> None:
    async with relay(rotations=ROTATIONS, cluster=cluster) as (_, http):
        answer = await http.post(PATH, json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(detail), answer.json()
    assert "hunter2" not in answer.text and len(answer.text) < 500
    assert not await _exists(dev_env.client, rotation_workflow_id(API, cluster))


async def test_it_authenticates_and_checks_the_body_as_the_alertmanager_webhook(
    relay: Relay, dev_env: WorkflowEnvironment, cluster: str,
) -> None:
    body = {"rotation": "api-token"}
    async with relay(rotations=ROTATIONS, cluster=cluster) as (_, http):
        anonymous = await http.post(PATH, json=body)
        wrong = await http.post(PATH, json=body, headers={"Authorization": "Bearer not-the-token"})
        broken = await http.post(PATH, content=b'{"rotation": ', headers=AUTH | {"Content-Type": "application/json"})
        text = await http.post(PATH, content=b"api-token", headers=AUTH | {"Content-Type": "text/plain"})
        huge = await http.post(PATH, json={"rotation": "api-token", "reason": "x" * 20_000}, headers=AUTH)
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="zerotouch-relay"'
    assert broken.status_code == 400 and broken.json()["detail"].startswith("body is not valid JSON")
    assert (text.status_code, huge.status_code) == (415, 413)
    assert not await _exists(dev_env.client, rotation_workflow_id(API, cluster))


async def test_unreachable_temporal_answers_503_with_retry_after() -> None:
    doomed = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=free_port(), data_converter=data_converter()
    )
    running = True
    try:
        app = create_app(client=doomed.client, config=RelayConfig(token=TOKEN, rotations=ROTATIONS,
                                                                    temporal_timeout_seconds=3))
        await doomed.shutdown()
        running = False
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as http:
            answer = await http.post(PATH, json={"rotation": "api-token"}, headers=AUTH)
    finally:
        if running:
            await doomed.shutdown()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {"detail": "Temporal is unreachable; retry later"}
