"""The rotation tests' Kubernetes client: the official one over real HTTP to the sandbox (`sandbox`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from sandbox import SandboxCluster


@pytest.fixture
def api_client(sandbox: SandboxCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = sandbox.url
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()
