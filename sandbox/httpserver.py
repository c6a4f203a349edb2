"""Stdlib HTTP server glue: one thread per connection, HTTP/1.1 keep-alive.

The stdlib server is enough here (a handful of clients) and keeps the
sandbox free of an event loop, so it runs inside any test or CLI process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import control
from .api import KubeApi
from .core import SandboxCore
from .messages import Request, Response

log = logging.getLogger("sandbox")


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of new connections (a storm, a benchmark's
    # pollers, several workers starting at once) would see connects time out, as no real API server does.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], core: SandboxCore,
                 stopping: threading.Event) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.core = core
        self.kube = KubeApi(core, stopping)
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    # Keep-alive connections would otherwise outlive stop() in their daemon
    # threads and keep answering; track them so close_connections() can end them.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # seconds an idle keep-alive connection may hold a thread
    server: SandboxHTTPServer
    server_version = "zerotouch-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, url.path or "/", url.query, dict(self.headers.items()), body)
        try:
            if control.is_control_path(req.path):
                resp = control.handle(self.server.core, req)
            else:
                resp = self.server.kube.handle(req)
        except Exception as exc:  # a bug must surface as a 500, not a dropped socket
            log.exception("sandbox request failed: %s %s", self.command, self.path)
            resp = Response(500, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": f"internal error: {exc}",
                                  "reason": "InternalError", "code": 500})
        if resp.stream is not None:
            self._stream(resp)
        else:
            self._send(resp)

    def _send(self, resp: Response) -> None:
        payload = resp.payload()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _stream(self, resp: Response) -> None:
        assert resp.stream is not None
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for chunk in resp.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the watcher went away
        self.close_connection = True

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve
    do_HEAD = _serve

