"""In-memory object store with Kubernetes bookkeeping.

Owns resourceVersion (one global increasing counter, as etcd revisions
are), uid, creationTimestamp and metadata.generation. Everything else about
an object is the caller's business. One re-entrant lock guards all state;
the HTTP handlers and the controller both take it for whole operations so
that a reconcile never interleaves with a half-applied request.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from .clock import Clock
from .errors import already_exists, conflict, not_found
from .resources import ResourceType

Obj = dict[str, Any]

# Kinds whose spec changes bump metadata.generation (what controllers track
# through status.observedGeneration).
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                     "PodDisruptionBudget"}
_EVENT_HISTORY = 2000


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_of(rt: ResourceType) -> str:
    return f"{rt.group}/{rt.plural}"


class Store:
    def __init__(self, clock: Clock | None = None) -> None:
        # The sandbox's time (clock.py): creation timestamps and the controllers read it.
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        # Notified after every write; watch streams wait on it.
        self.changed = threading.Condition(self.lock)
        self._rv = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        # (rv, event type, store key, object copy) for watch streams
        self.events: deque[tuple[int, str, str, Obj]] = deque(maxlen=_EVENT_HISTORY)

    @property
    def resource_version(self) -> int:
        return self._rv

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, event: str, key: str, obj: Obj) -> None:
        self.events.append((self._rv, event, key, copy.deepcopy(obj)))
        self.changed.notify_all()

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        """The stored object itself (not a copy): callers must not mutate it."""
        with self.lock:
            return self._objects.get(key_of(rt), {}).get((namespace, name))

    def require(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        with self.lock:
            items = self._objects.get(key_of(rt), {})
            selected = [o for (ns, _), o in items.items() if namespace in (None, ns)]
            return sorted(
                selected,
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
            )

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if rt.namespaced else ""
            bucket = self._objects.setdefault(key_of(rt), {})
            if (ns, meta["name"]) in bucket:
                raise already_exists(rt.group, rt.plural, meta["name"])
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            # Identity is the server's to assign, whatever the client sent
            # (kubectl sends "creationTimestamp": null).
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = self.clock.iso()
            if rt.kind in _GENERATION_KINDS:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            meta["resourceVersion"] = self._bump()
            bucket[(ns, meta["name"])] = obj
            self._record("ADDED", key_of(rt), obj)
            return obj

    def update(self, rt: ResourceType, obj: Obj, check_version: bool = True) -> Obj:
        """Replace an object. A resourceVersion in `obj` must match the stored
        one (optimistic concurrency); identity fields are kept from storage."""
        with self.lock:
            meta = obj["metadata"]
            ns = meta.get("namespace", "") if rt.namespaced else ""
            current = self.require(rt, ns, meta["name"])
            cur_meta = current["metadata"]
            sent_rv = meta.get("resourceVersion")
            if check_version and sent_rv and sent_rv != cur_meta["resourceVersion"]:
                raise conflict(rt.group, rt.plural, meta["name"])
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            for fixed in ("uid", "creationTimestamp", "namespace"):
                if fixed in cur_meta:
                    meta[fixed] = cur_meta[fixed]
            if rt.kind in _GENERATION_KINDS:
                generation = cur_meta.get("generation", 1)
                if obj.get("spec") != current.get("spec"):
                    generation += 1
                meta["generation"] = generation
            meta["resourceVersion"] = cur_meta["resourceVersion"]
            if obj == current:
                return current  # a no-op write keeps its resourceVersion, as in etcd
            meta["resourceVersion"] = self._bump()
            self._objects[key_of(rt)][(ns, meta["name"])] = obj
            self._record("MODIFIED", key_of(rt), obj)
            return obj

    def delete(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self.lock:
            ns = namespace if rt.namespaced else ""
            obj = self.require(rt, ns, name)
            del self._objects[key_of(rt)][(ns, name)]
            self._bump()
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._record("DELETED", key_of(rt), gone)
            return gone

    def clear(self) -> None:
        with self.lock:
            self._objects.clear()
            self.events.clear()
            self._bump()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "resourceVersion": self._rv,
                "objects": {
                    key: list(copy.deepcopy(bucket).values())
                    for key, bucket in self._objects.items()
                },
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self.lock:
            self._objects.clear()
            self.events.clear()
            self._rv = int(data.get("resourceVersion", 0))
            for key, items in data.get("objects", {}).items():
                bucket = self._objects.setdefault(key, {})
                for obj in items:
                    meta = obj["metadata"]
                    bucket[(meta.get("namespace", ""), meta["name"])] = obj
