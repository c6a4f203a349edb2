"""`python -m bench.scenarios.knobs`: which worker knob moves zerotouch's latency relative to the floor (issue #19).

One stack per configuration (fresh dev server); in each, zerotouch's worker runs with the knobs turned
(`bench.tuned_worker`) while the floor's worker keeps the shipped settings, so the floor is the same
reference in every configuration and zerotouch / floor shows the knob's effect on zerotouch alone.
Samples back to back, idle and under 50 alerts/s, zerotouch and floor interleaved as in scenario 2.
Configurations are repeated in rotated order, so each one's spread can be seen. Not part of `python -m bench`
(it takes minutes per configuration); its results are quoted in BENCHMARKS.md's findings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.alerts import NOISE_ALERT, RESTART_ALERT, incident_id, labels_for, webhook
from bench.breakdown import STEPS, breakdown
from bench.policy import bench_policy
from bench.scenarios.floor import (
    FLOOR_TARGET,
    REPO,
    floor_sample,
    floor_workflow_id,
    ratio,
    start_floor_worker,
    times,
)
from bench.scenarios.latency import BACKGROUND_PER_SECOND, NOISE_POOL, TARGET, Background, timed_sample
from bench.stack import zerotouch_stack
from bench.stats import median, ms, percentile
from bench.worker_knobs import Knobs
from zerotouch.activity_names import RESTART_DEPLOYMENT

CONFIGS: dict[str, Knobs] = {
    "shipped": Knobs(),
    "polls-10": Knobs(worker={"max_concurrent_workflow_task_polls": 10, "max_concurrent_activity_task_polls": 10}),
    "nonsticky-1.0": Knobs(worker={"nonsticky_to_sticky_poll_ratio": 1.0}),
    "autoscale-polls": Knobs(autoscale_polls=True),
    "threads-128": Knobs(threads=128),
    "threads-8": Knobs(threads=8),
    "uvloop": Knobs(uvloop=True),
}
# The floor with its activity on the workflow's own queue (eagerly executed) as well: what eager
# activity execution is worth on this server, which zerotouch's split queues cannot have.
EAGER_FLOOR = "eager-floor"
# The production shape the README describes: the kubernetes queue's worker in a process of its own.
SPLIT = "split-kubernetes"


async def measure(workdir: Path, policy_path: Path, name: str, samples: int) -> dict[str, Any]:
    knobs = CONFIGS.get(name, Knobs())
    eager = name == EAGER_FLOOR
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    worker_cli = [sys.executable, "-m", "bench.tuned_worker", knobs.dumps()]
    label = {EAGER_FLOOR: "floor also eager", SPLIT: "kubernetes queue in its own worker process"}
    result: dict[str, Any] = {"config": name, "label": label.get(name, knobs.label)}
    async with zerotouch_stack(workdir, policy_path=policy_path, extra_env=env, worker_cli=worker_cli,
                               split_kubernetes=name == SPLIT) as stack:
        start_floor_worker(stack, same_queue=eager)
        names = [f"knobs-{block}-{i}" for block in ("idle", "load") for i in range(samples)]
        for namespace in [*names, "knobs-floor-warmup"]:
            await stack.create_deployments(namespace, [TARGET, FLOOR_TARGET])
        await floor_sample(stack, "knobs-floor-warmup", timeout=90.0)
        if eager:
            await stack.create_deployments("knobs-eager-warmup", [FLOOR_TARGET])
            await floor_sample(stack, "knobs-eager-warmup", same_queue=True, timeout=90.0)
        async with httpx.AsyncClient(timeout=30.0) as http:
            for i in range(NOISE_POOL):
                await stack.post_alert(http, webhook(labels_for(NOISE_ALERT, "bench-noise", f"noise-{i}")))
            await asyncio.sleep(5.0)
            for block in ("idle", "load"):
                ours: list[float] = []
                floor: list[float] = []
                eager_floor: list[float] = []
                moments: list[tuple[str, float, float]] = []
                background = Background(stack, BACKGROUND_PER_SECOND) if block == "load" else None
                if background is not None:
                    background.__enter__()
                    await asyncio.sleep(2.0)
                try:
                    for number, namespace in enumerate(n for n in names if n.startswith(f"knobs-{block}-")):
                        turns = ["floor", "ours", *(["eager"] if eager else [])]
                        for turn in turns if number % 2 else list(reversed(turns)):
                            if turn == "ours":
                                latency, _, moment = await timed_sample(stack, http, namespace, TARGET)
                                ours.append(latency)
                                moments.append((namespace, *moment))
                            elif turn == "floor":
                                floor.append(await floor_sample(stack, namespace))
                            else:
                                eager_floor.append(await eager_sample(stack, namespace))
                            await asyncio.sleep(0.1)
                finally:
                    if background is not None:
                        await background.stop()
                ids = [incident_id(labels_for(RESTART_ALERT, ns, TARGET)) for ns, _, _ in moments]
                steps = [await breakdown(stack.client, workflow_id, sent, at)
                         for workflow_id, (_, sent, at) in zip(ids, moments, strict=True)]
                result[block] = {"ours": ours, "floor": floor, "eager_floor": eager_floor,
                                 "steps": {step: median([s[step] for s in steps if step in s]) for step in STEPS},
                                 "waits": await waits(stack.client, ids),
                                 "floor_waits": await waits(stack.client, [
                                     floor_workflow_id(n) for n in names if n.startswith(f"knobs-{block}-")])}
    return result


async def waits(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """Median seconds queued (scheduled → started: dispatch to a poller) and running (started → completed),
    for workflow tasks and per activity type, up to the first action."""
    found: dict[str, list[float]] = {}
    for workflow_id in workflow_ids:
        scheduled: dict[int, tuple[str, float]] = {}
        started: dict[int, float] = {}
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            at = event.event_time.ToDatetime().timestamp()
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled[event.event_id] = ("workflow task", at)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
            elif kind in (EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED):
                attributes = (event.workflow_task_started_event_attributes
                              if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
                              else event.activity_task_started_event_attributes)
                name, began = scheduled[attributes.scheduled_event_id]
                started[attributes.scheduled_event_id] = at
                found.setdefault(f"{name} queued", []).append(at - began)
            elif kind in (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED):
                done = (event.workflow_task_completed_event_attributes
                        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                        else event.activity_task_completed_event_attributes)
                key = done.scheduled_event_id
                if key in started:
                    found.setdefault(f"{scheduled[key][0]} running", []).append(at - started[key])
                if scheduled.get(key, ("", 0.0))[0] == RESTART_DEPLOYMENT:
                    break  # the first action is done: what follows (verification) is not on the measured path
    return {name: median(values) for name, values in sorted(found.items())}


async def eager_sample(stack: Any, namespace: str) -> float:
    """The eager floor acts on a deployment of its own (one restart per deployment is timed)."""
    target = f"{namespace}-eager"
    await stack.create_deployments(target, [FLOOR_TARGET])
    return await floor_sample(stack, target, same_queue=True)


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| configuration | run | block | zerotouch p50 / p99 | floor p50 / p99 | zerotouch / floor p50 | p99 |"
             " first wf task | load_policy | request_grant | restart → PATCH |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        for block in ("idle", "load"):
            data = result[block]
            ours, floor = data["ours"], data["floor"]
            steps = data["steps"]
            extra = ""
            if data["eager_floor"]:
                extra = f" (eager floor p50 {ms(percentile(data['eager_floor'], 50))})"
            lines.append(
                f"| {result['label']} | {result['repeat']} | {block} | {ms(percentile(ours, 50))} / "
                f"{ms(percentile(ours, 99))} "
                f"| {ms(percentile(floor, 50))} / {ms(percentile(floor, 99))}{extra} | "
                f"{times(ratio(ours, floor, 50))} | {times(ratio(ours, floor, 99))} | "
                + " | ".join(ms(steps[s]) for s in (STEPS[1], STEPS[2], STEPS[4], STEPS[6])) + " |")
    return lines


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    scratch = Path(tempfile.mkdtemp(prefix="zerotouch-knobs-"))
    policy_path = bench_policy(scratch / "policy.yaml")
    results: list[dict[str, Any]] = []
    configs = args.config or [*CONFIGS, EAGER_FLOOR, SPLIT]
    try:
        await _measure_all(args, scratch, policy_path, configs, results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # a dev server's files per configuration: hundreds of MiB
    return results


async def _measure_all(args: argparse.Namespace, scratch: Path, policy_path: Path, configs: list[str],
                       results: list[dict[str, Any]]) -> None:
    for repeat in range(args.repeat):
        for name in configs[repeat % len(configs):] + configs[:repeat % len(configs)]:
            began = time.monotonic()
            result = await measure(scratch / f"{name}-{repeat}", policy_path, name, args.samples)
            result["repeat"] = repeat
            results.append(result)
            with open(args.out, "a") as out:
                out.write(json.dumps(result) + "\n")
            idle, load = result["idle"], result["load"]
            print(f"knobs: {name} #{repeat} in {time.monotonic() - began:.0f} s: idle "
                  f"{times(ratio(idle['ours'], idle['floor'], 50))}/{times(ratio(idle['ours'], idle['floor'], 99))}"
                  f", load {times(ratio(load['ours'], load['floor'], 50))}/"
                  f"{times(ratio(load['ours'], load['floor'], 99))}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.knobs", description=__doc__)
    parser.add_argument("--config", action="append", choices=[*CONFIGS, EAGER_FLOOR, SPLIT])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--samples", type=int, default=15, help="pairs per block")
    parser.add_argument("--out", default="knobs.jsonl", help="results, one JSON line per configuration run")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print("\n".join(table(sorted(results, key=lambda r: r["config"]))))


if __name__ == "__main__":
    main()
