"""The policy's ``recovery.nodes``: the capacity budget and the node provider (NodeRecoveryWorkflow)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from .durations import Duration
from .runbooks import PolicyModel

_PERCENT = re.compile(r"^(\d{1,3})%$")


def parse_min_schedulable(value: int | str) -> int | str:
    """``3`` (nodes) or ``"51%"`` (of all nodes); ValueError naming the accepted forms otherwise."""
    if isinstance(value, bool):
        raise ValueError("min_schedulable is a number of nodes (3) or a percentage of all nodes (\"51%\")")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"min_schedulable {value} is negative; use a number of nodes (3) or \"51%\"")
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _PERCENT.match(text)
    if match is None or int(match.group(1)) > 100:
        raise ValueError(f"bad min_schedulable {value!r}; use a number of nodes (3) or a percentage (\"51%\")")
    return text


def min_schedulable_nodes(spec: int | str, total_nodes: int) -> int:
    """How many nodes must stay schedulable: a percentage rounds up, so "51%" of 3 nodes is 2."""
    if isinstance(spec, int):
        return spec
    percent = int(spec.rstrip("%"))
    return -(-percent * total_nodes // 100)


class NodeRecoveryPolicy(PolicyModel):
    """How nodes are drained and replaced, and the capacity budget the Governor holds."""

    alerts: list[str] = Field(
        default_factory=lambda: ["KubeNodeNotReady", "KubeNodeUnreachable"],
        description="alerts (with a `node` label) that start a NodeRecoveryWorkflow through the relay",
    )
    min_schedulable: int | str = Field(
        default="51%", description="nodes that must stay schedulable and Ready: a count (3) or a share of all (51%)",
    )
    max_concurrent_node_actions: int = Field(default=1, ge=1, description="node leases held at once, cluster-wide")
    lease_ttl: Duration = Field(
        default=timedelta(minutes=5),
        description="a node lease not renewed for this long expires, so a vanished holder cannot block forever",
    )
    drain_timeout: Duration = Field(default=timedelta(minutes=10), description="evictions refused (429) until then")
    eviction_retry: Duration = Field(default=timedelta(seconds=5), description="wait between refused evictions")
    healthy_timeout: Duration = Field(
        default=timedelta(minutes=10), description="for the evicted workloads to run healthy on other nodes",
    )
    provider: Literal["none", "sandbox"] = Field(
        default="none",
        description="who reboots or replaces the node: sandbox (the sandbox cluster's provider route) or none "
                    "(escalate after the drain; a person repairs the node, the workflow uncordons once it is Ready)",
    )
    action: Literal["reboot", "replace"] = "reboot"
    provider_delay: Duration = Field(
        default=timedelta(seconds=10), description="sandbox only: how long the node takes to come back Ready",
    )
    ready_timeout: Duration = Field(default=timedelta(minutes=15), description="for the node to be Ready again")
    approval: Literal["none", "approval"] = Field(
        default="none", description="approval: a human approves the plan (approve/abort) before the cordon",
    )
    approval_timeout: Duration = Field(default=timedelta(hours=1), description="no answer by then aborts")

    @field_validator("min_schedulable", mode="before")
    @classmethod
    def _min_schedulable(cls, value: int | str) -> int | str:
        return parse_min_schedulable(value)

    def lease_renew_every(self) -> timedelta:
        """A third of the lease's life: two renewals may be lost before it expires."""
        return self.lease_ttl / 3
