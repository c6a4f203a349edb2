"""A free loopback TCP port, for servers started on the fly (embedded monitoring, the benchmarks, the tests)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it). Another process may take it before
    the caller binds it; callers start their server at once and fail loudly if the port is gone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
