"""The three PATCH flavours the API server accepts, reduced to what we need.

Strategic merge patch is approximated as a JSON merge patch in which lists
of named objects (containers, env, ports, volumes...) merge by `name`; that
is the part of the real semantics clients rely on for Deployments.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    """RFC 7386: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue  # $setElementOrder, $retainKeys, $patch: ordering hints only
        if value is None:
            result.pop(key, None)
        elif strategic and _named_list(value) and _named_list(result.get(key)):
            result[key] = _merge_by_name(result[key], value)
        else:
            result[key] = merge_patch(result.get(key), value, strategic)
    return result


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and "name" in item for item in value
    )


def _merge_by_name(current: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in current]
    index = {item["name"]: i for i, item in enumerate(merged)}
    for item in patch:
        if item.get("$patch") == "delete":
            merged = [m for m in merged if m["name"] != item["name"]]
            index = {m["name"]: i for i, m in enumerate(merged)}
        elif item["name"] in index:
            merged[index[item["name"]]] = merge_patch(merged[index[item["name"]]], item, True)
        else:
            merged.append(merge_patch({}, item, True))
            index[item["name"]] = len(merged) - 1
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            if part not in cur:
                raise ApiError(422, f"JSON patch path segment {part!r} does not exist")
            cur = cur[part]
        else:
            raise ApiError(422, f"JSON patch cannot traverse into {part!r}")
    return cur


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    key = parts[-1]
    try:
        return parent[int(key)] if isinstance(parent, list) else parent[key]
    except (KeyError, IndexError, ValueError) as exc:
        raise ApiError(422, f"JSON patch path {'/'.join(parts)!r} does not exist") from exc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _parent(doc, parts)
    key = parts[-1]
    try:
        return parent.pop(int(key)) if isinstance(parent, list) else parent.pop(key)
    except (KeyError, IndexError, ValueError) as exc:
        raise ApiError(422, f"JSON patch cannot remove missing {'/'.join(parts)!r}") from exc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    key = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if key == "-" else int(key), value)
    else:
        parent[key] = value
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902. `replace` of a missing key is accepted like `add` (lenient
    on purpose: kubectl's rollback replaces /metadata/annotations)."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation {op!r}")
        parts = _pointer(op["path"])
        kind = op["op"]
        if kind in ("add", "replace"):
            if kind == "replace" and parts and isinstance(_parent(doc, parts), list):
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise ApiError(422, f"JSON patch test failed at {op['path']}")
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, parts, value)
        else:
            raise bad_request(f"unknown json patch op {kind!r}")
    return doc


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == JSON_PATCH:
        result = json_patch(target, patch)
    elif ctype == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif ctype in (STRATEGIC_PATCH, APPLY_PATCH):
        # server-side apply is approximated as a strategic merge; good enough
        # for `kubectl apply --server-side` of the fields the sandbox models.
        result = merge_patch(target, patch, strategic=True)
    else:
        raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                            f"media types include: {JSON_PATCH}, {MERGE_PATCH}, "
                            f"{STRATEGIC_PATCH}, {APPLY_PATCH}")
    if not isinstance(result, dict):
        raise ApiError(422, "patch did not produce an object")
    return result


def prune(value: Any) -> Any:
    """Drop nulls and empty containers so that a template round-tripped
    through Go structs (which adds `creationTimestamp: null`, `resources: {}`)
    compares and hashes equal to the original."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = prune(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value
