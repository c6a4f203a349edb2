"""Talking to a running sandbox over HTTP (used by `zerotouch sandbox ...`)."""

from __future__ import annotations

from typing import Any

import httpx

from .faults import KINDS


def _post(url: str, route: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    resp = httpx.post(f"{url.rstrip('/')}/sandbox/v1/{route}", json=payload, timeout=timeout)
    data: dict[str, Any] = resp.json()
    if resp.status_code >= 400:
        raise ValueError(data.get("error") or f"sandbox answered HTTP {resp.status_code}")
    return data


def inject_via_http(url: str, kind: str, namespace: str, deployment: str,
                    timeout: float = 10.0) -> dict[str, Any]:
    """Inject (or, with kind="clear", remove) a fault; returns the server's answer.

    Raises ValueError when the sandbox rejects the request (unknown kind or
    target) and httpx.HTTPError when it cannot be reached."""
    if kind != "clear" and kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
    return _post(url, "faults", {"kind": kind, "namespace": namespace,
                                 "deployment": deployment}, timeout)


def fail_requests_via_http(url: str, status: int = 500, count: int = 1, path_contains: str = "",
                           delay_seconds: float = 0.0, timeout: float = 10.0) -> dict[str, Any]:
    return _post(url, "api-failures", {"status": status, "count": count,
                                       "path_contains": path_contains,
                                       "delay_seconds": delay_seconds}, timeout)


def actions_via_http(url: str, timeout: float = 10.0, **filters: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url.rstrip('/')}/sandbox/v1/actions", params=filters, timeout=timeout)
    resp.raise_for_status()
    actions: list[dict[str, Any]] = resp.json()["actions"]
    return actions


def reset_via_http(url: str, timeout: float = 10.0) -> dict[str, Any]:
    return _post(url, "reset", {}, timeout)


def clock_via_http(url: str, advance_seconds: float | None = None, set_to: str | float | None = None,
                   frozen: bool = True, timeout: float = 10.0) -> dict[str, Any]:
    """Read the sandbox's clock, or move it: forward by `advance_seconds`, or to `set_to`
    (RFC 3339 or epoch seconds, frozen there unless `frozen=False`). Returns the clock."""
    if advance_seconds is not None:
        return _post(url, "clock", {"advance_seconds": advance_seconds}, timeout)
    if set_to is not None:
        return _post(url, "clock", {"set": set_to, "frozen": frozen}, timeout)
    resp = httpx.get(f"{url.rstrip('/')}/sandbox/v1/clock", timeout=timeout)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def finish_job_via_http(url: str, namespace: str, name: str, outcome: str = "Complete",
                        timeout: float = 10.0) -> dict[str, Any]:
    """End a running Job as "Complete" or "Failed"; returns the Job."""
    job: dict[str, Any] = _post(url, "jobs/finish", {"namespace": namespace, "name": name,
                                                     "outcome": outcome}, timeout)["job"]
    return job


def fail_node_via_http(url: str, node: str, mode: str = "NotReady",
                       timeout: float = 10.0) -> dict[str, Any]:
    """Make `node` "NotReady" or "Unreachable" ("Ready" clears the fault); returns its state
    as node_state_via_http does. ValueError for an unknown node or mode."""
    return _post(url, f"nodes/{node}/fail", {"mode": mode}, timeout)


def node_provider_via_http(url: str, node: str, action: str = "reboot",
                           delay_seconds: float = 5.0, timeout: float = 10.0) -> dict[str, Any]:
    """Ask the infrastructure provider to "reboot" or "replace" `node`: its pods but the
    DaemonSets' die now and it is Ready again `delay_seconds` later on the sandbox clock.
    Returns {"node", "action", "ready_at"}; a call while one runs returns that one."""
    return _post(url, f"nodes/{node}/provider",
                 {"action": action, "delay_seconds": delay_seconds}, timeout)


def node_state_via_http(url: str, node: str, timeout: float = 10.0) -> dict[str, Any]:
    """{"name", "ready": "True"|"False"|"Unknown", "unschedulable", "fault", "provider"}."""
    resp = httpx.get(f"{url.rstrip('/')}/sandbox/v1/nodes/{node}", timeout=timeout)
    data: dict[str, Any] = resp.json()
    if resp.status_code >= 400:
        raise ValueError(data.get("error") or f"sandbox answered HTTP {resp.status_code}")
    return data
