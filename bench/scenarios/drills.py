"""Scenario 12: drills — each drill class once on the embedded default stack, MTTR split into detection,
zerotouch's own time and the sandbox's; then the watchdog's cost per check cycle (`drills_watchdog.py`).

A drill is `zerotouch drill run <class>` (`starters/drill.py`, the DrillWorkflow on the stack's worker
process). While it runs this process polls the sandbox every 50 ms for the target's health, the one
moment the drill itself does not record: when the sandbox finished recovering after zerotouch acted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import Section
from bench.scenarios.drills_report import DrillRun, section
from bench.scenarios.drills_setup import NAMESPACE, chosen, deployments, drills_policy
from bench.scenarios.drills_watchdog import watchdog_cycles
from bench.stack import Stack, zerotouch_stack
from starters.drill import DrillError, start_drill
from zerotouch.drills import Drill
from zerotouch.policy import load_policy

POLL_SECONDS = 0.05


async def _healthy(http: httpx.AsyncClient, sandbox_url: str, namespace: str, name: str) -> bool:
    """The sandbox's own verdict: the node Ready (namespace `node`), or the workload rolled out, available
    and fault-free."""
    if namespace == "node":
        answer = await http.get(f"{sandbox_url}/sandbox/v1/nodes/{name}")
        return bool(answer.json().get("ready") == "True")
    answer = await http.get(f"{sandbox_url}/sandbox/v1/health", params={"namespace": namespace, "deployment": name})
    return bool(answer.json().get("healthy"))


async def _sample(sandbox_url: str, drill: Drill, samples: list[tuple[float, bool]]) -> None:
    """(epoch seconds, healthy) until cancelled."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        while True:
            # A missed sample widens the bound by 50 ms; the drill's verdict does not depend on it.
            with contextlib.suppress(httpx.HTTPError, ValueError):
                samples.append((time.time(), await _healthy(http, sandbox_url, drill.namespace, drill.target_name)))
            await asyncio.sleep(POLL_SECONDS)


def healthy_after(samples: list[tuple[float, bool]], moment: float) -> float | None:
    """The first healthy sample at or after `moment` (epoch seconds)."""
    return next((at for at, healthy in samples if healthy and at >= moment), None)


async def _last_seq(stack: Stack) -> int:
    async with httpx.AsyncClient(timeout=30.0) as http:
        answer = await http.get(f"{stack.sandbox_url}/sandbox/v1/actions", params={"include_failed": "true"})
        return max((int(a["seq"]) for a in answer.json()["actions"]), default=0)


async def one_drill(stack: Stack, policy_path: Path, name: str) -> DrillRun:
    """Run the policy's drill `name` to its verdict and place the sandbox's recovery inside its MTTR."""
    policy = load_policy(policy_path)
    drill = policy.drills.named(name)
    before = await _last_seq(stack)
    samples: list[tuple[float, bool]] = []
    sampler = asyncio.create_task(_sample(stack.sandbox_url, drill, samples)) if drill.expect == "auto_resolved" \
        else None
    try:
        _, result = await start_drill(stack.client, policy, name, wait=True)
    except DrillError as error:
        return DrillRun(fault=drill.fault, expect=drill.expect, outcome="failed", passed=False, detail=str(error))
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler  # its HTTP client closed before the next drill starts
    assert result is not None
    # The watch's first action: the first successful write after injection (GET /actions leaves failed out).
    actions = [a for a in await stack.actions() if int(a["seq"]) > before]
    sandbox = None
    if actions and result.first_action_seconds is not None and result.recover_seconds is not None:
        acted = float(actions[0]["timestamp"])
        healthy = healthy_after(samples, acted)
        sandbox = None if healthy is None else healthy - acted
    return DrillRun(fault=result.fault, expect=result.expect, outcome=result.outcome, passed=result.passed,
                    detect=result.detect_seconds, first_action=result.first_action_seconds,
                    recovered=result.recover_seconds, sandbox=sandbox, actions=result.actions,
                    outside=result.outside_target, detail=result.detail)


async def _all_healthy(stack: Stack, names: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10.0) as http:
        for name in names:
            while True:
                # A sandbox starved of CPU can drop a connection (its listen backlog is 5): only the deadline fails.
                with contextlib.suppress(httpx.TransportError):
                    if await _healthy(http, stack.sandbox_url, NAMESPACE, name):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{NAMESPACE}/{name} did not become healthy in {timeout:.0f} s")
                await asyncio.sleep(0.1)


async def _drills(workdir: Path, declared: list[dict[str, Any]], *, warm_up: bool) -> tuple[list[DrillRun], float]:
    """Every declared drill, one after another, on one stack; (runs, wall seconds). Without `warm_up` the
    first drill's first action includes starting the Governor."""
    policy_path = drills_policy(workdir / "policy.yaml", declared)
    runs: list[DrillRun] = []
    began = time.monotonic()
    # The worker finds the relay the drills deliver to where `zerotouch up` leaves it: its state dir.
    async with zerotouch_stack(workdir / "stack", policy_path=policy_path, sandbox_tick=0.2, warm_up=warm_up,
                               extra_env={"ZEROTOUCH_STATE_DIR": str(workdir / "stack")}) as stack:
        (stack.workdir / "endpoints.json").write_text(json.dumps({"relay": stack.relay_url}))
        names = deployments(declared)
        await stack.create_deployments(NAMESPACE, names)
        await _all_healthy(stack, names)
        for drill in declared:
            runs.append(await one_drill(stack, policy_path, str(drill["name"])))
    return runs, time.monotonic() - began


async def run(workdir: Path, *, quick: bool) -> Section:
    declared: list[dict[str, Any]] = chosen(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    if quick:
        # CI proves the harness and asserts correctness only: the two stacks may share the machine, and
        # the drills' stack skips its warm-up incident.
        try:
            async with asyncio.TaskGroup() as group:
                drilled = group.create_task(_drills(workdir, declared, warm_up=False))
                watched = group.create_task(watchdog_cycles(workdir / "watchdog", declared, quick=quick))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the report shows one traceback, not a group's
        (runs, seconds), cycles = drilled.result(), watched.result()
    else:
        runs, seconds = await _drills(workdir, declared, warm_up=True)
        cycles = await watchdog_cycles(workdir / "watchdog", declared, quick=quick)
    return section(runs, cycles, quick=quick, drills_seconds=seconds)
