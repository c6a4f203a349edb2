"""Pure rules of a namespace restore: how a backed-up object compares with the live one, and what replaces it.

Both sides go through the backup's own `export`, so fields the API server or a controller set
(status, uid, allocated IPs) never count as a difference, and an untouched object is "unchanged".
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from activities.kube_export import Obj, canonical, export

DIFF_LINES = 8
VALUE_WIDTH = 60
# Values under these keys are named, not shown: a ConfigMap may hold what its owner thinks private.
_HIDDEN_VALUES = ("data", "binaryData", "stringData")
# Fields the API server allocates on a live object that a replace must carry over (immutable once set).
_KEPT_ON_REPLACE = {"Service": ("clusterIP", "clusterIPs"), "PersistentVolumeClaim": ("volumeName",)}


def in_namespace(obj: Obj, namespace: str) -> Obj:
    body = copy.deepcopy(obj)
    body.setdefault("metadata", {})["namespace"] = namespace
    return body


def comparable(kind: str, live: Obj, namespace: str) -> Obj:
    """The live object as a backup would have exported it."""
    return in_namespace(export(kind, live), namespace)


def digest(obj: Obj) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()[:16]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 1] + "…"


def _walk(live: Any, wanted: Any, path: str, hidden: bool, out: list[str]) -> None:
    if isinstance(live, dict) and isinstance(wanted, dict):
        for key in sorted(set(live) | set(wanted), key=str):
            child = f"{path}.{key}" if path else str(key)
            _walk(live.get(key), wanted.get(key), child, hidden or (path == "" and key in _HIDDEN_VALUES), out)
        return
    if live == wanted:
        return
    if isinstance(live, list) and isinstance(wanted, list) and len(live) == len(wanted):
        for index, (a, b) in enumerate(zip(live, wanted, strict=True)):
            _walk(a, b, f"{path}[{index}]", hidden, out)
        return
    if hidden:
        out.append(f"{path}: {'added' if live is None else 'removed' if wanted is None else 'changed'}")
    elif live is None:
        out.append(f"{path}: (absent) → {_short(wanted)}")
    elif wanted is None:
        out.append(f"{path}: {_short(live)} → (removed)")
    else:
        out.append(f"{path}: {_short(live)} → {_short(wanted)}")


def field_diff(live: Obj, wanted: Obj) -> list[str]:
    """What a restore would change, one ``path: now → backup`` line per field (values of data hidden)."""
    lines: list[str] = []
    _walk(live, wanted, "", False, lines)
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES - 1], f"… and {len(lines) - DIFF_LINES + 1} more fields"]
    return lines


def replacement(kind: str, wanted: Obj, live: Obj) -> Obj:
    """The body that replaces ``live``: the backed-up object, guarded by the live resourceVersion, carrying
    the fields the server allocated and will not let change (a Service's cluster IP, a claim's volume)."""
    body = copy.deepcopy(wanted)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    spec, live_spec = body.get("spec"), live.get("spec") or {}
    if isinstance(spec, dict):
        for field in _KEPT_ON_REPLACE.get(kind, ()):
            if field in live_spec and field not in spec:
                spec[field] = copy.deepcopy(live_spec[field])
    return body
