"""PostgresRoles against a throwaway PostgreSQL whose TCP logins need SCRAM passwords (the admin's do not)."""

from __future__ import annotations

import base64
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from temporalio.exceptions import ApplicationError

from activities.postgres_roles import PostgresRoles
from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.support.waiting import wait_until
from zerotouch import activity_errors as errors
from zerotouch.ports import free_port
from zerotouch.rotations import PostgresTarget
from zerotouch.scram import scram_sha256_verifier

# The admin (`postgres`) keeps trust so the fixture can set things up; every other TCP login needs SCRAM.
_HBA = ["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=30, hba=_HBA) as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


@dataclass
class Setup:
    server: Postgres
    database: str
    group: str
    roles: list[str]

    def target(self, **changes: Any) -> PostgresTarget:
        fields: dict[str, Any] = {"connection": "main", "database": self.database, "roles": self.roles,
                                  "member_of": [self.group]}
        return PostgresTarget(**(fields | changes))

    def login(self, role: str, password: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(user=role, dbname=self.database), password=password,
                               connect_timeout=5, autocommit=True)


@pytest.fixture
def setup(postgres: Postgres) -> Iterator[Setup]:
    """A database with a table only the group role may read, and two role names that do not exist yet."""
    suffix = uuid.uuid4().hex[:8]
    database = postgres.create_database("rot")
    group, roles = f"app_{suffix}", [f"app_{suffix}_a", f"app_{suffix}_b"]
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{group}" NOLOGIN')
    with psycopg.connect(postgres.dsn(dbname=database), autocommit=True) as admin:
        admin.execute("CREATE TABLE orders (id int)")
        admin.execute("INSERT INTO orders VALUES (1), (2)")
        admin.execute(f'GRANT SELECT ON orders TO "{group}"')
    try:
        yield Setup(postgres, database, group, roles)
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            for role in [*roles, group]:
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def roles(postgres: Postgres) -> PostgresRoles:
    return PostgresRoles(dsn_for=lambda reference: {"main": postgres.admin_dsn}[reference])


def _refused(kind: str, call: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        call(*args)
    assert raised.value.type == kind, raised.value
    return raised.value


def test_alternating_roles_are_created_in_the_group_and_read_its_table(setup: Setup, roles: PostgresRoles) -> None:
    target = setup.target()
    for role, password in zip(setup.roles, ["first-Password-1234567", "second-Password-123456"], strict=True):
        assert "created" in roles.set_login(target, role, password)
        assert role in roles.check_login(target, role, password)
        with setup.login(role, password) as consumer:
            assert consumer.execute("SELECT count(*) FROM orders").fetchone() == (2,)


def test_a_wrong_password_is_rejected_without_being_shown(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(), setup.roles[0]
    roles.set_login(target, role, "the-right-one-0123456789")
    wrong = "the-wrong-one-9876543210"
    error = _refused(errors.CREDENTIAL_REJECTED, roles.check_login, target, role, wrong)
    assert error.non_retryable
    assert f"refused the pending login for role {role}" in str(error)
    shown = "".join(traceback.format_exception(error))
    for text in (shown, repr(error), repr(error.__cause__), repr(error.__context__), str(error.details)):
        assert wrong not in text and "the-right-one" not in text and "port=" not in text


def test_set_login_twice_is_idempotent(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(), setup.roles[0]
    password = "same-password-0123456789"
    roles.set_login(target, role, password)
    assert "updated" in roles.set_login(target, role, password)
    roles.check_login(target, role, password)
    with psycopg.connect(setup.server.admin_dsn) as admin:
        memberships = admin.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                    "WHERE r.rolname = %s", (role,)).fetchone()
    assert memberships == (1,)


def test_an_existing_role_gets_the_password_and_the_missing_group(setup: Setup, roles: PostgresRoles) -> None:
    role = setup.roles[1]
    with psycopg.connect(setup.server.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" NOLOGIN')
    assert f"granted {setup.group}" in roles.set_login(setup.target(), role, "revived-password-12345678")
    with setup.login(role, "revived-password-12345678") as consumer:
        assert consumer.execute("SELECT count(*) FROM orders").fetchone() == (2,)


def test_a_role_still_in_use_keeps_its_password(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(), setup.roles[0]
    roles.set_login(target, role, "in-use-password-12345678")
    with setup.login(role, "in-use-password-12345678"):
        error = _refused(errors.ROTATION_STATE, roles.set_login, target, role, "new-password-0123456789")
        assert f"role {role} still has 1 session(s)" in str(error)
    roles.check_login(target, role, "in-use-password-12345678")  # unchanged


def test_the_single_strategy_changes_the_password_in_place(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(strategy="single", roles=setup.roles[:1]), setup.roles[0]
    roles.set_login(target, role, "old-single-password-1234")
    with setup.login(role, "old-single-password-1234"):
        roles.set_login(target, role, "new-single-password-1234")  # its consumers reconnect with the new one
    roles.check_login(target, role, "new-single-password-1234")
    _refused(errors.CREDENTIAL_REJECTED, roles.check_login, target, role, "old-single-password-1234")
    _refused(errors.ROTATION_STATE, roles.disable_login, target, role)


def test_a_disabled_role_can_no_longer_log_in(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(), setup.roles[1]
    roles.set_login(target, role, "soon-disabled-123456789")
    assert "login disabled" in roles.disable_login(target, role)
    roles.disable_login(target, role)  # again: nothing new
    error = _refused(errors.CREDENTIAL_REJECTED, roles.check_login, target, role, "soon-disabled-123456789")
    assert "not permitted to log in" in str(error)
    assert "nothing to disable" in roles.disable_login(target, setup.roles[0])  # never created


def test_sessions_of_counts_the_roles_open_sessions(setup: Setup, roles: PostgresRoles) -> None:
    target, role = setup.target(), setup.roles[0]
    roles.set_login(target, role, "counted-password-1234567")
    assert roles.sessions_of(target, role) == 0
    with setup.login(role, "counted-password-1234567"), setup.login(role, "counted-password-1234567"):
        assert roles.sessions_of(target, role) == 2
    wait_until(lambda: roles.sessions_of(target, role) == 0)


@pytest.mark.parametrize("power", ["SUPERUSER", "REPLICATION", "BYPASSRLS"])
def test_a_privileged_role_is_refused(setup: Setup, roles: PostgresRoles, power: str) -> None:
    role = setup.roles[0]
    with psycopg.connect(setup.server.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN {power}')
    error = _refused(errors.INVALID_TARGET, roles.set_login, setup.target(), role, "never-set-password-1234")
    assert power in str(error)
    _refused(errors.INVALID_TARGET, roles.disable_login, setup.target(), role)


def test_what_the_policy_does_not_name_is_refused(setup: Setup, roles: PostgresRoles) -> None:
    _refused(errors.INVALID_TARGET, roles.set_login, setup.target(), "postgres", "whatever-password-12345")
    _refused(errors.INVALID_TARGET, roles.disable_login, setup.target(), "postgres")
    missing_group = setup.target(member_of=["no_such_group"])
    error = _refused(errors.INVALID_TARGET, roles.set_login, missing_group, setup.roles[0], "pw-0123456789abcdefgh")
    assert "no_such_group" in str(error)
    _refused(errors.INVALID_TARGET, roles.sessions_of, setup.target(connection="other"), setup.roles[0])


def test_an_unreachable_server_is_retryable(setup: Setup) -> None:
    down = PostgresRoles(dsn_for=lambda _: f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres")
    target = setup.target()
    assert not _refused(errors.DATABASE_UNAVAILABLE, down.set_login, target, setup.roles[0], "x" * 24).non_retryable
    assert not _refused(errors.DATABASE_UNAVAILABLE, down.check_login, target, setup.roles[0], "x" * 24).non_retryable


@pytest.mark.parametrize("password", ["plain-ascii-0123456789", "pässwörd\u00a0mit\u2163ünicode", "\u0627\u0628"])
def test_the_scram_verifier_is_what_postgresql_computes(setup: Setup, password: str) -> None:
    role = setup.roles[0]
    with psycopg.connect(setup.server.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        # The server's own hash of the same password (sent in plain text here, only in the test) ...
        admin.execute(f"""ALTER ROLE "{role}" PASSWORD {sql.quote(password)}""")
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
        assert stored is not None
        salt = base64.b64decode(stored[0].split("$")[1].split(":")[1])
        assert scram_sha256_verifier(password, salt=salt) == stored[0]
        # ... and a login with a verifier computed here works.
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(scram_sha256_verifier(password))))
    with setup.login(role, password) as consumer:
        assert consumer.execute("SELECT current_user").fetchone() == (role,)
