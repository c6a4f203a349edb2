"""Mapping a request path onto a resource type, namespace, name and subresource."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError
from .resources import ResourceType, lookup
from .store import Obj
from .validation import check_namespace, check_path_name


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""


@dataclass
class Audit:
    before: Obj | None = None
    after: Obj | None = None
    older_hashes: frozenset[str] = frozenset()


def no_route(path: str) -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}
                    if path.startswith("/openapi") else None)


def parse_target(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise no_route(path)
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
        check_namespace(namespace)
    if len(rest) > 3:
        raise no_route(path)
    rt = lookup(group, version, rest[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        raise no_route(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if name is not None:
        if rt.kind == "Namespace":
            check_namespace(name)
        else:
            check_path_name(rt.kind, name, rt.group)
    if sub and sub not in rt.subresources:
        raise no_route(path)
    return Target(rt, namespace, name, sub)
