"""An OAuth client secret rotated end to end against a real local authorization server.

The provider holds two secrets at once: the new one is issued and tested, the consumers move to
it, and the old one keeps working for the grace window, then is revoked. A probe asks for a
client-credentials token every 100 ms with whatever the Secret holds: it must never be refused.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.rotation.support import Probe, ProbeFailed, apps, core, rotation_policy
from tests.rotation.test_replay import replay_and_record
from tests.rotation.test_rotation_postgres import result_of, wait_status
from tests.support.oauth_server import OAuthServer, running_oauth_server
from tests.support.zt import running_workers
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.rotations import ROTATION_WORKFLOW, RotationInput, SecretRef, rotation_workflow_id

NAMESPACE, SECRET, CONSUMER, CLIENT = "shop", "checkout-oauth", "checkout-api", "checkout-api"
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
TOKEN_ENV = "ZT_TEST_OKTA_TOKEN"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with running_oauth_server(ADMIN_TOKEN) as server:
        yield server


def token_works(server: OAuthServer, secret: str) -> bool:
    response = httpx.post(server.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT, secret),
                          timeout=10)
    return response.status_code == 200 and "access_token" in response.json()


def current_secret(api: Any) -> str:
    secret = api.read_namespaced_secret(SECRET, NAMESPACE)
    return base64.b64decode(secret.data["client_secret"]).decode()


def seed(sandbox: SandboxCluster, initial: str) -> None:
    api = core(sandbox.url)
    api.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "data": {"client_id": base64.b64encode(CLIENT.encode()).decode(),
                 "client_secret": base64.b64encode(initial.encode()).decode()}})
    deployments = apps(api)
    labels = {"app": CONSUMER}
    deployments.create_namespaced_deployment(NAMESPACE, {
        "metadata": {"name": CONSUMER, "namespace": NAMESPACE, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "api", "image": "registry.local/shop/checkout-api:1.0",
                     "envFrom": [{"secretRef": {"name": SECRET}}]}]}}}})


class TokenProbe(Probe):
    """Asks for a token every 100 ms with the Secret's current client secret."""

    def __init__(self, api: Any, server: OAuthServer) -> None:
        super().__init__()
        self.api, self.server = api, server

    def attempt(self) -> None:
        if not token_works(self.server, current_secret(self.api)):
            raise ProbeFailed(f"refused at try {self.tries}")


async def test_the_old_client_secret_works_through_the_grace_window_and_not_after(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, oauth: OAuthServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    initial = "initial-" + uuid.uuid4().hex
    oauth.register_client(CLIENT, initial)
    seed(sandbox, initial)
    monkeypatch.setenv(TOKEN_ENV, ADMIN_TOKEN)
    rotation: dict[str, Any] = {
        "secret": {"namespace": NAMESPACE, "name": SECRET},
        "target": {"kind": "oauth", "base_url": oauth.base_url, "token_env": TOKEN_ENV, "client_id": CLIENT,
                   "token_url": oauth.token_url, "grace": "5s"},
        "verify": {"poll": "200ms", "rollout_timeout": "60s"},
    }
    policy = rotation_policy(tmp_path, {"checkout-oauth": rotation}, automatic=True)
    cluster = f"o{uuid.uuid4().hex[:8]}"
    api = core(sandbox.url)
    async with running_workers(dev_env.client, cluster, kubernetes_url=sandbox.url, policy=policy):
        with TokenProbe(api, oauth) as probe:
            handle = await dev_env.client.start_workflow(
                ROTATION_WORKFLOW, RotationInput(rotation="checkout-oauth", cluster=cluster),
                id=rotation_workflow_id(SecretRef(namespace=NAMESPACE, name=SECRET), cluster),
                task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
            await wait_status(handle, "the grace window", lambda st: st.state == "grace")
            new = current_secret(api)
            assert new != initial
            assert token_works(oauth, initial) and token_works(oauth, new), "inside the window both must work"
            result = await result_of(handle)
        assert result.outcome == "rotated", result
        assert probe.failures == [] and probe.tries >= 10
        assert token_works(oauth, new) and not token_works(oauth, initial), "after the window only the new one"
        assert [s["status"] for s in oauth.secrets_of(CLIENT)] == ["ACTIVE"]
        history = (await handle.fetch_history()).to_json()
        assert new not in history and initial not in history
        await replay_and_record(handle, "oauth-grace")
