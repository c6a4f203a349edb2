"""Golden histories replay against the current code: a change that would break running incidents fails here.

Record new ones with `ZEROTOUCH_RECORD_HISTORIES=1 pytest tests/workflows/test_incident.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.incident import IncidentWorkflow
from zerotouch.temporal import data_converter

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_golden_histories_exist() -> None:
    assert len(HISTORIES) >= 5, "golden histories are missing; record them (see module docstring)"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_golden_history_replays(path: Path) -> None:
    workflow_id = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"].get(
        "workflowId", path.stem
    )
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    await Replayer(workflows=[IncidentWorkflow], data_converter=data_converter()).replay_workflow(history)
