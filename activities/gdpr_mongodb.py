"""A data subject's documents in one MongoDB database: resolved, exported, erased, counted; and retention.

The same steps as the PostgreSQL side, through `GdprMongoAdapter`. A subject is found per
collection in `Store.finding_order` (parents first): by its identity fields (dotted paths; e-mail
compared case-insensitively, as the subject's address is kept lower-case and documents may not
be), or through a parent's documents. The manifest keeps each document's key, JSON-able (an
ObjectId as its hex string), so erasure and a resumed erasure work from the manifest alone, never
from documents an earlier attempt already deleted.

Erasure runs in `Store.erasure_order` (children first), each collection committed on its own: a
failure leaves the collections before it erased, and a rerun finds nothing left there (deleted
documents are gone; erased fields are filtered out), so it reports zeros and finishes the rest.
A pseudonymised field is recognised as erased by its shape, the contract's 64 hex digits, which
is why `pseudonymise` must return that. Nothing here logs, and errors carry collection names,
counts and error codes only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bson import ObjectId

from activities.gdpr_mongo_adapter import GdprMongoAdapter, InvalidUrl, Refused, Unreachable, connect
from zerotouch import activity_errors as errors
from zerotouch.gdpr import Erasure, IdentityKind, Store
from zerotouch.gdpr_models import PSEUDONYM, Subject

Manifest = dict[str, list[Any]]
Rows = dict[str, list[dict[str, Any]]]
Pseudonymise = Callable[[str], str]

CHUNK = 1000  # keys per query: bounded query documents (16 MB limit) whatever a subject's row count
_PSEUDONYM = re.compile(PSEUDONYM)
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


class MongoSubjects:
    """Data-subject steps for MongoDB stores; blocking pymongo calls for sync activities.

    Args:
        client_for: connection reference -> a new client (``MongoClient``); closed after each step.
        adapter: wraps a client in the calls these steps make; tests wrap it to inject failures.
    """

    def __init__(self, *, client_for: Callable[[str], Any],
                 adapter: Callable[[Any], GdprMongoAdapter] = GdprMongoAdapter) -> None:
        self._client_for = client_for
        self._adapter = adapter

    @classmethod
    def from_urls(cls, url_for: Callable[[str], str]) -> MongoSubjects:
        """The worker's wiring: a reference resolves to a URL (``workers.clients.mongo_url_for``)."""
        return cls(client_for=lambda ref: connect(url_for(ref)))

    def resolve(self, store: Store, subject: Subject) -> Manifest:
        """Every collection's keys of the subject's documents (an empty list where none match)."""
        with self._session(store) as mongo:
            found = _resolve(mongo, store, subject)
        return {name: list(dict.fromkeys(_manifest_key(name, key) for key in keys)) for name, keys in found.items()}

    def export(self, store: Store, manifest: Manifest) -> Rows:
        """The manifest's documents (the map's `export` fields, or whole), JSON-able, in key order."""
        _check_manifest(store, manifest)
        rows: Rows = {}
        with self._session(store) as mongo:
            for name in store.finding_order():
                table = store.tables[name]
                rows[name] = [_plain(document)
                              for chunk in _chunks(_key_forms(manifest.get(name, [])))
                              for document in mongo.find(store.database, name, {table.key: {"$in": chunk}},
                                                         fields=table.export, sort=table.key)]
        return rows

    def erase(self, store: Store, manifest: Manifest, pseudonymise: Pseudonymise) -> dict[str, int]:
        """Delete or erase fields of the manifest's documents, children first; documents changed per collection."""
        _check_manifest(store, manifest)
        erased: dict[str, int] = {}
        with self._session(store) as mongo:
            for name in store.erasure_order():
                table = store.tables[name]
                erased[name] = _erase(mongo, store.database, name, table.key, _key_forms(manifest.get(name, [])),
                                      table.erase, pseudonymise)
        return erased

    def count(self, store: Store, subject: Subject) -> int:
        """The access query's matches: the proof after erasure that nothing is left (zero)."""
        with self._session(store) as mongo:
            return sum(len(keys) for keys in _resolve(mongo, store, subject).values())

    def expire(self, store: Store, collection: str, before: datetime, *, dry_run: bool,
               pseudonymise: Pseudonymise | None = None) -> int:
        """Erase one batch of documents older than ``before`` by the collection's retention; 0 when none are left.

        A dry run changes nothing and counts the batch a run would erase now (as the PostgreSQL side does).
        """
        table = store.tables.get(collection)
        retention = table.retention if table is not None else None
        if table is None or retention is None:
            raise errors.fail(f"collection {collection} has no retention in the data map of database "
                              f"{store.database}", errors.INVALID_POLICY)
        erasure = retention.erase
        if not dry_run and pseudonymise is None and "pseudonymise" in erasure.fields.values():
            raise errors.fail(f"collection {collection}: retention pseudonymises fields but no pseudonymise "
                              "function was given", errors.INVALID_PARAMS)
        query: dict[str, Any] = {retention.column: {"$lt": before}}
        if erasure.method == "fields":  # erased documents stay old: without this a run would never finish
            query = {"$and": [query, _not_erased(erasure)]}
        with self._session(store) as mongo:
            batch = mongo.find(store.database, collection, query, fields=[table.key], sort=table.key,
                               limit=retention.batch)
            keys = [key for key in (_get(document, table.key) for document in batch) if key is not None]
            if dry_run:
                return len(keys)
            return _erase(mongo, store.database, collection, table.key, keys, erasure, pseudonymise)

    @contextmanager
    def _session(self, store: Store) -> Iterator[GdprMongoAdapter]:
        where = f"MongoDB {store.connection!r} database {store.database}"
        try:
            client = self._client_for(store.connection)
        except KeyError:
            raise errors.fail(f"{where}: the connection reference is not configured on the worker",
                              errors.INVALID_TARGET) from None
        except InvalidUrl as error:  # its own message: pymongo's may quote the URL, credentials included
            raise errors.fail(f"{where}: {error}", errors.INVALID_TARGET) from None
        mongo = self._adapter(client)
        try:
            yield mongo
        except Unreachable as error:
            raise errors.fail(f"{where}: {error}", errors.DATABASE_UNAVAILABLE) from None
        except Refused as error:
            raise errors.fail(f"{where}: {error}", errors.INVALID_TARGET) from None
        finally:
            mongo.close()


def _resolve(mongo: GdprMongoAdapter, store: Store, subject: Subject) -> dict[str, list[Any]]:
    """Keys as stored (ObjectIds stay ObjectIds, so children match their parents' references exactly)."""
    found: dict[str, list[Any]] = {}
    for name in store.finding_order():
        table = store.tables[name]
        clauses = _identity_clauses(table.identity, subject)
        if table.parent is not None:
            values = _parent_values(mongo, store, table.parent.table, table.parent.parent_key, found)
            if values:
                clauses.append({table.parent.column: {"$in": values}})
        found[name] = []
        if clauses:
            query = clauses[0] if len(clauses) == 1 else {"$or": clauses}
            documents = mongo.find(store.database, name, query, fields=[table.key], sort=table.key)
            found[name] = [key for key in (_get(document, table.key) for document in documents) if key is not None]
    return found


def _identity_clauses(identity: Mapping[IdentityKind, str], subject: Subject) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = []
    for kind, path in sorted(identity.items()):
        if kind == "email" and subject.email:
            # Anchored and escaped: the address is matched whole, its dots and pluses literally.
            clauses.append({path: {"$regex": f"^{re.escape(subject.email)}$", "$options": "i"}})
        elif kind == "user_id" and subject.user_id:
            clauses.append({path: {"$in": _forms(subject.user_id, numeric=True)}})
    return clauses


def _parent_values(mongo: GdprMongoAdapter, store: Store, parent: str, parent_key: str,
                   found: Mapping[str, list[Any]]) -> list[Any]:
    """What the parent's documents hold in the referenced field (its key unless the map names another)."""
    keys = found.get(parent, [])
    key = store.tables[parent].key
    if not keys:
        return []
    if parent_key and parent_key != key:
        keys = [value
                for chunk in _chunks(keys)
                for document in mongo.find(store.database, parent, {key: {"$in": chunk}}, fields=[parent_key])
                if (value := _get(document, parent_key)) is not None]
    # A reference may hold an ObjectId or its hex string: documents written by different code differ.
    return [form for value in dict.fromkeys(keys) for form in _forms(value)]


def _erase(mongo: GdprMongoAdapter, database: str, collection: str, key: str, keys: Sequence[Any],
           erasure: Erasure, pseudonymise: Pseudonymise | None) -> int:
    if erasure.method == "delete":
        return sum(mongo.delete_many(database, collection, {key: {"$in": chunk}}) for chunk in _chunks(keys))
    changed = 0
    for chunk in _chunks(keys):
        query = {"$and": [{key: {"$in": chunk}}, _not_erased(erasure)]}
        # Documents with the same new values share one update_many: one round trip when fields are only nulled.
        groups: dict[tuple[tuple[str, str | None], ...], list[Any]] = {}
        for document in mongo.find(database, collection, query, fields=[key, *erasure.fields]):
            values = _erased_values(collection, document, erasure, pseudonymise)
            if values:
                groups.setdefault(tuple(sorted(values.items())), []).append(_get(document, key))
        for values_key, same in groups.items():
            changed += mongo.update_many(database, collection, {key: {"$in": same}}, dict(values_key))
    return changed


def _not_erased(erasure: Erasure) -> dict[str, Any]:
    """Documents with a field still to erase: a nulled field is null, a pseudonymised one a pseudonym."""
    return {"$or": [{field: {"$ne": None}} if method == "null"
                    else {field: {"$ne": None, "$not": _PSEUDONYM}}
                    for field, method in sorted(erasure.fields.items())]}


def _erased_values(collection: str, document: Mapping[str, Any], erasure: Erasure,
                   pseudonymise: Pseudonymise | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for field, method in sorted(erasure.fields.items()):
        current = _get(document, field)
        if current is None or (method == "pseudonymise" and _is_pseudonym(current)):
            continue
        if method == "null":
            values[field] = None
            continue
        if pseudonymise is None:
            raise errors.fail(f"collection {collection}: field {field} is pseudonymised but no pseudonymise "
                              "function was given", errors.INVALID_PARAMS)
        replaced = pseudonymise(str(current))
        if not _is_pseudonym(replaced):  # else a rerun could not tell it from data and would hash it again
            raise errors.fail("pseudonymise must return 64 lower-case hex digits (a keyed SHA-256)",
                              errors.INVALID_PARAMS)
        values[field] = replaced
    return values


def _is_pseudonym(value: Any) -> bool:
    return isinstance(value, str) and _PSEUDONYM.match(value) is not None


def _get(document: Any, path: str) -> Any:
    """The value at a dotted path; None where the path is missing or crosses a non-document."""
    value = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _forms(value: Any, *, numeric: bool = False) -> list[Any]:
    """Every BSON value a JSON key or a user id may stand for: an ObjectId and its hex string, a number."""
    if isinstance(value, ObjectId):
        return [value, str(value)]
    if not isinstance(value, str):
        return [value]
    forms: list[Any] = [value]
    if _OBJECT_ID.match(value):
        forms.append(ObjectId(value))
    if numeric and value.isascii() and value.isdigit() and str(int(value)) == value:
        forms.append(int(value))
    return forms


def _key_forms(keys: Sequence[Any]) -> list[Any]:
    return [form for key in keys for form in _forms(key)]


def _manifest_key(collection: str, key: Any) -> Any:
    if isinstance(key, ObjectId):
        return str(key)
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise errors.fail(f"collection {collection}: a key of type {type(key).__name__} cannot be kept in a "
                          "manifest; key the map on a field holding ObjectIds, strings or integers",
                          errors.INVALID_TARGET)
    return key


def _check_manifest(store: Store, manifest: Manifest) -> None:
    unknown = sorted(set(manifest) - set(store.tables))
    if unknown:
        raise errors.fail(f"the manifest names collections not in the data map of database {store.database}: "
                          f"{unknown}", errors.INVALID_PARAMS)


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start:start + CHUNK])


def _plain(value: Any) -> Any:
    """A document as JSON values: ObjectIds, decimals and UUIDs as strings, datetimes in ISO 8601, bytes base64."""
    if isinstance(value, Mapping):
        return {str(name): _plain(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
