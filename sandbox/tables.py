"""Server-side printing (meta.k8s.io/v1 Table) for `kubectl get` without -o.

kubectl asks for `as=Table`; these columns mirror the real apiserver's
for the kinds people watch during a remediation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Row = list[Any]


def age(timestamp: str | None, now: datetime | None = None, missing: str = "<unknown>") -> str:
    if not timestamp:
        return missing
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _pod_row(pod: dict[str, Any]) -> Row:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    shown = status.get("phase", "Unknown")
    for cs in statuses:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason:
            shown = reason
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    return [f"{ready}/{len(pod['spec'].get('containers') or [])}", shown, restarts]


def _deploy_row(d: dict[str, Any]) -> Row:
    s = d.get("status") or {}
    return [f"{s.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
            s.get("updatedReplicas", 0), s.get("availableReplicas", 0)]


def _rs_row(rs: dict[str, Any]) -> Row:
    s = rs.get("status") or {}
    return [rs["spec"].get("replicas", 0), s.get("replicas", 0), s.get("readyReplicas", 0)]


def _node_row(node: dict[str, Any]) -> Row:
    conds = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
    info = (node.get("status") or {}).get("nodeInfo") or {}
    shown = "Ready" if ready else "NotReady"  # kubectl shows Unknown as NotReady too
    if (node.get("spec") or {}).get("unschedulable"):
        shown += ",SchedulingDisabled"
    return [shown, "<none>", info.get("kubeletVersion", "")]


def _job_row(job: dict[str, Any]) -> Row:
    s = job.get("status") or {}
    state = ("Complete" if s.get("succeeded") else "Failed" if s.get("failed")
             else "Running" if s.get("active") else "Pending")
    return [state, f"{s.get('succeeded', 0)}/{job['spec'].get('completions', 1)}"]


def _ns_row(ns: dict[str, Any]) -> Row:
    return [(ns.get("status") or {}).get("phase", "Active")]


def _pdb_row(pdb: dict[str, Any]) -> Row:
    spec, s = pdb.get("spec") or {}, pdb.get("status") or {}
    return [str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
            s.get("disruptionsAllowed", 0)]


def _cronjob_row(cj: dict[str, Any], now: datetime | None) -> Row:
    spec, s = cj.get("spec") or {}, cj.get("status") or {}
    return [spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "True" if spec.get("suspend") else "False", len(s.get("active") or []),
            age(s.get("lastScheduleTime"), now, missing="<none>")]


_COLUMNS: dict[str, tuple[list[tuple[str, str]], Callable[[dict[str, Any]], Row]]] = {
    "Pod": ([("Ready", "string"), ("Status", "string"), ("Restarts", "integer")], _pod_row),
    "Deployment": ([("Ready", "string"), ("Up-to-date", "integer"),
                    ("Available", "integer")], _deploy_row),
    "ReplicaSet": ([("Desired", "integer"), ("Current", "integer"), ("Ready", "integer")],
                   _rs_row),
    "Node": ([("Status", "string"), ("Roles", "string"), ("Version", "string")], _node_row),
    "Job": ([("Status", "string"), ("Completions", "string")], _job_row),
    "Namespace": ([("Status", "string")], _ns_row),
    "PodDisruptionBudget": ([("Min Available", "string"), ("Max Unavailable", "string"),
                             ("Allowed Disruptions", "integer")], _pdb_row),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


# Rows that show a time relative to now (the sandbox clock's).
_TIMED_COLUMNS: dict[str, tuple[list[tuple[str, str]], Callable[[dict[str, Any], datetime | None], Row]]] = {
    "CronJob": ([("Schedule", "string"), ("Timezone", "string"), ("Suspend", "boolean"),
                 ("Active", "integer"), ("Last Schedule", "string")], _cronjob_row),
}


def _extra(kind: str) -> list[tuple[str, str]]:
    if kind in _TIMED_COLUMNS:
        return _TIMED_COLUMNS[kind][0]
    return _COLUMNS[kind][0] if kind in _COLUMNS else []


def _cells(kind: str, obj: dict[str, Any], now: datetime | None) -> Row:
    if kind in _TIMED_COLUMNS:
        return _TIMED_COLUMNS[kind][1](obj, now)
    return _COLUMNS[kind][1](obj) if kind in _COLUMNS else []


def to_table(kind: str, items: list[dict[str, Any]], resource_version: str,
             now: datetime | None = None) -> dict[str, Any]:
    extra = _extra(kind)
    columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}]
    columns += [{"name": n, "type": t, "format": "", "priority": 0, "description": n}
                for n, t in extra]
    columns.append({"name": "Age", "type": "string", "format": "", "priority": 0,
                    "description": "CreationTimestamp is a timestamp representing the server "
                                   "time when this object was created."})
    rows = []
    for obj in items:
        meta = obj["metadata"]
        rows.append({
            "cells": [meta["name"], *_cells(kind, obj, now), age(meta.get("creationTimestamp"), now)],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": meta},
        })
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}

