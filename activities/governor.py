"""The incident's way to ask the cluster's Governor for a grant: an update, sent from an activity.

A workflow cannot send an update to another workflow, so this activity does it with
a client. It is idempotent by the request's id: a retried call gets the same decision.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from starters.governor import ensure_governor, execute_grant, update_settings
from zerotouch.governor_models import GovernorSettings, GrantDecision
from zerotouch.governor_policy import GrantCall


class GovernorActivities:
    def __init__(self, *, client: Client) -> None:
        self._client = client
        # Settings this process last gave each cluster's Governor: a changed policy is pushed once.
        self._pushed: dict[str, GovernorSettings] = {}

    @activity.defn(name="request_grant")
    async def request_grant(self, call: GrantCall) -> GrantDecision:
        """Start the Governor if it is not running, then ask it; the decision is its to make."""
        handle = await ensure_governor(self._client, call.cluster, call.settings)
        if self._pushed.get(call.cluster) != call.settings:
            await update_settings(self._client, call.cluster, call.settings)
            self._pushed[call.cluster] = call.settings
        # Retries updates the server drops while the Governor continues as new (temporalio/temporal#6375).
        return await execute_grant(handle, call.request)
