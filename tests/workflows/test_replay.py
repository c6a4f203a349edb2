"""Golden histories replay against the current code: a change that would break running incidents fails here.

Every workflow type has some. Record new ones with
`ZEROTOUCH_RECORD_HISTORIES=1 pytest tests/workflows/test_incident.py tests/governor/test_governor_workflow.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.governor import GovernorWorkflow
from workflows.incident import IncidentWorkflow
from zerotouch.temporal import data_converter

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_golden_histories_exist() -> None:
    assert len(HISTORIES) >= 5, "golden histories are missing; record them (see module docstring)"


def test_every_workflow_type_has_a_golden_history() -> None:
    started = [json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
               for path in HISTORIES]
    types = {attributes["workflowType"]["name"] for attributes in started}
    assert types >= {IncidentWorkflow.__temporal_workflow_definition.name,  # type: ignore[attr-defined]
                     GovernorWorkflow.__temporal_workflow_definition.name}, types  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_golden_history_replays(path: Path) -> None:
    workflow_id = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"].get(
        "workflowId", path.stem
    )
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=[IncidentWorkflow, GovernorWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(history)
