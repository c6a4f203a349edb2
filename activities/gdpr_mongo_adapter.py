"""The only module that speaks pymongo for data-subject requests and retention: three calls, no more.

Each call is one mongomock implements faithfully (find with a projection, sort and limit;
update_many with ``$set``; delete_many), so the tests run the same code a real
server gets; ``bulk_write`` with ``UpdateOne`` is avoided because it breaks in mongomock on
current pymongo. pymongo's errors become `Unreachable` or `Refused`, which name the collection and
the server's error code only: a server message may quote a document (a duplicate key does), and
documents here are personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pymongo
from bson.codec_options import CodecOptions
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

TIMEOUT_MS = 10_000  # server selection and connect: an unreachable server fails the step, it does not hang it

# Timezone-aware datetimes, so retention cut-offs compare and exports print with their offset.
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)

Query = Mapping[str, Any]
_T = TypeVar("_T")


class Unreachable(Exception):
    """No server answered (or it stepped down mid-call): the next attempt may succeed."""


class Refused(Exception):
    """The server refused the call; the message is the collection and the error code only."""


class InvalidUrl(Exception):
    """The connection URL does not parse; pymongo's own message may quote it, credentials included."""


def connect(url: str) -> Any:
    """A client for the worker's wiring; lazy, so an unreachable server surfaces at the first call."""
    try:
        return pymongo.MongoClient(url, serverSelectionTimeoutMS=TIMEOUT_MS, connectTimeoutMS=TIMEOUT_MS,
                                   tz_aware=True)
    except (ConfigurationError, ValueError):
        raise InvalidUrl("the MongoDB connection URL does not parse") from None


class GdprMongoAdapter:
    """A pymongo ``MongoClient`` (or ``mongomock.MongoClient``) seen through the calls erasure needs."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _collection(self, database: str, collection: str) -> Any:
        return self._client[database].get_collection(collection, codec_options=_CODEC)

    def find(self, database: str, collection: str, query: Query, *, fields: Sequence[str] | None = None,
             sort: str | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Matching documents with only ``fields`` (all when None; ``_id`` only when named)."""
        projection = None if fields is None else {"_id": 0, **{name: 1 for name in fields}}
        order = [(sort, pymongo.ASCENDING)] if sort else None

        def run() -> list[dict[str, Any]]:
            cursor = self._collection(database, collection).find(query, projection, sort=order, limit=limit)
            return [dict(document) for document in cursor]

        return _guarded(collection, run)

    def update_many(self, database: str, collection: str, query: Query, values: Mapping[str, Any]) -> int:
        """``$set`` the values on every matching document; the number actually changed."""
        result = _guarded(collection, lambda: self._collection(database, collection).update_many(
            query, {"$set": dict(values)}))
        return int(result.modified_count)

    def delete_many(self, database: str, collection: str, query: Query) -> int:
        result = _guarded(collection, lambda: self._collection(database, collection).delete_many(query))
        return int(result.deleted_count)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def _guarded(collection: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except ConnectionFailure as error:  # also timeouts and NotPrimaryError: retryable
        raise Unreachable(f"collection {collection}: no MongoDB server answered ({type(error).__name__})") from None
    except OperationFailure as error:
        name = (error.details or {}).get("codeName", "")
        raise Refused(f"collection {collection}: the server refused the call (code {error.code} {name})") from None
    except PyMongoError as error:
        raise Refused(f"collection {collection}: {type(error).__name__}") from None
