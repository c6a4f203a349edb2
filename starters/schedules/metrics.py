"""Per-schedule Prometheus gauges (zerotouch_schedule_*), refreshed from each managed schedule."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from temporalio.client import (
    Client,
)
from temporalio.service import RPCError

from starters.schedules.control import ScheduleRow, rows

# --- metrics ------------------------------------------------------------------------------


class ScheduleMetrics(Collector):
    """``zerotouch_schedule_*`` gauges of every managed schedule, from the last `refresh`.

    Temporal's own schedule metrics are per namespace; these are per schedule. Register it on a
    process's registry (`Telemetry.registry`) and run `watch`.
    """

    def __init__(self) -> None:
        self._rows: list[ScheduleRow] = []
        self.refreshed_at: datetime | None = None

    async def refresh(self, client: Client, cluster: str = "", names: Iterable[str] = ()) -> None:
        self._rows = await rows(client, cluster, names)
        self.refreshed_at = datetime.now(UTC)

    async def watch(self, client: Client, stop: asyncio.Event, cluster: str = "", names: Iterable[str] = (),
                    every: timedelta = timedelta(seconds=15)) -> None:
        """Refresh until ``stop`` is set; a failed look keeps the previous values (and is retried).

        ``names``: declared schedules to describe even before the (eventually consistent) list shows them.
        """
        names = list(names)
        while not stop.is_set():
            with contextlib.suppress(RPCError, RuntimeError):
                await self.refresh(client, cluster, names)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every.total_seconds())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["schedule", "workflow"]

        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"zerotouch_schedule_{name}", doc, labels=labels)

        last = family("last_run_timestamp_seconds", "When the schedule's last run started (Unix seconds).")
        scheduled = family("last_scheduled_timestamp_seconds", "The scheduled time of the last run (Unix seconds).")
        upcoming = family("next_run_timestamp_seconds", "When the schedule runs next (Unix seconds).")
        runs = family("runs", "Runs the schedule started (Temporal's num_actions).")
        skipped = family("skipped_overlap",
                         "Runs skipped by the overlap policy (Temporal's num_actions_skipped_overlap).")
        missed = family("missed_catchup_window",
                        "Runs missed outside the catch-up window (num_actions_missed_catchup_window).")
        paused = family("paused", "1 when the schedule is paused.")
        for row in self._rows:
            values = [row.name, row.workflow]
            if row.last_run is not None:
                last.add_metric(values, row.last_run.timestamp())
            if row.last_scheduled is not None:
                scheduled.add_metric(values, row.last_scheduled.timestamp())
            if row.next_run is not None:
                upcoming.add_metric(values, row.next_run.timestamp())
            runs.add_metric(values, row.runs)
            skipped.add_metric(values, row.skipped_overlap)
            missed.add_metric(values, row.missed_catchup)
            paused.add_metric(values, 1.0 if row.paused else 0.0)
        return [last, scheduled, upcoming, runs, skipped, missed, paused]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
