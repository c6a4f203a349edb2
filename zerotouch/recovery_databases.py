"""The policy's ``recovery.databases``: PostgreSQL primaries and how to fail each over (DatabaseFailoverWorkflow)."""

from __future__ import annotations

from .runbooks import PolicyModel


class DatabaseFailoverTarget(PolicyModel):
    """One primary, its replica, the lag bound and how consumers are repointed."""
