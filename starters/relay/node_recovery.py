"""Alerts that start a node recovery: `recovery.nodes.alerts` with a valid `node` label.

A firing one starts `NodeRecoveryWorkflow` under `recovery_id("node", cluster, node)`; a duplicate
delivery (Alertmanager repeats a firing alert every group_interval, and both KubeNodeNotReady and
KubeNodeUnreachable may fire for one node) joins the recovery already running. A resolved one is
accepted and dropped: the recovery watches the node's Ready condition itself. An alert of these names
without a usable `node` label is left to the incident path, so a malformed label never goes unseen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from zerotouch.k8s_names import InvalidName, require_object_name
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.recovery import NODE_RECOVERY_WORKFLOW, NodeRecoveryInput, recovery_id
from zerotouch.recovery_nodes import NodeRecoveryPolicy

log = logging.getLogger("zerotouch.relay")
REQUESTED_BY = "alertmanager"


def recovery_node(labels: Mapping[str, str], policy: NodeRecoveryPolicy) -> str | None:
    """The node this alert asks to recover, or None when it is not a node recovery alert (or names no valid node)."""
    if labels.get("alertname") not in policy.alerts:
        return None
    node = labels.get("node", "")
    try:
        return require_object_name(node, "node")
    except InvalidName as error:
        log.warning("%s with an unusable node label goes to its incident instead: %s",
                    labels.get("alertname"), error)
        return None


async def start_node_recovery(client: Client, cluster: str, node: str, reason: str) -> str:
    """Start the node's recovery, or join the one running; returns its workflow ID."""
    handle = await client.start_workflow(
        NODE_RECOVERY_WORKFLOW,
        NodeRecoveryInput(cluster=cluster, node=node, reason=reason, requested_by=REQUESTED_BY),
        id=recovery_id("node", cluster, node), task_queue=queue_for(WORKFLOWS_QUEUE, cluster),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return handle.id
