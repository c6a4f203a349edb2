"""The resource types the sandbox serves.

One table drives discovery, routing and list kinds, so a type added here is
served consistently everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
READ_VERBS = ["get", "list", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    # subresource name -> (group, version, kind) of the object it speaks
    subresources: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def singular(self) -> str:
        return self.kind.lower()


_STATUS = ("", "", "")  # placeholder: status subresources speak the parent kind

RESOURCE_TYPES: list[ResourceType] = [
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",),
                 subresources={"status": _STATUS}),
    ResourceType("", "v1", "nodes", "Node", False, ("no",),
                 subresources={"status": _STATUS}),
    ResourceType("", "v1", "pods", "Pod", True, ("po",),
                 subresources={"status": _STATUS, "eviction": ("policy", "v1", "Eviction")},
                 categories=("all",)),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "services", "Service", True, ("svc",), categories=("all",)),
    ResourceType("", "v1", "events", "Event", True, ("ev",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",),
                 subresources={"status": _STATUS, "scale": ("autoscaling", "v1", "Scale")},
                 categories=("all",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",),
                 subresources={"status": _STATUS, "scale": ("autoscaling", "v1", "Scale")},
                 categories=("all",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",),
                 subresources={"status": _STATUS, "scale": ("autoscaling", "v1", "Scale")},
                 categories=("all",)),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",),
                 subresources={"status": _STATUS}, categories=("all",)),
    ResourceType("batch", "v1", "jobs", "Job", True,
                 subresources={"status": _STATUS}, categories=("all",)),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",),
                 subresources={"status": _STATUS}, categories=("all",)),
    # Stored only (no controller): it gives autoscaling/v1 a resource, without which kubectl's
    # discovery (`kubectl api-resources`) fails on "received empty response for: autoscaling/v1".
    ResourceType("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
                 ("hpa",), subresources={"status": _STATUS}),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",),
                 subresources={"status": _STATUS}),
]

GROUP_VERSIONS: dict[str, list[str]] = {}
for _rt in RESOURCE_TYPES:
    GROUP_VERSIONS.setdefault(_rt.group, [])
    if _rt.version not in GROUP_VERSIONS[_rt.group]:
        GROUP_VERSIONS[_rt.group].append(_rt.version)
# autoscaling/v1 only carries Scale objects, but kubectl resolves the scale
# subresource's group through discovery, so the group has to be listed.
GROUP_VERSIONS.setdefault("autoscaling", ["v1"])


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCE_TYPES:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def by_kind(kind: str) -> ResourceType | None:
    for rt in RESOURCE_TYPES:
        if rt.kind == kind:
            return rt
    return None


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCE_TYPES if rt.group == group and rt.version == version]


def get_type(group: str, plural: str, version: str = "v1") -> ResourceType:
    """A resource type the sandbox is known to serve (KeyError otherwise)."""
    rt = lookup(group, version, plural)
    if rt is None:
        raise KeyError(f"{group}/{version}/{plural}")
    return rt
