"""The Kubernetes REST routes: discovery, collections, objects, subresources.

Every mutating request is written to the action log here, after the fact,
with the object as it was before and after, so the classification reflects
what actually changed.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from . import discovery, subresources, tables, templates
from .actions import classify
from .core import SandboxCore
from .errors import ApiError, bad_request
from .failures import error_for, hold_answer
from .messages import Request, Response, error_response
from .patch import apply_patch
from .pods import random_suffix
from .resources import RESOURCE_TYPES, get_type
from .routing import Audit, Target, no_route, parse_target
from .selectors import parse_field_selector, parse_label_selector
from .store import Obj
from .validation import DEFAULTS, validate
from .watch import watch_stream

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
NAMESPACES = get_type("", "namespaces")
# Status written by controllers, never taken from a create request body.
_CONTROLLED_STATUS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                      "PodDisruptionBudget", "Pod"}


class KubeApi:
    def __init__(self, core: SandboxCore, stopping: Any) -> None:
        self.core = core
        self.store = core.store
        self.stopping = stopping  # threading.Event ending watch streams at shutdown

    def handle(self, req: Request) -> Response:
        target: Target | None = None
        audit = Audit()
        response: Response
        try:
            rule = self.core.failures.take(req.method, req.path)
            if rule is not None:
                if rule.delay_seconds:
                    time.sleep(rule.delay_seconds)
                error = error_for(rule)
                if error is not None:
                    try:
                        target = parse_target(req.path)
                    except ApiError:
                        target = None
                    raise error
            static = self._static(req.path)
            if static is not None:
                return Response(200, static)
            target = parse_target(req.path)
            response = self._dispatch(req, target, audit)
        except ApiError as err:
            response = error_response(err)
        if req.method in MUTATING and target is not None:
            self._record(req, target, audit, response.status)
        hold_answer(rule)
        return response

    def _static(self, path: str) -> dict[str, Any] | None:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return discovery.VERSION_INFO
        if path == "/api":
            return discovery.api_versions(self.core.server_address)
        if path == "/apis":
            return discovery.api_group_list()
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "api":
            return discovery.api_resource_list("", parts[1]) or _raise(no_route(path))
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(parts[1]) or _raise(no_route(path))
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.api_resource_list(parts[1], parts[2]) or _raise(no_route(path))
        return None

    def _dispatch(self, req: Request, t: Target, audit: Audit) -> Response:
        if t.subresource:
            return subresources.handle(self.core, req, t, audit)
        if t.name is None:
            if req.method == "GET":
                return self._list(req, t)
            if req.method == "POST":
                return self._create(req, t, audit)
            if req.method == "DELETE":
                return self._delete_collection(req, t)
        else:
            if req.method == "GET":
                obj = self._get(t)
                if tables.wants_table(req.header("Accept")):
                    rv = obj["metadata"]["resourceVersion"]
                    return Response(200, tables.to_table(t.rt.kind, [obj], rv, self.store.clock.now()))
                return Response(200, obj)
            if req.method in ("PUT", "PATCH"):
                return self._write(req, t, audit)
            if req.method == "DELETE":
                return self._delete(req, t)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    # -- reads -------------------------------------------------------------
    def _get(self, t: Target) -> Obj:
        assert t.name is not None
        return self.store.require(t.rt, t.namespace or "", t.name)

    def select(self, req: Request, t: Target) -> list[Obj]:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        return [o for o in self.store.list(t.rt, t.namespace)
                if labels(o["metadata"].get("labels") or {}) and fields(o)]

    def _list(self, req: Request, t: Target) -> Response:
        if req.query.get("watch") in ("true", "1"):
            return watch_stream(self.core, req, t.rt, t.namespace, self.stopping)
        with self.store.lock:
            items = self.select(req, t)
            rv = str(self.store.resource_version)
        if tables.wants_table(req.header("Accept")):
            return Response(200, tables.to_table(t.rt.kind, items, rv, self.store.clock.now()))
        return Response(200, {"kind": f"{t.rt.kind}List", "apiVersion": t.rt.api_version,
                              "metadata": {"resourceVersion": rv}, "items": items})

    # -- writes ------------------------------------------------------------
    def _prepare(self, t: Target, body: Any, current: Obj | None) -> Obj:
        if isinstance(body, dict) and t.rt.namespaced and t.namespace:
            body.setdefault("metadata", {}).setdefault("namespace", t.namespace)
        if isinstance(body, dict) and current is None:
            meta = body.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{random_suffix()}"
        validate(t.rt, body, t.namespace)
        if t.rt.kind in DEFAULTS:
            DEFAULTS[t.rt.kind](body)
        if current is not None:
            body["status"] = copy.deepcopy(current.get("status") or {})
        elif t.rt.kind in _CONTROLLED_STATUS:
            body["status"] = {}
        elif t.rt.kind == "Namespace":
            body["status"] = {"phase": "Active"}
        return dict(body)

    def _create(self, req: Request, t: Target, audit: Audit) -> Response:
        with self.store.lock:
            if t.rt.namespaced:
                if t.namespace is None:
                    raise ApiError(405, "create requires a namespace in the path")
                self.store.require(NAMESPACES, "", t.namespace)
            obj = self._prepare(t, req.json(), None)
            if req.dry_run:
                return Response(201, obj)
            created = self.store.create(t.rt, obj)
            audit.after = created
            return Response(201, created)

    def _write(self, req: Request, t: Target, audit: Audit) -> Response:
        assert t.name is not None
        with self.store.lock:
            current = self._get(t)
            if req.method == "PUT":
                body = req.json()
                if isinstance(body, dict) and (body.get("metadata") or {}).get("name") != t.name:
                    raise bad_request("the name of the object does not match the name on the URL")
            else:
                body = apply_patch(copy.deepcopy(current), req.json(), req.header("Content-Type"))
                if (body.get("metadata") or {}).get("name") != t.name:
                    raise bad_request("a patch may not change metadata.name")
            obj = self._prepare(t, body, current)
            if t.rt.kind in ("CronJob", "StatefulSet", "DaemonSet"):
                audit.before = copy.deepcopy(current)
            if t.rt.kind == "Deployment":
                audit.before = copy.deepcopy(current)
                own = templates.template_hash(current["spec"]["template"])
                audit.older_hashes = frozenset(
                    h for rs in self.core.controller.owned_replicasets(current)
                    if (h := (rs["metadata"].get("labels") or {}).get(templates.HASH_LABEL, ""))
                    and h != own)
            if req.dry_run:
                return Response(200, obj)
            updated = self.store.update(t.rt, obj)
            audit.after = updated
            return Response(200, updated)

    def _delete(self, req: Request, t: Target) -> Response:
        assert t.name is not None
        with self.store.lock:
            self._get(t)
            if req.dry_run:
                return Response(200, self._get(t))
            gone = self.store.delete(t.rt, t.namespace or "", t.name)
            if t.rt.kind == "Namespace":
                self._empty_namespace(t.name)
            return Response(200, gone)

    def _delete_collection(self, req: Request, t: Target) -> Response:
        with self.store.lock:
            items = self.select(req, t)
            if not req.dry_run:
                for obj in items:
                    self.store.delete(t.rt, obj["metadata"].get("namespace", ""),
                                      obj["metadata"]["name"])
            return Response(200, {"kind": f"{t.rt.kind}List", "apiVersion": t.rt.api_version,
                                  "metadata": {}, "items": items})

    def _empty_namespace(self, namespace: str) -> None:
        for rt in RESOURCE_TYPES:
            if rt.namespaced:
                for obj in self.store.list(rt, namespace):
                    self.store.delete(rt, namespace, obj["metadata"]["name"])

    # -- action log --------------------------------------------------------
    def _record(self, req: Request, t: Target, audit: Audit, status: int) -> None:
        ok = 200 <= status < 300 and not req.dry_run
        name = t.name or ((audit.after or {}).get("metadata") or {}).get("name")
        kind = classify(req.method, t.rt.plural, t.subresource, audit.before, audit.after,
                        audit.older_hashes) if ok else classify(req.method, t.rt.plural,
                                                                t.subresource)
        self.core.actions.record({
            "method": req.method, "path": req.path, "namespace": t.namespace,
            "name": name, "resource": t.rt.plural, "group": t.rt.group,
            "subresource": t.subresource or None, "kind": kind, "status": status, "ok": ok,
            "dry_run": req.dry_run, "user_agent": req.header("User-Agent"),
        })


def _raise(err: ApiError) -> Any:
    raise err

