"""The policy's ``recovery.namespaces``: restoring a namespace from its object backup (NamespaceRestoreWorkflow)."""

from __future__ import annotations

from .runbooks import PolicyModel


class NamespaceRestorePolicy(PolicyModel):
    """Which namespaces may be restored into, and how long an approval may wait."""
