"""http_requests_total counters, advanced by the controller loop."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from ..resources import get_type
from .exposition import Labels

if TYPE_CHECKING:
    from ..faults import FaultManager
    from ..store import Store

REQUESTS_PER_SECOND = 20.0
BAD_DEPLOY_ERROR_RATIO = 0.5
_DEPLOY = get_type("apps", "deployments")


class TrafficCounters:
    """Monotonic http_requests_total counters, advanced by the controller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], float] = defaultdict(float)
        self._last = time.monotonic()

    def advance(self, store: Store, faults: FaultManager) -> None:
        now = time.monotonic()
        with self._lock:
            elapsed, self._last = now - self._last, now
        for deploy in store.list(_DEPLOY):
            ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
            total = REQUESTS_PER_SECOND * elapsed
            ratio = BAD_DEPLOY_ERROR_RATIO if faults.has("bad-deploy", ns, name) else 0.0
            with self._lock:
                self._counts[(ns, name, "200")] += total * (1 - ratio)
                self._counts[(ns, name, "500")] += total * ratio

    def samples(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return [({"namespace": ns, "deployment": d, "code": code}, value)
                    for (ns, d, code), value in sorted(self._counts.items())]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
