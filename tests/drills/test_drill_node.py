"""A node_not_ready drill: the relay starts the node's recovery, and the drill judges it by the recovery's
own `recovery_status` (stage recovered) and the node Ready again, not by an incident's status."""

from __future__ import annotations

from typing import Any

import pytest

from activities.drills import NODE_RECOVERY_RUNBOOK
from tests.drills.conftest import DrillStack
from tests.recovery.nodes import FAST_NODES, node_state
from workflows.node_recovery.governor import RUNBOOK
from zerotouch.recovery import QUERY_RECOVERY_STATUS, RecoveryStatus, recovery_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

NODE = "sandbox-node-2"
DRILLS: list[dict[str, Any]] = [
    {"name": "node-down", "fault": "node_not_ready", "target": f"node/{NODE}", "expect": "auto_resolved",
     "deadline": "90s", "alert": {"alertname": "KubeNodeNotReady", "labels": {"node": NODE, "severity": "critical"}}},
]
RECOVERY_NODES = {**FAST_NODES, "provider": "sandbox", "provider_delay": "1s"}


async def test_a_node_drill_watches_the_node_recovery_to_recovered_and_ready(drills: DrillStack) -> None:
    assert NODE_RECOVERY_RUNBOOK == RUNBOOK, "the drill charges a failure to the runbook the recovery's grants use"
    result = await drills.run("node-down")
    recovery = recovery_id("node", drills.cluster, NODE)
    assert result.incident_ids == [recovery], "the relay routed the node alert to the node's recovery"
    assert result.passed and result.outcome == "auto_resolved", result.model_dump_json(indent=1)
    status = await drills.client.get_workflow_handle(recovery).query(QUERY_RECOVERY_STATUS,
                                                                        result_type=RecoveryStatus)
    assert status.stage == "recovered", status.timeline
    state = node_state(drills.sandbox, NODE)
    assert (state["ready"], state["unschedulable"]) == ("True", False), "Ready and uncordoned again"
    assert result.detect_seconds is not None and result.first_action_seconds is not None
    assert result.recover_seconds is not None and result.detect_seconds <= result.recover_seconds < 90
    assert any(f"nodes {NODE}" in a for a in result.actions), f"the recovery cordoned the node: {result.actions}"
    assert result.outside_target == [], "a node drill touches only the node and the evictions that drain it"
