"""Request validation and defaulting, producing 422 Invalid like the API server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .cron_schedule import parse_schedule, time_zone
from .cronjobs import CONCURRENCY_POLICIES, MAX_NAME_LENGTH
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
    if rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _validate_workload(rt, obj, name)
    if rt.kind == "CronJob":
        _validate_cronjob(rt, obj, name)
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_cronjob(rt: ResourceType, obj: dict[str, Any], name: str) -> None:
    """The checks kube-apiserver makes on a batch/v1 CronJob, with its messages."""
    _require(len(name) <= MAX_NAME_LENGTH, rt, name, "metadata.name",
             f"Invalid value: {name!r}: must be no more than {MAX_NAME_LENGTH} characters")
    spec: Any = obj.get("spec")
    _require(isinstance(spec, dict), rt, name, "spec", "Required value")
    schedule = spec.get("schedule")
    _require(isinstance(schedule, str) and bool(schedule.strip()), rt, name, "spec.schedule",
             "Required value")
    zone = spec.get("timeZone")
    if zone is not None:
        _require(isinstance(zone, str), rt, name, "spec.timeZone",
                 f"Invalid value: {zone!r}: must be a string")
        try:
            time_zone(zone)
        except ValueError as exc:
            raise invalid(rt.kind, name, "spec.timeZone", f'Invalid value: "{zone}": {exc}',
                          rt.group) from exc
    try:
        parse_schedule(schedule, zone)
    except ValueError as exc:
        raise invalid(rt.kind, name, "spec.schedule", f'Invalid value: "{schedule}": {exc}',
                      rt.group) from exc
    policy = spec.get("concurrencyPolicy", "Allow")
    supported = ", ".join(f'"{p}"' for p in CONCURRENCY_POLICIES)
    _require(policy in CONCURRENCY_POLICIES, rt, name, "spec.concurrencyPolicy",
             f"Unsupported value: {policy!r}: supported values: {supported}")
    deadline = spec.get("startingDeadlineSeconds")
    _require(deadline is None or (_is_int(deadline) and deadline >= 0), rt, name,
             "spec.startingDeadlineSeconds",
             f"Invalid value: {deadline!r}: must be greater than or equal to 0")
    suspend = spec.get("suspend")
    _require(suspend is None or isinstance(suspend, bool), rt, name, "spec.suspend",
             f"Invalid value: {suspend!r}: must be a boolean (true or false)")
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        limit = spec.get(key)
        _require(limit is None or (_is_int(limit) and limit >= 0), rt, name, f"spec.{key}",
                 f"Invalid value: {limit!r}: must be greater than or equal to 0")
    job_template = spec.get("jobTemplate")
    _require(isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict),
             rt, name, "spec.jobTemplate", "Required value")
    pod_spec = ((job_template["spec"].get("template") or {}).get("spec")) or {}
    containers: Any = pod_spec.get("containers")
    prefix = "spec.jobTemplate.spec.template.spec"
    _require(isinstance(containers, list) and len(containers) > 0, rt, name,
             f"{prefix}.containers", "Required value")
    for i, container in enumerate(containers):
        _require(isinstance(container, dict) and bool(container.get("name")), rt, name,
                 f"{prefix}.containers[{i}].name", "Required value")
        _require(bool(container.get("image")), rt, name, f"{prefix}.containers[{i}].image",
                 "Required value")
    restart = pod_spec.get("restartPolicy", "Always")
    _require(restart in ("OnFailure", "Never"), rt, name, f"{prefix}.restartPolicy",
             f'Unsupported value: "{restart}": supported values: "OnFailure", "Never"')


def default_cronjob(obj: dict[str, Any]) -> None:
    """The API server's defaults for the CronJob fields that have one."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    pod_spec = spec.setdefault("template", {}).setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Always")


def default_statefulset(obj: dict[str, Any]) -> None:
    """apps/v1 StatefulSet defaults (pkg/apis/apps/v1/defaults.go)."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                       "rollingUpdate": {"partition": 0}})
    spec.setdefault("persistentVolumeClaimRetentionPolicy",
                    {"whenDeleted": "Retain", "whenScaled": "Retain"})
    spec.setdefault("template", {}).setdefault("spec", {}).setdefault("restartPolicy", "Always")


def default_daemonset(obj: dict[str, Any]) -> None:
    """apps/v1 DaemonSet defaults (pkg/apis/apps/v1/defaults.go)."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 1, "maxSurge": 0}})
    spec.setdefault("template", {}).setdefault("spec", {}).setdefault("restartPolicy", "Always")


# Kind -> the API server's defaulting for it, applied on create and update.
DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Deployment": default_deployment,
    "StatefulSet": default_statefulset,
    "DaemonSet": default_daemonset,
    "CronJob": default_cronjob,
}
