"""Pure helpers for the Kubernetes actions: validation, bounds, patches, error mapping.

Nothing here talks to the API, so the arithmetic that keeps an action inside
its guardrails can be read (and tested) on its own.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from zerotouch import activity_errors as errors
from zerotouch.action_params import (
    MAX_MEMORY_FACTOR,
    ActionParams,
    RaiseMemoryLimitParams,
    RunJobParams,
    ScaleDeploymentParams,
    describe,
)
from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name
from zerotouch.models import ActionRequest
from zerotouch.policy import JobTemplate
from zerotouch.quantities import format_memory, parse_memory
from zerotouch.scaling import replica_window, requested_replicas
from zerotouch.schedules import ScheduledJobRequest

ACTION_KEY = "zerotouch.io/action-key"
INCIDENT = "zerotouch.io/incident"
JOB_LABEL = "zerotouch.io/job"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JOB_TTL_SECONDS = 3600

Obj = dict[str, Any]


@dataclass
class Plan:
    """One write that applies an action, plus what to report about it."""

    patch: Any
    content_type: str
    detail: str
    before: dict[str, object] = field(default_factory=dict)
    after: dict[str, object] = field(default_factory=dict)


fail = errors.fail  # non-retryable exactly for the types in zerotouch.activity_errors.NON_RETRYABLE

P = TypeVar("P", bound=ActionParams)


def typed_params(request: ActionRequest, model: type[P]) -> P:
    """The request's parameters as ``model``; InvalidParams (non-retryable) if they do not fit."""
    try:
        params = request.typed_params
    except ValidationError as error:
        raise fail(f"{request.action}: {describe(error)}", errors.INVALID_PARAMS) from None
    if not isinstance(params, model):
        raise fail(f"{request.action}: expected {model.__name__}", errors.INVALID_PARAMS)
    return params


def validated_target(request: ActionRequest, *, pod: bool = False) -> tuple[str, str]:
    """(namespace, name) after checking them, before any API call sees them."""
    try:
        namespace = require_namespace(request.namespace)
        name = require_object_name(request.name, "deployment")
        if pod:
            if not request.pod:
                raise InvalidName("evict_pod needs a pod name")
            require_object_name(request.pod, "pod")
    except InvalidName as error:
        raise fail(str(error), errors.INVALID_TARGET) from None
    return namespace, name


def api_error(error: ApiException, what: str) -> Exception:
    """Map an API status to an error Temporal retries (or not) for the right reason."""
    status = int(error.status or 0)
    reason = f"{what}: HTTP {status} {error.reason or ''}".strip()
    if status == 404:
        return fail(f"{what} not found", errors.NOT_FOUND)
    if status in (401, 403):
        return fail(f"{reason}; the zerotouch service account lacks this permission", errors.FORBIDDEN)
    if status in (400, 422):
        return fail(f"{reason}: the API server rejected the request", errors.INVALID)
    if status == 409:
        return fail(f"{reason}: changed concurrently; retrying re-reads it", errors.CONFLICT)
    if status == 429:
        return fail(f"{reason}: throttled", errors.TOO_MANY_REQUESTS)
    return fail(f"{reason}: API server unavailable", errors.API_UNAVAILABLE)


def stored_keys(deploy: Obj) -> set[str]:
    """Action keys zerotouch left on the deployment and (by a restart) on its pod template."""
    metas = (deploy.get("metadata") or {}, (deploy["spec"].get("template") or {}).get("metadata") or {})
    return {str(key) for meta in metas if (key := (meta.get("annotations") or {}).get(ACTION_KEY))}


def _guarded(deploy: Obj, key: str, spec: Obj | None = None) -> Obj:
    """A strategic patch carrying the key and the read resourceVersion (409 if it moved)."""
    patch: Obj = {"metadata": {"resourceVersion": deploy["metadata"]["resourceVersion"],
                               "annotations": {ACTION_KEY: key}}}
    if spec is not None:
        patch["spec"] = spec
    return patch


def containers(deploy: Obj) -> list[Obj]:
    return list(((deploy["spec"].get("template") or {}).get("spec") or {}).get("containers") or [])


def images(deploy: Obj) -> dict[str, str]:
    return {c.get("name", ""): c.get("image", "") for c in containers(deploy)}


def revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


# --- restart -----------------------------------------------------------------------


def restart_plan(deploy: Obj, key: str, now: str) -> Plan:
    # Only pod-template annotations change: a plain `kubectl rollout restart`.
    template_meta = {"annotations": {RESTARTED_AT: now, ACTION_KEY: key}}
    before = ((deploy["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
    return Plan(_guarded(deploy, key, {"template": {"metadata": template_meta}}), STRATEGIC,
                "rolling restart started", {"restartedAt": before, "revision": revision(deploy)},
                {"restartedAt": now})


# --- scale -------------------------------------------------------------------------


def scaled_replicas(request: ActionRequest, current: int) -> int:
    """The replica count asked for, clamped to the bounds; BoundExceeded if nothing can change.

    The same arithmetic as the Governor's (`zerotouch.scaling`), so a granted count is never capped again.
    """
    params = typed_params(request, ScaleDeploymentParams)
    wanted = requested_replicas(current, replicas=params.replicas, factor=params.factor, delta=params.delta)
    assert wanted is not None  # ScaleDeploymentParams holds exactly one of the three
    low, high = replica_window(current, request.bounds)
    clamped = min(max(wanted, low), high)
    if clamped == current:
        if wanted == current:
            raise fail(f"already at {current} replicas, as requested; nothing to scale", errors.BOUND_EXCEEDED)
        raise fail(f"cannot scale further: asked for {wanted}, already at {current} "
                   f"(bounds allow {low}..{high} from here)", errors.BOUND_EXCEEDED)
    return clamped


def scale_plan(deploy: Obj, request: ActionRequest) -> Plan:
    current = int(deploy["spec"].get("replicas", 1))
    target = scaled_replicas(request, current)
    return Plan(_guarded(deploy, request.idempotency_key, {"replicas": target}), STRATEGIC,
                f"scaled from {current} to {target} replicas", {"replicas": current}, {"replicas": target})


# --- memory ------------------------------------------------------------------------


def memory_plan(deploy: Obj, request: ActionRequest) -> Plan:
    params = typed_params(request, RaiseMemoryLimitParams)
    wanted = params.container or ""
    found = [c for c in containers(deploy) if not wanted or c.get("name") == wanted]
    if not found:
        raise fail(f"no container {wanted!r} in {request.namespace}/{request.name}", errors.INVALID_TARGET)
    container = found[0]
    resources = container.get("resources") or {}
    limit_text = (resources.get("limits") or {}).get("memory")
    if not limit_text:
        raise fail(f"container {container['name']} has no memory limit to raise", errors.INVALID_TARGET)
    current = parse_memory(limit_text)
    bounds = request.bounds
    factor = min(params.factor or bounds.memory_factor, bounds.memory_factor, MAX_MEMORY_FACTOR)
    if factor <= 1:
        raise fail(f"raise_memory_limit: factor {factor} would not raise the limit", errors.INVALID_PARAMS)
    mebi = 2**20
    new = min(math.ceil(current * factor / mebi) * mebi, bounds.memory_cap_bytes)
    if new <= current:
        raise fail(f"memory limit of {container['name']} is {format_memory(current)}, already at the cap "
                   f"{format_memory(bounds.memory_cap_bytes)}", errors.BOUND_EXCEEDED)
    new_text = format_memory(new) if new % mebi == 0 else str(new)
    change: Obj = {"name": container["name"], "resources": {"limits": {"memory": new_text}}}
    request_text = (resources.get("requests") or {}).get("memory")
    if request_text and parse_memory(request_text) > new:  # a request above its limit is invalid
        change["resources"]["requests"] = {"memory": new_text}
    spec = {"template": {"spec": {"containers": [change]}}}
    return Plan(_guarded(deploy, request.idempotency_key, spec), STRATEGIC,
                f"memory limit of {container['name']} raised from {limit_text} to {new_text}",
                {"memory": limit_text}, {"memory": new_text})


# --- rollback ----------------------------------------------------------------------


def rollback_plan(deploy: Obj, replicasets: list[Obj], key: str) -> Plan:
    """Like `kubectl rollout undo`: the template of the newest revision before the current one."""
    uid = deploy["metadata"]["uid"]
    owned = [rs for rs in replicasets
             if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]
    current = revision(deploy) or max((revision(rs) for rs in owned), default=0)
    older = [rs for rs in owned if 0 < revision(rs) < current]
    if not older:
        raise fail(f"{deploy['metadata']['namespace']}/{deploy['metadata']['name']} has no revision "
                   f"before {current} to roll back to", errors.NO_PREVIOUS_REVISION)
    previous = max(older, key=revision)
    template = copy.deepcopy(previous["spec"]["template"])
    ((template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    annotations = {**(deploy["metadata"].get("annotations") or {}), ACTION_KEY: key}
    ops = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": deploy["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]
    old_images = {c.get("name", ""): c.get("image", "") for c in (template.get("spec") or {}).get("containers", [])}
    return Plan(ops, JSON_PATCH, f"rolled back from revision {current} to {revision(previous)}",
                {"revision": current, "image": images(deploy)},
                {"revision_template": revision(previous), "image": old_images})


# --- jobs --------------------------------------------------------------------------


def job_name(template: str, key: str) -> str:
    """Same key, same name: a retried creation meets AlreadyExists instead of a second job."""
    return f"{template[:54]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def job_manifest(request: ActionRequest) -> Obj:
    template_name = typed_params(request, RunJobParams).template
    try:
        require_namespace(template_name)  # a DNS label: it becomes part of the job name
    except InvalidName:
        raise fail(f"run_job: template name {template_name!r} is not a DNS-1123 label",
                   errors.INVALID_PARAMS) from None
    if request.job_template is None:
        raise fail(f"run_job: no job template {template_name!r} was given", errors.INVALID_PARAMS)
    try:
        template = JobTemplate.model_validate(request.job_template)
    except ValidationError as error:
        raise fail(f"run_job: job template {template_name!r} is invalid: {error.errors()[0]['msg']}",
                   errors.INVALID_PARAMS) from None
    labels = {**template.labels, JOB_LABEL: template_name, "app.kubernetes.io/managed-by": "zerotouch"}
    annotations = {ACTION_KEY: request.idempotency_key, INCIDENT: request.incident_id}
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        # args only, never a shell: the image's entrypoint receives them verbatim
        "containers": [{"name": template_name, "image": template.image, "args": list(template.args)}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(template_name, request.idempotency_key), "namespace": request.namespace,
                     "labels": labels, "annotations": annotations},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": max(1, int(template.active_deadline.total_seconds())),
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


SCHEDULE_LABEL = "zerotouch.io/schedule"
SCHEDULED_TIME = "zerotouch.io/scheduled-time"


def scheduled_job_name(schedule: str, scheduled_time: datetime) -> str:
    """One name per schedule and scheduled time: a catch-up or retry of that time meets AlreadyExists."""
    utc = scheduled_time.astimezone(UTC) if scheduled_time.tzinfo else scheduled_time
    return f"{schedule[:40]}-{utc.strftime('%Y%m%d%H%M%S')}"


def scheduled_job_manifest(request: ScheduledJobRequest) -> Obj:
    """The Job of one scheduled time, from a policy job template (args only, never a shell)."""
    try:
        namespace = require_namespace(request.namespace)
        require_namespace(request.template_name)  # a DNS label: it names the container
        template = JobTemplate.model_validate(request.job_template)
    except InvalidName as error:
        raise fail(f"scheduled job {request.schedule}: {error}", errors.INVALID_TARGET) from None
    except ValidationError as error:
        raise fail(f"scheduled job {request.schedule}: job template {request.template_name!r} is invalid: "
                   f"{error.errors()[0]['msg']}", errors.INVALID_PARAMS) from None
    labels = {**template.labels, JOB_LABEL: request.template_name, SCHEDULE_LABEL: request.schedule,
              "app.kubernetes.io/managed-by": "zerotouch"}
    annotations = {ACTION_KEY: request.idempotency_key, SCHEDULED_TIME: request.scheduled_time.isoformat()}
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [{"name": request.template_name, "image": template.image, "args": list(template.args)}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": scheduled_job_name(request.schedule, request.scheduled_time), "namespace": namespace,
                     "labels": labels, "annotations": annotations},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": max(1, int(template.active_deadline.total_seconds())),
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def job_finished(job: Obj) -> tuple[bool, bool, str]:
    """(succeeded, failed, detail) of a Job as its status says."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions or int(status.get("succeeded") or 0) >= 1:
        return True, False, "succeeded"
    if "Failed" in conditions:
        failed = conditions["Failed"]
        return False, True, f"failed: {failed.get('reason', '')} {failed.get('message', '')}".strip()
    return False, False, f"active {int(status.get('active') or 0)}"


def selector_string(selector: Obj | None) -> str:
    """A label selector object as the `labelSelector` query string."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": f"{key}", "DoesNotExist": f"!{key}"}.get(str(op), ""))
    return ",".join(p for p in parts if p)
