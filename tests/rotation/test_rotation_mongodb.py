"""A MongoDB credential rotated through the whole workflow, users held by the adapter's double.

No MongoDB server installs here (README: what never ran against a real server), so the data
worker's MongoDB users sit behind the same in-memory double of the narrow adapter that
tests/rotation/test_mongodb_users.py uses; everything else is real: the dev server, the workflow,
the Secret in the sandbox, the consumer's rollout, the Governor.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mongo_user_adapter import UserInfo
from activities.mongo_users import MongoUsers
from activities.oauth_clients import OktaClientSecrets
from activities.postgres_roles import PostgresRoles
from activities.rotation_secrets import RotationSecretActivities
from activities.rotation_targets import RotationTargetActivities
from activities.secret_store import SecretStore
from sandbox import SandboxCluster
from tests.rotation.support import core, rotation_policy
from tests.rotation.test_mongodb_users import APP_ROLES, UserServer, users_on
from tests.rotation.test_rotation_postgres import result_of
from workers.clients import kubernetes_api_client, postgres_dsn_for
from workers.run import activity_methods, build_workers
from zerotouch.names import DATA_QUEUE, KUBERNETES_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy
from zerotouch.rotations import ROTATION_WORKFLOW, RotationInput, SecretRef, rotation_workflow_id
from zerotouch.settings import WorkerSettings

NAMESPACE, SECRET = "shop", "checkout-db"


@contextlib.asynccontextmanager
async def workers_with_mongo(client: Client, cluster: str, sandbox: SandboxCluster, policy: Policy,
                             users: MongoUsers, tmp_path: Path) -> AsyncIterator[None]:
    """zerotouch's workers, except that the data worker's MongoDB is the double."""
    policy_path = tmp_path / "workers-policy.json"
    policy_path.write_text(policy.model_dump_json(by_alias=True))
    settings = WorkerSettings(kubernetes_url=sandbox.url, prometheus_url=None, policy_path=str(policy_path),
                              ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor, \
            httpx.Client(timeout=10) as sync_http:
        async with httpx.AsyncClient(timeout=10) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, (WORKFLOWS_QUEUE, OBSERVE_QUEUE, KUBERNETES_QUEUE), settings,
                                        http=http, executor=executor, cluster=cluster):
                await stack.enter_async_context(worker)

            def store() -> SecretStore:
                return SecretStore(api_client=kubernetes_api_client(settings))

            data = [*activity_methods(RotationSecretActivities(secret_store=store)),
                    *activity_methods(RotationTargetActivities(secret_store=store, postgres=PostgresRoles(
                        dsn_for=postgres_dsn_for), mongodb=users, oauth=OktaClientSecrets(http=sync_http),
                        http=sync_http))]
            await stack.enter_async_context(Worker(client, task_queue=queue_for(DATA_QUEUE, cluster),
                                                   activities=data, activity_executor=executor))
            yield


async def test_a_mongodb_user_rotation_creates_the_second_user_moves_the_consumer_and_revokes_the_first(
        dev_env: WorkflowEnvironment, sandbox: SandboxCluster, tmp_path: Path) -> None:
    server = UserServer(users={("admin", "app_a"): ("old-secret-a", UserInfo(roles=list(APP_ROLES)))})
    api = core(sandbox.url)
    with contextlib.suppress(Exception):
        api.delete_namespaced_secret(SECRET, NAMESPACE)
    api.create_namespaced_secret(NAMESPACE, {"metadata": {"name": SECRET, "namespace": NAMESPACE}, "data": {
        "username": base64.b64encode(b"app_a").decode(), "password": base64.b64encode(b"old-secret-a").decode()}})
    rotation: dict[str, Any] = {"secret": {"namespace": NAMESPACE, "name": SECRET},
                                "target": {"kind": "mongodb", "connection": "main", "users": ["app_a", "app_b"]},
                                "verify": {"poll": "200ms", "rollout_timeout": "60s"}}
    policy = rotation_policy(tmp_path, {"checkout-db": rotation}, automatic=True)
    cluster = f"m{uuid.uuid4().hex[:8]}"
    async with workers_with_mongo(dev_env.client, cluster, sandbox, policy, users_on(server), tmp_path):
        handle = await dev_env.client.start_workflow(
            ROTATION_WORKFLOW, RotationInput(rotation="checkout-db", cluster=cluster),
            id=rotation_workflow_id(SecretRef(namespace=NAMESPACE, name=SECRET), cluster),
            task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
        result = await result_of(handle)
    assert result.outcome == "rotated", result
    secret = api.read_namespaced_secret(SECRET, NAMESPACE)
    data = {key: base64.b64decode(value).decode() for key, value in secret.data.items()}
    assert data["username"] == "app_b" and data["previous.username"] == "app_a"
    password_b, info_b = server.users[("admin", "app_b")]
    assert password_b == data["password"] and info_b.roles == APP_ROLES, "app_b was created with app_a's roles"
    password_a, info_a = server.users[("admin", "app_a")]
    assert password_a != "old-secret-a" and info_a.roles == [], "app_a was not revoked"
    history = (await handle.fetch_history()).to_json()
    assert data["password"] not in history
