"""The policy's ``drills``: declared faults, what each is expected to end as, and where they may run (DrillWorkflow).

phase-66: "if it cannot be safely tested, it cannot be automated". A drill injects one declared
fault (or delivers an alert that only looks like one) and measures what zerotouch did about it.
On the sandbox every fault class it has may be drilled; on a real cluster only faults that undo
themselves (one pod of a labelled workload deleted: its ReplicaSet makes another), and only in the
namespaces the policy lists.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from zerotouch.durations import Duration
from zerotouch.k8s_labels import require_selector
from zerotouch.k8s_names import require_namespace, require_object_name
from zerotouch.runbooks import PolicyModel

# The sandbox's fault kinds (sandbox/faults.py KINDS), a node made NotReady, and the one fault a
# real cluster may take. Spelled with underscores: they are classes in reports and metric labels.
SANDBOX_FAULTS = ("crashloop", "oom", "bad_deploy", "overload", "unfixable", "disk_pressure", "stuck_pending",
                  "stuck_rollout", "volume_filling")
NODE_FAULT = "node_not_ready"
# A PostgreSQL primary of the policy's recovery.databases stopped (immediate): its target is postgres/<name>.
POSTGRES_FAULT = "postgres_primary_stop"
POSTGRES_TARGET = "postgres"
CLUSTER_FAULT = "delete_pod"  # reversible by construction: the ReplicaSet recreates the pod
FALSE_POSITIVES = ("flapping_alert", "healthy_workload_alert", "watchdog_alert", "duplicate_storm")
FaultClass = Literal["crashloop", "oom", "bad_deploy", "overload", "unfixable", "disk_pressure", "stuck_pending",
                     "stuck_rollout", "volume_filling", "node_not_ready", "postgres_primary_stop", "delete_pod",
                     "flapping_alert",
                     "healthy_workload_alert", "watchdog_alert", "duplicate_storm"]
Expectation = Literal["auto_resolved", "escalated", "no_action"]


def sandbox_kind(fault: str) -> str:
    """The sandbox API's spelling of a fault class (``bad_deploy`` → ``bad-deploy``)."""
    return fault.replace("_", "-")


class DrillAlert(PolicyModel):
    """The alert a drill delivers through the relay, as Alertmanager would, when no Prometheus watches."""

    alertname: str = Field(min_length=1, max_length=200)
    labels: dict[str, str] = Field(default_factory=dict, description="besides alertname; namespace etc.")


class Drill(PolicyModel):
    name: str = Field(description="what `zerotouch drill run NAME` names")
    fault: FaultClass
    target: str = Field(description="namespace/workload (shop/web, shop/statefulset/db), node/<name> or "
                                    "postgres/<name in recovery.databases>")
    expect: Expectation = "auto_resolved"
    deadline: Duration = Field(default=timedelta(minutes=3), description="to meet the expectation in")
    quiet_for: Duration = Field(default=timedelta(seconds=15),
                                description="no_action drills: how long nothing may happen after delivery")
    severity_weight: float = Field(default=1.0, ge=0.1, le=10.0, description="its weight in the resilience score")
    alert: DrillAlert | None = Field(
        default=None, description="delivered through the relay; none: wait for Prometheus and Alertmanager")
    selector: dict[str, str] = Field(default_factory=dict, description="delete_pod: the pods' labels")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return require_object_name(value, "drill")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        return require_selector(value)  # it reaches the API server as a labelSelector query

    @model_validator(mode="after")
    def _consistent(self) -> Drill:
        namespace, _, name = self.target.partition("/")
        if not name:
            raise ValueError(f"target {self.target!r}: write namespace/name or node/<name>")
        if namespace == "node":
            if self.fault != NODE_FAULT:
                raise ValueError(f"a node target takes fault {NODE_FAULT}, not {self.fault}")
        else:
            require_namespace(namespace)
        if self.fault == POSTGRES_FAULT and (namespace != POSTGRES_TARGET or "/" in name):
            raise ValueError(f"{POSTGRES_FAULT} targets postgres/<name of a recovery.databases entry>, "
                             f"not {self.target!r}")
        for part in name.split("/"):
            require_object_name(part, "target")
        if self.fault in FALSE_POSITIVES:
            if self.expect != "no_action":
                raise ValueError(f"{self.fault} is a false-positive drill: it expects no_action")
            if self.alert is None:
                raise ValueError(f"{self.fault} needs the alert it delivers")
        elif self.expect == "no_action":
            raise ValueError("no_action is for false-positive drills; a fault expects auto_resolved or escalated")
        if self.fault == CLUSTER_FAULT and not self.selector:
            raise ValueError("delete_pod needs a selector (the labels of the workload's pods)")
        return self

    @property
    def namespace(self) -> str:
        return self.target.partition("/")[0]

    @property
    def target_name(self) -> str:
        """The workload's (or node's) name: shop/statefulset/db → db."""
        return self.target.rsplit("/", 1)[-1]


class DrillsPolicy(PolicyModel):
    """Chaos and false-positive drills: what cannot be safely tested cannot be automated (phase-66)."""

    environment: Literal["sandbox", "cluster"] = Field(
        default="sandbox", description="cluster: only delete_pod and false-positive drills, in `namespaces`")
    namespaces: list[str] = Field(default_factory=list, description="cluster: where drills may act")
    deliver_alerts: bool = Field(
        default=True, description="deliver each drill's alert through the relay (no Prometheus on the sandbox)")
    drills: list[Drill] = Field(default_factory=list)

    @model_validator(mode="after")
    def _allowed(self) -> DrillsPolicy:
        names = [d.name for d in self.drills]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"drill names must be unique: {duplicates}")
        if self.environment == "cluster":
            for drill in self.drills:
                if drill.fault not in (CLUSTER_FAULT, *FALSE_POSITIVES):
                    raise ValueError(f"drill {drill.name}: on a real cluster only {CLUSTER_FAULT} and "
                                     f"false-positive drills run, not {drill.fault}")
                if drill.namespace not in self.namespaces:
                    raise ValueError(f"drill {drill.name}: namespace {drill.namespace!r} is not in drills.namespaces")
        for drill in self.drills:  # listed namespaces bound delete_pod on the sandbox too (as the worker checks)
            if drill.fault == CLUSTER_FAULT and self.namespaces and drill.namespace not in self.namespaces:
                raise ValueError(f"drill {drill.name}: namespace {drill.namespace!r} is not in drills.namespaces")
        return self

    def named(self, name: str) -> Drill:
        for drill in self.drills:
            if drill.name == name:
                return drill
        known = ", ".join(d.name for d in self.drills) or "none"
        raise KeyError(f"no drill {name!r} in the policy (declared: {known})")


def check_drill_databases(drills: DrillsPolicy, databases: Collection[str]) -> None:
    """A PostgreSQL drill must name a database the policy can fail over (recovery.databases)."""
    for drill in drills.drills:
        if drill.fault == POSTGRES_FAULT and drill.target_name not in databases:
            raise ValueError(f"drill {drill.name}: {drill.target_name!r} is not in recovery.databases "
                             f"(declared: {', '.join(sorted(databases)) or 'none'})")
