"""The secret rotation demo of `zerotouch up --sandbox`: a login of the demo database that shop/checkout reads.

The policy's rotations of a PostgreSQL login on the `demo` connection rotate roles of the demo
database whose credential the sandbox's Secret holds (the sandbox's `shop/checkout` reads
`shop/checkout-db`). Every start makes sure the group roles exist with the privileges a checkout
service needs, and that the Secret holds a login that works. It never undoes a rotation: a Secret
whose login works (checkout_b's after one) is left exactly as it is. Only a Secret that does not
work (the sandbox's placeholder on the first start, or a demo database made afresh) gets a new
password on the role in use, generated here and sent only to the server as a SCRAM verifier and to
the Secret, never to a log, the banner or an error message.
"""

from __future__ import annotations

import functools
import logging
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from temporalio.exceptions import ApplicationError
from urllib3.exceptions import HTTPError

from activities.credentials import generate
from activities.postgres_roles import PostgresRoles
from activities.secret_store import SecretStore
from embedded.demo_backups import DEMO_CONNECTION
from embedded.demo_database import DATABASE, DemoDatabase
from workers.clients import kubernetes_api_client
from zerotouch.policy import Policy
from zerotouch.rotation_secret import PENDING, PREVIOUS, SecretContent
from zerotouch.rotations import PostgresTarget, Rotation
from zerotouch.settings import WorkerSettings

log = logging.getLogger("zerotouch.up")

OFF = "off (needs --sandbox and PostgreSQL)"
NONE_IN_POLICY = "off (the policy rotates no login of the demo database: rotations.secrets, connection demo)"
# What the demo shop's checkout does: read customers, place orders. Granted to the group roles,
# never to the login roles, so a rotation that makes a new login loses no privilege.
_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {}",
    "GRANT SELECT ON public.customers TO {}",
    "GRANT SELECT, INSERT ON public.orders TO {}",
    "GRANT USAGE ON SEQUENCE public.orders_id_seq TO {}",
)


@dataclass(frozen=True)
class DemoLogin:
    """Where one demo rotation stands after `up` prepared it: the login its Secret holds, and whether it was set now."""

    rotation: str
    secret: str
    login: str
    seeded: bool

    def describe(self) -> str:
        how = "seeded with a new password" if self.seeded else "works"
        return f"{self.rotation} ({self.secret} holds {self.login}: {how})"


def demo_rotations(policy: Policy) -> dict[str, tuple[Rotation, PostgresTarget]]:
    """The policy's rotations of a demo database login, by name."""
    return {name: (rotation, rotation.target) for name, rotation in sorted(policy.rotations.secrets.items())
            if isinstance(rotation.target, PostgresTarget) and rotation.target.connection == DEMO_CONNECTION}


def prepare_demo_rotations(policy: Policy, *, database: DemoDatabase | None, sandbox_url: str | None) -> str:
    """Roles, privileges and a working Secret for each demo rotation; the banner's text. Never raises for a
    demo that cannot run here: the text says why it is off (blocking: run it in a thread)."""
    rotations = demo_rotations(policy)
    if database is None or sandbox_url is None:
        return OFF
    if not rotations:
        return NONE_IN_POLICY
    try:
        with closing(kubernetes_api_client(WorkerSettings(kubernetes_url=sandbox_url))) as api_client:
            store = SecretStore(api_client=api_client)
            prepared = [_prepare(name, rotation, target, database, store)
                        for name, (rotation, target) in rotations.items()]
    except (psycopg.Error, ApplicationError, HTTPError, OSError) as error:
        # The first line only: nothing of a connection (its DSN holds the superuser's password) rides along.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        log.warning("rotation demo off: %s", reason)
        return f"off ({reason})"
    for login in prepared:
        log.info("rotation demo: %s", login.describe())
    names = ", ".join(login.describe() for login in prepared)
    first = prepared[0].rotation
    return f"{names} — zerotouch secrets rotate {first} --by alice; zerotouch secrets approve {first} --by bob"


def _prepare(name: str, rotation: Rotation, target: PostgresTarget, database: DemoDatabase,
             store: SecretStore) -> DemoLogin:
    """The group roles and their privileges; then the Secret's login if it works, else a new one on the role in use."""
    dsn = database.dsn(target.database or DATABASE)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="zerotouch-up") as admin:
        with admin.transaction():
            for group in target.member_of:
                _ensure_group(admin, group)
        row = admin.execute("SELECT coalesce(array_agg(rolname::text), '{}') FROM pg_roles "
                            "WHERE rolcanlogin AND rolname = ANY(%s)", (target.roles,)).fetchone()
    can_login = set(row[0]) if row else set()
    roles = PostgresRoles(dsn_for=lambda _reference: dsn)
    content = store.read(rotation.secret)
    held = content.data.get("username", "")
    if held in target.roles and held in can_login and _logs_in(roles, target, held, content.data.get("password", "")):
        return DemoLogin(name, rotation.secret.describe(), held, seeded=False)
    # The role in use keeps its name (a rotation has alternated onto it); only a fresh database starts on the first.
    login = next((role for role in target.roles if role in can_login), target.roles[0])
    password = generate(target.generated)
    roles.set_login(target, login, password)
    store.update(rotation.secret, functools.partial(_seeded, login=login, password=password))
    return DemoLogin(name, rotation.secret.describe(), login, seeded=True)


def _ensure_group(admin: psycopg.Connection[Any], group: str) -> None:
    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone() is None:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
    for grant in _GRANTS:  # GRANT is idempotent: every start brings the privileges back in line
        admin.execute(sql.SQL(grant).format(sql.Identifier(group)))


def _logs_in(roles: PostgresRoles, target: PostgresTarget, login: str, password: str) -> bool:
    if not password:
        return False
    try:
        roles.check_login(target, login, password)
    except ApplicationError:  # refused, or the server could not be asked: either way the Secret does not work
        return False
    return True


def _seeded(content: SecretContent, *, login: str, password: str) -> SecretContent:
    """The Secret as before any rotation: this login, no pending or previous credential, no rotation annotations
    (the store keeps every annotation outside the rotation's prefix)."""
    data = {key: value for key, value in content.data.items() if not key.startswith((PENDING, PREVIOUS))}
    return SecretContent(data={**data, "username": login, "password": password}, annotations={},
                         resource_version=content.resource_version, exists=content.exists)
