"""Scenario 11's report: what each node drain and each failover measured, and the section BENCHMARKS.md shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Goal, Section
from bench.stats import median

TITLE = "11. Recovery: node drain and PostgreSQL failover"


@dataclass
class Drain:
    pods: int  # on the node when it failed, the DaemonSet's not counted
    drain: float  # cordoned → last pod evicted (the recovery's own timeline)
    reschedule: float  # → every workload Ready elsewhere
    cordon_to_uncordon: float  # includes the sandbox's 1 s reboot
    total: float  # client: workflow start → result
    evicted: int  # of those pods, evicted through the Eviction API (answered 201)
    wrong: list[str] = field(default_factory=list)
    timed: bool = True  # the timeline has every step the durations are taken from


@dataclass
class Failover:
    failover: float  # primary stopped → the consumer's first committed INSERT on the new primary
    rejoined: float  # primary stopped → workflow result: old primary rewound, streaming, caught up
    written: int  # canary rows committed on the old primary
    rows_lost: int
    lag: str  # what the workflow's lag measurement said
    wrong: list[str] = field(default_factory=list)


def _spread(values: list[float]) -> list[str]:
    return [f"{median(values):.2f} s", f"{min(values):.2f} s", f"{max(values):.2f} s"] if values else ["n/a"] * 3


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def section(runs: list[Drain], failovers: list[Failover], *, pods: int, server: str) -> Section:
    drains = [d for d in runs if d.timed]
    timed = [f for f in failovers if f.failover > 0]  # a consumer that never wrote has no failover time
    counts = sorted({d.pods for d in runs}) or [pods]  # the filler may put a pod or two more than asked
    on_node = f"{counts[0]}-{counts[-1]}" if len(counts) > 1 else str(counts[0])
    table = [[f"measure ({_n(len(runs), 'drain')}, {_n(len(failovers), 'failover')})", "median", "min", "max"],
             [f"node drain, {on_node} pods: cordoned → last pod evicted", *_spread([d.drain for d in drains])],
             ["… then → every workload Ready elsewhere", *_spread([d.reschedule for d in drains])],
             ["node: cordon → uncordon (incl. the sandbox's 1 s reboot)",
              *_spread([d.cordon_to_uncordon for d in drains])],
             ["node: workflow start → result", *_spread([d.total for d in drains])],
             ["PostgreSQL failover: primary stop → first successful write", *_spread([f.failover for f in timed])],
             ["… → old primary rejoined via pg_rewind, streaming and caught up",
              *_spread([f.rejoined for f in timed])],
             ["canary rows lost", *(str(v) for v in ([int(median([f.rows_lost for f in failovers])),
                                                      min(f.rows_lost for f in failovers),
                                                      max(f.rows_lost for f in failovers)] if failovers else []))]]
    drains_ok = bool(runs) and not any(d.wrong for d in runs)
    failovers_ok = bool(failovers) and not any(f.wrong for f in failovers)
    lost = sum(f.rows_lost for f in failovers)
    goals = [
        Goal("every drain ended recovered, evicted every pod on the node, and no pod was deleted directly", drains_ok,
             f"{sum(not d.wrong for d in runs)}/{_n(len(runs), 'run')}; pods evicted per run: "
             f"{', '.join(f'{d.evicted}/{d.pods}' for d in runs)}"
             + ("" if drains_ok else "; " + "; ".join(w for d in runs for w in d.wrong)[:300])),
        Goal("every failover ended recovered and the old primary rejoined as a standby of the new one",
             failovers_ok, f"{sum(not f.wrong for f in failovers)}/{len(failovers)}"
             + ("" if failovers_ok else "; " + "; ".join(w for f in failovers for w in f.wrong)[:300])),
        Goal("failover: 0 canary rows lost", bool(failovers) and lost == 0,
             f"{lost} of {sum(f.written for f in failovers)} lost over {_n(len(failovers), 'run')}"),
        Goal(f"drain of {on_node} pods, median (no bar)", None, _spread([d.drain for d in drains])[0]),
        Goal("failover: primary stop → first successful write, median (no bar)", None,
             _spread([f.failover for f in timed])[0]),
    ]
    how = (f"Recoveries on the Temporal dev server (`WorkflowEnvironment.start_local`, in memory) with every "
           f"worker in the bench process (`workers.run.build_workers`), a fresh cluster name per run; the bench "
           f"policy with a `recovery` section. **Node drain** ({_n(len(runs), 'run')}): each a fresh sandbox "
           f"(controller tick 0.05 s) whose `sandbox-node-2` is filled by a `filler` deployment until it holds "
           f"{pods} pods that are not the DaemonSet's; the node fails NotReady "
           f"(`POST /sandbox/v1/nodes/sandbox-node-2/fail`) and a `NodeRecoveryWorkflow` runs with "
           f"`recovery.nodes`: provider sandbox, provider_delay 1s, eviction_retry 300ms. Times come from the "
           f"recovery's own timeline (`recovery_status`). Afterwards the sandbox's action log must show every one "
           f"of those pods evicted through `pods/eviction` and no `DELETE` of a pod. **PostgreSQL failover** "
           f"({_n(len(failovers), 'run')}, PostgreSQL {server}): each a fresh primary + streaming replica "
           f"(`pg_basebackup -R`, `bench/pg_pair.py`, the launcher the failover test uses too); `CanaryWriter` "
           f"at 10 rows/s on the primary until 20 rows, then `pg_ctl stop -m fast` on the primary and "
           f"`DatabaseFailoverWorkflow` started at once. A consumer re-reads the connection file the failover "
           f"rewrites and tries an INSERT every 50 ms; *failover time* = primary stop → that consumer's first "
           f"committed INSERT on the new primary. The promotion is approved by a second approver the moment it is "
           f"asked (human think time is not measured); the rejoin is pre-approved (`approvals.rejoin: false`) and "
           f"its time runs to the workflow's result. Policy: `probes: 2`, `probe_interval: 200ms` (so ~0.2 s of "
           f"the time is the \"really down?\" probing, by design), `max_lag_bytes: 0`. *Rows lost* = canary rows "
           f"committed on the old primary minus those on the new one. Reproduce: `python -m bench --only recovery`.")
    notes = []
    if drains:
        notes.append(f"Drains ({on_node} pods each): {_runs([d.drain for d in drains])} s; reschedule "
                     f"{_runs([d.reschedule for d in drains])} s. Pods on a NotReady node are not Ready, so the "
                     f"sandbox's PodDisruptionBudget check lets each go at once (it never refuses evicting an unready "
                     f"pod); a drain held back by a budget takes as long as the budget needs, retried every "
                     f"`eviction_retry`, bounded by `drain_timeout`. Against a real API server expect each eviction "
                     f"to cost a round trip plus the pod's graceful termination before the workload's replacement is "
                     f"Ready: the sandbox has neither image pulls nor grace periods.")
    if failovers:
        notes.append(f"Failovers: {_runs([f.failover for f in timed])} s; rejoined "
                     f"{_runs([f.rejoined for f in timed])} s; rows lost "
                     f"{', '.join(str(f.rows_lost) for f in failovers)}. Replica lag the workflow measured "
                     f"before promoting (bound `max_lag_bytes: 0`): {', '.join(f.lag for f in failovers)}. "
                     f"With the shipped defaults (`probes: 3`, "
                     f"`probe_interval: 1s`) add ~2 s of probing.")
    return Section(title=TITLE, how=how, table=table, goals=goals, notes=notes,
                   data={"pods": pods, "drains": len(drains), "failovers": len(failovers)})
