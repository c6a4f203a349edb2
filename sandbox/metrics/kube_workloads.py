"""kube-state-metrics' workload series: ReplicaSet owners, Deployments, StatefulSets,
DaemonSets and HorizontalPodAutoscalers (internal/store/*.go), names and labels as v2."""

from __future__ import annotations

from ..resources import get_type
from ..store import Obj
from .exposition import Registry, Scrape, bool_series, owner_labels

_RS = get_type("apps", "replicasets")
_DEPLOY = get_type("apps", "deployments")
_STS = get_type("apps", "statefulsets")
_DS = get_type("apps", "daemonsets")
_HPA = get_type("autoscaling", "horizontalpodautoscalers")


def collect(scrape: Scrape, reg: Registry) -> None:
    rs_owner = reg.gauge("kube_replicaset_owner", "Information about the ReplicaSet's owner.")
    for rs in scrape.store.list(_RS):
        base = {"namespace": rs["metadata"]["namespace"], "replicaset": rs["metadata"]["name"]}
        for ref in rs["metadata"].get("ownerReferences") or [None]:
            rs_owner.add({**base, **owner_labels(ref)}, 1)
    _deployments(scrape, reg)
    _statefulsets(scrape, reg)
    _daemonsets(scrape, reg)
    _autoscalers(scrape, reg)


def _status_gauges(reg: Registry, prefix: str, obj: Obj, labels: dict[str, str],
                   fields: tuple[tuple[str, str, str], ...]) -> None:
    """(series suffix, status field, HELP) -> one gauge each, 0 when the field is omitted."""
    status = obj.get("status") or {}
    for suffix, key, help_text in fields:
        reg.gauge(f"{prefix}_{suffix}", help_text).add(labels, status.get(key, 0))


def _deployments(scrape: Scrape, reg: Registry) -> None:
    condition = reg.gauge("kube_deployment_status_condition",
                          "The current status conditions of a deployment.")
    for deploy in scrape.store.list(_DEPLOY):
        labels = {"namespace": deploy["metadata"]["namespace"],
                  "deployment": deploy["metadata"]["name"]}
        reg.gauge("kube_deployment_spec_replicas", "Number of desired pods for a deployment.").add(
            labels, deploy["spec"].get("replicas", 1))
        _status_gauges(reg, "kube_deployment_status", deploy, labels, (
            ("replicas", "replicas", "The number of replicas per deployment."),
            ("replicas_available", "availableReplicas",
             "The number of available replicas per deployment."),
            ("replicas_unavailable", "unavailableReplicas",
             "The number of unavailable replicas per deployment."),
            ("replicas_updated", "updatedReplicas",
             "The number of updated replicas per deployment."),
            ("replicas_ready", "readyReplicas", "The number of ready replicas per deployment."),
            ("observed_generation", "observedGeneration",
             "The generation observed by the deployment controller."),
        ))
        reg.gauge("kube_deployment_metadata_generation",
                  "Sequence number representing a specific generation of the desired state.").add(
            labels, deploy["metadata"].get("generation", 1))
        for cond in (deploy.get("status") or {}).get("conditions") or []:
            value = {"True": True, "False": False}.get(cond.get("status", ""))
            bool_series(condition, {**labels, "condition": cond["type"]}, value)


def _statefulsets(scrape: Scrape, reg: Registry) -> None:
    current = reg.gauge("kube_statefulset_status_current_revision",
                        "Indicates the version of the StatefulSet used to generate Pods in the "
                        "sequence [0,currentReplicas).")
    update = reg.gauge("kube_statefulset_status_update_revision",
                       "Indicates the version of the StatefulSet used to generate Pods in the "
                       "sequence [replicas-updatedReplicas,replicas)")
    for sts in scrape.store.list(_STS):
        labels = {"namespace": sts["metadata"]["namespace"], "statefulset": sts["metadata"]["name"]}
        status = sts.get("status") or {}
        reg.gauge("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.").add(
            labels, sts["spec"].get("replicas", 1))
        _status_gauges(reg, "kube_statefulset_status", sts, labels, (
            ("replicas", "replicas", "The number of replicas per StatefulSet."),
            ("replicas_available", "availableReplicas",
             "The number of available replicas per StatefulSet."),
            ("replicas_current", "currentReplicas",
             "The number of current replicas per StatefulSet."),
            ("replicas_ready", "readyReplicas", "The number of ready replicas per StatefulSet."),
            ("replicas_updated", "updatedReplicas",
             "The number of updated replicas per StatefulSet."),
            ("observed_generation", "observedGeneration",
             "The generation observed by the StatefulSet controller."),
        ))
        reg.gauge("kube_statefulset_metadata_generation",
                  "Sequence number representing a specific generation of the desired state for "
                  "the StatefulSet.").add(labels, sts["metadata"].get("generation", 1))
        if status.get("currentRevision"):
            current.add({**labels, "revision": status["currentRevision"]}, 1)
        if status.get("updateRevision"):
            update.add({**labels, "revision": status["updateRevision"]}, 1)


def _daemonsets(scrape: Scrape, reg: Registry) -> None:
    for ds in scrape.store.list(_DS):
        labels = {"namespace": ds["metadata"]["namespace"], "daemonset": ds["metadata"]["name"]}
        _status_gauges(reg, "kube_daemonset_status", ds, labels, (
            ("current_number_scheduled", "currentNumberScheduled",
             "The number of nodes running at least one daemon pod and are supposed to."),
            ("desired_number_scheduled", "desiredNumberScheduled",
             "The number of nodes that should be running the daemon pod."),
            ("number_available", "numberAvailable",
             "The number of nodes that should be running the daemon pod and have one or more of "
             "the daemon pod running and available"),
            ("number_misscheduled", "numberMisscheduled",
             "The number of nodes running a daemon pod but are not supposed to."),
            ("number_ready", "numberReady",
             "The number of nodes that should be running the daemon pod and have one or more of "
             "the daemon pod running and ready."),
            ("number_unavailable", "numberUnavailable",
             "The number of nodes that should be running the daemon pod and have none of the "
             "daemon pod running and available"),
            ("observed_generation", "observedGeneration",
             "The most recent generation observed by the daemon set controller."),
            ("updated_number_scheduled", "updatedNumberScheduled",
             "The total number of nodes that are running updated daemon pod"),
        ))
        reg.gauge("kube_daemonset_metadata_generation",
                  "Sequence number representing a specific generation of the desired state.").add(
            labels, ds["metadata"].get("generation", 1))


def _autoscalers(scrape: Scrape, reg: Registry) -> None:
    for hpa in scrape.store.list(_HPA):
        labels = {"namespace": hpa["metadata"]["namespace"],
                  "horizontalpodautoscaler": hpa["metadata"]["name"]}
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        reg.gauge("kube_horizontalpodautoscaler_spec_max_replicas",
                  "Upper limit for the number of pods that can be set by the autoscaler; cannot "
                  "be smaller than MinReplicas.").add(labels, spec.get("maxReplicas", 0))
        reg.gauge("kube_horizontalpodautoscaler_spec_min_replicas",
                  "Lower limit for the number of pods that can be set by the autoscaler, default "
                  "1.").add(labels, spec.get("minReplicas", 1))
        reg.gauge("kube_horizontalpodautoscaler_status_current_replicas",
                  "Current number of replicas of pods managed by this autoscaler.").add(
            labels, status.get("currentReplicas", 0))
        reg.gauge("kube_horizontalpodautoscaler_status_desired_replicas",
                  "Desired number of replicas of pods managed by this autoscaler.").add(
            labels, status.get("desiredReplicas", 0))
