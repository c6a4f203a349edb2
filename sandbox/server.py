"""SandboxCluster: the public handle that starts, drives and stops a sandbox."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from .clock import Clock
from .core import SandboxCore
from .httpserver import SandboxHTTPServer

log = logging.getLogger("sandbox")


class SandboxCluster:
    """A fake Kubernetes API server with a controller loop and fault injection.

    >>> cluster = SandboxCluster(port=0)
    >>> cluster.start(); cluster.inject("crashloop", namespace="shop", deployment="web")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tick_seconds: float = 0.2,
                 state_file: str | os.PathLike[str] | None = None) -> None:
        self.host = host
        self.port = port
        self.tick_seconds = tick_seconds
        self.state_file = Path(state_file) if state_file else None
        self.core = SandboxCore()
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: SandboxHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._saved_rv = -1
        if not self._load():
            self.core.seed()

    # -- lifecycle ----------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> SandboxCluster:
        """Serve in background threads; returns once the socket is listening."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            httpd = SandboxHTTPServer((self.host, self.port), self.core, self._stopping)
            self.port = int(httpd.server_address[1])
            self.core.server_address = f"{self.host}:{self.port}"
            self._httpd = httpd
            self._threads = [
                threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="sandbox-http", daemon=True),
                threading.Thread(target=self._loop, name="sandbox-controller", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
            log.info("sandbox cluster listening on %s", self.url)
            return self

    def stop(self) -> None:
        with self._lifecycle:
            httpd, self._httpd = self._httpd, None
            if httpd is None:
                return
            self._stopping.set()
            with self.core.store.changed:
                self.core.store.changed.notify_all()  # wake watch streams
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
            for thread in self._threads:
                thread.join(timeout=5)
            self._threads = []
            self._save()

    def __enter__(self) -> SandboxCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            try:
                self.core.tick()
                self._save()
            except Exception:  # keep reconciling; one bad object must not stop the demo
                log.exception("sandbox controller tick failed")

    # -- persistence --------------------------------------------------------
    def _load(self) -> bool:
        if self.state_file is None or not self.state_file.exists():
            return False
        try:
            self.core.restore(json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring unreadable sandbox state %s: %s", self.state_file, exc)
            return False
        self._saved_rv = self.core.store.resource_version
        return True

    def _save(self) -> None:
        """Write a snapshot if anything changed since the last one (atomic)."""
        if self.state_file is None or self.core.store.resource_version == self._saved_rv:
            return
        data = self.core.snapshot()
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".sandbox-state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.state_file)
        self._saved_rv = data["store"]["resourceVersion"]

    # -- the API other components code against ------------------------------
    def inject(self, kind: str, namespace: str = "shop", deployment: str = "web") -> dict[str, Any]:
        """Break a deployment; raises ValueError for unknown kinds/targets."""
        return self.core.inject(kind, namespace, deployment)

    def clear(self, namespace: str | None = None, deployment: str | None = None) -> int:
        return self.core.clear(namespace, deployment)

    def faults(self) -> dict[str, Any]:
        return self.core.faults.describe()

    def actions(self, namespace: str | None = None, name: str | None = None,
                kind: str | None = None, include_failed: bool = False) -> list[dict[str, Any]]:
        return self.core.actions.entries(namespace, name, kind, include_failed)

    def is_healthy(self, namespace: str, deployment: str) -> bool:
        return self.core.is_healthy(namespace, deployment)

    def fail_requests(self, status: int | None = 500, count: int = 1, path_contains: str = "",
                      delay_seconds: float = 0.0, method: str = "", delay_after_seconds: float = 0.0) -> None:
        """Fail (or delay) the next `count` matching requests; `delay_after_seconds` applies them, then stalls."""
        self.core.failures.add(status, count, path_contains, delay_seconds, method, delay_after_seconds)

    def reset(self) -> None:
        self.core.reset()

    # -- nodes (sandbox/nodes.py) ----------------------------------------------
    def fail_node(self, node: str, mode: str = "NotReady") -> dict[str, Any]:
        """Make `node` "NotReady" or "Unreachable" ("Ready" clears it); returns node_state()."""
        return self.core.nodes.fail(node, mode)

    def node_provider(self, node: str, action: str = "reboot",
                      delay_seconds: float = 5.0) -> dict[str, Any]:
        """The provider reboots or replaces `node`: {"node", "action", "ready_at"}."""
        return self.core.nodes.provider(node, action, delay_seconds)

    def node_state(self, node: str) -> dict[str, Any]:
        """{"name", "ready", "unschedulable", "fault", "provider"}; ApiError 404 if absent."""
        return self.core.nodes.describe(node)

    def tick(self) -> None:
        """Run one reconcile now (handy in tests that do not want to wait)."""
        self.core.tick()

    def metrics(self) -> str:
        return self.core.metrics_text()

    # -- time, CronJobs and their Jobs -----------------------------------------
    @property
    def clock(self) -> Clock:
        """The sandbox's clock (wall time unless a test moved or froze it)."""
        return self.core.clock

    def now(self) -> datetime:
        return self.core.clock.now()

    def advance_clock(self, seconds: float) -> datetime:
        """Move the sandbox's time forward; the next tick's CronJob sync sees it.
        Returns the new now. With a manual tick, call `tick()` after it."""
        return self.core.advance_clock(seconds)

    def set_clock(self, when: datetime | float, frozen: bool = True) -> datetime:
        """Jump to `when` (aware datetime, naive = UTC, or epoch seconds), frozen there
        unless `frozen=False`. Set it before creating the objects whose times matter."""
        return self.core.set_clock(when, frozen)

    def finish_job(self, namespace: str, name: str, outcome: str = "Complete") -> dict[str, Any]:
        """End a running Job as "Complete" or "Failed" (see sandbox/jobs.py for Jobs that
        fail or keep running by themselves)."""
        return self.core.finish_job(namespace, name, outcome)

    def jobs_of(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        """The Jobs a CronJob controls, as dicts, by name (so by scheduled minute)."""
        return self.core.jobs_of(namespace, cronjob)
