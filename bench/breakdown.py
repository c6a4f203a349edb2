"""Where an incident's time to first action goes, read from its workflow history."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import median

STEPS = ("relay → workflow started", "first workflow task (new workflow instance)", "load_policy activity",
         "triage workflow task", "request_grant activity (Governor update)", "workflow task after the grant",
         "restart_deployment: scheduled → PATCH received")


async def breakdown(client: Client, workflow_id: str, sent: float, patched: float) -> dict[str, float]:
    """Seconds per step, from the history's event times (server clock = this machine's clock)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    steps: dict[str, float] = {}
    scheduled: dict[int, tuple[str, float]] = {}
    task_started: float | None = None
    tasks: list[float] = []
    last_completed = 0.0
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            steps[STEPS[0]] = at - sent
            last_completed = at
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_started = at if task_started is None else task_started
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            # From the moment there was work (the previous step's end) to the task's completion.
            tasks.append(at - last_completed)
            last_completed = at
            task_started = None
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name, began = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id, ("", at))
            if name == "load_policy":
                steps[STEPS[2]] = at - began
            elif name == "request_grant":
                steps[STEPS[4]] = at - began
            last_completed = at
    for name, began in scheduled.values():
        if name == "restart_deployment":
            steps[STEPS[6]] = patched - began
    for index, label in ((0, STEPS[1]), (1, STEPS[3]), (2, STEPS[5])):
        if index < len(tasks):
            steps[label] = tasks[index]
    return steps


def table(alone: list[dict[str, float]], back_to_back: list[dict[str, float]],
          floor: list[dict[str, float]] | None = None) -> list[list[str]]:
    rows = [["step", "one at a time: median (max)", "back to back: median (max)"]]
    rows[0] += ["floor, back to back: median (max)"] if floor is not None else []
    for step in STEPS:
        cells = []
        for samples in (alone, back_to_back, *([floor] if floor is not None else [])):
            values = [sample[step] for sample in samples if step in sample]
            cells.append(f"{median(values) * 1000:.0f} ms ({max(values) * 1000:.0f} ms)" if values else "n/a")
        rows.append([step, *cells])
    return rows


async def activity_waits(client: Client, workflow_ids: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per activity type: seconds queued (scheduled → started) and running (started → completed)."""
    found: dict[str, dict[str, list[float]]] = {}
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        scheduled: dict[int, tuple[str, float]] = {}
        started: dict[int, float] = {}
        for event in history.events:
            at = event.event_time.ToDatetime().timestamp()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                key = event.activity_task_started_event_attributes.scheduled_event_id
                name, began = scheduled[key]
                started[key] = at
                found.setdefault(name, {"queued": [], "running": []})["queued"].append(at - began)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                key = event.activity_task_completed_event_attributes.scheduled_event_id
                if key in started:
                    found[scheduled[key][0]]["running"].append(at - started[key])
    return found


def waits_table(waits: dict[str, dict[str, list[float]]]) -> list[list[str]]:
    rows = [["activity", "queued (scheduled → started) p50 / max", "running p50 / max", "calls"]]
    for name, values in sorted(waits.items(), key=lambda kv: -median(kv[1]["queued"])):
        queued, running = values["queued"], values["running"]
        rows.append([f"`{name}`", f"{median(queued):.1f} s / {max(queued):.1f} s",
                     f"{median(running):.1f} s / {max(running, default=0.0):.1f} s" if running else "n/a",
                     str(len(queued))])
    return rows
