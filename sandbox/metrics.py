"""/metrics in Prometheus text format.

Cluster-state series use kube-state-metrics names and labels, so alert rules
written for kube-prometheus evaluate unchanged; the application series
(HTTP traffic, consumer lag, volume usage) are synthesised from faults.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from . import cronjobs, jobs, pods, templates
from .clock import parse_iso
from .faults import FaultManager
from .resources import get_type
from .store import Store

REQUESTS_PER_SECOND = 20.0
BAD_DEPLOY_ERROR_RATIO = 0.5
VOLUME_CAPACITY = 10 * 2**30

_DEPLOY = get_type("apps", "deployments")
_RS = get_type("apps", "replicasets")
_PODS = get_type("", "pods")
_NODES = get_type("", "nodes")
_JOBS = get_type("batch", "jobs")
_CRONJOBS = get_type("batch", "cronjobs")

Labels = dict[str, str]


class TrafficCounters:
    """Monotonic http_requests_total counters, advanced by the controller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], float] = defaultdict(float)
        self._last = time.monotonic()

    def advance(self, store: Store, faults: FaultManager) -> None:
        now = time.monotonic()
        with self._lock:
            elapsed, self._last = now - self._last, now
        for deploy in store.list(_DEPLOY):
            ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
            total = REQUESTS_PER_SECOND * elapsed
            ratio = BAD_DEPLOY_ERROR_RATIO if faults.has("bad-deploy", ns, name) else 0.0
            with self._lock:
                self._counts[(ns, name, "200")] += total * (1 - ratio)
                self._counts[(ns, name, "500")] += total * ratio

    def samples(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return [({"namespace": ns, "deployment": d, "code": code}, value)
                    for (ns, d, code), value in sorted(self._counts.items())]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[Labels, float]] = []

    def add(self, labels: Labels, value: float) -> None:
        self.samples.append((labels, value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(store: Store, faults: FaultManager, traffic: TrafficCounters) -> str:
    fams: dict[str, _Family] = {}

    def fam(name: str, kind: str, help_text: str) -> _Family:
        return fams.setdefault(name, _Family(name, kind, help_text))

    restarts = fam("kube_pod_container_status_restarts_total", "counter",
                   "The number of container restarts per container.")
    waiting = fam("kube_pod_container_status_waiting_reason", "gauge",
                  "Describes the reason the container is currently in waiting state.")
    terminated = fam("kube_pod_container_status_last_terminated_reason", "gauge",
                     "Describes the last reason the container was in terminated state.")
    c_ready = fam("kube_pod_container_status_ready", "gauge",
                  "Describes whether the containers readiness check succeeded.")
    p_ready = fam("kube_pod_status_ready", "gauge", "Describes whether the pod is ready.")
    phase = fam("kube_pod_status_phase", "gauge", "The pods current phase.")
    pod_owner = fam("kube_pod_owner", "gauge", "Information about the Pod's owner.")
    limits = fam("kube_pod_container_resource_limits", "gauge",
                 "The number of requested limit resource by a container.")
    rs_owner = fam("kube_replicaset_owner", "gauge", "Information about the ReplicaSet's owner.")
    with store.lock:
        for pod in store.list(_PODS):
            meta, status = pod["metadata"], pod.get("status") or {}
            base = {"namespace": meta["namespace"], "pod": meta["name"]}
            for cs in status.get("containerStatuses") or []:
                cl = {**base, "container": cs["name"]}
                restarts.add(cl, cs.get("restartCount", 0))
                c_ready.add(cl, 1 if cs.get("ready") else 0)
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
                if reason:
                    waiting.add({**cl, "reason": reason}, 1)
                last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
                if last:
                    terminated.add({**cl, "reason": last}, 1)
            for c in pod["spec"].get("containers") or []:
                memory = templates.memory_limit({"spec": {"containers": [c]}})
                if memory is not None:
                    limits.add({**base, "container": c["name"], "node": pod["spec"].get("nodeName", ""),
                                "resource": "memory", "unit": "byte"}, memory)
            ready = pods.is_ready(pod)
            for cond in ("true", "false"):
                p_ready.add({**base, "condition": cond}, 1 if (cond == "true") == ready else 0)
            for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                phase.add({**base, "phase": ph}, 1 if status.get("phase") == ph else 0)
            for ref in meta.get("ownerReferences") or []:
                pod_owner.add({**base, "owner_kind": ref["kind"], "owner_name": ref["name"],
                               "owner_is_controller": "true" if ref.get("controller") else "false"},
                              1)
        for rs in store.list(_RS):
            for ref in rs["metadata"].get("ownerReferences") or []:
                rs_owner.add({"namespace": rs["metadata"]["namespace"],
                              "replicaset": rs["metadata"]["name"], "owner_kind": ref["kind"],
                              "owner_name": ref["name"],
                              "owner_is_controller": "true" if ref.get("controller") else "false"},
                             1)
        _deployment_families(store, fam)
        _node_families(store, fam)
        _cronjob_families(store, fam)
        _job_families(store, fam)
        _app_families(store, faults, traffic, fam)
    return _exposition(fams.values())


def _deployment_families(store: Store, fam: Any) -> None:
    spec_replicas = fam("kube_deployment_spec_replicas", "gauge",
                        "Number of desired pods for a deployment.")
    available = fam("kube_deployment_status_replicas_available", "gauge",
                    "The number of available replicas per deployment.")
    unavailable = fam("kube_deployment_status_replicas_unavailable", "gauge",
                      "The number of unavailable replicas per deployment.")
    updated = fam("kube_deployment_status_replicas_updated", "gauge",
                  "The number of updated replicas per deployment.")
    observed = fam("kube_deployment_status_observed_generation", "gauge",
                   "The generation observed by the deployment controller.")
    generation = fam("kube_deployment_metadata_generation", "gauge",
                     "Sequence number representing a specific generation of the desired state.")
    for deploy in store.list(_DEPLOY):
        labels = {"namespace": deploy["metadata"]["namespace"],
                  "deployment": deploy["metadata"]["name"]}
        status = deploy.get("status") or {}
        spec_replicas.add(labels, deploy["spec"].get("replicas", 1))
        available.add(labels, status.get("availableReplicas", 0))
        unavailable.add(labels, status.get("unavailableReplicas", 0))
        updated.add(labels, status.get("updatedReplicas", 0))
        observed.add(labels, status.get("observedGeneration", 0))
        generation.add(labels, deploy["metadata"].get("generation", 1))


def _node_families(store: Store, fam: Any) -> None:
    cond = fam("kube_node_status_condition", "gauge", "The condition of a cluster node.")
    for node in store.list(_NODES):
        for c in (node.get("status") or {}).get("conditions") or []:
            for value in ("true", "false", "unknown"):
                cond.add({"node": node["metadata"]["name"], "condition": c["type"],
                          "status": value}, 1 if c.get("status", "").lower() == value else 0)


def _epoch(value: str | None) -> float | None:
    when = parse_iso(value)
    return None if when is None else when.timestamp()


def _cronjob_families(store: Store, fam: Any) -> None:
    """kube-state-metrics' CronJob series (cronjob.go), same names, labels and omissions."""
    info = fam("kube_cronjob_info", "gauge", "Info about cronjob.")
    created = fam("kube_cronjob_created", "gauge", "Unix creation timestamp")
    suspend = fam("kube_cronjob_spec_suspend", "gauge", "Suspend flag tells the controller to "
                  "suspend subsequent executions.")
    deadline = fam("kube_cronjob_spec_starting_deadline_seconds", "gauge",
                   "Deadline in seconds for starting the job if it misses scheduled time for "
                   "any reason.")
    active = fam("kube_cronjob_status_active", "gauge", "Active holds pointers to currently "
                 "running jobs.")
    last = fam("kube_cronjob_status_last_schedule_time", "gauge", "LastScheduleTime keeps "
               "information of when was the last time the job was successfully scheduled.")
    success = fam("kube_cronjob_status_last_successful_time", "gauge", "LastSuccessfulTime "
                  "keeps information of when was the last time the job was completed "
                  "successfully.")
    upcoming = fam("kube_cronjob_next_schedule_time", "gauge", "Next time the cronjob should be "
                   "scheduled. The time after lastScheduleTime, or after the cron job's creation "
                   "time if it's never been scheduled. Use this to determine if the job is "
                   "delayed.")
    for cj in store.list(_CRONJOBS):
        meta, spec, status = cj["metadata"], cj.get("spec") or {}, cj.get("status") or {}
        base = {"namespace": meta["namespace"], "cronjob": meta["name"]}
        info.add({**base, "schedule": spec.get("schedule", ""),
                  "concurrency_policy": spec.get("concurrencyPolicy", "Allow"),
                  "timezone": spec.get("timeZone") or "local"}, 1)
        if (stamp := _epoch(meta.get("creationTimestamp"))) is not None:
            created.add(base, stamp)
        suspend.add(base, 1 if spec.get("suspend") else 0)
        if spec.get("startingDeadlineSeconds") is not None:
            deadline.add(base, spec["startingDeadlineSeconds"])
        active.add(base, len(status.get("active") or []))
        if (stamp := _epoch(status.get("lastScheduleTime"))) is not None:
            last.add(base, stamp)
        if (stamp := _epoch(status.get("lastSuccessfulTime"))) is not None:
            success.add(base, stamp)
        upcoming_at = cronjobs.next_schedule_time(cj)
        if upcoming_at is not None and not spec.get("suspend"):
            upcoming.add(base, upcoming_at.timestamp())


def _job_families(store: Store, fam: Any) -> None:
    owner = fam("kube_job_owner", "gauge", "Information about the Job's owner.")
    succeeded = fam("kube_job_status_succeeded", "gauge", "The number of pods which reached "
                    "Phase Succeeded.")
    failed = fam("kube_job_status_failed", "gauge", "The number of pods which reached Phase "
                 "Failed and the reason for failure.")
    running = fam("kube_job_status_active", "gauge", "The number of actively running pods.")
    complete = fam("kube_job_complete", "gauge", "The job has completed its execution.")
    job_failed = fam("kube_job_failed", "gauge", "The job has failed its execution.")
    for job in store.list(_JOBS):
        meta, status = job["metadata"], job.get("status") or {}
        base = {"namespace": meta["namespace"], "job_name": meta["name"]}
        refs = meta.get("ownerReferences") or []
        for ref in refs:
            owner.add({**base, "owner_kind": ref["kind"], "owner_name": ref["name"],
                       "owner_is_controller": "true" if ref.get("controller") else "false"}, 1)
        if not refs:
            owner.add({**base, "owner_kind": "", "owner_name": "", "owner_is_controller": ""}, 1)
        succeeded.add(base, status.get("succeeded", 0))
        failed.add(base, status.get("failed", 0))
        running.add(base, status.get("active", 0))
        ended = jobs.finished(job)
        for family, outcome in ((complete, jobs.COMPLETE), (job_failed, jobs.FAILED)):
            if ended == outcome:
                for value in ("true", "false", "unknown"):
                    family.add({**base, "condition": value}, 1 if value == "true" else 0)


def _app_families(store: Store, faults: FaultManager, traffic: TrafficCounters,
                  fam: Any) -> None:
    requests = fam("http_requests_total", "counter", "HTTP requests served, by status code.")
    lag = fam("kafka_consumergroup_lag", "gauge", "Consumer group lag in messages.")
    used = fam("kubelet_volume_stats_used_bytes", "gauge",
               "Number of used bytes in the volume.")
    capacity = fam("kubelet_volume_stats_capacity_bytes", "gauge",
                   "Capacity in bytes of the volume.")
    for labels, value in traffic.samples():
        requests.add(labels, int(value))
    for deploy in store.list(_DEPLOY):
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        base = {"namespace": ns, "deployment": name}
        lag.add({**base, "consumergroup": name, "topic": f"{name}-events"},
                20000 if faults.has("overload", ns, name) else 100)
        pvc = {**base, "persistentvolumeclaim": f"{name}-data"}
        ratio = 0.9 if faults.has("disk-pressure", ns, name) else 0.35
        used.add(pvc, int(VOLUME_CAPACITY * ratio))
        capacity.add(pvc, VOLUME_CAPACITY)


def _exposition(families: Any) -> str:
    lines: list[str] = []
    for f in families:
        lines.append(f"# HELP {f.name} {f.help}")
        lines.append(f"# TYPE {f.name} {f.kind}")
        for labels, value in f.samples:
            rendered = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{f.name}{{{rendered}}} {_fmt(value)}")
    return "\n".join(lines) + "\n"
