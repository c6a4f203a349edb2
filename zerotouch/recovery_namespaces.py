"""The policy's ``recovery.namespaces``: restoring a namespace from its object backup (NamespaceRestoreWorkflow)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from .durations import Duration
from .k8s_names import InvalidName, require_namespace
from .runbooks import PolicyModel

# The namespaces a restore must never write into, whatever the allow-list says: the cluster's own.
PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})


class NamespaceRestorePolicy(PolicyModel):
    """Which namespaces may be restored into, and how long an approval may wait.

    A restore into a namespace that does not exist yet (a *fresh* one) only creates: it is allowed
    unless ``fresh`` is off. Restoring into an existing namespace may overwrite what runs there, so
    that namespace must be listed in ``into``, and any overwrite always waits for a human.
    """

    into: list[str] = Field(
        default_factory=list,
        description="existing namespaces a restore may write into (empty: none; fresh namespaces are separate)",
    )
    fresh: bool = Field(default=True, description="allow restoring into a namespace that does not exist yet")
    approve_fresh: bool = Field(
        default=False, description="also ask a human before a restore that only creates (overwrites always ask)",
    )
    approval_timeout: Duration = Field(
        default=timedelta(hours=1), description="an unanswered approval aborts the restore after this (never approves)",
    )
    rollout_timeout: Duration = Field(
        default=timedelta(minutes=5), description="restored Deployments must be available within this",
    )
    max_objects: int = Field(default=500, ge=1, le=5000, description="a backup with more objects is refused")

    @field_validator("into")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for namespace in value:
            try:
                require_namespace(namespace)
            except InvalidName as error:
                raise ValueError(str(error)) from None
            if namespace in PROTECTED_NAMESPACES:
                raise ValueError(f"{namespace} belongs to the cluster itself; a restore never writes there")
        return value

    def refusal(self, namespace: str, *, exists: bool) -> str:
        """Why restoring into ``namespace`` is not allowed ("" when it is)."""
        if namespace in PROTECTED_NAMESPACES:
            return f"{namespace} belongs to the cluster itself; a restore never writes there"
        if exists and namespace not in self.into:
            return (f"namespace {namespace} exists and is not in the policy's recovery.namespaces.into; "
                    "add it there to restore over it, or restore into a fresh namespace")
        if not exists and not self.fresh:
            return f"namespace {namespace} does not exist and recovery.namespaces.fresh is off"
        return ""
