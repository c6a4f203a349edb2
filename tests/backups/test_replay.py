"""Golden histories of the backup workflows replay against the current code.

Record them again with `ZEROTOUCH_RECORD_HISTORIES=1 pytest tests/backups/test_workflows.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from tests.support import histories
from workflows.backup import BackupRetentionWorkflow, BackupVerificationWorkflow, BackupWorkflow
from zerotouch.backups import BACKUP_WORKFLOW, RETENTION_WORKFLOW, VERIFICATION_WORKFLOW

HISTORIES = Path(__file__).parent / "histories"
WORKFLOWS = [BackupWorkflow, BackupVerificationWorkflow, BackupRetentionWorkflow]


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Replay a finished run against today's code; with ZEROTOUCH_RECORD_HISTORIES=1 keep it as golden."""
    await histories.replay_and_record(handle, name, WORKFLOWS, HISTORIES)


def test_every_backup_workflow_has_a_golden_history() -> None:
    started = [json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
               for path in HISTORIES.glob("*.json")]
    types = {attributes["workflowType"]["name"] for attributes in started}
    assert types >= {BACKUP_WORKFLOW, VERIFICATION_WORKFLOW, RETENTION_WORKFLOW}, "record them (module docstring)"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    await histories.replay_file(path, WORKFLOWS)
