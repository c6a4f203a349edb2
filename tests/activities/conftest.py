"""Real servers for activity tests: sandbox cluster, PostgreSQL, Prometheus, HTTP receivers.

Every fixture stops what it started, by handle or PID, even when the test fails.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from temporalio.testing import ActivityEnvironment

from activities.kubernetes import KubernetesActivities
from sandbox import SandboxCluster
from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.support.prometheus import running_prometheus
from tests.support.waiting import wait_until as _wait_until

TICK = 0.05


# --- activity environment ----------------------------------------------------------


@dataclass
class Env:
    """An ActivityEnvironment that records heartbeats."""

    env: ActivityEnvironment
    heartbeats: list[Any] = field(default_factory=list)


@pytest.fixture
def activity_env() -> Env:
    recorded = Env(ActivityEnvironment())
    recorded.env.on_heartbeat = lambda *details: recorded.heartbeats.append(details)
    return recorded


# --- sandbox cluster -----------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[SandboxCluster]:
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=TICK).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def kube(cluster: SandboxCluster) -> Iterator[KubernetesActivities]:
    configuration = client.Configuration()
    configuration.host = cluster.url
    api = client.ApiClient(configuration)
    try:
        yield KubernetesActivities(api_client=api)
    finally:
        api.close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """The shared poller with the longer defaults activity tests need."""
    return _wait_until(predicate, timeout, interval)


# --- PostgreSQL --------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=40) as server:  # test_connection_usage expects 40
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


# --- Prometheus scraping a sandbox -------------------------------------------------


@dataclass
class PrometheusServer:
    url: str
    cluster: SandboxCluster


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=TICK).start()
    try:
        with running_prometheus({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "sandbox",
                                "static_configs": [{"targets": [f"127.0.0.1:{sandbox.port}"]}]}],
        }) as url:
            yield PrometheusServer(url=url, cluster=sandbox)
    finally:
        sandbox.stop()


# --- HTTP receiver -----------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    received: list[tuple[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order; then 202


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.receiver.received.append((self.path, json.loads(body or b"null")))
        status = self.receiver.statuses.pop(0) if self.receiver.statuses else 202
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if status < 400 else b'{"error": "nope"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    recorder = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"receiver": recorder})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
