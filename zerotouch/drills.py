"""The policy's ``drills``: declared faults, what each is expected to end as, and where they may run (DrillWorkflow)."""

from __future__ import annotations

from .runbooks import PolicyModel


class DrillsPolicy(PolicyModel):
    """Chaos and false-positive drills: what cannot be safely tested cannot be automated (phase-66)."""
