"""The Governor's node leases: the capacity budget a node recovery holds while a node is cordoned.

Fields are added with defaults only: a lease travels in the Governor's book through continue-as-new.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

UPDATE_REQUEST_NODE_LEASE = "request_node_lease"
SIGNAL_RENEW_NODE_LEASE = "renew_node_lease"
SIGNAL_RELEASE_NODE_LEASE = "release_node_lease"


class NodeLease(BaseModel):
    """One node taken out of the schedulable pool by one holder (a workflow ID) until `expires_at`."""

    node: str
    holder: str
    lease_id: str
    acquired_at: datetime
    expires_at: datetime


class NodeLeaseRequest(BaseModel):
    """May `holder` cordon `node`? The holder counts the nodes; the Governor applies the budget."""

    node: str = Field(min_length=1, max_length=253)
    holder: str = Field(min_length=1, max_length=512, description="the workflow ID that will own the cordon")
    total_nodes: int = Field(ge=0, description="every node of the cluster")
    schedulable: list[str] = Field(
        default_factory=list, description="nodes Ready and not cordoned now (the target may be among them)",
    )
    probe: bool = Field(default=False, description="decide without taking: a dry run's plan")


LeaseCode = Literal["granted", "held", "min_schedulable", "max_concurrent", "held_by_other"]


class NodeLeaseDecision(BaseModel):
    granted: bool
    code: LeaseCode
    reason: str
    lease_id: str = ""
    expires_at: datetime | None = None
    schedulable_after: int = 0
    min_schedulable: int = 0


class NodeLeaseRenewal(BaseModel):
    """The holder's heartbeat (renew) or its release; signals: a holder that is gone simply stops sending."""

    node: str = Field(min_length=1, max_length=253)
    holder: str = Field(min_length=1, max_length=512)
