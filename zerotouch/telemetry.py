"""One process's metrics and traces, through opentelemetry-sdk.

Metrics: an OpenTelemetry `MeterProvider` read by the Prometheus exporter into a
registry of this process. Temporal's own SDK metrics and the workflows' metrics
(`workflow.metric_meter()`) reach it through a `MetricBuffer` drained every second
(`zerotouch.temporal_metrics`), so one ``/metrics`` page shows all of them.

Traces: Temporal's tracing interceptor carries the context from the relay's
request span through the workflow into every activity. The exporter follows the
standard ``OTEL_TRACES_EXPORTER`` variable: ``console`` (the default, to stderr or
a file), ``otlp`` (HTTP; ``OTEL_EXPORTER_OTLP_*`` say where), or ``none``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import IO, Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

from zerotouch.metric_names import (
    DURATION_BUCKETS_SECONDS,
    SDK_LATENCY_BUCKETS_SECONDS,
    SDK_LATENCY_INSTRUMENTS,
    SECONDS_HISTOGRAMS,
)
from zerotouch.temporal_metrics import TemporalMetricsBridge

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
TRACES_EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
TRACE_EXPORTERS = ("console", "otlp", "none")
# The Core drops buffered updates beyond this between two drains (one second apart).
_BUFFER_SIZE = 100_000


class TelemetryError(ValueError):
    """A telemetry setting the process cannot start with; the message says what to change."""


def span_exporter_from_env(console_out: IO[str] | None = None) -> SpanExporter | None:
    """The span exporter ``OTEL_TRACES_EXPORTER`` names; ``None`` for ``none``."""
    choice = os.environ.get(TRACES_EXPORTER_ENV, "console").strip().lower() or "console"
    if choice == "none":
        return None
    if choice == "console":
        return ConsoleSpanExporter(out=console_out) if console_out is not None else ConsoleSpanExporter()
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS itself
    raise TelemetryError(f"{TRACES_EXPORTER_ENV}={choice!r} is not supported; choose one of {TRACE_EXPORTERS}")


def _seconds_views() -> list[View]:
    buckets = ExplicitBucketHistogramAggregation(boundaries=DURATION_BUCKETS_SECONDS)
    views = [View(instrument_name=name, aggregation=buckets) for name in SECONDS_HISTOGRAMS]
    sdk_buckets = ExplicitBucketHistogramAggregation(boundaries=SDK_LATENCY_BUCKETS_SECONDS)
    return [*views, View(instrument_name=SDK_LATENCY_INSTRUMENTS, aggregation=sdk_buckets)]


class Telemetry:
    """Metrics registry, meter and tracer providers, and the Temporal runtime that feeds them.

    ``await start()`` before connecting a client with `client_options`, ``await stop()`` at
    the end (it flushes spans). Each instance has its own registry, so several can live
    in one process (the tests do).
    """

    def __init__(self, service: str, *, span_exporter: SpanExporter | None = None,
                 batch_spans: bool = True) -> None:
        resource = Resource.create({SERVICE_NAME: service})
        self.registry = CollectorRegistry(auto_describe=True)
        self.meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)],
            views=_seconds_views(),
        )
        self.tracer_provider = TracerProvider(resource=resource)
        if span_exporter is not None:
            processor = BatchSpanProcessor(span_exporter) if batch_spans else SimpleSpanProcessor(span_exporter)
            self.tracer_provider.add_span_processor(processor)
        self.tracer = self.tracer_provider.get_tracer("zerotouch")
        # Seconds, as Prometheus expects; the Core's default is milliseconds.
        self._buffer = MetricBuffer(_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS)
        # The process's own service name (the resource) labels everything, not the Core's.
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self._buffer, attach_service_name=False))
        self._bridge = TemporalMetricsBridge(self._buffer, self.meter_provider.get_meter("temporalio"),
                                             poll_interval=timedelta(seconds=1))

    @classmethod
    def from_env(cls, service: str, console_out: IO[str] | None = None) -> Telemetry:
        return cls(service, span_exporter=span_exporter_from_env(console_out))

    def meter(self, name: str) -> Any:
        return self.meter_provider.get_meter(name)

    def client_options(self) -> dict[str, Any]:
        """What `temporalio.client.Client.connect` needs to be traced and measured."""
        interceptors: Sequence[Interceptor] = [TracingInterceptor(self.tracer)]
        return {"runtime": self.runtime, "interceptors": interceptors}

    async def start(self) -> None:
        self._bridge.start()

    async def stop(self) -> None:
        await self._bridge.stop()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition of everything this process measured."""
        return generate_latest(self.registry)
