"""Whatever arrives, the relay answers 2xx or 4xx while Temporal is up: never a 5xx for bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from starters.relay.app import create_app
from starters.relay.config import RelayConfig
from tests.relay.conftest import AUTH, STARTS_AT, TOKEN

ALERTNAME = f"RelayFuzz{uuid.uuid4().hex[:8]}"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _payloads(*, mutate: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Valid v4 payloads, or (``mutate``) ones where any value may be anything and keys may be missing,
    so near-valid bodies reach the deep checks and valid ones reach Temporal."""

    def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(valid, valid, valid, json_values) if mutate else valid

    def sometimes_without_keys(complete: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        def drop(value: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
            return st.sets(st.sampled_from(sorted(value)), min_size=1).map(
                lambda gone: {k: v for k, v in value.items() if k not in gone}
            )

        return st.one_of(complete, complete, complete, complete.flatmap(drop)) if mutate else complete

    names = st.sampled_from(["namespace", "deployment", "pod", "severity", "summary"])
    if mutate:
        names = names | st.text(max_size=12)
    labels = st.dictionaries(names, maybe(st.text(max_size=12)), max_size=4).map(
        lambda extra: {**extra, "alertname": ALERTNAME}
    )
    alerts = sometimes_without_keys(st.fixed_dictionaries({
        "status": maybe(st.sampled_from(["firing", "resolved"])),
        "labels": maybe(labels),
        "startsAt": maybe(st.just(STARTS_AT)),
        "endsAt": maybe(st.sampled_from(["0001-01-01T00:00:00Z", None, "2024-05-01T11:00:00+02:00"])),
        "annotations": maybe(st.dictionaries(names, st.text(max_size=30), max_size=3)),
        "fingerprint": maybe(st.text(alphabet="0123456789abcdef", max_size=16)),
    }))
    return sometimes_without_keys(st.fixed_dictionaries({
        "version": maybe(st.just("4")),
        "groupKey": maybe(st.text(max_size=20)),
        "status": maybe(st.sampled_from(["firing", "resolved"])),
        "receiver": maybe(st.text(max_size=20)),
        "alerts": maybe(st.lists(alerts, min_size=0 if mutate else 1, max_size=4)),
    }))


bodies = st.one_of(
    _payloads(mutate=False).map(lambda p: json.dumps(p).encode()),
    _payloads(mutate=True).map(lambda p: json.dumps(p).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(dev_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    queue = f"tq-fuzz-{uuid.uuid4().hex[:8]}"
    app = create_app(client=dev_env.client, config=RelayConfig(token=TOKEN, task_queue=queue))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as client:
        yield client


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
async def test_arbitrary_bodies_never_get_5xx(http: httpx.AsyncClient, body: bytes) -> None:
    answer = await http.post("/alertmanager", content=body, headers=AUTH | {"Content-Type": "application/json"})
    event(f"status {answer.status_code}")  # --hypothesis-show-statistics: how often each path was reached
    assert answer.status_code in (200, 400, 413, 422), (answer.status_code, answer.text, body)
    assert isinstance(answer.json()["detail" if answer.status_code != 200 else "accepted"], str | int)
