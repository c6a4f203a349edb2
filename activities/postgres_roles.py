"""PostgreSQL login roles as a rotation target: set a password, prove a login, disable a role.

The admin connection comes from the target's connection reference (resolved by the worker, never
from history). A password is sent only as a SCRAM-SHA-256 verifier computed here, so it never
reaches the server's logs or statistics in plain text; a login test is the only place it travels,
inside the SCRAM exchange itself. No message, return value or log line names a password or a DSN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from zerotouch import activity_errors as errors
from zerotouch.rotations import PostgresTarget
from zerotouch.scram import scram_sha256_verifier

ADMIN_CONNECT_TIMEOUT_SECONDS = 10
LOGIN_CONNECT_TIMEOUT_SECONDS = 5

_ROLE = """
SELECT rolsuper, rolreplication, rolbypassrls, rolcanlogin, rolname = current_user
FROM pg_roles WHERE rolname = %s
"""
_GROUPS_OF = """
SELECT g.rolname FROM pg_auth_members AS m
JOIN pg_roles AS g ON g.oid = m.roleid JOIN pg_roles AS r ON r.oid = m.member
WHERE r.rolname = %s
"""
# Every client backend of the role in any database, but never the admin's own session.
_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE usename = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
# Server-side refusals that retrying cures: the server is busy, starting or stopping.
_TRANSIENT = ("too many connections", "connection slots are reserved", "starting up", "shutting down",
              "in recovery mode", "not yet accepting connections")


class PostgresRoles:
    """The rotation steps for a `PostgresTarget`; blocking psycopg calls for sync activities."""

    def __init__(self, *, dsn_for: Callable[[str], str]) -> None:
        self._dsn_for = dsn_for

    def set_login(self, target: PostgresTarget, login: str, password: str) -> str:
        """CREATE or ALTER ROLE login WITH LOGIN PASSWORD <verifier>, in the target's group roles."""
        _require_listed(target, login)
        verifier = scram_sha256_verifier(password)
        with self._admin(target, login) as admin, admin.transaction():
            exists = _check_role(admin, login)
            missing_groups = _missing(admin, target.member_of)
            if missing_groups:
                raise errors.fail(f"group role(s) {', '.join(missing_groups)} do not exist on {target.connection!r}: "
                                  "create them with the privileges the consumers need", errors.INVALID_TARGET)
            if exists and target.strategy == "alternating":
                # Its consumers would fail their next connection: the workflow picked the role in use.
                sessions = _count_sessions(admin, login)
                if sessions:
                    raise errors.fail(f"role {login} still has {sessions} session(s); its consumers have not moved "
                                      "off it", errors.ROTATION_STATE)
            secret = sql.SQL("LOGIN PASSWORD {} VALID UNTIL 'infinity'").format(sql.Literal(verifier))
            granted = _set_role(admin, login, secret, exists, target.member_of)
        how = "updated" if exists else "created"
        joined = f", granted {', '.join(granted)}" if granted else ""
        return f"role {login} on {target.connection!r}: password set ({how}{joined})"

    def check_login(self, target: PostgresTarget, login: str, password: str) -> str:
        """Log in as ``login`` with ``password`` (`SELECT current_user`) where the consumers connect."""
        _require_listed(target, login)
        admin_dsn = self._admin_dsn(target)
        options: dict[str, Any] = {"user": login, "password": password,
                                   "connect_timeout": LOGIN_CONNECT_TIMEOUT_SECONDS,
                                   "application_name": "zerotouch-rotation-check"}
        if target.database:
            options["dbname"] = target.database
        row: tuple[Any, ...] | None = None
        failure: Exception | None = None
        try:
            with psycopg.connect(admin_dsn, autocommit=True, **options) as connection:
                row = connection.execute("SELECT current_user").fetchone()
        except psycopg.OperationalError as error:
            # Only the server's first line is kept: psycopg's error carries the connection, whose repr
            # includes the password, so it must not even ride along as the raised error's context.
            failure = _login_failure(target, login, str(error))
        if failure is not None:
            raise failure
        if row is None or row[0] != login:
            raise errors.fail(f"a login as role {login} ran as {row[0] if row else 'nobody'!r}",
                              errors.CREDENTIAL_REJECTED)
        where = f" to database {target.database}" if target.database else ""
        return f"role {login} logged in{where} on {target.connection!r}"

    def disable_login(self, target: PostgresTarget, login: str) -> str:
        """ALTER ROLE login NOLOGIN; its open sessions are left alone (the workflow proved there are none)."""
        _require_listed(target, login)
        if target.strategy == "single":
            raise errors.fail(f"role {login} is the single strategy's only login: disabling it would lock its "
                              "consumers out", errors.ROTATION_STATE)
        with self._admin(target, login) as admin:
            if not _check_role(admin, login):
                return f"role {login} does not exist on {target.connection!r}: nothing to disable"
            admin.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(sql.Identifier(login)))
        return f"role {login} on {target.connection!r}: login disabled"

    def sessions_of(self, target: PostgresTarget, login: str) -> int:
        """How many client sessions ``login`` has open, in any database of the server."""
        _require_listed(target, login)
        with self._admin(target, login) as admin:
            return _count_sessions(admin, login)

    def _admin_dsn(self, target: PostgresTarget) -> str:
        try:
            return self._dsn_for(target.connection)
        except KeyError as error:
            raise errors.fail(str(error.args[0] if error.args else error), errors.INVALID_TARGET) from None

    @contextlib.contextmanager
    def _admin(self, target: PostgresTarget, login: str) -> Iterator[psycopg.Connection[Any]]:
        """The admin session, its failures turned into errors saying what the admin role lacks or what broke."""
        dsn = self._admin_dsn(target)
        try:
            connection = psycopg.connect(dsn, autocommit=True, connect_timeout=ADMIN_CONNECT_TIMEOUT_SECONDS,
                                         application_name="zerotouch")
        except psycopg.OperationalError as error:
            raise errors.fail(f"cannot connect to PostgreSQL {target.connection!r}: {_first_line(str(error))}",
                              errors.DATABASE_UNAVAILABLE) from None
        try:
            with connection:
                yield connection
        except pg_errors.InsufficientPrivilege as error:
            raise errors.fail(f"the admin connection {target.connection!r} may not change role {login}: "
                              f"{_first_line(str(error))}; it needs CREATEROLE (and ADMIN OPTION on the group roles)",
                              errors.FORBIDDEN) from None
        except psycopg.OperationalError as error:
            raise errors.fail(f"PostgreSQL {target.connection!r} failed while handling role {login}: "
                              f"{_first_line(str(error))}", errors.DATABASE_UNAVAILABLE) from None


def _require_listed(target: PostgresTarget, login: str) -> None:
    if login not in target.roles:
        raise errors.fail(f"role {login!r} is not one of this rotation's roles ({', '.join(target.roles)})",
                          errors.INVALID_TARGET)


def _check_role(admin: psycopg.Connection[Any], login: str) -> bool:
    """Whether the role exists; refuses one whose password must never be zerotouch's to change."""
    row = admin.execute(_ROLE, (login,)).fetchone()
    if row is None:
        return False
    superuser, replication, bypass_rls, _, is_admin = row
    powers = [name for name, held in (("SUPERUSER", superuser), ("REPLICATION", replication),
                                      ("BYPASSRLS", bypass_rls)) if held]
    if powers:
        raise errors.fail(f"role {login} has {', '.join(powers)}: a rotated application login must not; "
                          "use a plain login role in a group role", errors.INVALID_TARGET)
    if is_admin:
        raise errors.fail(f"role {login} is the admin connection's own role: rotate it by another one",
                          errors.INVALID_TARGET)
    return True


def _missing(admin: psycopg.Connection[Any], groups: list[str]) -> list[str]:
    if not groups:
        return []
    rows = admin.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (groups,)).fetchall()
    found = {str(row[0]) for row in rows}
    return [group for group in groups if group not in found]


def _set_role(admin: psycopg.Connection[Any], login: str, secret: sql.Composed, exists: bool,
              groups: list[str]) -> list[str]:
    """Create the role in its groups, or set its password and join the groups it lacks; the groups granted."""
    role = sql.Identifier(login)
    if not exists:
        statement = sql.SQL("CREATE ROLE {} WITH {}").format(role, secret)
        if groups:
            statement = sql.SQL("{} IN ROLE {}").format(statement, sql.SQL(", ").join(map(sql.Identifier, groups)))
        admin.execute(statement)
        return list(groups)
    admin.execute(sql.SQL("ALTER ROLE {} WITH {}").format(role, secret))
    have = {str(row[0]) for row in admin.execute(_GROUPS_OF, (login,)).fetchall()}
    granted = [group for group in groups if group not in have]
    for group in granted:
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role))
    return granted


def _count_sessions(admin: psycopg.Connection[Any], login: str) -> int:
    row = admin.execute(_SESSIONS, (login,)).fetchone()
    return int(row[0]) if row else 0


def _login_failure(target: PostgresTarget, login: str, message: str) -> Exception:
    """Sort a failed login: the server refused it (the credential is wrong), or it could not be asked."""
    line = _first_line(message)
    refusal = line.partition("FATAL:")[2].strip()
    if not refusal or any(marker in refusal for marker in _TRANSIENT):
        return errors.fail(f"cannot reach PostgreSQL {target.connection!r} to test role {login}: {line}",
                           errors.DATABASE_UNAVAILABLE)
    if "database" in refusal and "does not exist" in refusal:
        return errors.fail(f"the rotation's database does not exist on {target.connection!r}: {refusal}",
                           errors.INVALID_TARGET)
    return errors.fail(f"PostgreSQL refused the pending login for role {login}: {refusal}",
                       errors.CREDENTIAL_REJECTED)


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "no detail"
    return line.removeprefix("connection failed: ")
