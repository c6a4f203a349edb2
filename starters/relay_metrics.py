"""What the relay counts: alerts received, webhooks answered, and how long delivery took."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from fastapi import Request, Response

from zerotouch import metric_names as names
from zerotouch.alerts import WebhookPayload
from zerotouch.telemetry import Telemetry

WEBHOOK_PATH = "/alertmanager"


class RelayMetrics:
    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter("zerotouch.relay")
        self._alerts = meter.create_counter(names.ALERTS_RECEIVED, description="alerts in accepted webhooks")
        self._webhooks = meter.create_counter(names.WEBHOOKS, description="webhooks answered, by HTTP status")
        self._delivery = meter.create_histogram(
            names.DELIVERY_SECONDS, unit="s", description="webhook arrival until Temporal has every alert"
        )

    def accepted(self, payload: WebhookPayload) -> None:
        for alert in payload.alerts:
            self._alerts.add(1, {"status": alert.status})

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        """Count every webhook answer (including refusals) and time the accepted ones."""
        if request.url.path != WEBHOOK_PATH:
            return await call_next(request)
        started = perf_counter()
        response = await call_next(request)
        self._webhooks.add(1, {"code": str(response.status_code)})
        if response.status_code == 200:
            self._delivery.record(perf_counter() - started)
        return response
