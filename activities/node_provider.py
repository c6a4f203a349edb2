"""The node provider activity, and the sandbox's provider: a node comes back Ready after a delay.

The sandbox's route (`POST /sandbox/v1/nodes/<name>/provider`) is idempotent: asking again while the
node is coming back changes nothing, so a retried activity never restarts the node twice.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
from temporalio import activity

from activities.keepalive import keeps_alive
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.k8s_names import InvalidName, require_object_name
from zerotouch.node_provider import NodeProvider, ProviderRefused
from zerotouch.node_recovery_models import ProviderAck, ProviderCall


class SandboxNodeProvider:
    """The sandbox cluster's provider route, at the URL the Kubernetes worker talks to."""

    def __init__(self, *, url: str, http: httpx.Client) -> None:
        self._url = url.rstrip("/")
        self._http = http

    def restart(self, call: ProviderCall) -> ProviderAck:
        route = f"{self._url}/sandbox/v1/nodes/{quote(call.node, safe='')}/provider"
        answer = self._http.post(route, json={"action": call.action, "delay_seconds": call.delay_seconds})
        if answer.status_code == 404:
            raise ProviderRefused(f"the sandbox has no node {call.node!r} (or is not a sandbox: {self._url})")
        answer.raise_for_status()
        ready_at = answer.json().get("ready_at", "")
        return ProviderAck(node=call.node, action=call.action,
                           detail=f"sandbox {call.action}: Ready again at {ready_at}")


def sandbox_provider(url: str | None) -> SandboxNodeProvider | None:
    """The sandbox's provider when the worker talks to the sandbox by URL; None otherwise (a real
    provider is future work, `zerotouch.node_provider` says what it needs)."""
    return SandboxNodeProvider(url=url, http=httpx.Client(timeout=10.0)) if url else None


class NodeProviderActivities:
    def __init__(self, *, provider: NodeProvider | None) -> None:
        self._provider = provider

    @activity.defn(name=names.RESTART_NODE)
    @keeps_alive
    def restart_node(self, call: ProviderCall) -> ProviderAck:
        """Ask the infrastructure to reboot or replace the node behind NODE (once per key)"""
        try:
            require_object_name(call.node, "node")
        except InvalidName as error:
            raise errors.fail(str(error), errors.INVALID_TARGET) from None
        if self._provider is None:
            raise errors.fail("no node provider on this worker: the sandbox provider needs the sandbox's URL "
                              "(`zerotouch worker --kubernetes-url`); otherwise set recovery.nodes.provider: none",
                              errors.INVALID_POLICY)
        try:
            ack = self._provider.restart(call)
        except ProviderRefused as refused:
            raise errors.fail(str(refused), errors.INVALID_TARGET) from None
        except httpx.HTTPError as error:
            raise errors.fail(f"node provider unavailable: {error}", errors.API_UNAVAILABLE) from None
        activity.logger.info("node %s: %s requested (%s)", call.node, call.action, ack.detail)
        return ack
