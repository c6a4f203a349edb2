"""The action log: every mutating API request, classified.

Tests assert things like "exactly one restart was applied to shop/web", so
classification compares the object before and after the write instead of
guessing from the request body, and failed requests are kept apart
(`ok: False`) from the ones that changed the cluster.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from . import templates

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_WORKLOADS = ("deployments", "statefulsets", "daemonsets")
KINDS = ("restart", "scale", "rollback", "memory", "evict", "job", "suspend", "resume", "other")


def _restarted_at(deploy: dict[str, Any] | None) -> str | None:
    tpl_meta = (((deploy or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (tpl_meta.get("annotations") or {}).get(RESTARTED_AT)
    return None if value is None else str(value)


def classify(
    method: str,
    resource: str,
    subresource: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    older_hashes: frozenset[str] = frozenset(),
) -> str:
    """One word for what a request did; most specific cause wins."""
    if resource == "pods" and subresource == "eviction":
        return "evict"
    if resource == "jobs" and method == "POST":
        return "job"
    if subresource == "scale":
        return "scale"
    if resource == "cronjobs" and before is not None and after is not None:
        was, now = bool(before["spec"].get("suspend")), bool(after["spec"].get("suspend"))
        if was != now:
            return "suspend" if now else "resume"
    if resource in _WORKLOADS and before is not None and after is not None:
        old_tpl, new_tpl = before["spec"]["template"], after["spec"]["template"]
        if templates.canonical(old_tpl) != templates.canonical(new_tpl):
            if templates.template_hash(new_tpl) in older_hashes:
                return "rollback"
            if _restarted_at(before) != _restarted_at(after):
                return "restart"
            if templates.memory_limit(old_tpl) != templates.memory_limit(new_tpl):
                return "memory"
        if before["spec"].get("replicas") != after["spec"].get("replicas"):
            return "scale"
    return "other"


class ActionLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        entry = {
            "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "timestamp": now,
            **entry,
        }
        with self._lock:
            entry["seq"] = len(self._entries) + 1
            self._entries.append(entry)
        return entry

    def entries(
        self,
        namespace: str | None = None,
        name: str | None = None,
        kind: str | None = None,
        include_failed: bool = False,
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e) for e in self._entries
                if (include_failed or e.get("ok"))
                and namespace in (None, e.get("namespace"))
                and name in (None, e.get("name"))
                and kind in (None, e.get("kind"))
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
