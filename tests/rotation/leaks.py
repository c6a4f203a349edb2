"""Looking for a credential where none may be: raw workflow histories (every payload, search attribute,
failure message), decoded payloads when the codec is on, query results, ledger rows, log records."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.client import WorkflowExecution as Execution
from temporalio.converter import PayloadCodec

from zerotouch.governor_models import governor_id
from zerotouch.names import INCIDENT_ID_PREFIX
from zerotouch.rotations import ROTATION_WORKFLOW_ID_PREFIX


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


async def executions_of(client: Client, cluster: str) -> list[Execution]:
    """Every workflow of a test's cluster scope: its rotations, its Governor, the incidents they opened.

    Asked by ID prefix, not by listing the whole (shared) dev server and filtering."""
    prefixes = (f"{ROTATION_WORKFLOW_ID_PREFIX}{cluster}-", governor_id(cluster), f"{INCIDENT_ID_PREFIX}{cluster}-")
    return [execution for prefix in prefixes
            async for execution in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}'")]


async def raw_histories(client: Client, cluster: str) -> dict[str, bytes]:
    """Every history of the cluster scope, as protobuf bytes."""
    found: dict[str, bytes] = {}
    for execution in await executions_of(client, cluster):
        chunks, token = [], b""
        while True:
            page = await client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=execution.id,
                                                                         run_id=execution.run_id),
                next_page_token=token))
            chunks.append(page.history.SerializeToString())
            token = page.next_page_token
            if not token:
                break
        found[f"{execution.id}/{execution.run_id}"] = b"".join(chunks)
    return found


async def decoded_payloads(client: Client, codec: PayloadCodec, cluster: str) -> dict[str, bytes]:
    """Every payload of those histories decrypted through the codec: what an operator with the key sees."""
    found: dict[str, bytes] = {}
    for execution in await executions_of(client, cluster):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        sealed: list[Payload] = []
        for event in history.events:
            _collect(event, sealed)
        found[execution.id] = b"".join(p.SerializeToString() for p in await codec.decode(sealed))
    return found


def _collect(message: Message, into: list[Payload]) -> None:
    """Every Payload inside a protobuf message (repeated fields and maps included)."""
    if isinstance(message, Payload):
        into.append(message)
        return
    for _, value in message.ListFields():
        items = value.values() if isinstance(value, Mapping) else value if isinstance(value, Iterable) \
            and not isinstance(value, str | bytes | Message) else [value]
        for item in items:
            if isinstance(item, Message):
                _collect(item, into)


def assert_absent(blobs: Mapping[str, bytes], credentials: Iterable[str], where: str) -> None:
    wanted = [c for c in credentials if c]
    assert wanted, "no credential to look for: the test did not see any"
    for key, blob in blobs.items():
        for credential in wanted:
            for form in forms(credential):
                assert form not in blob, f"a credential appears in the {where} of {key}"
