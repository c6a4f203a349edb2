"""End to end with the codec on: no secret, and no alert label in clear, anywhere in workflow history.

A dev server of its own (so every history in it is this test's), the real relay with its
token, the real workers on every queue against the sandbox cluster and a throwaway
PostgreSQL (its DSN, with a password, in the worker's environment), and a notification
webhook whose URL carries a secret token. Two incidents run to completion: a crash loop
(rollout restart) and PostgreSQL connection pressure (terminate idle sessions).
Then every history is fetched as raw protobuf bytes and searched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from google.protobuf import json_format
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from tests.relay.conftest import alert, payload
from tests.support.policies import fast_policy
from tests.support.postgres import running_postgres
from tests.support.receiver import Receiver
from tests.support.zt import running_workers, wait_for
from zerotouch.alerts import AlertEvent, incident_id_for
from zerotouch.binaries import temporal_cli
from zerotouch.codec import EncryptionCodec
from zerotouch.codec_keys import CodecKeys
from zerotouch.codec_server import CodecServer, CodecServerConfig
from zerotouch.models import IncidentStatus
from zerotouch.policy import load_policy

RELAY_TOKEN = "relay-secret-" + uuid.uuid4().hex
PG_PASSWORD = "pg-secret-" + uuid.uuid4().hex
HOOK_SECRET = "hook-secret-" + uuid.uuid4().hex
CODEC_TOKEN = "codec-secret-" + uuid.uuid4().hex
MARKER = "plaintext-marker-" + uuid.uuid4().hex  # a label value only the alert carries


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    with running_postgres() as server:
        # The throwaway server trusts local connections; the password still travels in the DSN.
        yield f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres password={PG_PASSWORD}"


def _policy(target: Path) -> Path:
    """The shipped policy, fast, notifying a webhook whose URL (from the environment) is a secret."""
    fast_policy(target)
    document = yaml.safe_load(target.read_text())
    document["channels"]["hook"] = {"type": "slack", "url_env": "ZT_SECURITY_HOOK_URL"}
    document["escalation"] = {severity: [{"after": "0s", "notify": ["hook"]}] for severity in ("P1", "P3")}
    for runbook in document["runbooks"]:
        # No Prometheus here: the rollout (or the alert resolving) verifies.
        runbook["verify"].pop("promql", None)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target


async def _raw_history(client: Client, workflow_id: str, run_id: str) -> bytes:
    chunks: list[bytes] = []
    token = b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            next_page_token=token,
        ))
        chunks.append(page.history.SerializeToString())
        token = page.next_page_token
        if not token:
            return b"".join(chunks)


def _forms(secret: str | bytes) -> list[bytes]:
    raw = secret.encode() if isinstance(secret, str) else secret
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


async def test_no_secret_or_label_in_clear_in_any_history(
    encrypted_env: WorkflowEnvironment, codec_keys: CodecKeys, sandbox: SandboxCluster, postgres_dsn: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = encrypted_env.client
    policy_path = _policy(tmp_path / "policy.yaml")
    policy = load_policy(policy_path)
    cluster = f"sec{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("ZEROTOUCH_PG_MAIN_DSN", postgres_dsn)
    sandbox.inject("crashloop", namespace="shop", deployment="web")
    crash_labels = {"namespace": "shop", "deployment": "web", "severity": "critical", "customer": MARKER}
    pg_labels = {"namespace": "db", "severity": "warning", "customer": MARKER}

    def incident(alertname: str, labels: dict[str, str]) -> str:
        event = AlertEvent(fingerprint="x", status="firing", labels={"alertname": alertname, **labels},
                           starts_at="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
        return incident_id_for(event, policy.group_by, cluster)

    with Receiver() as receiver:
        monkeypatch.setenv("ZT_SECURITY_HOOK_URL", f"{receiver.url}/services/T0/B0/{HOOK_SECRET}")
        relay = RelayServer(RelayConfig(port=0, token=RELAY_TOKEN, group_by=policy.group_by, cluster=cluster), client)
        await relay.start()
        try:
            async with running_workers(client, cluster, kubernetes_url=sandbox.url, policy_path=str(policy_path)), \
                    httpx.AsyncClient(base_url=relay.url, headers={"Authorization": f"Bearer {RELAY_TOKEN}"},
                                      timeout=30) as http:
                crash, pg = alert("KubePodCrashLooping", **crash_labels), alert("PostgresConnectionsHigh", **pg_labels)
                for body in (crash, pg):
                    body["annotations"]["description"] = f"customer {MARKER} affected"
                    answer = await http.post("/alertmanager", json=payload(body))
                    assert answer.status_code == 200, answer.text
                crash_handle = client.get_workflow_handle(incident("KubePodCrashLooping", crash_labels),
                                                          result_type=IncidentStatus)
                pg_handle = client.get_workflow_handle(incident("PostgresConnectionsHigh", pg_labels),
                                                       result_type=IncidentStatus)
                await wait_for(pg_handle, lambda s: any(a.action == "terminate_idle_connections" for a in s.actions),
                               timeout=60)
                resolved = await http.post("/alertmanager", json=payload(
                    alert("PostgresConnectionsHigh", "resolved", **pg_labels)))
                assert resolved.status_code == 200
                crash_final = await asyncio.wait_for(crash_handle.result(), 90)
                pg_final = await asyncio.wait_for(pg_handle.result(), 90)
        finally:
            await relay.stop()
        hooks = [path for path, _ in receiver.received]

    # The run really used every secret: the relay token, the DSN and the webhook URL.
    assert crash_final.state == "resolved" and crash_final.labels["customer"] == MARKER
    assert len(sandbox.actions(namespace="shop", name="web", kind="restart")) == 1
    assert pg_final.state == "resolved", pg_final.model_dump_json(indent=1)
    [pg_action] = pg_final.actions
    assert pg_action.outcome == "applied" and "terminated 0 session(s)" in pg_action.detail
    assert hooks and all(path.endswith(HOOK_SECRET) for path in hooks)

    histories: dict[str, bytes] = {}
    async for execution in client.list_workflows():
        histories[f"{execution.id}/{execution.run_id}"] = await _raw_history(client, execution.id, execution.run_id)
    assert any(key.startswith(crash_handle.id) for key in histories)
    assert any(key.startswith(pg_handle.id) for key in histories)
    assert any("governor" in key.lower() for key in histories), list(histories)

    secrets: dict[str, str | bytes] = {
        "relay token": RELAY_TOKEN, "PostgreSQL password": PG_PASSWORD, "PostgreSQL DSN": postgres_dsn,
        "webhook secret": HOOK_SECRET, "codec token": CODEC_TOKEN, "alert label value": MARKER,
    }
    secrets.update({f"codec key {key_id}": key for key_id, key in codec_keys.by_id.items()})
    for key, history in histories.items():
        for what, secret in secrets.items():
            for form in _forms(secret):
                assert form not in history, f"{what} appears in the history of {key}"
        assert b"binary/encrypted" in history, f"{key} has no encrypted payload at all"

    # Decoding through the codec endpoint gives the plaintext back to an operator with the token.
    codec_server = CodecServer(EncryptionCodec(codec_keys), CodecServerConfig(token=CODEC_TOKEN, port=0))
    await codec_server.start()
    try:
        crash_history = await crash_handle.fetch_history()
        signalled = [event.workflow_execution_signaled_event_attributes.input.payloads
                     for event in crash_history.events
                     if event.HasField("workflow_execution_signaled_event_attributes")]
        sealed = [json_format.MessageToDict(p) for payloads in signalled for p in payloads]
        assert sealed and MARKER not in json.dumps(sealed)
        async with httpx.AsyncClient(base_url=codec_server.url) as http:
            decoded = await http.post("/decode", json={"payloads": sealed},
                                      headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"})
        assert decoded.status_code == 200
        plain = [base64.b64decode(item["data"]).decode() for item in decoded.json()["payloads"]]
        assert any(MARKER in text for text in plain), plain
        shown = await _temporal_show(encrypted_env, crash_handle.id, codec_server.url)
        assert MARKER in shown, "the stock temporal CLI decodes through the endpoint"
        assert MARKER not in await _temporal_show(encrypted_env, crash_handle.id, None)
    finally:
        await codec_server.stop()


async def _temporal_show(env: WorkflowEnvironment, workflow_id: str, codec_url: str | None) -> str:
    target = env.client.service_client.config.target_host
    command = [temporal_cli(), "workflow", "show", "--address", target, "--workflow-id", workflow_id,
               "--output", "json"]
    if codec_url:
        command += ["--codec-endpoint", codec_url, "--codec-auth", f"Bearer {CODEC_TOKEN}"]
    done: subprocess.CompletedProcess[str] = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return _decoded_data(json.loads(done.stdout))


def _decoded_data(value: Any) -> str:
    """Every payload ``data`` in the CLI's JSON, base64-decoded, so the check sees the plaintext."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                if key == "data" and isinstance(child, str):
                    found.append(base64.b64decode(child).decode(errors="replace"))
                else:
                    walk(child)
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(value)
    return "\n".join(found) + json.dumps(value)
