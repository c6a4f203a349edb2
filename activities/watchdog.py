"""Watchdog activities: a check's PromQL query, the relay's last delivery, findings told to their incidents.

The query goes through prometheus-api-client as `activities/prometheus.py` does; findings go through
`zerotouch.incident_signals.tell_incident`, the call the relay makes for every firing alert, so a
finding lands in the incident (signal-with-start) an Alertmanager alert for it would land in.
"""

from __future__ import annotations

import math
import re
import time

import httpx
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity
from temporalio.client import Client
from urllib3.util.retry import Retry

from activities.prometheus import QUERY_TIMEOUT_SECONDS
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.incident_signals import tell_incident
from zerotouch.metric_names import RELAY_LAST_DELIVERY
from zerotouch.names import WORKFLOWS_QUEUE
from zerotouch.watchdog import CheckReading, CheckRequest, IncidentDelivery, RelayProbe, RelayReading, Series

RELAY_TIMEOUT_SECONDS = 5.0
_STATUS = re.compile(r"HTTP Status Code (\d+)")  # how prometheus-api-client reports Prometheus' answer


class WatchdogActivities:
    """The watchdog's reads (Prometheus, the relay) and its one write (incident signals)."""

    def __init__(self, *, prometheus_url: str | None, client: Client, http: httpx.AsyncClient) -> None:
        # One quick retry inside the call; the workflow's retry policy bounds the rest of a cycle.
        retry = Retry(total=1, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=None)
        self._prometheus = (PrometheusConnect(url=prometheus_url, disable_ssl=True, retry=retry,
                                              timeout=QUERY_TIMEOUT_SECONDS) if prometheus_url else None)
        self._client = client
        self._http = http

    @activity.defn(name=names.RUN_WATCHDOG_CHECK)
    def run_watchdog_check(self, request: CheckRequest) -> CheckReading:
        """One instant query; every series it returns is past the threshold (at most ``limit`` of them)."""
        if self._prometheus is None:
            raise errors.fail("no Prometheus configured (PROMETHEUS_URL): promql checks cannot run",
                              errors.INVALID_QUERY)
        expression = request.check.expression()
        started = time.perf_counter()
        try:
            result = self._prometheus.custom_query(query=expression)
        except PrometheusApiClientException as error:
            status = _STATUS.search(str(error))
            if status and status.group(1) in ("400", "422"):  # the query itself: retrying cannot fix it
                raise errors.fail(f"check {request.name}: Prometheus rejected {expression!r}: {error}",
                                  errors.INVALID_QUERY) from None
            raise errors.fail(f"check {request.name}: Prometheus query failed: {error}",
                              errors.PROMETHEUS_UNAVAILABLE) from None
        except OSError as error:  # requests' connection errors and timeouts
            raise errors.fail(f"check {request.name}: Prometheus unreachable ({type(error).__name__})",
                              errors.PROMETHEUS_UNAVAILABLE) from None
        seconds = time.perf_counter() - started
        series = [Series(labels={str(k): str(v) for k, v in item.get("metric", {}).items()},
                         value=_value(item.get("value")))
                  for item in (result if isinstance(result, list) else [])]
        series.sort(key=lambda s: sorted(s.labels.items()))  # the same findings in the same order every cycle
        return CheckReading(series=series[:request.limit], truncated=max(0, len(series) - request.limit),
                            queries=1, seconds=seconds)

    @activity.defn(name=names.READ_RELAY_LAST_DELIVERY)
    async def read_relay_last_delivery(self, probe: RelayProbe) -> RelayReading:
        """The relay's zerotouch_relay_last_delivery_timestamp_seconds, read from its /metrics directly:
        it must work while Prometheus (or Alertmanager) is the thing that is down."""
        url = probe.relay_url.rstrip("/") + "/metrics"
        try:
            response = await self._http.get(url, timeout=RELAY_TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            raise errors.fail(f"relay {probe.relay_url} unreachable ({type(error).__name__})",
                              errors.API_UNAVAILABLE) from None
        if response.status_code != 200:
            raise errors.fail(f"relay {probe.relay_url} answered /metrics with HTTP {response.status_code}",
                              errors.API_UNAVAILABLE)
        for family in text_string_to_metric_families(response.text):
            if family.name == RELAY_LAST_DELIVERY:
                values = [sample.value for sample in family.samples]
                if values:
                    return RelayReading(last_delivery=max(values), read_at=time.time())
        raise errors.fail(f"relay {probe.relay_url} serves no {RELAY_LAST_DELIVERY}: a relay without telemetry, "
                          "or older than the watchdog", errors.INVALID_TARGET)

    @activity.defn(name=names.OPEN_WATCHDOG_INCIDENTS)
    async def open_watchdog_incidents(self, delivery: IncidentDelivery) -> list[str]:
        """Signal-with-start each finding onto its incident, as the relay does; the ids told (idempotent:
        a repeat of a firing alert is counted, not acted on, by the incident)."""
        told = []
        for incident_id, event in delivery.events:
            if await tell_incident(self._client, incident_id, event, cluster=delivery.cluster,
                                   task_queue=WORKFLOWS_QUEUE):
                told.append(incident_id)
            activity.heartbeat(len(told))
        return told


def _value(sample: object) -> float:
    """An instant vector sample is ``[timestamp, "value"]``; NaN has no JSON, so it becomes 0."""
    try:
        value = float(sample[1]) if isinstance(sample, list | tuple) else 0.0
    except (TypeError, ValueError, IndexError):
        return 0.0
    return value if math.isfinite(value) else 0.0
