"""Golden histories of ScheduledJobWorkflow replay against the current code.

Record them again with `ZEROTOUCH_RECORD_HISTORIES=1 pytest tests/schedules/test_runs.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from workflows.scheduled_job import ScheduledJobWorkflow
from zerotouch.temporal import data_converter

HISTORIES = Path(__file__).parent / "histories"


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Replay a finished run against today's code; with ZEROTOUCH_RECORD_HISTORIES=1 keep it as golden."""
    history = await handle.fetch_history()
    await Replayer(workflows=[ScheduledJobWorkflow], data_converter=data_converter()).replay_workflow(history)
    if os.environ.get("ZEROTOUCH_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())


def test_a_golden_history_exists() -> None:
    assert sorted(HISTORIES.glob("*.json")), "record one (see the module docstring)"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    text = path.read_text()
    workflow_id = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    replayer = Replayer(workflows=[ScheduledJobWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id, text))
