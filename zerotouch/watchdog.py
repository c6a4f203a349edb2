"""The policy's ``watchdog``: the checks it pulls when no alert fires, and Alertmanager's silence (WatchdogWorkflow)."""

from __future__ import annotations

from .runbooks import PolicyModel


class WatchdogPolicy(PolicyModel):
    """Checks the watchdog runs each cycle, and how long Alertmanager may stay silent."""
