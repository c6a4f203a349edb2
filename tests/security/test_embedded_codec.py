"""`zerotouch up` encrypts by default: its key file is private, its histories are sealed, its CLI and
its Web UI still read them."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from tests.cli.test_up import Up, zerotouch
from zerotouch.binaries import temporal_cli
from zerotouch.codec_keys import read_keys_file
from zerotouch.ports import free_port


async def test_up_generates_a_key_and_its_histories_are_encrypted(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ports = {"temporal": free_port(), "ui": free_port(), "relay": free_port(), "sandbox": free_port(),
             "codec": free_port()}
    marker = f"embedded-marker-{uuid.uuid4().hex}"
    up = Up(state_dir, ports)
    try:
        keys_file = state_dir / "codec-keys"
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        keys = read_keys_file(keys_file)
        fired = json.loads(zerotouch("fire", "MysteryAlert", "--label", "namespace=shop", "--label",
                                     "deployment=checkout", "--label", f"ticket={marker}", state_dir=state_dir).stdout)
        [incident_id] = fired["incidents"]
        deadline = time.monotonic() + 60
        shown: dict[str, object] = {}
        while time.monotonic() < deadline:
            result = zerotouch("show", incident_id, "--json", state_dir=state_dir, check=False)
            if result.returncode == 0 and json.loads(result.stdout)["state"] == "escalated":
                shown = json.loads(result.stdout)
                break
            time.sleep(0.5)
        # The CLI found `up`'s key by itself and decrypted the status.
        labels = shown.get("labels")
        assert isinstance(labels, dict) and labels["ticket"] == marker, shown
        # A client without the key sees only ciphertext, and the label nowhere in the raw history.
        plain = await Client.connect(f"127.0.0.1:{ports['temporal']}")
        history = await plain.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=WorkflowExecution(workflow_id=incident_id)))
        raw = history.history.SerializeToString()
        assert b"binary/encrypted" in raw and b"encryption-key-id" in raw
        assert keys.primary.encode() in raw and marker.encode() not in raw
        # The Web UI reads it: its settings name `up`'s codec endpoint, which decodes for the UI's origin.
        ui = f"http://127.0.0.1:{ports['ui']}"
        endpoint = _ui_codec_endpoint(ui)
        token = (state_dir / "codec-endpoint-token").read_text().strip()
        assert endpoint == f"http://127.0.0.1:{ports['codec']}/{token}" and len(token) >= 32
        assert stat.S_IMODE((state_dir / "codec-endpoint-token").stat().st_mode) == 0o600
        body = {"payloads": [json_format.MessageToDict(p) for p in _alert_payloads(history.history.events)]}
        decoded = httpx.post(f"{endpoint}/decode?preserveStorageRefs=true", json=body, timeout=10,
                             headers={"Origin": ui, "X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text
        shown_by_ui = [json_format.ParseDict(item, Payload()) for item in decoded.json()["payloads"]]
        assert any(marker.encode() in p.data for p in shown_by_ui)
        assert decoded.headers["access-control-allow-origin"] == ui
        # Another page, or no token: nothing.
        foreign = httpx.post(f"{endpoint}/decode", json=body, headers={"Origin": "http://evil.example"}, timeout=10)
        assert foreign.status_code == 403
        tokenless = httpx.post(f"http://127.0.0.1:{ports['codec']}/decode", json=body, headers={"Origin": ui},
                               timeout=10)
        assert tokenless.status_code == 404
        # The README's `temporal` CLI line: the same URL, no Origin, no Authorization.
        shown_by_cli = subprocess.run(
            [temporal_cli(), "workflow", "show", "--address", f"127.0.0.1:{ports['temporal']}", "--workflow-id",
             incident_id, "--output", "json", "--codec-endpoint", endpoint],
            capture_output=True, text=True, timeout=60, check=False)
        assert shown_by_cli.returncode == 0, shown_by_cli.stderr
        assert marker in _data_of(json.loads(shown_by_cli.stdout))
    finally:
        assert up.stop() == 0
    logs = (tmp_path / "up.log").read_text() + (state_dir / "temporal.log").read_text()
    assert token not in logs and f"127.0.0.1:{ports['codec']}/<token in" in logs, "the banner names it, tokenless"
    # A restart keeps the same key, or the open incident above could not be read any more.
    assert read_keys_file(state_dir / "codec-keys") == keys


def _alert_payloads(events: Iterable[HistoryEvent]) -> list[Payload]:
    """The payloads of the incident's start and of the alerts signalled to it: the labels are in one of them."""
    payloads: list[Payload] = []
    for event in events:
        payloads += event.workflow_execution_started_event_attributes.input.payloads
        payloads += event.workflow_execution_signaled_event_attributes.input.payloads
    assert payloads, "the incident's history has an input"
    return payloads


def _data_of(value: object) -> str:
    """Every payload ``data`` in the CLI's JSON output, base64-decoded."""
    if isinstance(value, dict):
        data = value.get("data")
        own = base64.b64decode(data).decode(errors="replace") if isinstance(data, str) else ""
        return own + "".join(_data_of(child) for child in value.values())
    if isinstance(value, list):
        return "".join(_data_of(child) for child in value)
    return ""


def _ui_codec_endpoint(ui: str, timeout: float = 30.0) -> str:
    """The codec endpoint the Web UI's browser is told to call (its server may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(httpx.get(f"{ui}/api/v1/settings", timeout=5).json()["Codec"]["Endpoint"])
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
