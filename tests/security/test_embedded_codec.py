"""`zerotouch up` encrypts by default: its key file is private, its histories are sealed, its CLI still reads them."""

from __future__ import annotations

import json
import stat
import time
import uuid
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from tests.cli.test_up import Up, zerotouch
from zerotouch.codec_keys import read_keys_file
from zerotouch.ports import free_port


async def test_up_generates_a_key_and_its_histories_are_encrypted(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ports = {"temporal": free_port(), "ui": free_port(), "relay": free_port(), "sandbox": free_port()}
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
    finally:
        assert up.stop() == 0
    # A restart keeps the same key, or the open incident above could not be read any more.
    assert read_keys_file(state_dir / "codec-keys") == keys
