"""Findings drawn from this run's numbers: which goal was missed, where the time went, what to change.

The causes named here were found with the profiles and history breakdowns this harness records;
the proposed fixes are for code the benchmark does not own (`workflows/`, `activities/`, `workers/`).
"""

from __future__ import annotations

from typing import Any

from bench.breakdown import STEPS
from bench.report import Section
from bench.stats import median
from zerotouch.settings import WorkerSettings

# The heaviest steps of the first-action path: what was already done about each (found by
# profiling earlier runs), and what is left to try.
_STEP_NOTES = {
    STEPS[1]: "done: the stateless helpers (`workflows.incident_*`) pass through the workflow sandbox "
              "(`PASSTHROUGH_MODULES` in `workers/run.py`), so a new incident re-imports only the definition "
              "module. Left: that import and the first activation itself",
    STEPS[2]: "done: the parsed policy is cached by path, mtime and size (`activities/policy.py`). Left: the "
              "activity round trip; the relay could pass the policy digest in `IncidentInput` so the call is "
              "skipped when the policy is unchanged",
    STEPS[4]: "done: a grant goes straight to a Governor this process knows runs, restarting it only if gone "
              "(`activities/governor.py`). Left: the update round trip and the Governor's workflow task",
    STEPS[6]: "done: the Kubernetes calls skip the client's model (de)serialisation (`_preload_content=False` "
              "in `activities/kubernetes.py`). Left: the read before the PATCH, which the idempotency check needs",
}


def _latency(section: Section) -> list[str]:
    steps: list[dict[str, float]] = section.data.get("steps", {}).get("spaced", [])
    if not steps:
        return []
    medians = {step: median([s[step] for s in steps if step in s]) for step in STEPS if any(step in s for s in steps)}
    total = sum(medians.values())
    lines = [f"First-action path (idle, one at a time; medians add up to {total * 1000:.0f} ms): " + "; ".join(
        f"{step} {value * 1000:.0f} ms ({value / total:.0%})"
        for step, value in sorted(medians.items(), key=lambda kv: -kv[1]))]
    for step, value in sorted(medians.items(), key=lambda kv: -kv[1])[:3]:
        if step in _STEP_NOTES:
            lines.append(f"Step `{step}` ({value * 1000:.0f} ms): {_STEP_NOTES[step]}.")
    alone, together = section.data.get("spaced", []), section.data.get("idle", [])
    if alone and together and median(together) > 1.5 * median(alone):
        lines.append(
            f"Back to back the same path took {median(together) / median(alone):.1f}x as long (p50 "
            f"{median(together) * 1000:.0f} vs {median(alone) * 1000:.0f} ms): every step adds tens of "
            "milliseconds, the workflow tasks as much as the activities, while no process is near busy (scenario 2's "
            "CPU line). It is not the verification polls' load: trials that polled rollouts once a second instead "
            "of every 0.2 s (p50 302 ms) or ran the kubernetes queue in its own worker process measured the "
            "same. The cause is not found; to look at next: the dev server's task dispatch and SQLite commits "
            "while many workflows are open (its task latency metrics), and the worker's task pollers.")
    return lines


def _ingest(section: Section) -> list[str]:
    cpu: dict[str, dict[str, float]] = section.data.get("cpu", {})
    if not cpu:
        return []
    relay = sum(cpu.get("relay", {}).values())
    raw = sum(cpu.get("raw", {}).values())
    share = cpu.get("relay", {}).get("relay", 0.0) / relay if relay else 0.0
    return [f"Ingest: the relay path used {relay / raw:.2f}x the CPU of the raw path for the same alerts "
            f"({share:.0%} of it in the relay process: uvicorn's HTTP protocol, FastAPI routing, payload "
            "validation, the Temporal client); on 2 cores that CPU is taken from the dev server, whose SQLite "
            "writes bound both paths. Found by profiling and fixed here: uvicorn's pure-Python h11 parser took "
            "over 40% of the relay's samples and Starlette's `BaseHTTPMiddleware` (the metrics middleware) ran "
            "every webhook through extra streams; the relay now parses with httptools, counts in a plain ASGI "
            "middleware, serialises its answer once, and runs on uvloop (`cli/commands.py`). Before, on the "
            "stock event loop, the ratio measured 0.83-0.85 in four runs."]


def _storm(section: Section) -> list[str]:
    data: dict[str, Any] = section.data
    if "drain_seconds" not in data:
        return []
    to_action: list[float] = data.get("to_action", [])
    waits: dict[str, dict[str, float]] = data.get("waits", {})
    slots = WorkerSettings().max_concurrent_activities
    lines = [f"Storm drain: ingest took {data['ingest_seconds']:.0f} s, the last first action came at "
             f"{data['drain_seconds']:.0f} s; per incident, detection → action took a median "
             f"{median(to_action):.1f} s."]
    if waits:
        queued = max(waits, key=lambda name: waits[name].get("queued", 0.0))
        running = max(waits, key=lambda name: waits[name].get("running", 0.0) if name != "wait_for_rollout" else 0.0)
        lines.append(
            f"The longest queueing was `{queued}` ({waits[queued]['queued']:.1f} s median from scheduled to started) "
            f"and the longest-running step before the action `{running}` ({waits[running].get('running', 0.0):.1f} s "
            f"median). `load_policy` and `request_grant` share the observe queue's {slots} slots: every grant holds a "
            "slot while it waits for the one Governor workflow that every grant passes through, so new "
            "incidents' `load_policy` calls queue behind grants. Proposed (outside `bench/`): give the Governor calls "
            "their own task queue or slot count in `workers/run.py`; skip `load_policy` when the policy is "
            "unchanged (see the latency findings); and keep the Governor's per-update work small as its book "
            "grows (`workflows/governor.py`).")
    lines.append(f"The Governor met the dev server's in-flight update limit {data.get('update_limit', 0)} times "
                 "(each a RESOURCE_EXHAUSTED the client retried with back-off). Fixed here: the embedded default "
                 "now starts the dev server with `history.maxInFlightUpdates=200` (`embedded/devserver.py`); before, "
                 "the default of 10 made grants back off while holding their observe slots.")
    return lines


def findings(sections: list[Section]) -> list[str]:
    lines: list[str] = []
    for section in sections:
        for goal in section.goals:
            if goal.met is False:
                lines.append(f"Missed: {section.title} - {goal.text}: {goal.detail}.")
    for section in sections:
        if section.error:
            continue
        if section.title.startswith("2."):
            lines += _latency(section)
        elif section.title.startswith("1."):
            lines += _ingest(section)
        elif section.title.startswith("3."):
            lines += _storm(section)
    return lines
