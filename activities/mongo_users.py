"""MongoDB users as a rotation target: set a password, prove a login, revoke a user, count its connections.

Users live in the target's ``auth_database``. The admin client comes from the target's connection
reference (resolved by the worker, never from history) and needs ``userAdmin`` there (plus
``inprog`` for connection counts). No message, return value or log line names a password or a URL:
the adapter's errors carry only the server's error code.

MongoDB has no NOLOGIN, and changing a password leaves connections already logged in working, so
a revoke does two things: a random password nobody keeps (no new logins) and no roles (updateUser
invalidates the server's user cache, so connections already open lose every privilege at their next
command; `test_real_server_rotation_cycle` checks it).
The user stays, so the next rotation of the pair updates it again, giving back the roles of the
other user.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from activities.mongo_user_adapter import (
    AuthRejected,
    CommandRefused,
    InvalidUrl,
    MongoUserAdapter,
    NotPermitted,
    Unreachable,
    UserAdapter,
    UserExists,
    UserInfo,
    UserMissing,
    admin_client,
    login_client,
)
from zerotouch import activity_errors as errors
from zerotouch.rotation_models import CredentialUse
from zerotouch.rotations import MongoTarget

LoginClient = Callable[[str, str, str, str], Any]  # (reference, user, password, authSource) -> client

# Where $currentOp sees every connection a user holds: one server. A replica set's secondaries, or
# the other routers of a sharded cluster, hold connections the node asked cannot see, and a count
# that may be too low would let a revoke cut off consumers still logged in.
_COMPLETE_TOPOLOGIES = ("Single",)


class MongoUsers:
    """The rotation steps for a `MongoTarget`; blocking pymongo calls for sync activities.

    Args:
        client_for: connection reference -> a new admin client (``MongoClient``); closed after each step.
        login_client: (reference, user, password, authSource) -> a new client logging in as that user.
        adapter: wraps a client in the user calls; tests pass an in-memory double.
    """

    def __init__(self, *, client_for: Callable[[str], Any], login_client: LoginClient,
                 adapter: Callable[[Any], UserAdapter] = MongoUserAdapter) -> None:
        self._client_for = client_for
        self._login_client = login_client
        self._adapter = adapter

    @classmethod
    def from_urls(cls, url_for: Callable[[str], str]) -> MongoUsers:
        """The worker's wiring: a reference resolves to a URL (``workers.clients.mongo_url_for``)."""
        return cls(client_for=lambda ref: admin_client(url_for(ref)),
                   login_client=lambda ref, user, password, source: login_client(url_for(ref), user, password,
                                                                                 source))

    def set_login(self, target: MongoTarget, login: str, password: str) -> str:
        """updateUser pwd, or createUser with the other user's roles; the same password again changes nothing."""
        _require_listed(target, login)
        database, other = target.auth_database, _other(target, login)
        with self._admin(target) as admin:
            found: UserInfo | None = _guard(target, login, admin.user, database, login)
            model: UserInfo | None = _guard(target, login, admin.user, database, other) if other else None
            if found is not None:
                if target.strategy == "alternating":
                    _refuse_if_in_use(_count(admin, target, login), login)
                # Roles come back only to a user a revoke stripped, so an operator's own roles are kept.
                restore = model if model is not None and not found.roles else None
                _guard(target, login, admin.update_user, database, login, password,
                       restore.roles if restore else None)
                restored = f", roles of {other} restored ({_roles(restore)})" if restore else ""
                return f"user {login} in {database} on {target.connection!r}: password updated{restored}"
            if model is None:
                raise errors.fail(f"user {login} does not exist in {database} on {target.connection!r} and there is "
                                  "no other user to copy roles from: create it with the roles its consumers need",
                                  errors.INVALID_TARGET)
            try:
                _guard(target, login, admin.create_user, database, login, password, model)
            except UserExists:  # a retry of this step after its createUser landed
                _guard(target, login, admin.update_user, database, login, password, None)
            return (f"user {login} in {database} on {target.connection!r}: created with the roles of {other} "
                    f"({_roles(model)})")

    def check_login(self, target: MongoTarget, login: str, password: str) -> str:
        """Log in as ``login`` (authSource: the target's auth database) and run ``ping``."""
        _require_listed(target, login)
        try:
            client = self._login_client(target.connection, login, password, target.auth_database)
        except (KeyError, InvalidUrl) as error:
            raise _unresolved(target, error) from None
        session = self._adapter(client)
        try:
            session.ping()
        except AuthRejected:
            raise errors.fail(f"MongoDB {target.connection!r} refused the login of user {login} "
                              f"(authSource {target.auth_database})", errors.CREDENTIAL_REJECTED) from None
        except Unreachable as error:
            raise errors.fail(f"MongoDB {target.connection!r}: {error}", errors.DATABASE_UNAVAILABLE) from None
        except (NotPermitted, CommandRefused) as error:
            raise errors.fail(f"user {login} logged in on {target.connection!r} but ping was refused ({error})",
                              errors.CREDENTIAL_REJECTED) from None
        finally:
            session.close()
        return f"user {login} logged in on {target.connection!r} (authSource {target.auth_database})"

    def disable_login(self, target: MongoTarget, login: str) -> str:
        """updateUser with a discarded random password and no roles (see the module docstring)."""
        _require_listed(target, login)
        if target.strategy == "single":
            raise errors.fail(f"user {login} is the single strategy's only user: revoking it would lock its "
                              "consumers out", errors.ROTATION_STATE)
        database = target.auth_database
        with self._admin(target) as admin:
            if _guard(target, login, admin.user, database, login) is None:
                return f"user {login} does not exist in {database} on {target.connection!r}: nothing to revoke"
            try:
                _guard(target, login, admin.update_user, database, login, secrets.token_urlsafe(48), [])
            except UserMissing:  # dropped meanwhile: revoked all the same
                return f"user {login} was dropped from {database} on {target.connection!r}: nothing to revoke"
        return f"user {login} in {database} on {target.connection!r}: revoked (unknown password, no roles)"

    def sessions_of(self, target: MongoTarget, login: str) -> int | None:
        """Connections logged in as ``login``, or None where MongoDB cannot count them all.

        Counted with ``$currentOp`` (idle connections included: consumers' pools hold them) only when
        the admin client talks to a single server: on a replica set or a sharded cluster each node
        sees only its own connections, and on any topology the admin user may lack ``inprog``.
        `credential_use` says which.
        """
        use = self.credential_use(target, login)
        return use.sessions if use.measurable else None

    def credential_use(self, target: MongoTarget, login: str) -> CredentialUse:
        """`sessions_of` with the reason a count is missing in ``detail``."""
        _require_listed(target, login)
        with self._admin(target) as admin:
            counted = _count(admin, target, login)
        if isinstance(counted, int):
            return CredentialUse(login=login, sessions=counted)
        return CredentialUse(login=login, measurable=False,
                             detail=f"MongoDB {target.connection!r}: not measurable ({counted})")

    @contextmanager
    def _admin(self, target: MongoTarget) -> Iterator[UserAdapter]:
        try:
            client = self._client_for(target.connection)
        except (KeyError, InvalidUrl) as error:
            raise _unresolved(target, error) from None
        admin = self._adapter(client)
        try:
            yield admin
        finally:
            admin.close()


def _count(admin: UserAdapter, target: MongoTarget, login: str) -> int | str:
    """A connection count, or why there is none."""
    topology: str = _guard(target, login, admin.topology)
    if topology not in _COMPLETE_TOPOLOGIES:
        return f"topology {topology}: each node sees only its own connections"
    counted: int | str = _guard(target, login, _connections, admin, target.auth_database, login)
    return counted


def _connections(admin: UserAdapter, database: str, login: str) -> int | str:
    try:
        return admin.authenticated_connections(database, login)
    except NotPermitted:  # $currentOp over all users needs inprog, which userAdmin does not give
        return "the admin user lacks the inprog privilege ($currentOp)"


def _guard(target: MongoTarget, login: str, call: Callable[..., Any], *args: Any) -> Any:
    """An admin call, its adapter errors as activity errors; UserExists/UserMissing pass: callers decide."""
    where = f"MongoDB {target.connection!r}"
    try:
        return call(*args)
    except Unreachable as error:
        raise errors.fail(f"{where}: {error}", errors.DATABASE_UNAVAILABLE) from None
    except AuthRejected:
        raise errors.fail(f"{where} refused the admin login: check its connection URL's credentials",
                          errors.FORBIDDEN) from None
    except NotPermitted as error:
        raise errors.fail(f"{where}: the admin user may not manage user {login} in {target.auth_database} "
                          f"({error}); grant it userAdmin there", errors.FORBIDDEN) from None
    except CommandRefused as error:
        raise errors.fail(f"{where} refused a user command for {login} ({error})", errors.INVALID_TARGET) from None


def _unresolved(target: MongoTarget, error: Exception) -> Exception:
    """No URL for the reference (the worker's environment lacks it), or one pymongo cannot parse."""
    reason = error.args[0] if error.args else type(error).__name__
    return errors.fail(f"MongoDB connection {target.connection!r}: {reason}", errors.INVALID_TARGET)


def _refuse_if_in_use(counted: int | str, login: str) -> None:
    # Its consumers would fail their next connection: the workflow picked the user in use.
    if isinstance(counted, int) and counted:
        raise errors.fail(f"user {login} still has {counted} connection(s); its consumers have not moved off it",
                          errors.ROTATION_STATE)


def _require_listed(target: MongoTarget, login: str) -> None:
    if login not in target.users:
        raise errors.fail(f"user {login!r} is not one of the target's users {target.users}", errors.INVALID_TARGET)


def _other(target: MongoTarget, login: str) -> str:
    return next((user for user in target.users if user != login), "")


def _roles(info: UserInfo) -> str:
    return ", ".join(f"{r['role']}@{r['db']}" for r in info.roles) or "no roles"
