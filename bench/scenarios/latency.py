"""Scenario 2: webhook sent to the relay → remediation PATCH received by the sandbox, idle and under load."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import httpx

from bench.alerts import NOISE_ALERT, RESTART_ALERT, incident_id, labels_for, webhook
from bench.breakdown import breakdown
from bench.breakdown import table as breakdown_table
from bench.procs import cpu_seconds
from bench.profile import Profile
from bench.report import Goal, Section
from bench.scenarios.floor import (
    FLOOR_TARGET,
    GOAL_RATIO,
    floor_sample,
    floor_workflow_id,
    ratio,
    start_floor_worker,
    times,
)
from bench.stack import Stack, zerotouch_stack
from bench.stats import median, ms, percentile

NAMESPACE = "bench-latency"
TARGET = "app"
SPACED_GAP_SECONDS = 4.0
BACKGROUND_PER_SECOND = 50
NOISE_POOL = 250


async def sample(stack: Stack, http: httpx.AsyncClient, namespace: str, name: str) -> tuple[float, float]:
    """(alert → first action, relay answer time), both in seconds, for one fresh target."""
    latency, answer, _ = await timed_sample(stack, http, namespace, name)
    return latency, answer


async def timed_sample(stack: Stack, http: httpx.AsyncClient, namespace: str,
                       name: str) -> tuple[float, float, tuple[float, float]]:
    """Also (sent, PATCH received) as wall-clock times, for the history breakdown."""
    body = webhook(labels_for(RESTART_ALERT, namespace, name))
    sent = time.time()
    status = await stack.post_alert(http, body)
    answered = time.time()
    if status != 200:
        raise RuntimeError(f"relay answered {status} for {namespace}/{name}")
    action = await stack.wait_action(namespace, name)
    return float(action["timestamp"]) - sent, answered - sent, (sent, float(action["timestamp"]))


class Background:
    """Alertmanager-like traffic at a fixed rate: repeats of open, runbook-less incidents."""

    def __init__(self, stack: Stack, per_second: int) -> None:
        self._stack = stack
        self._interval = 1.0 / per_second
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.seconds = 0.0

    async def _loop(self) -> None:
        pool = [webhook(labels_for(NOISE_ALERT, "bench-noise", f"noise-{i}")) for i in range(NOISE_POOL)]
        pending: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=64)) as http:
            async def one(body: bytes) -> None:
                try:
                    if await self._stack.post_alert(http, body) != 200:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1

            try:
                for number, body in enumerate(itertools.cycle(pool)):
                    # Paced by the clock, not by answers: a slow relay must not slow the load down.
                    delay = started + number * self._interval - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    task = asyncio.create_task(one(body))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    self.sent += 1
            finally:
                self.seconds = time.monotonic() - started
                if pending:
                    await asyncio.wait(pending, timeout=30)

    def __enter__(self) -> Background:
        self._task = asyncio.create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    rounds, per_block = (1, 5) if quick else (3, 40)
    spaced_per_block = 3 if quick else 10
    profiled = 5 if quick else 30
    # One namespace per sample: the sandbox lists pods by namespace, so its cost per request stays flat.
    names = [f"{NAMESPACE}-{i}" for i in range(rounds * (per_block * 2 + spaced_per_block) + profiled)]
    profile_lines: list[str] = []
    idle: list[float] = []
    loaded: list[float] = []
    spaced: list[float] = []
    answers: dict[str, list[float]] = {"idle": [], "load": [], "spaced": []}
    background_rates: list[float] = []
    failed = 0
    moments_of: dict[str, list[tuple[str, float, float]]] = {"idle": [], "spaced": []}
    steps: dict[str, list[dict[str, float]]] = {"idle": [], "spaced": []}
    busy: dict[str, float] = {}
    floor: dict[str, list[float]] = {"spaced": [], "idle": [], "load": []}
    floor_moments: list[tuple[str, float, float]] = []
    async with zerotouch_stack(workdir, policy_path=policy_path) as stack:
        start_floor_worker(stack)
        for namespace in names:
            await stack.create_deployments(namespace, [TARGET, FLOOR_TARGET])
        await stack.create_deployments("bench-floor-warmup", [FLOOR_TARGET])
        await floor_sample(stack, "bench-floor-warmup", timeout=90.0)  # the floor worker is up and warm
        targets = iter(names)
        cpu_before = {child.name: cpu_seconds(child.pid) for child in stack.children}
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=30.0) as http:
            # Open the noise incidents first, so the background really is repeats.
            for i in range(NOISE_POOL):
                await stack.post_alert(http, webhook(labels_for(NOISE_ALERT, "bench-noise", f"noise-{i}")))
            await asyncio.sleep(5.0)
            for round_no in range(rounds):
                blocks = ("spaced", "idle", "load")[round_no % 3:] + ("spaced", "idle", "load")[:round_no % 3]
                for block in blocks:
                    background = Background(stack, BACKGROUND_PER_SECOND) if block == "load" else None
                    if background is not None:
                        background.__enter__()
                        await asyncio.sleep(2.0)  # let the background reach its rate
                    try:
                        for number in range(spaced_per_block if block == "spaced" else per_block):
                            namespace = next(targets)
                            if block == "spaced":
                                await asyncio.sleep(SPACED_GAP_SECONDS)  # the previous incident has settled
                            # The floor's sample next to each of ours, first every other time.
                            for turn in (("floor", "ours") if number % 2 else ("ours", "floor")):
                                if turn == "floor":
                                    sent = time.time()
                                    floor[block].append(await floor_sample(stack, namespace))
                                    if block == "idle":
                                        floor_moments.append((namespace, sent, sent + floor[block][-1]))
                                else:
                                    latency, answer, moments = await timed_sample(stack, http, namespace, TARGET)
                                    if block in moments_of:
                                        moments_of[block].append((namespace, *moments))
                                    {"idle": idle, "load": loaded, "spaced": spaced}[block].append(latency)
                                    answers[block].append(answer)
                                # One at a time means one: the floor's pair settles too (its own gap is short).
                                await asyncio.sleep(1.0 if block == "spaced" else 0.1)
                    finally:
                        if background is not None:
                            await background.stop()
                            background_rates.append(background.sent / max(background.seconds, 1e-9))
                            failed += background.failed
            busy = {name: (cpu_seconds(child.pid) - cpu_before[name]) / (time.monotonic() - began)
                    for child in stack.children for name in [child.name]}
            for block, moments_list in moments_of.items():
                steps[block] = [
                    await breakdown(stack.client, incident_id(labels_for(RESTART_ALERT, namespace, TARGET)), sent,
                                    patched) for namespace, sent, patched in moments_list]
            steps["floor"] = [await breakdown(stack.client, floor_workflow_id(namespace), sent, patched)
                              for namespace, sent, patched in floor_moments]
            if Profile.available():
                # After the measured samples, not during them: py-spy costs the sampled process time.
                assert stack.worker is not None and stack.relay is not None
                with Profile(stack.worker.pid, workdir / "worker.pyspy") as worker_profile, \
                        Profile(stack.relay.pid, workdir / "relay.pyspy") as relay_profile:
                    for _ in range(profiled):
                        await sample(stack, http, next(targets), TARGET)
                        await asyncio.sleep(0.1)
                profile_lines = [f"py-spy on the worker over {profiled} more idle samples (not counted above): "
                                 + " ".join(worker_profile.summary()),
                                 "py-spy on the relay over the same samples: " + " ".join(relay_profile.summary())]
        journal = stack.journal_mode()
    steps_table = breakdown_table(steps["spaced"], steps["idle"], floor=steps["floor"])
    rows = [["", "samples", "p50", "p95", "p99", "max", "relay answered (p50)", "floor p50", "floor p99",
             "zerotouch / floor p50", "zerotouch / floor p99"]]
    goals: list[Goal] = []
    for label, short, values, key in (
            (f"idle, one incident at a time ({SPACED_GAP_SECONDS:g} s apart)", "one at a time", spaced, "spaced"),
            ("idle, back to back (~0.1 s apart; earlier incidents still verifying)", "back to back", idle, "idle"),
            (f"back to back under {BACKGROUND_PER_SECOND} alerts/s", f"under {BACKGROUND_PER_SECOND} alerts/s",
             loaded, "load")):
        least, r50, r99 = floor[key], ratio(values, floor[key], 50), ratio(values, floor[key], 99)
        rows.append([label, f"{len(values)} + {len(least)} floor", ms(percentile(values, 50)),
                     ms(percentile(values, 95)), ms(percentile(values, 99)), ms(max(values)),
                     ms(median(answers[key])), ms(percentile(least, 50)), ms(percentile(least, 99)),
                     times(r50), times(r99)])
        goals.append(Goal(f"{short}: zerotouch / floor ≤ {GOAL_RATIO:g}x at p50 and p99", r50 <= GOAL_RATIO
                          and r99 <= GOAL_RATIO, f"p50 {times(r50)} ({ms(percentile(values, 50))} / "
                          f"{ms(percentile(least, 50))}), p99 {times(r99)} ({ms(percentile(values, 99))} / "
                          f"{ms(percentile(least, 99))})"))
    return Section(
        title="2. Alert → first action latency",
        how=(f"From just before the webhook is sent to the relay until the sandbox API receives the remediation "
             f"PATCH (its action log's timestamp; same clock). Each sample is a fresh deployment "
             f"in its own namespace (`{RESTART_ALERT}` → runbook `bench-restart`: load policy, triage, Governor grant, "
             f"read + PATCH). {rounds} rounds, each of {spaced_per_block} samples one at a time "
             f"({SPACED_GAP_SECONDS:g} s apart, so earlier incidents have acted and mostly verified), {per_block} back "
             f"to back without load and {per_block} back to back under load, the order rotating. Back to back, "
             "each new incident arrives while the earlier ones' "
             f"rollout verifications still poll the sandbox. Load: {BACKGROUND_PER_SECOND} webhooks/s paced by the "
             "clock, repeats cycling over "
             f"{NOISE_POOL} open runbook-less incidents (`{NOISE_ALERT}`), as Alertmanager's repeats would be; "
             f"achieved {median(background_rates):.1f}/s, {failed} not answered 200. Embedded-default dev server "
             f"(SQLite journal `{journal}`, synchronous=normal). The floor: a bare workflow "
             "(`bench/floor_workflow.py`) started by signal-with-start from this process, whose one activity is "
             "zerotouch's own `restart_deployment` (the same read + PATCH), served by a worker process built with "
             "zerotouch's worker settings (`bench/floor_worker.py`: workflow and activity on queues of their own, "
             "the same thread pool and slots, the same client interceptors) on the same dev server; one floor "
             "sample beside each of zerotouch's, first every other time, timed the same way (to the PATCH). The "
             "ratio is what is judged: absolute times move from machine to machine."),
        table=rows,
        goals=[*goals,
               Goal("p50 ≤ 100 ms, p99 ≤ 300 ms in every row (absolute: this machine's, not judged)", None,
                    "; ".join(f"{key} p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}"
                              for key, values in (("one at a time", spaced), ("back to back", idle),
                                                  ("under load", loaded))))],
        more=[("Where the idle samples' time went, from their workflow histories (server event times; the floor's "
               "back-to-back samples beside them):",
               steps_table)],
        notes=["CPU cores busy on average during the measured blocks: "
               + ", ".join(f"{name} {value:.2f}" for name, value in busy.items()),
               *profile_lines],
        data={"steps": steps, "spaced": spaced, "idle": idle, "load": loaded, "answers": answers, "floor": floor,
              "background_rates": background_rates, "busy": busy},
    )
