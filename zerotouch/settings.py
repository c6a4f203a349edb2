"""Process settings from flags and environment, with defaults for the embedded setup."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from zerotouch.temporal import DEFAULT_ADDRESS, DEFAULT_NAMESPACE

_REPO_POLICY = Path(__file__).resolve().parent.parent / "deploy" / "policy" / "zerotouch.yaml"


def default_policy_path() -> str:
    """$ZEROTOUCH_POLICY, else the policy shipped in deploy/policy/."""
    return os.environ.get("ZEROTOUCH_POLICY") or str(_REPO_POLICY)


class WorkerSettings(BaseModel):
    """What a worker process needs to build its clients."""

    temporal_address: str = Field(default_factory=lambda: os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS))
    temporal_namespace: str = Field(default_factory=lambda: os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE))
    policy_path: str = Field(default_factory=default_policy_path)
    kubernetes_url: str | None = Field(
        default=None, description="talk to this API server without auth (the sandbox); default: kubeconfig"
    )
    kubeconfig_context: str | None = None
    prometheus_url: str | None = Field(default_factory=lambda: os.environ.get("PROMETHEUS_URL") or None)
    ledger_url: str = Field(
        default_factory=lambda: os.environ.get("ZEROTOUCH_LEDGER_URL")
        or f"sqlite:///{Path(os.environ.get('ZEROTOUCH_STATE_DIR', '.zerotouch')).resolve() / 'ledger.db'}",
        description="sqlite:///path or postgresql://...; default: ledger.db in the state directory",
    )
    state_dir: str = Field(
        default_factory=lambda: str(Path(os.environ.get("ZEROTOUCH_STATE_DIR", ".zerotouch")).resolve()),
        description="relative paths in the policy's backups section are in this directory",
    )
    backup_repository: str = Field(
        default_factory=lambda: os.environ.get("ZEROTOUCH_BACKUP_REPOSITORY")
        or str(Path(os.environ.get("ZEROTOUCH_STATE_DIR", ".zerotouch")).resolve() / "backups"),
        description="the backup repository when the policy names none: a directory",
    )
    scratch_dir: str = Field(
        default_factory=lambda: os.environ.get("ZEROTOUCH_SCRATCH_DIR")
        or str(Path(os.environ.get("ZEROTOUCH_STATE_DIR", ".zerotouch")).resolve() / "scratch"),
        description="where test restores put their throwaway clusters (removed after each)",
    )
    max_concurrent_activities: int = Field(default=32, ge=1, le=1000)
    # Waits hold no thread (async) and poll at most once a second each: hundreds at once cost a task and
    # a request per second apiece, so their budget is far above the actions' (zerotouch.names.WAITS_QUEUE_OF).
    max_concurrent_waits: int = Field(default=500, ge=1, le=10_000)
