"""The payloads of a node recovery's activities: what the node holds, each change with before/after."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from zerotouch.recovery import RecoveryEvent

# Who cordoned a node, on the node itself: a cordon zerotouch made always names the workflow that owns it.
OWNER_ANNOTATION = "zerotouch.io/cordoned-by"
# The Governor's blast radius is per namespace; node actions share this one.
NODES_SCOPE = "_nodes"
GRANT_ACTION = "drain_node"
RISK_CLASS = "node_drain"

ProviderAction = Literal["reboot", "replace"]


class NodeTarget(BaseModel):
    node: str = Field(min_length=1, max_length=253)


class PodOnNode(BaseModel):
    namespace: str
    name: str
    owner: str = Field(default="", description="Kind/name of its controller, '' for a bare pod")
    daemonset: bool = False
    ready: bool = False
    pdb: str = Field(default="", description="the PodDisruptionBudget covering it, if any")
    disruptions_allowed: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class NodeView(BaseModel):
    """The node and its pods as the drain sees them, and the cluster's node count for the capacity budget."""

    node: str
    exists: bool = True
    ready: bool = False
    unschedulable: bool = False
    owner: str = Field(default="", description="the cordon's owner annotation ('' if none)")
    pods: list[PodOnNode] = Field(default_factory=list)
    total_nodes: int = 0
    schedulable: list[str] = Field(default_factory=list, description="nodes Ready and not cordoned")

    def state(self) -> dict[str, str]:
        return {"ready": str(self.ready).lower(), "unschedulable": str(self.unschedulable).lower(),
                "owner": self.owner or "-"}


class CordonRequest(BaseModel):
    node: str = Field(min_length=1, max_length=253)
    owner: str = Field(min_length=1, description="the workflow ID written on the node")
    cordon: bool = Field(description="True: cordon and annotate; False: uncordon if (and only if) we own it")


class NodeChange(BaseModel):
    node: str
    changed: bool
    before: dict[str, str] = Field(default_factory=dict)
    after: dict[str, str] = Field(default_factory=dict)
    detail: str = ""


class DrainRequest(BaseModel):
    node: str = Field(min_length=1, max_length=253)
    owner: str = Field(min_length=1)
    deadline: datetime = Field(description="stop retrying refused evictions (429) after this")
    retry_seconds: float = Field(default=5.0, gt=0)


class DrainResult(BaseModel):
    drained: bool
    evicted: list[str] = Field(default_factory=list, description="ns/pod, in order")
    remaining: list[str] = Field(default_factory=list)
    refusals: int = Field(default=0, description="evictions a PodDisruptionBudget refused (429) before they passed")
    refused_by: dict[str, str] = Field(default_factory=dict, description="pod still refused → its budget")
    detail: str = ""


class WorkloadWait(BaseModel):
    node: str = Field(min_length=1, max_length=253)
    workloads: list[str] = Field(description="namespace/Kind/name of the evicted pods' controllers")
    deadline: datetime
    poll_seconds: float = Field(default=1.0, gt=0)


class WorkloadsHealth(BaseModel):
    healthy: bool
    waiting: list[str] = Field(default_factory=list)
    detail: str = ""


class ProviderCall(BaseModel):
    node: str = Field(min_length=1, max_length=253)
    action: ProviderAction
    delay_seconds: float = Field(default=10.0, ge=0, description="sandbox only: how long until Ready again")
    key: str = Field(min_length=1, description="idempotency key: one reboot per key")


class ProviderAck(BaseModel):
    node: str
    action: ProviderAction
    detail: str = ""


class NodeReadyWait(BaseModel):
    node: str = Field(min_length=1, max_length=253)
    deadline: datetime
    poll_seconds: float = Field(default=1.0, gt=0)


class NodeReadiness(BaseModel):
    ready: bool
    detail: str = ""


class NodeRecoveryRecord(BaseModel):
    """A node recovery in the ledger: the plan, every step with its before/after, who decided."""

    workflow_id: str
    run_id: str
    cluster: str = ""
    node: str
    stage: str
    reason: str = ""
    requested_by: str = ""
    approval: str = ""
    incident_id: str = ""
    plan: list[str] = Field(default_factory=list)
    timeline: list[RecoveryEvent] = Field(default_factory=list)
    before: dict[str, str] = Field(default_factory=dict)
    after: dict[str, str] = Field(default_factory=dict)
    outcome: str = ""
    finished_at: datetime
