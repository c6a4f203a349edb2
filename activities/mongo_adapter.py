"""The only module that speaks pymongo: what the MongoDB backup engine needs from a server, and no more.

Keeping the surface this narrow is what lets the engine be tested with mongomock (no MongoDB
server can be installed where the tests run) while the same calls run against a real server:
every call here is one mongomock implements faithfully. Writes are `insert_many(ordered=True)`
only; `bulk_write` with `UpdateOne` breaks in mongomock on current pymongo.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pymongo
from bson.codec_options import CodecOptions, DatetimeConversion
from pymongo.errors import OperationFailure

BATCH = 1000  # documents per round trip, read and write: bounded memory, few round trips

# Index options a restore re-creates; the rest (`v`, `ns`) are the server's bookkeeping.
_INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression", "collation",
                  "hidden", "weights", "default_language", "language_override", "2dsphereIndexVersion")


# Timezone-aware datetimes; dates outside Python's range read as DatetimeMS instead of failing the backup.
_WIDE: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
# mongomock refuses `datetime_conversion`; its documents cannot hold such dates, so this is exact there.
_PLAIN: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


class Rejected(Exception):
    """The server refused the data itself (a duplicate `_id`, a document too large): retrying cannot help."""


class MongoAdapter:
    """A pymongo ``MongoClient`` (or ``mongomock.MongoClient``) seen through the calls backups make."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _collection(self, database: str, collection: str) -> Any:
        try:
            return self._client[database].get_collection(collection, codec_options=_WIDE)
        except NotImplementedError:
            return self._client[database].get_collection(collection, codec_options=_PLAIN)

    def server_version(self) -> str:
        return str(self._client.server_info().get("version", "unknown"))

    def database_names(self) -> list[str]:
        return sorted(self._client.list_database_names())

    def collection_names(self, database: str) -> list[str]:
        """Ordinary collections, sorted; views (re-derived from their source) and system.* excluded."""
        db = self._client[database]
        try:
            names = db.list_collection_names(filter={"type": "collection"})
        except NotImplementedError:  # mongomock: it has no views to exclude
            names = db.list_collection_names()
        return sorted(name for name in names if not name.startswith("system."))

    def documents(self, database: str, collection: str, batch: int = BATCH) -> Iterator[list[Mapping[str, Any]]]:
        """Every document in `_id` order, in batches; the order makes two reads of the same data comparable."""
        cursor = self._collection(database, collection).find({}, sort=[("_id", pymongo.ASCENDING)], batch_size=batch)
        chunk: list[Mapping[str, Any]] = []
        for document in cursor:
            chunk.append(document)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def count(self, database: str, collection: str) -> int:
        return int(self._collection(database, collection).count_documents({}))

    def create_collection(self, database: str, collection: str) -> None:
        """So an empty collection is restored as one, not as nothing."""
        if collection not in self._client[database].list_collection_names():
            self._client[database].create_collection(collection)

    def insert(self, database: str, collection: str, documents: Sequence[Mapping[str, Any]]) -> None:
        """Insert in order, so a rejected document leaves exactly its predecessors behind (evidence)."""
        if not documents:
            return
        try:
            self._collection(database, collection).insert_many(documents, ordered=True)
        except OperationFailure as error:  # connection failures are not OperationFailure: they propagate
            raise Rejected(_reason(error)) from None

    def indexes(self, database: str, collection: str) -> list[dict[str, Any]]:
        """Secondary index definitions (`_id_` is implicit): name, key as [field, direction] pairs, options."""
        found = []
        for name, info in sorted(self._collection(database, collection).index_information().items()):
            if name == "_id_":
                continue
            index = {"name": name, "key": [[field, direction] for field, direction in info["key"]]}
            index.update({option: info[option] for option in _INDEX_OPTIONS if option in info})
            found.append(index)
        return found

    def create_index(self, database: str, collection: str, index: Mapping[str, Any]) -> None:
        options = {option: index[option] for option in _INDEX_OPTIONS if option in index}
        keys = [(str(field), direction) for field, direction in index["key"]]
        if ("_fts", "text") in keys:
            # A text index lists itself as _fts/_ftsx; it is created from the fields its weights name.
            text = [(str(field), "text") for field in index.get("weights") or {}]
            keys = [key for key in keys if key[0] not in ("_fts", "_ftsx")]
            keys[:0] = text
        self._collection(database, collection).create_index(keys, name=index["name"], **options)

    def drop_database(self, database: str) -> None:
        self._client.drop_database(database)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def _reason(error: OperationFailure) -> str:
    """The server's reason without the rejected document: evidence is kept and shown, documents may hold PII."""
    details = error.details or {}
    first = (details.get("writeErrors") or [{}])[0]
    if first:
        return f"the server rejected a document (code {first.get('code')}): {str(first.get('errmsg', ''))[:300]}"
    return f"the server rejected the write (code {error.code}): {str(details.get('errmsg', ''))[:300]}"


def pymongo_version() -> str:
    return str(pymongo.version)
