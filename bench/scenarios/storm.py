"""Scenarios 3 and 6: an alert storm (repeats, duplicate receivers, flaps) and the footprint under it."""

from __future__ import annotations

from pathlib import Path

from bench.breakdown import activity_waits, waits_table
from bench.report import Goal, Section
from bench.scenarios.storm_load import CONCURRENCY, NAMESPACES, StormPlan, measure
from bench.stack import zerotouch_stack
from bench.stats import median, percentile

# Issue #19's goals for the full storm on this 2-core machine.
DRAIN_GOAL_SECONDS = 25.0
ACTION_P95_GOAL_SECONDS = 10.0
RSS_GOAL_MIB = 200.0


async def run(workdir: Path, policy_path: Path, *, quick: bool) -> list[Section]:
    plan = StormPlan.sized(quick=quick)
    alerts, per_alert, deliveries = plan.alerts, plan.per_alert, plan.deliveries
    async with zerotouch_stack(workdir, policy_path=policy_path) as stack:
        await plan.create_targets(stack)
        result = await measure(stack, plan, timeout=120.0 if quick else 900.0)
        ids = plan.ids
        waits = await activity_waits(stack.client, ids[:: max(1, len(ids) // 60)])
    counts, ingested, drain_seconds, drained = (result.counts, result.ingest_seconds, result.drain_seconds,
                                                result.drained)
    actions, found, received, to_action = result.actions, result.found, result.received, result.to_action
    alert_to_action = result.alert_to_action
    idle, peak, update_limit = result.idle, result.peak, result.update_limit
    by_target, too_close, incidents = result.by_target, result.too_close, result.incidents
    worker_cpu = result.cpu["worker"]
    storm = Section(
        title="3. Storm",
        how=(f"{deliveries} webhook deliveries covering {alerts} distinct alerts ({per_alert} each: first and last "
             "firing, in between Alertmanager repeats, duplicate receivers (two identical deliveries at once) and "
             f"flaps (resolved, then firing again)), one alert per webhook, all alerts' streams at once with "
             f"{CONCURRENCY} requests in flight, each alert's deliveries in order; a 503 would be retried like "
             f"Alertmanager does. Targets: {alerts} healthy deployments in {NAMESPACES} namespaces; the runbook "
             "restarts; the Governor's per-target cooldown is the shipped 5 min."),
        table=[["measure", "value"],
               ["deliveries answered 200", f"{counts.get('200', 0)} of {deliveries} "
                                           f"(other answers: {dict((k, v) for k, v in counts.items() if k != '200')})"],
               ["ingest time (all deliveries answered)",
                f"{ingested:.1f} s ({deliveries / ingested:.0f} deliveries/s)"],
               ["drain time (first delivery → last first action)",
                f"{drain_seconds:.1f} s" + ("" if drained else " (timed out)")],
               ["incident workflows", f"{incidents} (expected {alerts})"],
               ["incidents answering, alerts they counted; repeats the relay absorbed",
                f"{found}, {received}; {result.absorbed} (sent {deliveries})"],
               ["restarts applied", f"{len(actions)} on {len(by_target)} targets"],
               ["two actions on one target inside 5 min", str(too_close)],
               ["per incident: detected → action recorded, p50 / p95 / max",
                f"{percentile(to_action, 50):.1f} s / {percentile(to_action, 95):.1f} s / "
                f"{max(to_action, default=0.0):.1f} s"],
               ["per alert: first delivery answered → restart received, p50 / p95 / max",
                f"{percentile(alert_to_action, 50):.1f} s / {percentile(alert_to_action, 95):.1f} s / "
                f"{max(alert_to_action, default=0.0):.1f} s"],
               ["Governor updates refused by the server's in-flight limit (worker log, retried)", str(update_limit)]],
        more=[(f"Where incidents waited: activities in the histories of {len(ids[:: max(1, len(ids) // 60)])} "
               "incidents spread over the storm:", waits_table(waits))],
        goals=[Goal(f"exactly {alerts} incidents, none lost", result.none_lost(plan),
                    f"{incidents} incidents; {received} alerts counted by incidents + {result.absorbed} repeats "
                    f"absorbed by the relay = {received + result.absorbed} of {deliveries}"),
               Goal(f"actions ≤ {alerts}", len(actions) <= alerts, str(len(actions))),
               Goal("never two on one target inside its cooldown", too_close == 0, f"{too_close} violations"),
               # Issue #19's bars, judged on the full storm only (quick storms are too small to mean anything).
               Goal("drain ≤ 25 s", None if quick else drain_seconds <= DRAIN_GOAL_SECONDS, f"{drain_seconds:.1f} s"),
               Goal("per incident: alert → action p95 ≤ 10 s (from the first delivery answered, which includes the "
                    "wait before the incident's first workflow task; detection → action shown too)",
                    None if quick else percentile(alert_to_action, 95) <= ACTION_P95_GOAL_SECONDS,
                    f"{percentile(alert_to_action, 95):.1f} s (detection → action {percentile(to_action, 95):.1f} s)")],
        data={"counts": dict(counts), "ingest_seconds": ingested, "drain_seconds": drain_seconds,
              "actions": len(actions), "incidents": incidents, "to_action": to_action,
              "alert_to_action": alert_to_action, "absorbed": result.absorbed,
              "update_limit": update_limit,
              "waits": {name: {k: median(v) for k, v in values.items()} for name, values in waits.items()}},
    )
    footprint = Section(
        title="6. Footprint",
        how=("Resident memory of each process before the storm (after warm-up, idle) and its peak during the storm "
             "(sampled every 0.25 s); CPU seconds each process used from the first delivery to the drain."),
        table=[["process", "RSS idle", "RSS peak under storm", "CPU seconds in storm", "CPU seconds per incident"],
               *[[name, f"{idle[name]:.0f} MiB", f"{peak[name]:.0f} MiB",
                  f"{result.cpu[name]:.1f}",
                  f"{result.cpu[name] / max(alerts, 1) * 1000:.0f} ms"]
                 for name in ("relay", "worker", "temporal")]],
        goals=[Goal("worker CPU per incident (no bar)", None, f"{worker_cpu / max(alerts, 1) * 1000:.0f} ms"),
               Goal("worker RSS peak in the storm ≤ 200 MiB", None if quick else peak["worker"] <= RSS_GOAL_MIB,
                    f"{peak['worker']:.0f} MiB ({idle['worker']:.0f} MiB idle)"),
               Goal("RSS relay / worker (no bar)", None,
                    f"{idle['relay']:.0f}/{idle['worker']:.0f} MiB idle, "
                    f"{peak['relay']:.0f}/{peak['worker']:.0f} MiB peak")],
        notes=["The worker process runs all four task queues (the embedded default). CPU per incident covers "
               f"everything the storm made it do: {deliveries // max(alerts, 1)} signals, triage, grant, action "
               "and verification per incident."],
        data={"idle": idle, "peak": peak,
              "median_rss": median([idle[name] for name in ("relay", "worker", "temporal")])},
    )
    return [storm, footprint]

