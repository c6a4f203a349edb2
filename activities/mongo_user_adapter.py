"""The only module that speaks pymongo for MongoDB user management: the calls a rotation needs, and no more.

Every user call is one ``db.command(...)`` (usersInfo, createUser, updateUser) or one ``$currentOp``
aggregation, so what the tests cannot run (mongomock implements none of them, and no MongoDB server
installs where they run) is exactly these few lines, repeated against a real server by the
``test_real_server_*`` tests. pymongo's errors become the four kinds below, which carry only the
server's error code and name: a command holding a password never reaches a message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pymongo
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure

TIMEOUT_MS = 10_000  # server selection and connect: an unreachable server fails the step, it does not hang it

_AUTH_FAILED = 18  # AuthenticationFailed
_UNAUTHORIZED = 13  # Unauthorized: the admin user lacks a privilege
_USER_NOT_FOUND = 11
_USER_EXISTS = 51003


class InvalidUrl(Exception):
    """The connection URL does not parse; pymongo's own message may quote it, credentials included."""


class Unreachable(Exception):
    """No server answered (or it stepped down mid-call): the next attempt may succeed."""


class AuthRejected(Exception):
    """The server refused the login itself."""


class NotPermitted(Exception):
    """The logged-in user lacks the privilege the call needs."""


class UserExists(Exception):
    """createUser raced another createUser of the same name."""


class UserMissing(Exception):
    """updateUser named a user that no longer exists."""


class CommandRefused(Exception):
    """Any other refusal; the message is the server's code and code name only."""


@dataclass(frozen=True)
class UserInfo:
    """What a user is allowed, as usersInfo reports it; never its credentials."""

    roles: list[dict[str, str]] = field(default_factory=list)
    restrictions: list[dict[str, Any]] = field(default_factory=list)


class UserAdapter(Protocol):
    """What `MongoUsers` asks of a server; tests stand a small in-memory double behind it."""

    def ping(self) -> None: ...
    def user(self, database: str, name: str) -> UserInfo | None: ...
    def create_user(self, database: str, name: str, password: str, info: UserInfo) -> None: ...
    def update_user(self, database: str, name: str, password: str, roles: Sequence[Mapping[str, str]] | None) -> None:
        ...
    def topology(self) -> str: ...
    def authenticated_connections(self, database: str, name: str) -> int: ...
    def close(self) -> None: ...


class MongoUserAdapter:
    """A pymongo ``MongoClient`` (or ``mongomock.MongoClient``, for `ping` only) seen through user management."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def ping(self) -> None:
        _call(lambda: self._client.admin.command("ping"))

    def user(self, database: str, name: str) -> UserInfo | None:
        reply = _call(lambda: self._client[database].command(
            {"usersInfo": name, "showAuthenticationRestrictions": True}))
        users = reply.get("users") or []
        if not users:
            return None
        found = users[0]
        return UserInfo(roles=[{"role": str(r["role"]), "db": str(r["db"])} for r in found.get("roles", [])],
                        restrictions=list(found.get("authenticationRestrictions") or []))

    def create_user(self, database: str, name: str, password: str, info: UserInfo) -> None:
        command: dict[str, Any] = {"createUser": name, "pwd": password, "roles": info.roles}
        if info.restrictions:
            command["authenticationRestrictions"] = info.restrictions
        _call(lambda: self._client[database].command(command))

    def update_user(self, database: str, name: str, password: str, roles: Sequence[Mapping[str, str]] | None) -> None:
        """Set the password, and the roles too when given (``[]`` strips them)."""
        command: dict[str, Any] = {"updateUser": name, "pwd": password}
        if roles is not None:
            command["roles"] = [dict(r) for r in roles]
        _call(lambda: self._client[database].command(command))

    def topology(self) -> str:
        """pymongo's topology type after a round trip: Single, ReplicaSetWithPrimary, Sharded, LoadBalanced…"""
        self.ping()  # before the first round trip the type is still Unknown
        return str(self._client.topology_description.topology_type_name)

    def authenticated_connections(self, database: str, name: str) -> int:
        """Open connections (idle ones too: pooled) logged in as the user, on the node this client talks to."""
        pipeline = [
            {"$currentOp": {"allUsers": True, "idleConnections": True}},
            {"$match": {"effectiveUsers": {"$elemMatch": {"user": name, "db": database}}}},
            {"$count": "connections"},
        ]
        found = _call(lambda: list(self._client.admin.aggregate(pipeline)))
        return int(found[0]["connections"]) if found else 0

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def _call(command: Any) -> Any:
    try:
        return command()
    except ConnectionFailure:  # also NotPrimaryError and timeouts: retryable
        raise Unreachable("no MongoDB server answered in time") from None
    except OperationFailure as error:
        reason = f"code {error.code} {(error.details or {}).get('codeName', '')}".strip()
        kind = {_AUTH_FAILED: AuthRejected, _UNAUTHORIZED: NotPermitted, _USER_NOT_FOUND: UserMissing,
                _USER_EXISTS: UserExists}.get(error.code or 0, CommandRefused)
        raise kind(reason) from None  # `from None`: the chained error would repeat the command's reply


def admin_client(url: str) -> Any:
    """The admin connection a rotation step uses (closed by the step)."""
    return _client(url)


def login_client(url: str, user: str, password: str, auth_source: str) -> Any:
    """A client logging in as a rotated user: the URL gives hosts and TLS, its own credentials are replaced.

    ``authMechanism=DEFAULT`` (SCRAM, negotiated) overrides whatever the admin URL names (X.509, say),
    since a rotated credential is always a password.
    """
    return _client(url, username=user, password=password, authSource=auth_source, authMechanism="DEFAULT")


def _client(url: str, **options: Any) -> Any:
    try:
        return pymongo.MongoClient(url, serverSelectionTimeoutMS=TIMEOUT_MS, connectTimeoutMS=TIMEOUT_MS, **options)
    except (ConfigurationError, ValueError, TypeError):
        raise InvalidUrl("the connection URL is not a valid MongoDB URL") from None
