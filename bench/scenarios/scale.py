"""Scenario 3b: scenario 3's storm with 1, 2 and 4 worker processes, and with one process per task queue.

Each shape gets a fresh stack, so no shape inherits another's history; what changes between them is
only how the workers are laid out. CPU seconds per process kind, set against the drain time, name
what stops drain time from scaling on this machine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.breakdown import activity_waits
from bench.report import Goal, Section
from bench.scenarios.storm_load import StormPlan, StormResult, measure
from bench.stack import zerotouch_stack
from bench.stats import median, percentile
from zerotouch.names import ALL_QUEUES

TITLE = "3b. Storm scaled out: 1, 2, 4 workers and one per queue"
# Each entry is one worker process's queues; empty serves them all (`zerotouch worker` without --queue).
SHAPES: dict[str, list[tuple[str, ...]]] = {
    "1 worker": [()],
    "2 workers": [(), ()],
    "4 workers": [(), (), (), ()],
    "one per queue": [(queue,) for queue in ALL_QUEUES],
}
# Scenario 3's quick run already is the one-worker shape; CI only proves that several workers share the storm.
QUICK_SHAPES = ("2 workers",)
BUSY = 0.85  # a share of the cores above which the CPU is what everything waits for
GRANT_SAMPLES = 30


@dataclass
class ShapeRun:
    name: str
    processes: int
    result: StormResult
    grant_queued: float  # p50 seconds a request_grant waited for a worker slot
    grant_running: float  # p50 seconds it then waited for the Governor's answer
    alive: int  # worker processes still running after the storm

    def cores(self, *names: str) -> float:
        """CPU cores these processes kept busy on average while the storm drained."""
        return sum(self.result.cpu.get(name, 0.0) for name in names) / self.result.drain_seconds

    @property
    def workers(self) -> list[str]:
        return [name for name in self.result.cpu if name.startswith("worker")]


def bound(run: ShapeRun, cores: int) -> str:
    """What the shape's drain waited for, judged from its own numbers (the rule is in the section's notes)."""
    machine = run.result.machine_cpu / run.result.drain_seconds
    temporal = run.cores("temporal")
    to_action = median(run.result.to_action)
    ours = run.cores(*run.result.cpu)
    if machine >= BUSY * cores:
        # On a shared machine the cores may be taken by others' work: say whose they were.
        whose = "" if ours >= machine / 2 else ", most of it others' work on this shared machine"
        return (f"the machine's CPU{whose} ({machine:.1f} of {cores} cores busy, {ours:.1f} of them this stack's: "
                f"the dev server {temporal:.1f}, the workers {run.cores(*run.workers):.1f})")
    if run.grant_running >= to_action / 2:
        return f"the Governor (a grant waits {run.grant_running:.1f} s of {to_action:.1f} s to action)"
    return (f"the dev server ({temporal:.1f} cores while the machine had {cores - machine:.1f} idle; "
            "dispatch and SQLite writes, not CPU)")


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> Section:
    plan = StormPlan.sized(quick=quick)
    runs: list[ShapeRun] = []
    for name, shape in SHAPES.items():
        if quick and name not in QUICK_SHAPES:
            continue
        runs.append(await _shape(workdir / name.replace(" ", "-"), policy_path, plan, name, shape, quick=quick))
    return section(plan, runs, cores=os.cpu_count() or 1)


async def _shape(workdir: Path, policy_path: Path, plan: StormPlan, name: str, shape: Sequence[Sequence[str]],
                 *, quick: bool) -> ShapeRun:
    async with zerotouch_stack(workdir, policy_path=policy_path, worker_queues=shape) as stack:
        await plan.create_targets(stack)
        result = await measure(stack, plan, timeout=120.0 if quick else 900.0)
        ids = plan.ids
        sample = ids[:: max(1, len(ids) // GRANT_SAMPLES)]
        waits = (await activity_waits(stack.client, sample)).get("request_grant", {})
        alive = sum(worker.alive() for worker in stack.workers)
    return ShapeRun(name=name, processes=len(shape), result=result, grant_queued=median(waits.get("queued", [])),
                    grant_running=median(waits.get("running", [])), alive=alive)


def section(plan: StormPlan, runs: list[ShapeRun], *, cores: int) -> Section:
    alerts, deliveries = plan.alerts, plan.deliveries
    first = runs[0].result.drain_seconds if runs else math.nan

    def row(label: str, cell: Callable[[ShapeRun], str]) -> list[str]:
        return [label, *(cell(one) for one in runs)]

    def seconds(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1f} s"

    table = [
        ["", *(one.name for one in runs)],
        row("worker processes",
            lambda r: f"{r.processes} ({'one queue' if r.name == 'one per queue' else 'all queues'} each)"),
        row("deliveries answered 200", lambda r: f"{r.result.counts.get('200', 0)} of {deliveries}"),
        row("ingest time", lambda r: f"{r.result.ingest_seconds:.1f} s ({deliveries / r.result.ingest_seconds:.0f}/s)"),
        row("drain time (first delivery → last first action)",
            lambda r: f"{r.result.drain_seconds:.1f} s" + ("" if r.result.drained else " (timed out)")),
        row(f"drain time relative to {runs[0].name if runs else ''}",
            lambda r: f"{r.result.drain_seconds / first:.2f}"),
        row("detected → action p50 / p95", lambda r: f"{percentile(r.result.to_action, 50):.1f} s / "
                                                    f"{percentile(r.result.to_action, 95):.1f} s"),
        row("incidents / restarts / cooldown violations",
            lambda r: f"{r.result.incidents} / {len(r.result.actions)} / {r.result.too_close}"),
        row("CPU s: dev server / relay / workers (sum) / sandbox",
            lambda r: f"{r.result.cpu.get('temporal', 0.0):.0f} / {r.result.cpu.get('relay', 0.0):.0f} / "
                      f"{sum(r.result.cpu[w] for w in r.workers):.0f} / {r.result.cpu.get('sandbox', 0.0):.0f}"),
        row(f"dev server CPU (CPU s / drain s, of {cores} cores)", lambda r: f"{r.cores('temporal'):.2f}"),
        row(f"all of the stack's processes / whole machine (cores of {cores})",
            lambda r: f"{r.cores(*r.result.cpu):.2f} / {r.result.machine_cpu / r.result.drain_seconds:.2f}"),
        row("worker RSS peak: largest process / all summed",
            lambda r: f"{max((r.result.peak.get(w, 0.0) for w in r.workers), default=0.0):.0f} / "
                      f"{sum(r.result.peak.get(w, 0.0) for w in r.workers):.0f} MiB"),
        row("request_grant p50: queued for a slot / waiting on the Governor",
            lambda r: f"{seconds(r.grant_queued)} / {seconds(r.grant_running)}"),
        row("request_grant attempts failed and retried (worker logs)", lambda r: str(r.result.grant_failures)),
        row("worker processes alive after the storm", lambda r: f"{r.alive} of {r.processes}"),
        row("bound", lambda r: bound(r, cores)),
    ]
    exact = [r for r in runs if r.result.none_lost(plan)]
    acted = [r for r in runs if len(r.result.actions) == alerts]
    best = min(runs, key=lambda r: r.result.drain_seconds) if runs else None
    return Section(
        title=TITLE,
        how=(f"Section 3's storm ({deliveries} deliveries, {alerts} distinct alerts, the same seed) once per shape, "
             "each on a fresh stack (dev server, sandbox, relay): 1, 2 and 4 `zerotouch worker` processes serving "
             f"every task queue, and one `zerotouch worker --queue <q>` process per queue ({len(ALL_QUEUES)}). "
             "CPU seconds from the first delivery to the drain; cores = CPU seconds / drain seconds. The whole "
             "machine's figure is /proc/stat's busy time, other sessions' work on this shared machine included."),
        table=table,
        goals=[Goal(f"exactly {alerts} incidents, none lost, in every shape", len(exact) == len(runs),
                    ", ".join(f"{r.name}: {r.result.incidents} incidents, {r.result.received} + "
                              f"{r.result.absorbed} absorbed = {r.result.received + r.result.absorbed}/{deliveries} "
                              "alerts counted" for r in runs)),
               Goal(f"actions ≤ {alerts} and none missing, in every shape", len(acted) == len(runs),
                    ", ".join(f"{r.name}: {len(r.result.actions)}" for r in runs)),
               Goal("never two on one target inside its cooldown, in every shape",
                    all(r.result.too_close == 0 for r in runs),
                    f"{sum(r.result.too_close for r in runs)} violations"),
               Goal("drain time by shape (no bar)", None,
                    ", ".join(f"{r.name} {r.result.drain_seconds:.1f} s" for r in runs)),
               Goal("what bounds scaling out (no bar)", None, bound(best, cores) if best else "n/a")],
        notes=[f"Bound, per shape, from its own numbers: the machine's CPU when the whole machine was at least "
               f"{BUSY:.0%} busy (noting when most of that was not this stack's); else the Governor when a "
               "grant's wait for its answer was at least half the median detection → action; else the dev server "
               "(task dispatch and SQLite writes, which more worker processes cannot share out)."],
        data={r.name: {"processes": r.processes, "ingest_seconds": r.result.ingest_seconds,
                       "drain_seconds": r.result.drain_seconds, "to_action": r.result.to_action,
                       "cpu": r.result.cpu, "machine_cpu": r.result.machine_cpu, "peak": r.result.peak,
                       "grant_queued": r.grant_queued, "grant_running": r.grant_running}
              for r in runs},
    )
