"""A worker's ``/metrics`` page: the Prometheus text of its `Telemetry`, on its own port."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from zerotouch.telemetry import Telemetry

DEFAULT_METRICS_HOST = "127.0.0.1"


class MetricsServer:
    """Serves in a thread (scrapes never touch the event loop); ``stop()`` frees the port."""

    def __init__(self, telemetry: Telemetry, host: str = DEFAULT_METRICS_HOST, port: int = 0) -> None:
        self._telemetry = telemetry
        self._host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        try:
            self._server, self._thread = start_http_server(
                self._requested_port, addr=self._host, registry=self._telemetry.registry
            )
        except OSError as error:
            raise OSError(error.errno, f"metrics cannot listen on {self._host}:{self._requested_port}: "
                                       f"{error.strerror}") from None

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
