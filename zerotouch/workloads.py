"""Which workload an alert is about, from the labels real alerts carry.

kube-prometheus alerts name a pod (``KubePodCrashLooping``: ``namespace``, ``pod``,
``container``) or the workload itself (``deployment``, ``statefulset``, ``daemonset``,
``job_name``, ``horizontalpodautoscaler``, ``persistentvolumeclaim``, ``node``). Their
``service``/``job``/``instance``/``endpoint`` labels describe the exporter that produced the
series, not the application, and are never read here.

Two answers, for two places:

- `workload_key`: a cheap name the relay groups alerts by, with no Kubernetes access, so
  three crash-looping pods of one Deployment join one incident. It reads the pod-name
  patterns the controllers use; it can be wrong for a pod with a hand-made name.
- `WorkloadRef`: what the resolution activity (`activities/workloads.py`) confirms by
  following the pod's owner references, recorded in the incident's timeline.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

WorkloadKind = Literal[
    "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod",
    "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Node",
]

# Labels that name a workload directly, in the order they are trusted (kubernetes-mixin names).
WORKLOAD_LABELS: tuple[tuple[str, WorkloadKind], ...] = (
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("cronjob", "CronJob"),
    ("job_name", "Job"),
    ("horizontalpodautoscaler", "HorizontalPodAutoscaler"),
    ("persistentvolumeclaim", "PersistentVolumeClaim"),
)
# Named kinds whose workload is another object (a CronJob's Job, an HPA's target): resolved too.
_FOLLOWED_FROM_LABELS: tuple[WorkloadKind, ...] = ("Job", "HorizontalPodAutoscaler")
LABEL_OF_KIND: dict[str, str] = {**{kind: label for label, kind in WORKLOAD_LABELS}, "Node": "node"}
# Every label the resolution activity reads (the rest of an alert's labels never reach the API).
RESOLUTION_LABELS: tuple[str, ...] = ("namespace", "pod", *(name for name, _ in WORKLOAD_LABELS), "node")

# Kubernetes' rand.String alphabet (no vowels, no 0/1/3): pod suffixes and pod-template-hashes.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_NAME = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
# <deployment>-<pod-template-hash>-<5>: the hash is the safe encoding of a 32-bit FNV hash
# (up to 10 characters); a CronJob's Job is <cronjob>-<scheduled minute since the epoch>.
_REPLICASET_POD = re.compile(rf"^(?P<owner>{_NAME})-(?P<hash>[{_SAFE}]{{6,10}}|\d{{8,}})"
                             rf"-[{_SAFE}]{{5}}$")
_STATEFUL_POD = re.compile(rf"^(?P<owner>{_NAME})-(?P<ordinal>\d+)$")
# DaemonSet and Job pods: <owner>-<5>.
_GENERATED_POD = re.compile(rf"^(?P<owner>{_NAME})-[{_SAFE}]{{5}}$")


class WorkloadQuery(BaseModel):
    """What the resolution activity is asked: the alert's `RESOLUTION_LABELS`, nothing else."""

    labels: dict[str, str]


class WorkloadRef(BaseModel):
    """A workload zerotouch may act on, or the reason there is none."""

    kind: WorkloadKind | None = None
    namespace: str = ""
    name: str = ""
    # How it was found, one hop per entry: "pod shop/web-7d9c-x2", "replicaset shop/web-7d9c", ...
    path: list[str] = Field(default_factory=list)
    reason: str = Field(default="", description="why there is no workload (kind is None)")

    @property
    def found(self) -> bool:
        return self.kind is not None

    def describe(self) -> str:
        """``pod shop/web-7d9c-x2 → deployment shop/web`` for the timeline."""
        if self.kind is None:
            return f"{' → '.join(self.path)}: {self.reason}" if self.path else self.reason
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        target = f"{self.kind.lower()} {where}"
        hops = [hop for hop in self.path if hop != target]
        return " → ".join([*hops, target])


def owner_from_pod_name(pod: str) -> tuple[str, WorkloadKind] | None:
    """The owner a controller-made pod name points to, or None for a name no controller makes.

    ``web-7d9c5fb8d4-x2kqz`` → (``web``, Deployment); ``db-0`` → (``db``, StatefulSet);
    ``node-agent-x2kqz`` → (``node-agent``, DaemonSet, or a Job: the name cannot tell);
    ``backup-28912345-x2kqz`` → (``backup``, CronJob).
    """
    if match := _REPLICASET_POD.match(pod):
        kind: WorkloadKind = "CronJob" if match["hash"].isdigit() else "Deployment"
        return match["owner"], kind
    if match := _STATEFUL_POD.match(pod):
        return match["owner"], "StatefulSet"
    if match := _GENERATED_POD.match(pod):
        return match["owner"], "DaemonSet"
    return None


def named_workload(labels: dict[str, str]) -> tuple[str, WorkloadKind] | None:
    """The workload a label names outright (``deployment="web"``), in `WORKLOAD_LABELS` order."""
    for label, kind in WORKLOAD_LABELS:
        value = labels.get(label)
        if value:
            return value, kind
    return None


def workload_key(labels: dict[str, str]) -> str:
    """The name alerts about one workload share: the relay's ``workload`` grouping label.

    A named workload first, then the owner the pod name points to, then the pod or node
    itself; empty when the alert names none (a cluster-wide alert).
    """
    named = named_workload(labels)
    if named is not None:
        return named[0]
    pod = labels.get("pod", "")
    if pod:
        owner = owner_from_pod_name(pod)
        return owner[0] if owner else pod
    return labels.get("node", "")


def needs_resolution(labels: dict[str, str]) -> bool:
    """Whether the alert names a pod (or a Job, an HPA) but not the Deployment runbooks act on."""
    if labels.get("deployment"):
        return False
    named = named_workload(labels)
    return bool(labels.get("pod")) or (named is not None and named[1] in _FOLLOWED_FROM_LABELS)


def named_ref(labels: dict[str, str]) -> WorkloadRef | None:
    """The workload the labels name outright, as a `WorkloadRef` (no API read needed), or None."""
    named = named_workload(labels)
    if named is None and labels.get("node") and not labels.get("pod"):
        named = labels["node"], "Node"  # a node's own alert (KubeNodeNotReady): the node is what broke
    if named is None or named[1] in _FOLLOWED_FROM_LABELS:
        return None
    name, kind = named
    return WorkloadRef(kind=kind, namespace=labels.get("namespace", ""), name=name,
                       path=[f"label {LABEL_OF_KIND[kind]}={name}"])


def resolution_query(labels: dict[str, str]) -> WorkloadQuery:
    """The labels the resolution activity needs, and nothing else an alert carries."""
    return WorkloadQuery(labels={name: labels[name] for name in RESOLUTION_LABELS if labels.get(name)})
