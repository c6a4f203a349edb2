"""Prometheus activities: does a PromQL expression hold, once or for a while.

An expression "holds" when the instant query returns a non-empty result, the
same rule Prometheus alerting uses, so a verification reads like an alert rule
(``rate(http_requests_total{code="500"}[1m]) < 0.1``).
"""

from __future__ import annotations

import re

from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests import RequestException
from temporalio import activity
from temporalio.exceptions import ApplicationError
from urllib3.util.retry import Retry

from activities.holding import hold_until
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.models import PromQLCheck, PromQLResult

SKIPPED = "no Prometheus configured; PromQL check skipped"
QUERY_TIMEOUT_SECONDS = 10
_STATUS = re.compile(r"HTTP Status Code (\d+)")


class PrometheusActivities:
    """PromQL checks against one Prometheus. The client blocks: a single query is a sync activity on the
    worker's thread pool; the wait is async and runs each query on a thread (`activities.holding`)."""

    def __init__(self, *, url: str | None) -> None:
        # Few quick retries inside one poll; Temporal and the poll loop handle longer outages.
        retry = Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=None)
        self._prometheus = (
            PrometheusConnect(url=url, disable_ssl=True, retry=retry, timeout=QUERY_TIMEOUT_SECONDS) if url else None
        )

    def _evaluate(self, expression: str) -> PromQLResult:
        """One instant query; a query Prometheus rejects is non-retryable, anything else propagates."""
        assert self._prometheus is not None
        if not expression.strip():
            raise errors.fail("empty PromQL expression", errors.INVALID_QUERY)
        try:
            result = self._prometheus.custom_query(query=expression)
        except PrometheusApiClientException as error:
            match = _STATUS.search(str(error))
            status = int(match.group(1)) if match else 0
            if status in (400, 422):  # bad syntax or an evaluation error: retrying cannot fix it
                raise errors.fail(f"Prometheus rejected {expression!r}: {error}", errors.INVALID_QUERY) from None
            raise errors.fail(f"Prometheus query failed: HTTP {status or '?'}",
                              errors.PROMETHEUS_UNAVAILABLE) from None
        samples = len(result) if isinstance(result, list) else 0
        holds = samples > 0
        detail = f"{samples} series match" if holds else "no series match"
        return PromQLResult(holds=holds, samples=samples, detail=detail)

    @activity.defn(name=names.QUERY_PROMQL)
    def query_promql(self, check: PromQLCheck) -> PromQLResult:
        """Evaluate the expression once."""
        if self._prometheus is None:
            return PromQLResult(holds=True, detail=SKIPPED)
        return self._evaluate(check.expression)

    @activity.defn(name=names.WAIT_FOR_PROMQL)
    async def wait_for_promql(self, check: PromQLCheck) -> PromQLResult:
        """Poll (heartbeating) until the expression holds for hold_for_seconds; holds=False at the timeout."""
        if self._prometheus is None:
            return PromQLResult(holds=True, detail=SKIPPED)

        def probe() -> PromQLResult:
            try:
                return self._evaluate(check.expression)
            except ApplicationError as error:
                if error.non_retryable:
                    raise
                return PromQLResult(holds=False, detail=f"{error.message}; will query again")
            except RequestException as error:  # unreachable or timed out: keep polling until the deadline
                return PromQLResult(holds=False, detail=f"Prometheus unreachable ({type(error).__name__}); "
                                                        "will query again")

        return await hold_until(probe, flag="holds", hold_seconds=check.hold_for_seconds,
                                timeout_seconds=check.timeout_seconds, poll_seconds=check.poll_seconds,
                                failure="did not hold")
