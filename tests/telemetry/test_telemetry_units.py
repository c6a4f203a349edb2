"""Telemetry pieces on their own: the Temporal metrics bridge and the trace exporter choice."""

from __future__ import annotations

import gc

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from tests.telemetry.test_metrics import samples, value
from zerotouch.telemetry import Telemetry, TelemetryError, span_exporter_from_env


async def test_metrics_created_and_dropped_keep_their_own_names() -> None:
    # Workflows create instruments per call and drop them; Python then reuses the addresses.
    # SDK's MetricsExporter keyed instruments by id() and counted them under the wrong name.
    telemetry = Telemetry("bridge-test")
    meter = telemetry.runtime.metric_meter
    expected: dict[str, int] = {}
    for round_ in range(3):
        for index in range(40):
            name = f"zerotouch_bridge_test_{index}"
            meter.create_counter(name).add(index + 1, {"round": str(round_)})
            expected[name] = expected.get(name, 0) + index + 1
        gc.collect()
        telemetry._bridge.drain()
    page = samples(telemetry.metrics_text().decode())
    for name, total in expected.items():
        assert value(page, f"{name}_total") == total, name
    await telemetry.stop()


def test_trace_exporter_follows_otel_traces_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert isinstance(span_exporter_from_env(), ConsoleSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert span_exporter_from_env() is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    exporter = span_exporter_from_env()
    assert type(exporter).__name__ == "OTLPSpanExporter"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(TelemetryError, match=r"jaeger.*console.*otlp.*none"):
        span_exporter_from_env()
