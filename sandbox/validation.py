"""Request validation and defaulting, producing 422 Invalid like the API server."""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError, invalid
from .resources import ResourceType

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def check_path_name(kind: str, name: str, group: str = "") -> None:
    if not is_dns1123_subdomain(name):
        raise invalid(kind, name, "metadata.name",
                      "Invalid value: a lowercase RFC 1123 subdomain must consist of lower "
                      "case alphanumeric characters, '-' or '.', and must start and end "
                      "with an alphanumeric character", group)


def check_namespace(namespace: str) -> None:
    if not is_dns1123_label(namespace):
        raise invalid("Namespace", namespace, "metadata.namespace",
                      "Invalid value: a lowercase RFC 1123 label must consist of lower case "
                      "alphanumeric characters or '-'")


def _require(cond: bool, rt: ResourceType, name: str, field: str, message: str) -> None:
    if not cond:
        raise invalid(rt.kind, name, field, message, rt.group)


def validate(rt: ResourceType, obj: Any, namespace: str | None) -> None:
    """Shape checks for the fields the sandbox relies on."""
    if not isinstance(obj, dict):
        raise ApiError(400, "the request body must be a JSON object", "BadRequest")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise invalid(rt.kind, "", "metadata.name", "Required value: name is required", rt.group)
    name = str(meta["name"])
    if rt.kind == "Namespace":
        _require(is_dns1123_label(name), rt, name, "metadata.name",
                 "Invalid value: must be a lowercase RFC 1123 label")
    else:
        check_path_name(rt.kind, name, rt.group)
    if rt.namespaced and namespace and meta.get("namespace", namespace) != namespace:
        raise ApiError(400, "the namespace of the provided object does not match the "
                            "namespace sent on the request", "BadRequest")
    for key, value in (meta.get("labels") or {}).items():
        _require(isinstance(value, str) and bool(_LABEL_VALUE.match(value)) and len(value) <= 63,
                 rt, name, f"metadata.labels.{key}", f"Invalid value: {value!r}")
    if rt.kind in ("Deployment", "ReplicaSet"):
        _validate_workload(rt, obj, name)
    if rt.kind == "Job":
        spec = obj.get("spec") or {}
        containers = (((spec.get("template") or {}).get("spec")) or {}).get("containers")
        _require(bool(containers), rt, name, "spec.template.spec.containers",
                 "Required value")


def _validate_workload(rt: ResourceType, obj: dict[str, Any], name: str) -> None:
    spec: Any = obj.get("spec")
    _require(isinstance(spec, dict), rt, name, "spec", "Required value")
    replicas = spec.get("replicas", 1)
    _require(isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 0,
             rt, name, "spec.replicas",
             f"Invalid value: {replicas!r}: must be greater than or equal to 0")
    selector = spec.get("selector") or {}
    _require(bool(selector.get("matchLabels") or selector.get("matchExpressions")),
             rt, name, "spec.selector", "Required value")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        _require(labels.get(key) == value, rt, name, "spec.template.metadata.labels",
                 "Invalid value: `selector` does not match template `labels`")
    containers: Any = (template.get("spec") or {}).get("containers")
    _require(isinstance(containers, list) and len(containers) > 0, rt, name,
             "spec.template.spec.containers", "Required value")
    for i, container in enumerate(containers):
        _require(isinstance(container, dict) and bool(container.get("name")), rt, name,
                 f"spec.template.spec.containers[{i}].name", "Required value")
        _require(bool(container.get("image")), rt, name,
                 f"spec.template.spec.containers[{i}].image", "Required value")


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    pod_spec = spec.setdefault("template", {}).setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Always")
