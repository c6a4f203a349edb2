"""What the rotation tests share: a PostgreSQL with password logins, the sandbox's consumer, a login probe.

The sandbox's `shop/checkout` Deployment reads `shop/checkout-db` (env `secretKeyRef`), so it is the
consumer every PostgreSQL rotation test moves. The probe plays a consumer that logs in every 100 ms
with whatever the Secret holds at that moment: the issue's measure of zero failed logins.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import psycopg
from kubernetes import client as k8s

from tests.support.policies import fast_policy
from tests.support.postgres import Postgres, running_postgres
from zerotouch.policy import Policy, load_policy
from zerotouch.rotations import Rotation

NAMESPACE, SECRET, CONSUMER = "shop", "checkout-db", "checkout"
GROUP, ROLES = "checkout", ["checkout_a", "checkout_b"]
# The admin keeps trust (it is the worker's connection); every other TCP login needs its password.
HBA = ["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]


@dataclass
class AppDatabase:
    server: Postgres
    database: str
    initial_password: str

    @property
    def admin_dsn(self) -> str:
        return self.server.dsn(dbname=self.database)

    def login_dsn(self, user: str, password: str) -> str:
        return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=self.server.port, user=user,
                                              password=password, dbname=self.database, connect_timeout=5)

    def can_login(self, role: str) -> bool:
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            row = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        return bool(row and row[0])

    def set_hba(self, lines: list[str]) -> None:
        """Rewrite pg_hba.conf (these lines, then the test HBA) and reload: to refuse a login on purpose."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            row = admin.execute("SHOW hba_file").fetchone()
            assert row is not None
            Path(row[0]).write_text("".join(f"{line}\n" for line in [*lines, *HBA, "local all all trust"]))
            admin.execute("SELECT pg_reload_conf()")


@contextlib.contextmanager
def app_database() -> Iterator[AppDatabase]:
    """A PostgreSQL whose application logs in as checkout_a, a member of the group that holds the privileges."""
    password = "initial-" + uuid.uuid4().hex
    with running_postgres(hba=HBA) as server:
        database = server.create_database("shop")
        with psycopg.connect(server.dsn(dbname=database), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {GROUP} NOLOGIN")
            admin.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
            admin.execute(f"GRANT SELECT, INSERT ON orders TO {GROUP}")
            admin.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                psycopg.sql.Identifier(ROLES[0]), psycopg.sql.Literal(password), psycopg.sql.Identifier(GROUP)))
        yield AppDatabase(server=server, database=database, initial_password=password)


def rotation_document(connection: str, database: str, **verify: str) -> dict[str, Any]:
    return {"secret": {"namespace": NAMESPACE, "name": SECRET},
            "target": {"kind": "postgres", "connection": connection, "database": database, "roles": ROLES,
                       "member_of": [GROUP]},
            "verify": {"poll": "200ms", "rollout_timeout": "60s", "unused_timeout": "60s", **verify},
            "approval_timeout": "10m"}


def rotation_policy(tmp_path: Path, rotations: dict[str, dict[str, Any]], *, automatic: bool) -> Policy:
    """The shipped policy with short waits, these rotations too, and (automatic) credential rotation pre-approved."""
    policy = load_policy(fast_policy(tmp_path / "policy.yaml"))
    document = policy.model_dump(mode="json", by_alias=True)
    # Added to the shipped ones (its schedules name them); a test's own replaces a shipped one of that name.
    document["rotations"] = {"secrets": {**document["rotations"]["secrets"], **rotations}}
    if automatic:
        document["preapproved_classes"] = [*document["preapproved_classes"], "credential_rotation"]
        document["risk"]["credential_rotation"] = "auto"
    return Policy.model_validate(document)


def core(url: str) -> Any:
    """The official client's CoreV1Api on the sandbox (Any: the tests hand it plain dicts, as kubectl would)."""
    configuration = k8s.Configuration()
    configuration.host = url
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def apps(api: Any) -> Any:
    """AppsV1Api over the same client."""
    return k8s.AppsV1Api(api.api_client)


def secret_data(api: Any) -> tuple[dict[str, str], dict[str, str]]:
    secret = api.read_namespaced_secret(SECRET, NAMESPACE)
    data = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
    return data, dict(secret.metadata.annotations or {})


def seed_secret(api: Any, username: str, password: str) -> None:
    """The Secret as an application would have it before zerotouch: the current login, no rotation state."""
    body = {"metadata": {"name": SECRET, "namespace": NAMESPACE},
            "data": {"username": base64.b64encode(username.encode()).decode(),
                     "password": base64.b64encode(password.encode()).decode()}}
    with contextlib.suppress(k8s.exceptions.ApiException):
        api.delete_namespaced_secret(SECRET, NAMESPACE)
    api.create_namespaced_secret(NAMESPACE, body)


class Probe:
    """Tries something every ``interval`` seconds on a thread of its own, as a consumer would; counts failures.

    Subclasses implement `attempt`: return normally when it worked, raise `ProbeFailed` saying why."""

    interval = 0.1

    def __init__(self) -> None:
        self.tries = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attempt(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tries += 1
            try:
                self.attempt()
            except ProbeFailed as failed:
                self.failures.append(str(failed))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


class ProbeFailed(Exception):
    pass


class LoginProbe(Probe):
    """Logs in every 100 ms with what the Secret holds right then; remembers every password it saw."""

    def __init__(self, api: Any, database: AppDatabase) -> None:
        super().__init__()
        self.api, self.database = api, database
        self.logins = 0
        self.users: set[str] = set()
        self.seen: set[str] = {database.initial_password}  # every password the Secret held

    def attempt(self) -> None:
        data, _ = secret_data(self.api)
        self.seen.update(value for key, value in data.items() if key.endswith("password"))
        try:
            with psycopg.connect(self.database.login_dsn(data["username"], data["password"])) as connection:
                connection.execute("SELECT count(*) FROM orders").fetchone()
        except psycopg.Error as error:
            raise ProbeFailed(f"{data['username']}: {str(error).strip().splitlines()[0]}") from None
        self.logins += 1
        self.users.add(data["username"])


def rotation_of(policy: Policy, name: str) -> Rotation:
    return policy.rotations.secrets[name]
