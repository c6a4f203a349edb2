"""What a fault breaks: the object a `namespace/name` target names, and its kind.

The control API (and `zerotouch sandbox inject KIND TARGET`) carries a target as
`namespace` + `deployment`; a bare name keeps meaning a Deployment, and a
kubectl-style `TYPE/NAME` in the name picks another owner:

    shop/web                 the Deployment shop/web
    shop/statefulset/db      the StatefulSet shop/db (also sts/db)
    shop/daemonset/node-agent  the DaemonSet (also ds/node-agent)
    shop/pvc/data-db-0       the PersistentVolumeClaim (also persistentvolumeclaim/...)

`statefulset/shop/db` (type first) is accepted too. `volume-filling` targets
a PVC, so its bare name means the claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from .resources import ResourceType, get_type

DEPLOYMENT = "Deployment"
STATEFULSET = "StatefulSet"
DAEMONSET = "DaemonSet"
PVC = "PersistentVolumeClaim"

RESOURCE_OF: dict[str, ResourceType] = {
    DEPLOYMENT: get_type("apps", "deployments"),
    STATEFULSET: get_type("apps", "statefulsets"),
    DAEMONSET: get_type("apps", "daemonsets"),
    PVC: get_type("", "persistentvolumeclaims"),
}
_TYPE_WORDS = {
    "deployment": DEPLOYMENT, "deployments": DEPLOYMENT, "deploy": DEPLOYMENT,
    "statefulset": STATEFULSET, "statefulsets": STATEFULSET, "sts": STATEFULSET,
    "daemonset": DAEMONSET, "daemonsets": DAEMONSET, "ds": DAEMONSET,
    "persistentvolumeclaim": PVC, "persistentvolumeclaims": PVC, "pvc": PVC,
}


@dataclass(frozen=True)
class FaultTarget:
    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> ResourceType:
        return RESOURCE_OF[self.kind]


def parse_target(namespace: str, name: str, default_kind: str = DEPLOYMENT) -> FaultTarget:
    """The object `namespace`/`name` names; ValueError for an unknown TYPE word."""
    if namespace.lower() in _TYPE_WORDS and "/" in name:
        # statefulset/shop/db arrives as namespace="statefulset", name="shop/db"
        kind = _TYPE_WORDS[namespace.lower()]
        namespace, _, name = name.partition("/")
        return FaultTarget(kind, namespace, name)
    word, slash, rest = name.partition("/")
    if not slash:
        return FaultTarget(default_kind, namespace, name)
    if word.lower() not in _TYPE_WORDS or not rest:
        raise ValueError(f"unknown target type {word!r} in {namespace}/{name}; expected one of "
                         "deployment, statefulset, daemonset, pvc")
    return FaultTarget(_TYPE_WORDS[word.lower()], namespace, rest)
