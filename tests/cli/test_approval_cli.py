"""`zerotouch approve` with verified approvers: --key, --print-message then ssh-keygen, clear key errors."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.main import main
from sandbox import SandboxCluster
from tests.security.approval_keys import ApproverKey
from tests.support.zt import alert, open_incident, running_workers, wait_for
from tests.workflows.policies import make_policy
from workflows.incident import IncidentWorkflow
from zerotouch.models import AbortInput

CRASH = {"namespace": "shop", "deployment": "web"}


async def _zerotouch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI (it runs its own event loop, so in a thread); its exit status, stdout and stderr."""
    status = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_approve_signs_with_a_key_file_or_an_ssh_keygen_signature(
    dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = ApproverKey.generate("alice@laptop"), ApproverKey.generate("bob@laptop")
    alice_file, bob_file = alice.write(tmp_path, "alice"), bob.write(tmp_path, "bob")
    policy = make_policy(mode="approve-all", escalation={}, approvers={"names": ["alice", "bob"]},
                         approvals={"identity": "verified", "keys": {"alice": [alice.public_line],
                                                                     "bob": [bob.public_line]}})
    cluster = f"cli{uuid.uuid4().hex[:8]}"
    connection = ("--address", dev_env.client.service_client.config.target_host, "--state-dir", str(tmp_path))
    sandbox.inject("crashloop", **CRASH)
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url):
        handle = await open_incident(dev_env.client, cluster, alert("KubePodCrashLooping", **CRASH), policy)
        pending = (await wait_for(handle, lambda s: s.state == "awaiting_approval")).pending_approval
        assert pending is not None

        status, out, _ = await _zerotouch(capsys, "show", handle.id, *connection)
        assert status == 0 and f"request    {pending.request_id} (verified approvers sign it" in out

        status, _, err = await _zerotouch(capsys, "approve", handle.id, "--by", "bob", *connection)
        assert status == 1 and "approve needs a proof signed by 'bob'" in err
        status, _, err = await _zerotouch(capsys, "approve", handle.id, "--by", "bob", "--key",
                                          f"{bob_file}.pub", *connection)
        assert status == 1 and "not an OpenSSH private key" in err and "not the .pub file" in err
        status, _, err = await _zerotouch(capsys, "approve", handle.id, "--by", "bob", "--key", str(alice_file),
                                          *connection)
        assert status == 1 and "is not listed for 'bob'" in err

        status, message, _ = await _zerotouch(capsys, "approve", handle.id, "--by", "bob", "--print-message",
                                              *connection)
        claim = json.loads(message)
        assert status == 0 and (claim["request_id"], claim["decision"]) == (pending.request_id, "approve")
        (tmp_path / "approval.json").write_text(message)
        ssh_keygen = shutil.which("ssh-keygen")
        assert ssh_keygen, "ssh-keygen is missing: apt-get install openssh-client (.ci/run does)"
        # Signed outside zerotouch, as with ssh-agent or a hardware key.
        subprocess.run([ssh_keygen, "-Y", "sign", "-n", "zerotouch-approval", "-f", str(bob_file),
                        str(tmp_path / "approval.json")], check=True, capture_output=True)
        signed = ("--signature-file", str(tmp_path / "approval.json.sig"))
        status, out, err = await _zerotouch(capsys, "approve", handle.id, "--by", "bob", *signed, *connection)
        assert status == 0, err
        assert "approved by bob" in out
        resolved = await wait_for(handle, lambda s: s.state == "resolved")
        await handle.execute_update(IncidentWorkflow.abort, AbortInput(by="alice", reason="test over"))
        await handle.result()
    approvals = [e for e in resolved.timeline if e.message.startswith("approved")]
    assert [e.actor for e in approvals] == ["bob"] and "identity verified by SSH key" in approvals[0].message
