"""The Temporal Web UI as the operator console (issue #18), in a real browser against `zerotouch up --sandbox`.

An operator finds the incident that waits for them through a saved view, reads it decoded
(its input, its status), approves it from the Update dialog, and sees it move on.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from selenium.webdriver import Chrome
from temporalio.client import Client

from tests.console.up import ConsoleUp
from tests.console.webui import WebUI
from tests.support.policies import REPO
from zerotouch.binaries import temporal_cli
from zerotouch.names import UPDATE_APPROVE

# The README's saved views, run here exactly as written there.
_SAVED_VIEW = re.compile(r"^\| (?P<name>[^|`]+?) \| `(?P<query>[^`]+)` \|", re.MULTILINE)
APPROVER = "bob"  # in the shipped policy's approvers


def saved_views() -> dict[str, str]:
    views = {match["name"]: match["query"] for match in _SAVED_VIEW.finditer((REPO / "README.md").read_text())}
    assert {"escalated incidents", "awaiting approval", "P0/P1 open"} <= set(views), views
    return views


def listed(up: ConsoleUp, query: str) -> set[str]:
    """Workflow IDs that `temporal workflow list --query` finds, as an operator would run it."""
    result = subprocess.run([temporal_cli(), "workflow", "list", "--address", up.temporal, "--query", query,
                             "--output", "json"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"the List Filter {query!r} was refused: {result.stderr}"
    return {row["execution"]["workflowId"] for row in json.loads(result.stdout or "[]")}


def wait_for_state(up: ConsoleUp, incident_id: str, accept: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """`zerotouch incidents` until the incident is in one of ``accept``; then `zerotouch show` of it."""
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rows = {row["incident_id"]: row for row in json.loads(up.cli("incidents", "--json"))}
        if rows.get(incident_id, {}).get("state") in accept:
            shown = json.loads(up.cli("show", incident_id, "--json"))
            return shown
        shown = rows.get(incident_id, {})
        time.sleep(0.3)
    raise AssertionError(f"{incident_id} did not reach {accept} in {timeout}s: {shown}")


def wait_listed(up: ConsoleUp, query: str, expected: set[str], timeout: float = 15.0) -> None:
    """Visibility follows the workflow's search attributes within moments, not at once."""
    deadline = time.monotonic() + timeout
    found = listed(up, query)
    while found != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{query!r} listed {found}, not {expected}")
        time.sleep(0.3)
        found = listed(up, query)


async def update_input_encoding(up: ConsoleUp, incident_id: str) -> bytes:
    """The ``encoding`` of the approve update's input as stored in history, read without the codec."""
    raw = await Client.connect(up.temporal)
    async for event in raw.get_workflow_handle(incident_id).fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == UPDATE_APPROVE:
                encoding: bytes = request.input.args.payloads[0].metadata["encoding"]
                return encoding
    raise AssertionError(f"no accepted {UPDATE_APPROVE!r} update in the history of {incident_id}")


async def test_an_operator_approves_an_incident_from_the_web_ui(browser: Chrome, console_up: ConsoleUp,
                                                                artifacts: Path) -> None:
    up = console_up
    views = saved_views()
    # Something to approve (every action needs an approver in approve-all) and something no runbook covers.
    up.cli("sandbox", "inject", "crashloop", "shop/web")
    [waiting] = json.loads(up.cli("fire", "KubePodCrashLooping", "--label", "namespace=shop",
                                  "--label", "deployment=web", "--label", "severity=critical"))["incidents"]
    [escalated] = json.loads(up.cli("fire", "MysteryAlert", "--label", "namespace=shop",
                                    "--label", "deployment=checkout", "--label", "severity=page"))["incidents"]
    wait_for_state(up, waiting, {"awaiting_approval"})
    wait_for_state(up, escalated, {"escalated"})
    # The saved views find them through the search attributes the incidents keep up to date.
    wait_listed(up, views["awaiting approval"], {waiting})
    wait_listed(up, views["escalated incidents"], {escalated})
    wait_listed(up, views["P0/P1 open"], {waiting, escalated})

    ui = WebUI(browser, up.ui, artifacts)
    ui.open_list(views["awaiting approval"])
    ui.until(lambda: waiting in ui.list_rows(), "the awaiting-approval view listing the incident")
    assert escalated not in ui.list_rows()
    ui.screenshot("1-saved-view-awaiting-approval")

    # Decoded: the input as JSON through the codec endpoint, not base64 ciphertext.
    ui.open_workflow(waiting)
    ui.until(lambda: f'"incident_id": "{waiting}"' in ui.input_text(), "the input decoded to JSON")
    ui.screenshot("2-incident-decoded")
    ui.open_workflow(waiting, "query")
    status = ui.run_query("status")
    assert '"state": "awaiting_approval"' in status and '"what": "restart_deployment on shop/web"' in status
    ui.screenshot("3-status-query-decoded")
    ui.open_workflow(waiting, "user-metadata")
    details = ui.until(ui.current_details, "the current details")
    assert details.startswith("**awaiting_approval**"), details
    assert "awaiting approval: restart_deployment on shop/web" in details, details

    ui.open_workflow(waiting)
    ui.send_update(UPDATE_APPROVE, {"by": APPROVER, "note": "approved from the console"}, shot="4-approve-dialog")
    # The UI had the codec encode its input (json/plain in), so the history holds only ciphertext.
    [encoded] = [request for request in ui.network("/encode") if request["method"] == "POST"]
    [sent] = json.loads(encoded["body"])["payloads"]
    assert base64.b64decode(sent["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(sent["data"])) == {"by": APPROVER, "note": "approved from the console"}
    assert await update_input_encoding(up, waiting) == b"binary/encrypted"

    # It moves on: approved by bob, restarted once, resolved (and closed after the short cooldown);
    # off the awaiting-approval view.
    shown = wait_for_state(up, waiting, {"resolved", "closed"})
    approvals = [entry for entry in shown["timeline"] if entry["kind"] == "approval" and entry["actor"] == APPROVER]
    assert approvals and "approved from the console" in approvals[0]["message"], shown["timeline"]
    restarts = [a for a in json.loads(up.cli("sandbox", "actions")) if a["kind"] == "restart" and a["name"] == "web"]
    assert len(restarts) == 1
    wait_listed(up, views["awaiting approval"], set())
    ui.open_workflow(waiting, "user-metadata")
    ui.until(lambda: ui.current_details().startswith(("**resolved**", "**closed**")),
             "the current details saying resolved")
    ui.screenshot("5-resolved-current-details")
