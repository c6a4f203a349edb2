"""Subresources: deployments/scale, */status and pods/eviction."""

from __future__ import annotations

import copy
from typing import Any

from .core import SandboxCore
from .errors import ApiError, conflict, invalid, status_body
from .messages import Request, Response
from .patch import apply_patch
from .resources import get_type
from .routing import Audit, Target
from .selectors import selector_string
from .store import Obj


def handle(core: SandboxCore, req: Request, t: Target, audit: Audit) -> Response:
    assert t.name is not None
    if t.subresource == "scale":
        return _scale(core, req, t, audit)
    if t.subresource == "status":
        return _status(core, req, t)
    if t.subresource == "eviction" and req.method == "POST":
        return _evict(core, req, t)
    raise ApiError(405, "the server does not allow this method on the requested resource")


def scale_of(obj: Obj) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selector_string(obj["spec"].get("selector"))},
    }


def _scale(core: SandboxCore, req: Request, t: Target, audit: Audit) -> Response:
    assert t.name is not None
    store = core.store
    with store.lock:
        current = store.require(t.rt, t.namespace or "", t.name)
        scale = scale_of(current)
        if req.method == "GET":
            return Response(200, scale)
        if req.method == "PUT":
            wanted = req.json()
        elif req.method == "PATCH":
            wanted = apply_patch(copy.deepcopy(scale), req.json(), req.header("Content-Type"))
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if not isinstance(wanted, dict):
            raise ApiError(400, "the request body must be a JSON object", "BadRequest")
        sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(t.rt.group, t.rt.plural, t.name)
        replicas = (wanted.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", t.name, "spec.replicas",
                          f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                          "autoscaling")
        updated = copy.deepcopy(current)
        updated["spec"]["replicas"] = replicas
        audit.before = copy.deepcopy(current)
        if req.dry_run:
            return Response(200, scale_of(updated))
        updated = store.update(t.rt, updated, check_version=False)
        audit.after = updated
        return Response(200, scale_of(updated))


def _status(core: SandboxCore, req: Request, t: Target) -> Response:
    assert t.name is not None
    store = core.store
    with store.lock:
        current = store.require(t.rt, t.namespace or "", t.name)
        if req.method == "GET":
            return Response(200, current)
        if req.method == "PUT":
            body = req.json()
        elif req.method == "PATCH":
            body = apply_patch(copy.deepcopy(current), req.json(), req.header("Content-Type"))
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        sent_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(t.rt.group, t.rt.plural, t.name)
        updated = copy.deepcopy(current)
        updated["status"] = copy.deepcopy((body or {}).get("status") or {})
        if req.dry_run:
            return Response(200, updated)
        return Response(200, store.update(t.rt, updated, check_version=False))


def _evict(core: SandboxCore, req: Request, t: Target) -> Response:
    """policy/v1 Eviction: delete the pod unless a PDB would be violated."""
    assert t.name is not None
    store = core.store
    body = req.json()
    if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
        raise ApiError(400, "the body of an eviction must be a policy/v1 Eviction", "BadRequest")
    with store.lock:
        pod = store.require(t.rt, t.namespace or "", t.name)
        allowed, pdb = core.controller.pdb_allows_eviction(pod)
        if not allowed:
            pdb_rt = get_type("policy", "poddisruptionbudgets")
            budget = store.require(pdb_rt, t.namespace or "", pdb)
            status = budget.get("status") or {}
            raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption "
                                "budget.", "TooManyRequests", {"causes": [{
                                    "reason": "DisruptionBudget",
                                    "message": f"The disruption budget {pdb} needs "
                                               f"{status.get('desiredHealthy', 0)} healthy pods "
                                               f"and has {status.get('currentHealthy', 0)} "
                                               "currently"}]})
        if not req.dry_run:
            store.delete(t.rt, t.namespace or "", t.name)
        return Response(201, status_body(201, "", "", success=True))
