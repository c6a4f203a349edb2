"""`?watch=true` streams: newline-delimited JSON watch events.

Enough for `kubectl get -w` and `kubectl rollout status`; events come from
the store's bounded history, so a very old resourceVersion just resumes
from the oldest event still kept instead of failing with 410 Gone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import tables
from .core import SandboxCore
from .messages import Request, Response
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import key_of

_POLL_SECONDS = 0.5


def watch_stream(core: SandboxCore, req: Request, rt: ResourceType, namespace: str | None,
                 stopping: threading.Event) -> Response:
    labels = parse_label_selector(req.query.get("labelSelector"))
    fields = parse_field_selector(req.query.get("fieldSelector"))
    timeout = float(req.query.get("timeoutSeconds") or 1800)
    as_table = tables.wants_table(req.header("Accept"))
    since = req.query.get("resourceVersion", "")
    store, key = core.store, key_of(rt)

    def matches(obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return (namespace in (None, meta.get("namespace"))
                and labels(meta.get("labels") or {}) and fields(obj))

    def event(kind: str, obj: dict[str, Any]) -> bytes:
        body = (tables.to_table(rt.kind, [obj], obj["metadata"]["resourceVersion"],
                                store.clock.now())
                if as_table else obj)
        return (json.dumps({"type": kind, "object": body}) + "\n").encode()

    def stream() -> Iterator[bytes]:
        deadline = time.monotonic() + timeout
        with store.lock:
            if since and since != "0":
                last, initial = int(since), []
            else:
                last = store.resource_version
                initial = [o for o in store.list(rt, namespace) if matches(o)]
            initial_events = [event("ADDED", o) for o in initial]
        yield from initial_events
        while not stopping.is_set() and time.monotonic() < deadline:
            with store.changed:
                fresh = [e for e in store.events if e[0] > last]
                if not fresh:
                    store.changed.wait(timeout=_POLL_SECONDS)
                    fresh = [e for e in store.events if e[0] > last]
            if fresh:
                last = fresh[-1][0]
            for _rv, kind, ekey, obj in fresh:
                if ekey == key and matches(obj):
                    yield event(kind, obj)

    return Response(200, None, headers={"Cache-Control": "no-cache"}, stream=stream())
