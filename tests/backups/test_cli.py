"""`zerotouch backups` against real workers: verify by a restore, list, show, hold, prune."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.backups.conftest import BackupStack


async def zerotouch(stack: BackupStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process; in a thread, so the test's in-process workers keep running."""
    command = [sys.executable, "-m", "cli", "backups", *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=180,
                                   check=False, env={**os.environ, "ZEROTOUCH_POLICY": str(stack.policy_path)})


def connection(stack: BackupStack) -> list[str]:
    return ["--address", stack.client.service_client.config.target_host, "--cluster", stack.cluster]


async def test_the_cli_takes_verifies_lists_shows_holds_and_prunes(stack: BackupStack) -> None:
    taken = await zerotouch(stack, "run", "app-dump", *connection(stack))
    assert taken.returncode == 0, taken.stderr
    backup_id = taken.stdout.split()[1]
    verified = await zerotouch(stack, "verify", "app-dump", "--backup", backup_id, "--json", *connection(stack))
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["backup_id"] == backup_id and report["rto_seconds"] is not None

    listed = await zerotouch(stack, "list", "--json")  # the policy names the repository
    (row,) = json.loads(listed.stdout)
    assert row["manifest"]["id"] == backup_id and row["state"] == "verified" and "files" not in row["manifest"]
    table = (await zerotouch(stack, "list")).stdout
    assert "VERIFICATION" in table and backup_id in table and "verified" in table
    shown = (await zerotouch(stack, "show", backup_id)).stdout
    assert f"backup {backup_id}: verified" in shown and "ok   files match the manifest" in shown
    assert "public.orders" in shown

    held = await zerotouch(stack, "hold", backup_id, "--by", "legal", "--reason", "case 42")
    assert held.returncode == 0 and "legal hold" in held.stdout
    assert json.loads((await zerotouch(stack, "show", backup_id, "--json")).stdout)["hold"]["reason"] == "case 42"
    pruned = await zerotouch(stack, "prune", "app-dump", "--dry-run", *connection(stack))
    assert pruned.returncode == 0 and "would delete 0" in pruned.stdout and "legal hold" in pruned.stdout
    released = await zerotouch(stack, "release", backup_id, "--by", "legal")
    assert released.returncode == 0
    again = await zerotouch(stack, "release", backup_id, "--by", "legal")
    assert again.returncode == 1 and "not on legal hold" in again.stderr


async def test_the_cli_names_what_is_wrong(stack: BackupStack) -> None:
    unknown = await zerotouch(stack, "verify", "no-such-target", *connection(stack))
    assert unknown.returncode == 2 and "no backup target 'no-such-target'" in unknown.stderr
    assert "app, app-dump" in unknown.stderr
    missing = await zerotouch(stack, "show", "app-20990101T000000Z")
    assert missing.returncode == 1 and "no backup 'app-20990101T000000Z'" in missing.stderr
    bad_time = await zerotouch(stack, "verify", "app", "--target-time", "yesterday", *connection(stack))
    assert bad_time.returncode == 2 and "not an ISO 8601 time" in bad_time.stderr
    failed = await zerotouch(stack, "verify", "app", *connection(stack))  # nothing to verify yet
    assert failed.returncode == 1 and "nothing to verify" in failed.stderr
