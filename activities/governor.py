"""The incident's way to ask the cluster's Governor for a grant: an update, sent from an activity.

A workflow cannot send an update to another workflow, so this activity does it with
a client. It is idempotent by the request's id: a retried call gets the same decision.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from zerotouch import activity_names as names
from zerotouch.governor_client import (
    GovernorError,
    SettingsRefused,
    ensure_governor,
    execute_grant,
    update_settings,
)
from zerotouch.governor_models import GovernorSettings, GrantDecision, governor_id
from zerotouch.governor_policy import GrantCall

log = logging.getLogger(__name__)


class GovernorActivities:
    def __init__(self, *, client: Client) -> None:
        self._client = client
        # Settings this process last gave each cluster's Governor: a changed policy is pushed once.
        self._pushed: dict[str, GovernorSettings] = {}

    @activity.defn(name=names.REQUEST_GRANT)
    async def request_grant(self, call: GrantCall) -> GrantDecision:
        """Start the Governor if it is not running, then ask it; the decision is its to make."""
        # Starting (or finding) the Governor costs a round trip; once this process has seen it
        # running, ask straight away and start it again only if it turns out to be gone.
        handle = await self._governor(call, fresh=call.cluster not in self._pushed)
        try:
            # Retries updates the server drops while the Governor continues as new (temporalio/temporal#6375).
            return await execute_grant(handle, call.request)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            self._pushed.pop(call.cluster, None)  # terminated since: start it again with these settings
            return await execute_grant(await self._governor(call, fresh=True), call.request)

    async def _governor(self, call: GrantCall, *, fresh: bool) -> WorkflowHandle[Any, Any]:
        if fresh:
            handle = await ensure_governor(self._client, call.cluster, call.settings)
        else:
            handle = self._client.get_workflow_handle(governor_id(call.cluster))
        if self._pushed.get(call.cluster) != call.settings:
            try:
                await update_settings(self._client, call.cluster, call.settings)
            except SettingsRefused as refused:
                # An incident with a pinned policy, or workers on different policy versions: the
                # Governor keeps the workers' policy settings and decides by them. Asking again
                # for every grant would only repeat the refusal in its history.
                log.warning("the Governor of %r kept its settings: %s", call.cluster, refused)
            except GovernorError:
                if fresh:
                    raise
                return await self._governor(call, fresh=True)  # it is gone: start it again
            self._pushed[call.cluster] = call.settings
        return handle
