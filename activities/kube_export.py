"""Pure rules of the Kubernetes objects backup: which objects, stripped of what, hashed how, restored as what.

Nothing here calls the API, so what a backup keeps (and what it must never keep: Secret values)
can be read and tested on its own. An exported object is what a user would have applied: the
fields the API server or a controller sets (identity, status, allocated IPs and ports, bound
volumes, finalizers) are dropped, so the object can be re-created in another namespace.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from zerotouch.backup_models import TableStat

Obj = dict[str, Any]

PLACEHOLDER_LABEL = "zerotouch.io/placeholder"
ORIGINAL_TYPE = "zerotouch.io/original-type"
VERIFICATION_LABEL = "zerotouch.io/verification"
VERIFY_PREFIX = "verify-"


@dataclass(frozen=True)
class Kind:
    name: str  # Deployment
    api: str  # "apps" or "core": which client class serves it
    suffix: str  # the client's method suffix: list_namespaced_<suffix>


KINDS: tuple[Kind, ...] = (
    Kind("ConfigMap", "core", "config_map"),
    Kind("Secret", "core", "secret"),
    Kind("PersistentVolumeClaim", "core", "persistent_volume_claim"),
    Kind("Service", "core", "service"),
    Kind("Deployment", "apps", "deployment"),  # last: what it mounts and references exists by then
)

_METADATA_KEPT = ("name", "namespace", "labels", "annotations")
# Annotations written by controllers (revision counters, volume binding), not by whoever applied the object.
_SERVER_ANNOTATIONS = re.compile(
    r"^(deployment\.kubernetes\.io/revision|pv\.kubernetes\.io/.*|volume\.(beta\.)?kubernetes\.io/.*)$")


def managed_by_cluster(kind: str, obj: Obj) -> bool:
    """Objects the cluster itself puts in every namespace: restoring them would collide with its own copy."""
    name = (obj.get("metadata") or {}).get("name")
    if kind == "ConfigMap":
        return name == "kube-root-ca.crt"
    if kind == "Secret":
        return obj.get("type") == "kubernetes.io/service-account-token"
    return False


def _metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    kept = {key: copy.deepcopy(meta[key]) for key in _METADATA_KEPT if meta.get(key)}
    annotations = {k: v for k, v in (kept.pop("annotations", None) or {}).items()
                   if not _SERVER_ANNOTATIONS.match(k)}
    if annotations:
        kept["annotations"] = annotations
    return kept


def export(kind: str, obj: Obj) -> Obj:
    """The object as it can be re-created: uid, resourceVersion, managedFields, status, ownerReferences,
    finalizers, cluster IPs, node ports and bound volume names dropped."""
    if kind == "Secret":
        raise ValueError("Secrets are never exported: use referenced_secrets")
    out: Obj = {"apiVersion": obj.get("apiVersion") or ("apps/v1" if kind == "Deployment" else "v1"),
                "kind": kind, "metadata": _metadata(obj)}
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            out[key] = copy.deepcopy(value)
    spec = out.get("spec")
    if kind == "Service" and isinstance(spec, dict):
        # A headless Service's "None" is intent; an allocated address would collide on re-creation.
        if spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        spec.pop("healthCheckNodePort", None)
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)
    if kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.pop("volumeName", None)  # that volume is bound to the original claim
    if kind == "Deployment" and isinstance(spec, dict):
        template_meta = (spec.get("template") or {}).get("metadata")
        if isinstance(template_meta, dict):
            template_meta.pop("creationTimestamp", None)
    return out


def referenced_secrets(deployments: list[Obj], namespace: str) -> list[Obj]:
    """The Secrets the Deployments' pod templates reference, with the keys they use: read from the
    workloads, never from the Secrets API, so a backup needs no access to secrets at all. A whole
    Secret mounted or imported (`envFrom`, a volume without `items`) has unknown keys: none listed."""
    found: dict[str, set[str]] = {}
    types: dict[str, str] = {}

    def note(name: str | None, keys: list[str] | None = None) -> None:
        if name:
            found.setdefault(name, set()).update(key for key in keys or [] if key)

    for deployment in deployments:
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        for pull in pod.get("imagePullSecrets") or []:
            note(pull.get("name"), [".dockerconfigjson"])
            types[pull.get("name", "")] = "kubernetes.io/dockerconfigjson"
        volumes = list(pod.get("volumes") or [])
        for volume in volumes:
            sources = [volume] + [s for s in (volume.get("projected") or {}).get("sources") or []]
            for source in sources:
                secret = source.get("secret") or {}
                name = secret.get("secretName") or secret.get("name")
                note(name, [item.get("key", "") for item in secret.get("items") or []])
        for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                note(ref.get("name"), [ref.get("key", "")])
            for env_from in container.get("envFrom") or []:
                note((env_from.get("secretRef") or {}).get("name"))
    return [{"name": name, "namespace": namespace, "type": types.get(name, "Opaque"), "keys": sorted(keys)}
            for name, keys in sorted(found.items())]


def placeholder_secret(reference: Obj) -> Obj:
    """A Secret with the same keys and empty values. Always Opaque: typed Secrets (TLS, docker config)
    are validated for content an empty value fails; the original type is kept as an annotation."""
    labels = {**(reference.get("labels") or {}), PLACEHOLDER_LABEL: "true"}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": reference["name"], "labels": labels,
                         "annotations": {ORIGINAL_TYPE: reference["type"]}},
            "data": dict.fromkeys(reference["keys"], "")}


def placeholder_key_problems(references: list[Obj], restored: list[Obj]) -> list[str]:
    """Restored placeholders whose keys differ from the backed-up Secret's: a consumer would miss a key."""
    keys = {ref["name"]: ref["keys"] for ref in references}
    return [f"secret {object_name(s)} has keys {sorted(s.get('data') or {})}, backed up {keys[object_name(s)]}"
            for s in restored if object_name(s) in keys and sorted(s.get("data") or {}) != keys[object_name(s)]]


def scratch_copy(obj: Obj, namespace: str) -> Obj:
    """The object as a test restore creates it in ``namespace``. A LoadBalancer or NodePort Service becomes
    ClusterIP: a scratch copy must not provision a cloud load balancer or open ports on every node."""
    body = copy.deepcopy(obj)
    body["metadata"]["namespace"] = namespace
    spec = body.get("spec")
    if body.get("kind") == "Service" and isinstance(spec, dict) and spec.get("type") in ("LoadBalancer", "NodePort"):
        body["metadata"].setdefault("annotations", {})[ORIGINAL_TYPE] = spec["type"]
        spec["type"] = "ClusterIP"
        for field in ("externalTrafficPolicy", "loadBalancerIP", "loadBalancerSourceRanges", "loadBalancerClass",
                      "allocateLoadBalancerNodePorts", "healthCheckNodePort", "externalIPs"):
            spec.pop(field, None)
    return body


def canonical(obj: Obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def table_stat(objects: list[Obj]) -> TableStat:
    """Count, and a hash of the sorted per-object digests: independent of listing order; a namespace
    holds few enough objects that sorting their digests costs nothing."""
    digests = sorted(hashlib.sha256(canonical(obj)).hexdigest() for obj in objects)
    return TableStat(rows=len(objects), hash=hashlib.sha256("\n".join(digests).encode()).hexdigest())


def table_key(namespace: str, kind: str) -> str:
    return f"{namespace}/{kind}"


def object_name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or obj.get("name") or "")


def verification_id(scratch_name: str) -> str:
    """A DNS-label fragment from the verification's scratch name; long names keep a digest so they stay distinct."""
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", scratch_name.lower())).strip("-") or "scratch"
    room = 63 - len(VERIFY_PREFIX) - 3  # "-NN" when a target has several namespaces
    if len(cleaned) > room:
        digest = hashlib.sha256(scratch_name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:room - 9].rstrip('-')}-{digest}"
    return cleaned


def verify_namespaces(scratch_name: str, sources: list[str]) -> dict[str, str]:
    """Source namespace → the namespace its test restore goes to: ``verify-<id>``, numbered if several."""
    base = VERIFY_PREFIX + verification_id(scratch_name)
    if len(sources) == 1:
        return {sources[0]: base}
    return {source: f"{base}-{index}" for index, source in enumerate(sources, start=1)}


def desired(deployment: Obj) -> int:
    return int((deployment.get("spec") or {}).get("replicas", 1))


def available(deployment: Obj) -> int:
    return int((deployment.get("status") or {}).get("availableReplicas") or 0)


def deployment_ready(deployment: Obj) -> bool:
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= int(deployment["metadata"].get("generation") or 1)
    return observed and available(deployment) >= desired(deployment)


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
