"""Drill gauges (zerotouch_drill_*) on the relay's /metrics, from the ledger's drill records.

The same numbers as `zerotouch drill report` (zerotouch/drill_report.py): per fault class whether
its latest drill passed and its median time to recovery, and the resilience score. Read at scrape
time, kept for `cache_for` so a dashboard refreshing every few seconds reads the ledger rarely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from zerotouch import metric_names as names
from zerotouch.drill_report import DrillReport, drill_results, summarize

log = logging.getLogger("zerotouch.drills")


class DrillMetrics(Collector):
    def __init__(self, ledger_url: str, *, cache_for: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = ledger_url
        self._cache_for = cache_for
        self._clock = clock
        self._report: DrillReport | None = None
        self._read_at: float | None = None

    def report(self) -> DrillReport | None:
        """The cached report, read again once it is older than `cache_for`; None until a read succeeds."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._cache_for:
            try:
                self._report = summarize(drill_results(self._url))
            except Exception as error:  # sqlite, psycopg, a bad record: an unreadable ledger must not break /metrics
                log.warning("drill metrics: %s", error)
            self._read_at = now  # a failed read is retried after the same pause, not on every scrape
        return self._report

    def collect(self) -> Iterable[GaugeMetricFamily]:
        passed = GaugeMetricFamily(names.DRILL_LAST_PASSED, "1 when the fault class's latest drill met its "
                                   "expectation, 0 when it failed (not safe for zero-touch).", labels=["fault"])
        mttr = GaugeMetricFamily(names.DRILL_MTTR_MEDIAN, "Median time to verified recovery of the fault "
                                 "class's last passed drills (seconds).", labels=["fault"])
        score = GaugeMetricFamily(names.DRILL_RESILIENCE_SCORE, "Severity-weighted share of the last drills "
                                  "of every fault class that met their expectation (0..1).")
        report = self.report()
        for c in report.classes if report else []:
            passed.add_metric([c.fault], 1.0 if c.safe else 0.0)
            if c.mttr_p50_seconds is not None:
                mttr.add_metric([c.fault], c.mttr_p50_seconds)
        if report is not None and report.resilience_score is not None:
            score.add_metric([], report.resilience_score)
        return [passed, mttr, score]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
