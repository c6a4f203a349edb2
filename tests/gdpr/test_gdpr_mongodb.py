"""A data subject's MongoDB documents resolved, exported, erased and counted, and retention, on mongomock.

No MongoDB server can be installed where these tests run; the `test_real_server_*` tests repeat
the cycle against one when ``ZEROTOUCH_TEST_MONGODB_URL`` names it (a database of their own,
dropped after).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import os
import uuid
from collections.abc import Iterator
from typing import Any

import mongomock
import pymongo
import pytest
from bson import ObjectId
from temporalio.exceptions import ApplicationError

from activities.gdpr_mongo_adapter import GdprMongoAdapter, Unreachable, connect
from activities.gdpr_mongodb import MongoSubjects
from zerotouch import activity_errors as errors
from zerotouch.gdpr import Erasure, ParentLink, Retention, Store, TableMap
from zerotouch.gdpr_models import Subject
from zerotouch.ports import free_port

REAL_URL = os.environ.get("ZEROTOUCH_TEST_MONGODB_URL", "")
NEEDS_SERVER = pytest.mark.skipif(not REAL_URL, reason="set ZEROTOUCH_TEST_MONGODB_URL to run against a real "
                                                       "MongoDB server (none can be installed here)")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
BEFORE = NOW - dt.timedelta(days=30)
OLD = NOW - dt.timedelta(days=90)
NEW = NOW - dt.timedelta(days=2)
KEY = b"test-key-0123456789abcdef0123456"

ALICE_ID, BOB_ID = ObjectId("65a000000000000000000001"), ObjectId("65a000000000000000000002")
ALICE = Subject(email="Alice.Smith@Example.com")  # stored lower-case; one document keeps the original case
PERSONAL = ("alice.smith@example.com", "Alice.Smith@Example.COM", "Alice Smith", str(ALICE_ID))

USERS: list[dict[str, Any]] = [
    {"_id": ALICE_ID, "profile": {"email": "Alice.Smith@Example.COM", "name": "Alice Smith"}, "plan": "pro",
     "createdAt": OLD},
    {"_id": BOB_ID, "profile": {"email": "bob@example.com", "name": "Bob Jones"}, "plan": "free", "createdAt": OLD},
]
SESSIONS: list[dict[str, Any]] = [
    {"_id": ObjectId("65b000000000000000000001"), "userId": ALICE_ID, "ip": "192.0.2.1", "startedAt": NEW},
    {"_id": ObjectId("65b000000000000000000002"), "userId": ALICE_ID, "ip": "192.0.2.2", "startedAt": OLD},
    {"_id": ObjectId("65b000000000000000000003"), "userId": BOB_ID, "ip": "198.51.100.7", "startedAt": NEW},
]
LOGS: list[dict[str, Any]] = [
    {"_id": 1, "userId": ALICE_ID, "actor": {"email": "alice.smith@example.com", "name": "Alice Smith"},
     "action": "login", "createdAt": OLD},
    # written by other code: the reference as a hex string
    {"_id": 2, "userId": str(ALICE_ID), "actor": {"email": "alice.smith@example.com", "name": "Alice Smith"},
     "action": "export", "createdAt": NEW},
    # before the account existed: found by the e-mail address only, in another case
    {"_id": 3, "actor": {"email": "ALICE.SMITH@example.com", "name": "A. Smith"}, "action": "signup",
     "createdAt": OLD},
    {"_id": 4, "userId": BOB_ID, "actor": {"email": "bob@example.com", "name": "Bob Jones"}, "action": "login",
     "createdAt": OLD},
    {"_id": 5, "userId": BOB_ID, "actor": {"email": "bob@example.com", "name": "Bob Jones"}, "action": "logout",
     "createdAt": NEW},
    *({"_id": n, "actor": {"email": "cron@example.com", "name": "Cron"}, "action": "sweep", "createdAt": OLD}
      for n in range(6, 9)),
]
LOG_EXPORT = ["_id", "action", "actor", "createdAt"]


def pseudonymise(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def store(database: str = "shop", retention: Erasure | None = None) -> Store:
    return Store(kind="mongodb", connection="main", database=database, tables={
        "users": TableMap(key="_id", identity={"email": "profile.email", "user_id": "_id"}),
        "sessions": TableMap(key="_id", parent=ParentLink(table="users", column="userId")),
        "activity_logs": TableMap(
            key="_id", identity={"email": "actor.email"}, parent=ParentLink(table="users", column="userId"),
            erase=Erasure(method="fields", fields={"actor.email": "pseudonymise", "actor.name": "null"}),
            export=LOG_EXPORT,
            retention=Retention(column="createdAt", keep=dt.timedelta(days=30), batch=2,
                                erase=retention or Erasure())),
    })


def seed(client: Any, database: str) -> None:
    db = client[database]
    for name, documents in (("users", USERS), ("sessions", SESSIONS), ("activity_logs", LOGS)):
        db[name].insert_many(copy.deepcopy(documents))


def as_json(value: Any) -> Any:
    """What an export holds for a seeded value, written out independently of the code under test."""
    if isinstance(value, dict):
        return {name: as_json(item) for name, item in value.items()}
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def documents(client: Any, database: str, collection: str) -> dict[Any, dict[str, Any]]:
    return {document["_id"]: document for document in client[database][collection].find()}


def seeded(collection: list[dict[str, Any]], *ids: Any) -> dict[Any, dict[str, Any]]:
    return {document["_id"]: document for document in collection if document["_id"] in ids}


def run_cycle(subjects: MongoSubjects, client: Any, database: str) -> None:
    """Resolve, export, erase, rerun, re-query: what a user relies on, with Bob untouched throughout."""
    target = store(database)
    manifest = subjects.resolve(target, ALICE)
    assert manifest == {"users": [str(ALICE_ID)], "sessions": [str(s["_id"]) for s in SESSIONS[:2]],
                        "activity_logs": [1, 2, 3]}
    assert subjects.count(target, ALICE) == 6
    by_id = subjects.resolve(target, Subject(user_id=str(ALICE_ID)))
    assert by_id["activity_logs"] == [1, 2]  # the signup log names no user id

    exported = subjects.export(target, manifest)
    assert exported == {
        "users": [as_json(USERS[0])],
        "sessions": [as_json(s) for s in SESSIONS[:2]],
        "activity_logs": [as_json({k: v for k, v in log.items() if k in LOG_EXPORT}) for log in LOGS[:3]],
    }

    assert subjects.erase(target, manifest, pseudonymise) == {"activity_logs": 3, "sessions": 2, "users": 1}
    assert set(documents(client, database, "users")) == {BOB_ID}
    assert set(documents(client, database, "sessions")) == {SESSIONS[2]["_id"]}
    logs = documents(client, database, "activity_logs")
    for original in LOGS[:3]:
        erased = logs[original["_id"]]
        assert erased["actor"] == {"email": pseudonymise(original["actor"]["email"]), "name": None}
        assert erased["action"] == original["action"]
    assert {n: logs[n] for n in range(4, 9)} == seeded(LOGS, *range(4, 9))
    assert documents(client, database, "users")[BOB_ID] == USERS[1]

    assert subjects.erase(target, manifest, pseudonymise) == {"activity_logs": 0, "sessions": 0, "users": 0}
    assert subjects.count(target, ALICE) == 0
    assert subjects.count(target, Subject(email="bob@example.com")) == 4


def run_retention(subjects: MongoSubjects, client: Any, database: str, erase: Erasure) -> list[int]:
    target = store(database, retention=erase)
    old = [log["_id"] for log in LOGS if log["createdAt"] < BEFORE]
    assert len(old) > 2
    assert subjects.expire(target, "activity_logs", BEFORE, dry_run=True) == 2  # the batch a run would erase
    assert documents(client, database, "activity_logs") == seeded(LOGS, *range(1, 9))  # a dry run changes nothing
    batches = []
    while batch := subjects.expire(target, "activity_logs", BEFORE, dry_run=False, pseudonymise=pseudonymise):
        assert batch <= 2
        batches.append(batch)
        assert len(batches) <= len(old)  # it finishes
    assert subjects.expire(target, "activity_logs", BEFORE, dry_run=True) == 0
    left = documents(client, database, "activity_logs")
    assert {n: left[n] for n in (2, 5)} == seeded(LOGS, 2, 5)  # recent documents stay as they were
    return batches


@pytest.fixture
def client() -> Iterator[mongomock.MongoClient[dict[str, Any]]]:
    mock: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient(tz_aware=True)
    seed(mock, "shop")
    yield mock


@pytest.fixture
def subjects(client: Any) -> MongoSubjects:
    return MongoSubjects(client_for=lambda _ref: client)


def test_resolve_export_erase_rerun_and_requery(subjects: MongoSubjects, client: Any) -> None:
    run_cycle(subjects, client, "shop")


def test_a_subject_matching_nothing_has_an_empty_manifest(subjects: MongoSubjects) -> None:
    manifest = subjects.resolve(store(), Subject(email="nobody@example.com"))
    assert manifest == {"users": [], "sessions": [], "activity_logs": []}
    assert subjects.erase(store(), manifest, pseudonymise) == {"activity_logs": 0, "sessions": 0, "users": 0}


def test_an_address_is_matched_whole_not_as_a_pattern(subjects: MongoSubjects) -> None:
    # "." would match any character and an unanchored pattern would match a longer address
    assert subjects.count(store(), Subject(email="alice-smith@example.com")) == 0
    assert subjects.count(store(), Subject(email="smith@example.com")) == 0


class FailingOn(GdprMongoAdapter):
    """The server goes away when the erasure reaches one collection."""

    def __init__(self, client: Any, collection: str) -> None:
        super().__init__(client)
        self._broken = collection

    def delete_many(self, database: str, collection: str, query: Any) -> int:
        if collection == self._broken:
            raise Unreachable(f"collection {collection}: no MongoDB server answered (AutoReconnect)")
        return super().delete_many(database, collection, query)


def test_a_failure_mid_erasure_keeps_what_was_done_and_a_rerun_finishes_the_rest(client: Any) -> None:
    target = store()
    healthy = MongoSubjects(client_for=lambda _ref: client)
    manifest = healthy.resolve(target, ALICE)
    failing = MongoSubjects(client_for=lambda _ref: client, adapter=lambda c: FailingOn(c, "sessions"))
    with pytest.raises(ApplicationError) as failure:
        failing.erase(target, manifest, pseudonymise)
    assert failure.value.type == errors.DATABASE_UNAVAILABLE and not failure.value.non_retryable
    assert "sessions" in str(failure.value)
    assert not any(value in str(failure.value) for value in PERSONAL)
    logs = documents(client, "shop", "activity_logs")
    assert all(logs[n]["actor"]["name"] is None for n in (1, 2, 3))  # the first collection was erased
    assert len(documents(client, "shop", "sessions")) == 3 and len(documents(client, "shop", "users")) == 2

    assert healthy.erase(target, manifest, pseudonymise) == {"activity_logs": 0, "sessions": 2, "users": 1}
    assert healthy.count(target, ALICE) == 0


def test_retention_deletes_old_documents_in_batches(subjects: MongoSubjects, client: Any) -> None:
    assert run_retention(subjects, client, "shop", Erasure()) == [2, 2, 2]
    assert set(documents(client, "shop", "activity_logs")) == {2, 5}


def test_retention_pseudonymising_fields_finishes(subjects: MongoSubjects, client: Any) -> None:
    erase = Erasure(method="fields", fields={"actor.email": "pseudonymise", "actor.name": "null"})
    assert run_retention(subjects, client, "shop", erase) == [2, 2, 2]
    logs = documents(client, "shop", "activity_logs")
    assert logs[4]["actor"] == {"email": pseudonymise("bob@example.com"), "name": None}


def test_retention_of_a_collection_without_one_is_refused(subjects: MongoSubjects) -> None:
    with pytest.raises(ApplicationError) as refused:
        subjects.expire(store(), "sessions", BEFORE, dry_run=True)
    assert refused.value.type == errors.INVALID_POLICY


def test_a_pseudonymise_that_a_rerun_could_not_recognise_is_refused(subjects: MongoSubjects) -> None:
    manifest = subjects.resolve(store(), ALICE)
    with pytest.raises(ApplicationError) as refused:
        subjects.erase(store(), manifest, lambda value: "x" + value)
    assert refused.value.type == errors.INVALID_PARAMS
    assert not any(value in str(refused.value) for value in PERSONAL)


def test_an_unreachable_server_is_retryable_and_names_no_data() -> None:
    url = f"mongodb://127.0.0.1:{free_port()}/"  # nothing listens there
    subjects = MongoSubjects(client_for=lambda _ref: pymongo.MongoClient(url, serverSelectionTimeoutMS=300))
    with pytest.raises(ApplicationError) as failure:
        subjects.resolve(store(), ALICE)
    assert failure.value.type == errors.DATABASE_UNAVAILABLE and not failure.value.non_retryable
    assert "users" in str(failure.value)
    assert not any(value in str(failure.value) for value in PERSONAL)


def test_an_unknown_reference_or_a_bad_url_is_a_target_error_without_the_url() -> None:
    def unknown(_ref: str) -> Any:
        raise KeyError("main")

    for subjects in (MongoSubjects(client_for=unknown),
                     MongoSubjects.from_urls(lambda _ref: "mongodb://admin:s3cret@/no-host")):
        with pytest.raises(ApplicationError) as failure:
            subjects.count(store(), ALICE)
        assert failure.value.type == errors.INVALID_TARGET
        assert "s3cret" not in str(failure.value)


def test_a_manifest_from_another_map_is_refused(subjects: MongoSubjects) -> None:
    with pytest.raises(ApplicationError, match=r"\['orders'\]"):
        subjects.erase(store(), {"orders": [1]}, pseudonymise)


@pytest.fixture
def real_database() -> Iterator[tuple[Any, str]]:
    database = f"zt_gdpr_{uuid.uuid4().hex[:12]}"
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(REAL_URL, serverSelectionTimeoutMS=10_000,
                                                                      tz_aware=True)
    try:
        seed(client, database)
        yield client, database
    finally:
        client.drop_database(database)
        client.close()


@NEEDS_SERVER
def test_real_server_cycle(real_database: tuple[Any, str]) -> None:
    client, database = real_database
    run_cycle(MongoSubjects.from_urls(lambda _ref: REAL_URL), client, database)


@NEEDS_SERVER
def test_real_server_resume_after_failure(real_database: tuple[Any, str]) -> None:
    client, database = real_database
    target = store(database)
    healthy = MongoSubjects.from_urls(lambda _ref: REAL_URL)
    manifest = healthy.resolve(target, ALICE)
    failing = MongoSubjects(client_for=lambda _ref: connect(REAL_URL), adapter=lambda c: FailingOn(c, "sessions"))
    with pytest.raises(ApplicationError):
        failing.erase(target, manifest, pseudonymise)
    assert len(documents(client, database, "sessions")) == 3
    assert healthy.erase(target, manifest, pseudonymise) == {"activity_logs": 0, "sessions": 2, "users": 1}
    assert healthy.count(target, ALICE) == 0


@NEEDS_SERVER
@pytest.mark.parametrize("erase", [Erasure(), Erasure(method="fields", fields={"actor.email": "pseudonymise",
                                                                                "actor.name": "null"})])
def test_real_server_retention(real_database: tuple[Any, str], erase: Erasure) -> None:
    client, database = real_database
    assert run_retention(MongoSubjects.from_urls(lambda _ref: REAL_URL), client, database, erase) == [2, 2, 2]
