"""Temporal's metrics (SDK and `workflow.metric_meter()`) into an OpenTelemetry meter.

The Core records into a `MetricBuffer`; this drains it every second. The SDK ships
an experimental `MetricsExporter` for this, but it caches instruments and attribute
sets by ``id()`` of objects the Core does not keep alive, so once Python reuses an
address a counter is added to the wrong metric (seen here: an action counted under
``temporal_request``). This bridge keys by metric name and by attribute values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetricUpdate,
    MetricBuffer,
)

log = logging.getLogger("zerotouch.telemetry")

AttributeKey = tuple[tuple[str, Any], ...]


@dataclass
class _Gauge:
    """Last value per attribute set, reported when the exporter collects."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[AttributeKey, float] = field(default_factory=dict)

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self.lock:
            return [Observation(value, dict(key)) for key, value in self.values.items()]


class TemporalMetricsBridge:
    """``await run()`` (or `start`/`stop`) drains ``buffer`` into ``meter`` until stopped."""

    def __init__(self, buffer: MetricBuffer, meter: Meter, poll_interval: timedelta = timedelta(seconds=1)) -> None:
        self._buffer = buffer
        self._meter = meter
        self._poll_seconds = poll_interval.total_seconds()
        self._instruments: dict[tuple[str, int], Any] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="zerotouch-temporal-metrics")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await task

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._poll_seconds)
        self.drain()  # what was recorded just before stopping

    def drain(self) -> None:
        for update in self._buffer.retrieve_updates():
            try:
                self._apply(update)
            except Exception:
                # One malformed update must not stop the export of all others.
                log.exception("could not export Temporal metric %s", update.metric.name)

    def _apply(self, update: BufferedMetricUpdate) -> None:
        metric = update.metric
        instrument = self._instrument(metric.name, metric.kind, metric.unit or "", metric.description or "")
        attributes = _attributes(update.attributes)
        if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
            instrument.add(update.value, attributes)
        elif metric.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
            instrument.record(update.value, attributes)
        else:
            with instrument.lock:
                instrument.values[tuple(sorted(attributes.items()))] = update.value

    def _instrument(self, name: str, kind: int, unit: str, description: str) -> Any:
        key = (name, kind)
        instrument = self._instruments.get(key)
        if instrument is not None:
            return instrument
        if kind == BUFFERED_METRIC_KIND_COUNTER:
            instrument = self._meter.create_counter(name, unit=unit, description=description)
        elif kind == BUFFERED_METRIC_KIND_HISTOGRAM:
            instrument = self._meter.create_histogram(name, unit=unit, description=description)
        elif kind == BUFFERED_METRIC_KIND_GAUGE:
            instrument = _Gauge()
            self._meter.create_observable_gauge(name, callbacks=[instrument.observe], unit=unit,
                                                description=description)
        else:
            raise ValueError(f"unknown Temporal metric kind {kind} for {name}")
        self._instruments[key] = instrument
        return instrument


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): value for key, value in attributes.items()}
