"""Fixtures for sandbox tests: a real cluster on a free port, always stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from sandbox import SandboxCluster
from tests.support.waiting import wait_until  # noqa: F401 -- re-exported for the sandbox tests

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
TICK = 0.05  # fast reconciles keep each test well under a few seconds
MANUAL = 3600.0  # a tick so slow that the test drives every reconcile itself with `cluster.tick()`


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[SandboxCluster]:
    """A running sandbox; parametrize indirectly with a tick in seconds to slow its controller."""
    sandbox = SandboxCluster(host="127.0.0.1", port=0, tick_seconds=getattr(request, "param", TICK))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def api_client(cluster: SandboxCluster) -> Iterator[client.ApiClient]:
    config = client.Configuration()
    config.host = cluster.url
    api = client.ApiClient(config)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps_v1(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def batch_v1(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(cluster: SandboxCluster, tmp_path: Path) -> Kubectl:
    """Run the real kubectl against the sandbox with no user config in play."""
    if not os.path.exists(KUBECTL):
        pytest.fail("kubectl is not installed; .ci/run installs it (apt-get install kubernetes-client)")
    kubeconfig = tmp_path / "kubeconfig-empty"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [KUBECTL, f"--server={cluster.url}", f"--cache-dir={tmp_path / 'cache'}",
               "--request-timeout=10s", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30,
                              check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run
