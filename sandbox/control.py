"""Sandbox-only routes: /sandbox/v1/* (faults, failures, actions, reset, clock, jobs, nodes),
/metrics, one page per exporter (/metrics/kube-state-metrics, /metrics/kubelet,
/metrics/cadvisor, /metrics/node-exporter) and health probes. None of these are recorded in the action log
or subject to injected API failures."""

from __future__ import annotations

from typing import Any

from .clock import parse_iso
from .core import SandboxCore
from .errors import ApiError, bad_request
from .messages import Request, Response
from .metrics import ENDPOINTS

PREFIX = "/sandbox/v1"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
EXPORTER_PATHS = {f"/metrics/{name}": name for name in ENDPOINTS}


def is_control_path(path: str) -> bool:
    return (path.startswith(PREFIX) or path.rstrip("/") in EXPORTER_PATHS
            or path in ("/metrics", "/healthz", "/livez", "/readyz"))


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _body(req: Request) -> dict[str, Any]:
    body = req.json() if req.body else {}
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def handle(core: SandboxCore, req: Request) -> Response:
    path, method = req.path.rstrip("/"), req.method
    try:
        if path == "/metrics" and method == "GET":
            return Response(200, core.metrics_text(), PROMETHEUS_TEXT)
        if path in EXPORTER_PATHS and method == "GET":
            return Response(200, core.exporter_text(EXPORTER_PATHS[path]), PROMETHEUS_TEXT)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, "ok", "text/plain")
        route = path[len(PREFIX):]
        if route == "/actions" and method == "GET":
            q = req.query
            return Response(200, {"actions": core.actions.entries(
                q.get("namespace"), q.get("name"), q.get("kind"),
                include_failed=_flag(q.get("include_failed")))})
        if route == "/faults":
            return _faults(core, req)
        if route == "/api-failures":
            return _failures(core, req)
        if route == "/clock":
            return _clock(core, req)
        if route.startswith("/nodes/"):
            return _nodes(core, req, route[len("/nodes/"):])
        if route == "/jobs/finish" and method == "POST":
            body = _body(req)
            missing = [k for k in ("namespace", "name") if not body.get(k)]
            if missing:
                raise ValueError(f"missing field(s): {', '.join(missing)}")
            job = core.finish_job(str(body["namespace"]), str(body["name"]),
                                  str(body.get("outcome", "Complete")))
            return Response(200, {"job": job})
        if route == "/reset" and method == "POST":
            core.reset()
            return Response(200, {"reset": True})
        if route == "/health" and method == "GET":
            ns, name = req.query.get("namespace", ""), req.query.get("deployment", "")
            return Response(200, {"namespace": ns, "deployment": name,
                                  "healthy": core.is_healthy(ns, name)})
        raise ApiError(404, f"no sandbox route {method} {path}")
    except ValueError as exc:
        return Response(400, {"error": str(exc)})
    except ApiError as err:
        return Response(err.code, {"error": err.message})


def _faults(core: SandboxCore, req: Request) -> Response:
    if req.method == "GET":
        return Response(200, core.faults.describe())
    if req.method == "POST":
        body = _body(req)
        missing = [k for k in ("kind", "namespace", "deployment") if not body.get(k)]
        if missing:
            raise ValueError(f"missing field(s): {', '.join(missing)}")
        fault = core.inject(str(body["kind"]), str(body["namespace"]), str(body["deployment"]))
        return Response(201, {"fault": fault})
    if req.method == "DELETE":
        cleared = core.clear(req.query.get("namespace"), req.query.get("deployment"))
        return Response(200, {"cleared": cleared})
    raise ApiError(405, "method not allowed")


def _nodes(core: SandboxCore, req: Request, rest: str) -> Response:
    """GET <node>: its state; POST <node>/fail {"mode": "NotReady"|"Unreachable"|"Ready"};
    POST <node>/provider {"action": "reboot"|"replace", "delay_seconds": 5} (nodes.py)."""
    name, _, verb = rest.partition("/")
    if not verb and req.method == "GET":
        return Response(200, core.nodes.describe(name))
    if verb == "fail" and req.method == "POST":
        return Response(200, core.nodes.fail(name, str(_body(req).get("mode", ""))))
    if verb == "provider" and req.method == "POST":
        body = _body(req)
        return Response(200, core.nodes.provider(name, str(body.get("action", "")),
                                                 body.get("delay_seconds", 5.0)))
    raise ApiError(404 if verb not in ("", "fail", "provider") else 405,
                   f"no sandbox route {req.method} /nodes/{rest}")


def _clock(core: SandboxCore, req: Request) -> Response:
    """GET: the sandbox time. POST {"advance_seconds": N} moves it forward;
    POST {"set": "2030-01-01T00:00:00Z" | epoch seconds, "frozen": true} jumps to it."""
    if req.method == "POST":
        body = _body(req)
        if "advance_seconds" in body:
            core.advance_clock(float(body["advance_seconds"]))
        elif "set" in body:
            when = body["set"]
            if isinstance(when, str):
                parsed = parse_iso(when)
                if parsed is None:
                    raise ValueError(f"not an RFC 3339 time: {when!r}")
                core.set_clock(parsed, bool(body.get("frozen", True)))
            else:
                core.set_clock(float(when), bool(body.get("frozen", True)))
        elif "frozen" in body:
            (core.clock.freeze if body["frozen"] else core.clock.unfreeze)()
        else:
            raise ValueError("give advance_seconds, set (with optional frozen) or frozen")
    elif req.method != "GET":
        raise ApiError(405, "method not allowed")
    return Response(200, core.clock.describe())


def _failures(core: SandboxCore, req: Request) -> Response:
    if req.method == "GET":
        return Response(200, {"rules": core.failures.describe()})
    if req.method == "POST":
        body = _body(req)
        rule = core.failures.add(
            status=body.get("status", 500), count=int(body.get("count", 1)),
            path_contains=str(body.get("path_contains", "")),
            delay_seconds=float(body.get("delay_seconds", 0.0)),
            method=str(body.get("method", "")))
        return Response(201, {"rule": rule.__dict__})
    if req.method == "DELETE":
        core.failures.clear()
        return Response(200, {"cleared": True})
    raise ApiError(405, "method not allowed")
