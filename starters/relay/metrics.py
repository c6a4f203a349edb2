"""What the relay counts: alerts received, webhooks answered, and how long delivery took."""

from __future__ import annotations

from time import perf_counter, time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        self._absorbed = meter.create_counter(
            names.ALERTS_ABSORBED,
            description="alerts identical to what their incident was just told, answered without telling it again",
        )
        self._truncated = meter.create_counter(
            names.ALERTS_TRUNCATED,
            description="alerts Alertmanager withheld from a webhook (truncatedAlerts: the receiver sets max_alerts)",
        )
        # Any accepted webhook counts, the always-firing Watchdog's too (the relay drops it, but it proves
        # Alertmanager delivers); set at start so a relay that never heard anything is silent since then.
        self._last_delivery = meter.create_gauge(
            names.RELAY_LAST_DELIVERY, description="unix time of the last accepted webhook (or of the relay's start)"
        )
        self._last_delivery.set(time())

    def accepted(self, payload: WebhookPayload) -> None:
        self._last_delivery.set(time())
        firing = sum(1 for alert in payload.alerts if alert.status == "firing")
        for status, count in (("firing", firing), ("resolved", len(payload.alerts) - firing)):
            if count:
                self._alerts.add(count, {"status": status})
        if payload.truncated_alerts:
            self._truncated.add(payload.truncated_alerts)

    def absorbed(self) -> None:
        self._absorbed.add(1)

    def answered(self, code: int, seconds: float) -> None:
        self._webhooks.add(1, {"code": str(code)})
        if code == 200:
            self._delivery.record(seconds)


class RelayMetricsMiddleware:
    """Count every webhook answer (including refusals) and time the accepted ones.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``)
    runs each request through extra streams and a task group, a cost every webhook paid.
    """

    def __init__(self, app: ASGIApp, metrics: RelayMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH:
            await self._app(scope, receive, send)
            return
        started = perf_counter()
        code = 500  # what the server answers if the app raises before starting a response

        async def note_status(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, note_status)
        finally:
            self._metrics.answered(code, perf_counter() - started)
