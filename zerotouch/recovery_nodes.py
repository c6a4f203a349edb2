"""The policy's ``recovery.nodes``: the capacity budget and the node provider (NodeRecoveryWorkflow)."""

from __future__ import annotations

from .runbooks import PolicyModel


class NodeRecoveryPolicy(PolicyModel):
    """How nodes are drained and replaced, and the capacity budget the Governor holds."""
