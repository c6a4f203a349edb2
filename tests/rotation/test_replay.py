"""Golden histories of the rotation workflows replay against the current code.

Record them again with `ZEROTOUCH_RECORD_HISTORIES=1 pytest tests/rotation/test_rotation_postgres.py
tests/rotation/test_rotation_oauth.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from tests.support import histories
from workflows.secret_rotation import ScheduledRotationWorkflow, SecretRotationWorkflow
from zerotouch.rotations import ROTATION_WORKFLOW

HISTORIES = Path(__file__).parent / "histories"
WORKFLOWS = [SecretRotationWorkflow, ScheduledRotationWorkflow]
EXPECTED = {"rotated-after-approval", "revoke-held", "rollback-update", "test-step-refused", "oauth-grace"}


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    await histories.replay_and_record(handle, name, WORKFLOWS, HISTORIES)


def test_every_rotation_path_has_a_golden_history() -> None:
    assert {path.stem for path in HISTORIES.glob("*.json")} >= EXPECTED, "record them (module docstring)"
    for path in HISTORIES.glob("*.json"):
        started = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
        assert started["workflowType"]["name"] == ROTATION_WORKFLOW


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    await histories.replay_file(path, WORKFLOWS)
