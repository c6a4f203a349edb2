"""Golden histories: replay a finished run against today's workflow code, and keep it when asked.

`ZEROTOUCH_RECORD_HISTORIES=1` makes the tests that finish runs write them as the goldens their
package's `test_replay.py` replays on every CI run; a change that breaks replay fails there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from zerotouch.temporal import data_converter


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str, workflows: Sequence[type],
                            directory: Path) -> None:
    """Replay the finished run; with ZEROTOUCH_RECORD_HISTORIES=1 keep it as ``directory/name.json``."""
    history = await handle.fetch_history()
    await Replayer(workflows=workflows, data_converter=data_converter()).replay_workflow(history)
    if os.environ.get("ZEROTOUCH_RECORD_HISTORIES") == "1":
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.json").write_text(history.to_json())


async def replay_file(path: Path, workflows: Sequence[type]) -> None:
    """Replay a kept history against today's code."""
    text = path.read_text()
    workflow_id = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    await Replayer(workflows=workflows, data_converter=data_converter()).replay_workflow(
        WorkflowHistory.from_json(workflow_id, text))
