"""MongoDB users as a rotation target.

No MongoDB server installs where these tests run, and mongomock implements none of usersInfo,
createUser, updateUser or $currentOp. So the rotation logic runs here against `UserServer`, an
in-memory double of the narrow `UserAdapter` interface (not of pymongo) with MongoDB's semantics;
`ping` runs through the real adapter on mongomock; unreachable servers and bad URLs through real
pymongo. The adapter's user commands themselves run only in the ``test_real_server_*`` tests, when
``ZEROTOUCH_TEST_MONGODB_URL`` names a server whose user may manage users (userAdmin, plus inprog).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mongomock
import pymongo
import pytest
from pymongo.errors import OperationFailure
from temporalio.exceptions import ApplicationError

from activities import mongo_user_adapter
from activities.mongo_user_adapter import (
    AuthRejected,
    CommandRefused,
    NotPermitted,
    Unreachable,
    UserExists,
    UserInfo,
    UserMissing,
)
from activities.mongo_users import MongoUsers
from tests.support.waiting import wait_until
from workers.clients import mongo_url_for
from zerotouch import activity_errors as errors
from zerotouch.ports import free_port
from zerotouch.rotations import MongoTarget

REAL_URL = os.environ.get("ZEROTOUCH_TEST_MONGODB_URL", "")
NEEDS_SERVER = pytest.mark.skipif(not REAL_URL, reason="set ZEROTOUCH_TEST_MONGODB_URL to a MongoDB server whose "
                                                       "user has userAdmin and inprog to run against a real server")
APP_ROLES = [{"role": "readWrite", "db": "shop"}]
PAIR = MongoTarget(connection="main", users=["app_a", "app_b"])
SINGLE = MongoTarget(connection="main", strategy="single", users=["app"])


@dataclass
class UserServer:
    """A MongoDB server's users as `UserAdapter` sees them: wrong passwords are refused, a createUser of an
    existing user and an updateUser of a missing one fail, connections are counted per user."""

    users: dict[tuple[str, str], tuple[str, UserInfo]] = field(default_factory=dict)
    connections: dict[str, int] = field(default_factory=dict)
    kind: str = "Single"
    failure: Exception | None = None  # raised by every admin call
    inprog: bool = True
    before_create: Any = None  # runs inside createUser: another attempt's createUser landing first
    opened: int = 0

    def session(self, user: str = "", password: str = "", database: str = "") -> Session:
        self.opened += 1
        return Session(self, user, password, database)


@dataclass
class Session:
    server: UserServer
    login: str
    password: str
    database: str
    closed: bool = False

    def _admin(self) -> None:
        if self.server.failure:
            raise self.server.failure

    def ping(self) -> None:
        if self.login:  # a user login: only the password is checked, as `ping` needs no privileges
            known = self.server.users.get((self.database, self.login))
            if known is None or known[0] != self.password:
                raise AuthRejected("code 18 AuthenticationFailed")
        else:
            self._admin()

    def user(self, database: str, name: str) -> UserInfo | None:
        self._admin()
        found = self.server.users.get((database, name))
        return found[1] if found else None

    def create_user(self, database: str, name: str, password: str, info: UserInfo) -> None:
        self._admin()
        if self.server.before_create:
            self.server.before_create()
        if (database, name) in self.server.users:
            raise UserExists("code 51003 Location51003")
        self.server.users[(database, name)] = (password, info)

    def update_user(self, database: str, name: str, password: str, roles: Sequence[Mapping[str, str]] | None) -> None:
        self._admin()
        if (database, name) not in self.server.users:
            raise UserMissing("code 11 UserNotFound")
        info = self.server.users[(database, name)][1]
        if roles is not None:
            info = UserInfo(roles=[dict(r) for r in roles], restrictions=info.restrictions)
        self.server.users[(database, name)] = (password, info)

    def topology(self) -> str:
        self._admin()
        return self.server.kind

    def authenticated_connections(self, database: str, name: str) -> int:
        self._admin()
        if not self.server.inprog:
            raise NotPermitted("code 13 Unauthorized")
        return self.server.connections.get(name, 0)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def server() -> UserServer:
    return UserServer(users={("admin", "app_a"): ("old-secret-a", UserInfo(roles=list(APP_ROLES)))})


def users_on(server: UserServer) -> MongoUsers:
    return MongoUsers(client_for=lambda _ref: server.session(),
                      login_client=lambda _ref, user, password, db: server.session(user, password, db),
                      adapter=lambda client: client)  # the double is its own adapter


def rejected(kind: str, call: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(*args)
    assert caught.value.type == kind, caught.value.message
    assert caught.value.non_retryable == (kind in errors.NON_RETRYABLE)
    return caught.value


def test_a_missing_user_is_created_with_the_other_users_roles_and_logs_in(server: UserServer) -> None:
    server.users[("admin", "app_a")][1].restrictions.append({"clientSource": ["10.0.0.0/8"]})
    users = users_on(server)
    detail = users.set_login(PAIR, "app_b", "new-secret-b")
    assert "created with the roles of app_a (readWrite@shop)" in detail
    assert server.users[("admin", "app_b")][1] == server.users[("admin", "app_a")][1]
    assert "logged in" in users.check_login(PAIR, "app_b", "new-secret-b")
    rejected(errors.CREDENTIAL_REJECTED, users.check_login, PAIR, "app_b", "not-it")


def test_setting_the_same_password_again_changes_nothing(server: UserServer) -> None:
    users = users_on(server)
    users.set_login(PAIR, "app_b", "new-secret-b")
    before = dict(server.users)
    users.set_login(PAIR, "app_b", "new-secret-b")
    assert server.users == before


def test_a_retry_whose_first_create_landed_updates_the_password(server: UserServer) -> None:
    server.before_create = lambda: server.users.setdefault(("admin", "app_b"), ("stale", UserInfo(roles=APP_ROLES)))
    users = users_on(server)
    users.set_login(PAIR, "app_b", "new-secret-b")
    assert server.users[("admin", "app_b")][0] == "new-secret-b"


def test_an_existing_user_keeps_its_own_roles(server: UserServer) -> None:
    own = UserInfo(roles=[{"role": "read", "db": "reports"}])
    server.users[("admin", "app_b")] = ("old-secret-b", own)
    users_on(server).set_login(PAIR, "app_b", "new-secret-b")
    assert server.users[("admin", "app_b")] == ("new-secret-b", own)


@pytest.mark.parametrize("target, login", [(PAIR, "intruder"), (PAIR, "admin"), (SINGLE, "app_a")])
def test_a_login_outside_the_target_is_refused_before_any_call(server: UserServer, target: MongoTarget,
                                                                login: str) -> None:
    users = users_on(server)
    for call, args in ((users.set_login, (target, login, "x" * 20)), (users.check_login, (target, login, "x" * 20)),
                       (users.disable_login, (target, login)), (users.sessions_of, (target, login))):
        rejected(errors.INVALID_TARGET, call, *args)
    assert server.opened == 0


def test_a_user_with_no_other_to_copy_roles_from_must_be_created_first() -> None:
    server = UserServer()
    message = rejected(errors.INVALID_TARGET, users_on(server).set_login, PAIR, "app_b", "new-secret-b").message
    assert "create it with the roles its consumers need" in message
    rejected(errors.INVALID_TARGET, users_on(server).set_login, SINGLE, "app", "new-secret")
    assert server.users == {}


def test_the_single_strategy_updates_its_user_in_place_and_is_never_revoked() -> None:
    server = UserServer(users={("admin", "app"): ("old", UserInfo(roles=APP_ROLES))})
    users = users_on(server)
    users.set_login(SINGLE, "app", "new-secret")
    users.check_login(SINGLE, "app", "new-secret")
    rejected(errors.ROTATION_STATE, users.disable_login, SINGLE, "app")
    assert server.users[("admin", "app")] == ("new-secret", UserInfo(roles=APP_ROLES))


def test_two_alternating_rotations_revoke_and_revive_each_user(server: UserServer) -> None:
    users = users_on(server)
    users.set_login(PAIR, "app_b", "secret-1")
    users.check_login(PAIR, "app_b", "secret-1")
    assert "revoked" in users.disable_login(PAIR, "app_a")
    # The old password no longer logs in, and the user has no privileges left for connections still open.
    rejected(errors.CREDENTIAL_REJECTED, users.check_login, PAIR, "app_a", "old-secret-a")
    assert server.users[("admin", "app_a")][1].roles == []
    assert "roles of app_b restored" in users.set_login(PAIR, "app_a", "secret-2")
    users.check_login(PAIR, "app_a", "secret-2")
    assert server.users[("admin", "app_a")][1].roles == APP_ROLES
    users.disable_login(PAIR, "app_b")
    rejected(errors.CREDENTIAL_REJECTED, users.check_login, PAIR, "app_b", "secret-1")
    assert users.disable_login(PAIR, "app_b").endswith("revoked (unknown password, no roles)")  # again: same end


def test_revoking_a_missing_user_is_done_already(server: UserServer) -> None:
    assert "nothing to revoke" in users_on(server).disable_login(PAIR, "app_b")


def test_a_user_still_logged_in_is_not_given_a_new_password(server: UserServer) -> None:
    server.connections["app_a"] = 3
    message = rejected(errors.ROTATION_STATE, users_on(server).set_login, PAIR, "app_a", "new-secret-a").message
    assert "3 connection(s)" in message
    assert server.users[("admin", "app_a")][0] == "old-secret-a"


@pytest.mark.parametrize("kind, inprog, expected, why", [
    ("Single", True, 2, ""),
    ("ReplicaSetWithPrimary", True, None, "topology ReplicaSetWithPrimary: each node sees only its own"),
    ("Sharded", True, None, "topology Sharded"),
    ("Single", False, None, "lacks the inprog privilege"),
])
def test_connections_are_counted_only_where_every_one_is_visible(server: UserServer, kind: str, inprog: bool,
                                                                   expected: int | None, why: str) -> None:
    server.kind, server.inprog, server.connections["app_a"] = kind, inprog, 2
    users = users_on(server)
    assert users.sessions_of(PAIR, "app_a") == expected
    use = users.credential_use(PAIR, "app_a")
    assert use.measurable == (expected is not None)
    assert why in use.detail


@pytest.mark.parametrize("failure, kind", [
    (Unreachable("no MongoDB server answered in time"), errors.DATABASE_UNAVAILABLE),
    (AuthRejected("code 18 AuthenticationFailed"), errors.FORBIDDEN),
    (NotPermitted("code 13 Unauthorized"), errors.FORBIDDEN),
    (CommandRefused("code 2 BadValue"), errors.INVALID_TARGET),
])
def test_admin_failures_become_activity_errors(server: UserServer, failure: Exception, kind: str) -> None:
    server.failure = failure
    users = users_on(server)
    rejected(kind, users.set_login, PAIR, "app_b", "new-secret-b")
    rejected(kind, users.disable_login, PAIR, "app_a")


def test_every_admin_client_is_closed(server: UserServer) -> None:
    sessions: list[Session] = []

    def track(session: Session) -> Session:
        sessions.append(session)
        return session

    users = MongoUsers(client_for=lambda _ref: track(server.session()),
                       login_client=lambda _ref, user, password, db: track(server.session(user, password, db)),
                       adapter=lambda client: client)
    users.set_login(PAIR, "app_b", "new-secret-b")
    users.check_login(PAIR, "app_b", "new-secret-b")
    with pytest.raises(ApplicationError):
        users.check_login(PAIR, "app_b", "wrong")
    users.disable_login(PAIR, "app_a")
    users.sessions_of(PAIR, "app_b")
    assert len(sessions) == 5 and all(s.closed for s in sessions)


def test_no_result_or_error_names_a_password(server: UserServer) -> None:
    users = users_on(server)
    said = [users.set_login(PAIR, "app_b", "pw-one-1234567890abcd"),
            users.check_login(PAIR, "app_b", "pw-one-1234567890abcd"),
            users.disable_login(PAIR, "app_a"),
            users.set_login(PAIR, "app_a", "pw-two-1234567890abcd")]
    with pytest.raises(ApplicationError) as caught:
        users.check_login(PAIR, "app_a", "pw-one-1234567890abcd")
    said += [str(caught.value), repr(caught.value.__cause__), repr(caught.value.__context__)]
    assert not [line for line in said if "pw-one" in line or "pw-two" in line or "old-secret" in line]


# --- the real adapter, without a MongoDB server -----------------------------------------------------


def test_a_login_is_pinged_through_the_adapter() -> None:
    users = MongoUsers(client_for=lambda _ref: mongomock.MongoClient(),
                       login_client=lambda _ref, user, password, db: mongomock.MongoClient(
                           username=user, password=password, authSource=db))
    assert users.check_login(PAIR, "app_b", "new-secret-b") == "user app_b logged in on 'main' (authSource admin)"


def test_an_unreachable_server_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongo_user_adapter, "TIMEOUT_MS", 300)
    users = MongoUsers.from_urls(lambda _ref: f"mongodb://127.0.0.1:{free_port()}/")
    rejected(errors.DATABASE_UNAVAILABLE, users.check_login, PAIR, "app_b", "new-secret-b")
    rejected(errors.DATABASE_UNAVAILABLE, users.set_login, PAIR, "app_b", "new-secret-b")


def test_a_missing_or_broken_url_names_the_variable_not_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEROTOUCH_MONGO_MAIN_URL", raising=False)
    message = rejected(errors.INVALID_TARGET, MongoUsers.from_urls(mongo_url_for).set_login, PAIR, "app_b",
                       "new-secret-b").message
    assert "ZEROTOUCH_MONGO_MAIN_URL" in message
    broken = MongoUsers.from_urls(lambda _ref: "mongodb://root:hunter2-admin@host:notaport/")
    for call in (broken.disable_login, broken.sessions_of):
        assert "hunter2" not in rejected(errors.INVALID_TARGET, call, PAIR, "app_b").message


@pytest.mark.parametrize("code, kind", [(18, AuthRejected), (13, NotPermitted), (11, UserMissing),
                                        (51003, UserExists), (2, CommandRefused)])
def test_server_refusals_keep_only_their_code(code: int, kind: type[Exception]) -> None:
    reply = {"ok": 0, "code": code, "codeName": "Named", "errmsg": "echo pwd: hunter2"}

    def refuse() -> None:
        raise OperationFailure("echo pwd: hunter2", code=code, details=reply)

    with pytest.raises(kind) as caught:
        mongo_user_adapter._call(refuse)
    assert str(caught.value) == f"code {code} Named"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- a real server, when one is named --------------------------------------------------------------


@pytest.fixture
def real() -> Iterator[tuple[pymongo.MongoClient[dict[str, Any]], MongoTarget, str]]:
    """Two users of a fresh name in admin, the first holding readWrite on a database of its own; dropped after."""
    name = f"zt_rot_{uuid.uuid4().hex[:10]}"
    admin: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(REAL_URL, serverSelectionTimeoutMS=10_000)
    target = MongoTarget(connection="main", users=[f"{name}_a", f"{name}_b"])
    admin.admin.command("createUser", f"{name}_a", pwd="first-secret-a", roles=[{"role": "readWrite", "db": name}])
    try:
        yield admin, target, name
    finally:
        for user in target.users:
            with contextlib.suppress(OperationFailure):  # never created: the test failed before
                admin.admin.command("dropUser", user)
        admin.drop_database(name)
        admin.close()


@NEEDS_SERVER
def test_real_server_rotation_cycle(real: tuple[pymongo.MongoClient[dict[str, Any]], MongoTarget, str]) -> None:
    admin, target, name = real
    a, b = target.users
    users = MongoUsers.from_urls(lambda _ref: REAL_URL)
    assert f"created with the roles of {a} (readWrite@{name})" in users.set_login(target, b, "second-secret-b")
    users.set_login(target, b, "second-secret-b")  # idempotent
    users.check_login(target, b, "second-secret-b")
    rejected(errors.CREDENTIAL_REJECTED, users.check_login, target, b, "not-it")
    # A connection of the old user opened before the revoke loses its privileges with it.
    old: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        REAL_URL, username=a, password="first-secret-a", authSource="admin", authMechanism="DEFAULT")
    try:
        old[name].things.insert_one({"before": True})
        if (counted := users.sessions_of(target, a)) is not None:
            assert counted >= 1
        users.disable_login(target, a)
        with pytest.raises(OperationFailure) as caught:
            old[name].things.insert_one({"after": True})
        assert caught.value.code == 13
    finally:
        old.close()
    rejected(errors.CREDENTIAL_REJECTED, users.check_login, target, a, "first-secret-a")
    # The server notices the closed connection a moment later; until then set_login would refuse the user.
    wait_until(lambda: users.sessions_of(target, a) in (0, None), timeout=10)
    assert "roles of" in users.set_login(target, a, "third-secret-a")
    users.check_login(target, a, "third-secret-a")
    roles = admin.admin.command("usersInfo", a)["users"][0]["roles"]
    assert [(r["role"], r["db"]) for r in roles] == [("readWrite", name)]
