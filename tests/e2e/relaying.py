"""What both end-to-end stacks start the same way: a sandbox, and a relay with its own telemetry and client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from starters.relay.config import RelayConfig
from starters.relay.server import RelayServer
from zerotouch.policy import Policy
from zerotouch.telemetry import Telemetry
from zerotouch.temporal import data_converter


@dataclass
class Relaying:
    client: Client
    sandbox: SandboxCluster
    relay: RelayServer

    @property
    def relay_url(self) -> str:
        return f"http://127.0.0.1:{self.relay.port}"


@contextlib.asynccontextmanager
async def relaying(dev_env: WorkflowEnvironment, policy: Policy, *, token: str, cluster: str,
                   service: str) -> AsyncIterator[Relaying]:
    """A sandbox and a started relay; relay and workers share one process's telemetry (Prometheus can
    scrape it from the relay). Everything is stopped on the way out, also on failure."""
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=0.2)
    sandbox.start()
    telemetry = Telemetry(service)
    try:
        await telemetry.start()
        config = dev_env.client.service_client.config
        client = await Client.connect(config.target_host, namespace=dev_env.client.namespace,
                                      data_converter=data_converter(), **telemetry.client_options())
        relay = RelayServer(RelayConfig(host="127.0.0.1", port=0, token=token, group_by=policy.group_by,
                                        alert_sources=policy.alerts, cluster=cluster,
                                        databases=policy.recovery.databases), client, telemetry=telemetry)
        await relay.start()
        try:
            yield Relaying(client, sandbox, relay)
        finally:
            await relay.stop()
    finally:
        sandbox.stop()
        await telemetry.stop()
