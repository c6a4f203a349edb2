"""A node recovery's way to ask the Governor for a node lease (the capacity budget): an update from an activity.

Idempotent by the holder: the same workflow asking again for the same node gets its lease back.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from zerotouch import activity_names as names
from zerotouch.governor_client import ensure_governor
from zerotouch.governor_policy import NodeLeaseCall
from zerotouch.node_lease_models import UPDATE_REQUEST_NODE_LEASE, NodeLeaseDecision

# Around the Governor's continue-as-new the server may refuse or drop an update for a moment.
_TRANSIENT = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE)
_ATTEMPTS = 20


class NodeLeaseActivities:
    def __init__(self, *, client: Client) -> None:
        self._client = client

    @activity.defn(name=names.REQUEST_NODE_LEASE)
    async def request_node_lease(self, call: NodeLeaseCall) -> NodeLeaseDecision:
        """Start the Governor if it is not running, then ask it for the node; the decision is its to make."""
        handle = await ensure_governor(self._client, call.cluster, call.settings)
        for attempt in range(_ATTEMPTS):
            try:
                decision: NodeLeaseDecision = await handle.execute_update(
                    UPDATE_REQUEST_NODE_LEASE, call.request, result_type=NodeLeaseDecision)
                return decision
            except RPCError as error:
                if error.status not in _TRANSIENT or attempt == _ATTEMPTS - 1:
                    raise
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                if attempt == _ATTEMPTS - 1:
                    raise
            await asyncio.sleep(0.25)
        raise AssertionError("unreachable")
