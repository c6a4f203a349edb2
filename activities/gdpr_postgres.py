"""PostgreSQL's side of data-subject requests and retention: find a subject's rows, export, erase, expire.

Everything is driven by the policy's data map (`zerotouch.gdpr.Store`): identifiers are composed
with `psycopg.sql.Identifier`, values always travel as parameters. The subject manifest holds only
row keys, so an erasure resumed after a partial run works from the manifest and never needs an
upstream row it already deleted. Errors name the store, the table and the SQLSTATE but never a
value: PostgreSQL's own messages may quote row contents (``DETAIL: Failing row contains ...``).

``pseudonymise`` replaces a value by the keyed hash the caller supplies (lower-case hex); it is for
text columns only, since a hash does not fit an integer or a date, and a non-text column fails with
INVALID_POLICY. A value is "already erased" when it is NULL or already has the hash's shape, so a
rerun changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row

from activities.gdpr_postgres_errors import failures
from zerotouch import activity_errors as errors
from zerotouch.gdpr import Erasure, ParentLink, Store, TableMap
from zerotouch.gdpr_models import Subject

Manifest = dict[str, list[Any]]
Rows = dict[str, list[dict[str, Any]]]
Pseudonymise = Callable[[str], str]

CONNECT_TIMEOUT_SECONDS = 10
# An erasure waits this long for a row lock, then fails retryably instead of hanging the activity.
LOCK_TIMEOUT = "30s"
DEFAULT_PSEUDONYM_WIDTH = 64  # HMAC-SHA256 in hex: the shape assumed when no pseudonymise is at hand (dry runs)

_COLUMN_TYPES = """
SELECT a.attname, t.typcategory, a.atttypmod, t.typname FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""


class PostgresSubjects:
    """Blocking psycopg calls (sync activities): one connection per call, to ``store.database``."""

    def __init__(self, *, dsn_for: Callable[[str], str]) -> None:
        self._dsn_for = dsn_for

    def resolve(self, store: Store, subject: Subject) -> Manifest:
        """Every table's row keys for ``subject``, parents first, in one snapshot; keys sorted."""
        manifest: Manifest = {}
        with self._session(store, read_only=True) as connection, connection.transaction():
            for name in store.finding_order():
                table = store.tables[name]
                with failures(store, name):
                    keys = _identity_keys(connection, name, table, subject)
                    if table.parent is not None:
                        parent = store.tables[table.parent.table]
                        keys |= _child_keys(connection, name, table.key, table.parent, parent,
                                            manifest[table.parent.table])
                manifest[name] = sorted(keys, key=lambda key: (isinstance(key, str), key))
        return manifest

    def export(self, store: Store, manifest: Manifest) -> Rows:
        """The manifest's rows (the map's ``export`` columns, or all), as JSON values, ordered by key."""
        _check_manifest(store, manifest)
        rows: Rows = {}
        with self._session(store, read_only=True) as connection, connection.transaction():
            for name in store.finding_order():
                table, keys = store.tables[name], manifest.get(name, [])
                columns = sql.SQL(", ").join(map(sql.Identifier, table.export)) if table.export else sql.SQL("*")
                query = sql.SQL("SELECT {} FROM {} WHERE {key} = ANY(%s) ORDER BY {key}").format(
                    columns, _table(name), key=sql.Identifier(table.key))
                with failures(store, name), connection.cursor(row_factory=dict_row) as cursor:
                    found = cursor.execute(query, [keys]).fetchall() if keys else []
                rows[name] = [{column: _jsonable(value) for column, value in row.items()} for row in found]
        return rows

    def erase(self, store: Store, manifest: Manifest, pseudonymise: Pseudonymise) -> dict[str, int]:
        """Erase the manifest's rows children first, one transaction per table; rows changed now per table."""
        _check_manifest(store, manifest)
        changed: dict[str, int] = {}
        with self._session(store, read_only=False) as connection:
            for name in store.erasure_order():
                table, keys = store.tables[name], manifest.get(name, [])
                changed[name] = 0
                if not keys:
                    continue
                where = sql.SQL("{} = ANY(%s)").format(sql.Identifier(table.key))
                with failures(store, name), connection.transaction():
                    if table.erase.method == "delete":
                        deleted = connection.execute(sql.SQL("DELETE FROM {} WHERE {}").format(_table(name), where),
                                                     [keys])
                        changed[name] = deleted.rowcount
                    else:
                        changed[name] = _erase_fields(connection, name, table.key, table.erase, where, [keys],
                                                      sql.SQL("FOR UPDATE"), pseudonymise)
        return changed

    def count(self, store: Store, subject: Subject) -> int:
        """The access query again: how many rows still match ``subject`` (zero after an erasure)."""
        return sum(len(keys) for keys in self.resolve(store, subject).values())

    def expire(self, store: Store, table: str, before: datetime, *, dry_run: bool,
               pseudonymise: Pseudonymise | None = None) -> int:
        """One batch of rows older than ``before`` erased by the table's retention; rows affected (0: done)."""
        mapped = store.tables.get(table)
        if mapped is None or mapped.retention is None:
            raise errors.fail(f"store {store.connection!r}/{store.database}: table {table} has no retention in the "
                              "data map", errors.INVALID_POLICY)
        retention, key = mapped.retention, sql.Identifier(mapped.key)
        older = sql.SQL("{} < %s").format(sql.Identifier(retention.column))
        limit = sql.SQL("LIMIT {}").format(sql.Literal(retention.batch))
        with self._session(store, read_only=dry_run) as connection, failures(store, table), connection.transaction():
            if retention.erase.method == "delete":
                batch = sql.SQL("SELECT {key} FROM {t} WHERE {older} ORDER BY {key} {limit}").format(
                    key=key, t=_table(table), older=older, limit=limit)
                if dry_run:
                    return _count(connection, batch, [before])
                # SKIP LOCKED: a row a transaction holds is left for the next run instead of blocking this one
                statement = sql.SQL("DELETE FROM {t} WHERE {key} IN ({batch} FOR UPDATE SKIP LOCKED)").format(
                    t=_table(table), key=key, batch=batch)
                return connection.execute(statement, [before]).rowcount
            width = _pseudonym_width(pseudonymise) if pseudonymise is not None else DEFAULT_PSEUDONYM_WIDTH
            if dry_run:
                return _count(connection, _fields_query(table, mapped.key, retention.erase, older, limit, width),
                              [before])
            return _erase_fields(connection, table, mapped.key, retention.erase, older, [before],
                                 limit + sql.SQL(" FOR UPDATE SKIP LOCKED"), pseudonymise)

    def missing(self, store: Store) -> list[str]:
        """Tables (``table``) and columns (``table.column``) the data map names but the database lacks."""
        wanted: dict[str, set[str]] = {name: _columns_named(table) for name, table in store.tables.items()}
        for table in store.tables.values():
            if table.parent is not None and table.parent.parent_key:
                wanted[table.parent.table].add(table.parent.parent_key)
        absent: list[str] = []
        with self._session(store, read_only=True) as connection:
            for name in sorted(wanted):
                with failures(store, name):
                    columns = _columns(connection, name)
                if columns is None:
                    absent.append(name)
                else:
                    absent.extend(f"{name}.{column}" for column in sorted(wanted[name] - set(columns)))
        return absent

    @contextlib.contextmanager
    def _session(self, store: Store, *, read_only: bool) -> Iterator[psycopg.Connection[Any]]:
        where = f"PostgreSQL {store.connection!r} database {store.database}"
        if store.kind != "postgres":
            raise errors.fail(f"store {store.connection!r} is a {store.kind} store, not PostgreSQL",
                              errors.INVALID_POLICY)
        try:
            dsn = self._dsn_for(store.connection)
        except KeyError as error:
            raise errors.fail(str(error.args[0] if error.args else error), errors.INVALID_TARGET) from None
        try:
            connection = psycopg.connect(dsn, dbname=store.database, autocommit=True, application_name="zerotouch-gdpr",
                                         connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.OperationalError as error:
            if error.sqlstate == pg_errors.InvalidCatalogName.sqlstate:
                raise errors.fail(f"{where} does not exist: fix the data map", errors.INVALID_POLICY) from None
            # the first line names host and port, never a password or a row
            first = (str(error).splitlines() or ["failed"])[0]
            raise errors.fail(f"cannot connect to {where}: {first}", errors.DATABASE_UNAVAILABLE) from None
        with connection, failures(store):  # also the session's own statements and the final commit
            connection.read_only = read_only
            if read_only:  # one snapshot, so a child's rows are found from the same parent rows the manifest holds
                connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            else:
                connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            yield connection


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def _key_value(value: Any) -> Any:
    """A row key as a JSON value: integers stay integers, anything else (uuid, text) its text form."""
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _identity_keys(connection: psycopg.Connection[Any], name: str, table: TableMap, subject: Subject) -> set[Any]:
    values = {"email": subject.email, "user_id": subject.user_id}
    keys: set[Any] = set()
    for kind, column in sorted(table.identity.items()):
        value = values[kind]
        if value is None:
            continue
        test = sql.SQL("lower({}) = %s" if kind == "email" else "{} = %s").format(sql.Identifier(column))
        query = sql.SQL("SELECT {} FROM {} WHERE ").format(sql.Identifier(table.key), _table(name)) + test
        try:
            with connection.transaction():  # a savepoint: the outer snapshot survives a refused value
                keys.update(_key_value(row[0]) for row in connection.execute(query, [value]))
        except pg_errors.DataError:
            continue  # the value cannot be of the column's type (a text id, an integer column): no row holds it
    return keys


def _child_keys(connection: psycopg.Connection[Any], name: str, key_column: str, link: ParentLink,
                parent: TableMap, parent_keys: list[Any]) -> set[Any]:
    if not parent_keys:
        return set()
    key = sql.Identifier(key_column)
    if link.parent_key in ("", parent.key):
        query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(key, _table(name), sql.Identifier(link.column))
    else:
        query = sql.SQL("SELECT {} FROM {} WHERE {} IN (SELECT {} FROM {} WHERE {} = ANY(%s))").format(
            key, _table(name), sql.Identifier(link.column), sql.Identifier(link.parent_key), _table(link.table),
            sql.Identifier(parent.key))
    return {_key_value(row[0]) for row in connection.execute(query, [parent_keys])}


def _check_manifest(store: Store, manifest: Manifest) -> None:
    unknown = sorted(set(manifest) - set(store.tables))
    if unknown:
        raise errors.fail(f"the manifest names table(s) {', '.join(unknown)} that the store's data map does not: "
                          "the request must run with the policy pinned at intake", errors.INVALID_POLICY)


def _pseudonym_width(pseudonymise: Pseudonymise) -> int:
    """The length of a pseudonym, so a value that already has its shape is not hashed again."""
    sample = pseudonymise("zerotouch-shape-probe")
    if not re.fullmatch(r"[0-9a-f]{16,128}", sample):
        raise ValueError("pseudonymise must return a lower-case hex keyed hash")
    return len(sample)


def _fields_query(name: str, key: str, erasure: Erasure, where: sql.Composable, tail: sql.Composable,
                  width: int) -> sql.Composed:
    """The selected rows that still hold an un-erased value in one of the erasure's fields."""
    shape = sql.Literal(f"^[0-9a-f]{{{width}}}$")
    pending = [sql.SQL("{0} IS NOT NULL" if method == "null" else "({0} IS NOT NULL AND {0}::text !~ {1})").format(
        sql.Identifier(field), shape) for field, method in sorted(erasure.fields.items())]
    return sql.SQL("SELECT {key}, {fields} FROM {t} WHERE ({where}) AND ({pending}) ORDER BY {key} {tail}").format(
        key=sql.Identifier(key), fields=sql.SQL(", ").join(sql.Identifier(f) for f in sorted(erasure.fields)),
        t=_table(name), where=where, pending=sql.SQL(" OR ").join(pending), tail=tail)


def _erase_fields(connection: psycopg.Connection[Any], name: str, key: str, erasure: Erasure, where: sql.Composable,
                  params: list[Any], tail: sql.Composable, pseudonymise: Pseudonymise | None) -> int:
    """Null or pseudonymise the fields of the selected rows not yet erased (``tail`` locks them); rows changed."""
    fields = sorted(erasure.fields)
    hashed = [field for field in fields if erasure.fields[field] == "pseudonymise"]
    width = DEFAULT_PSEUDONYM_WIDTH
    if hashed:
        if pseudonymise is None:
            raise errors.fail(f"table {name}: fields are pseudonymised but no pseudonym key was given",
                              errors.INVALID_POLICY)
        width = _pseudonym_width(pseudonymise)
        _require_text(connection, name, hashed, width)
    shape = re.compile(f"[0-9a-f]{{{width}}}")

    def erased(method: str, old: Any) -> Any:
        if method == "null" or old is None:
            return None
        text = str(old)
        return text if shape.fullmatch(text) or pseudonymise is None else pseudonymise(text)

    rows = connection.execute(_fields_query(name, key, erasure, where, tail, width), params).fetchall()
    updates = [[*(erased(erasure.fields[f], old) for f, old in zip(fields, row[1:], strict=True)), row[0]]
               for row in rows]
    statement = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
        _table(name), sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(f)) for f in fields),
        sql.Identifier(key))
    if updates:
        with connection.cursor() as cursor:
            cursor.executemany(statement, updates)
    return len(updates)


def _require_text(connection: psycopg.Connection[Any], name: str, columns: Iterable[str], width: int) -> None:
    """A pseudonym is hex text: the column must be a string type wide enough to hold it."""
    types = {row[0]: row[1:] for row in connection.execute(_COLUMN_TYPES, [_table(name).as_string(connection)])}
    for column in columns:
        if column not in types:
            raise errors.fail(f"table {name}: column {column} does not exist", errors.INVALID_POLICY)
        category, typmod, typname = types[column]
        if category != "S":
            raise errors.fail(f"table {name}: column {column} is {typname}, not text; `pseudonymise` is for text "
                              "columns (use `null`, or delete the row)", errors.INVALID_POLICY)
        if typname in ("varchar", "bpchar") and 0 <= typmod - 4 < width:
            raise errors.fail(f"table {name}: column {column} holds {typmod - 4} characters, a pseudonym needs "
                              f"{width}", errors.INVALID_POLICY)


def _count(connection: psycopg.Connection[Any], query: sql.Composable, params: list[Any]) -> int:
    row = connection.execute(sql.SQL("SELECT count(*) FROM ({}) AS batch").format(query), params).fetchone()
    return int(row[0]) if row else 0


def _columns_named(table: TableMap) -> set[str]:
    named = {table.key, *table.identity.values(), *table.erase.fields, *(table.export or [])}
    if table.parent is not None:
        named.add(table.parent.column)
    if table.retention is not None:
        named |= {table.retention.column, *table.retention.erase.fields}
    return named


def _columns(connection: psycopg.Connection[Any], name: str) -> list[str] | None:
    """The table's column names, or None if it does not exist."""
    found = connection.execute("SELECT to_regclass(%s)::oid", [_table(name).as_string(connection)]).fetchone()
    if found is None or found[0] is None:
        return None
    return [row[0] for row in connection.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped", [found[0]])]


def _jsonable(value: Any) -> Any:
    """A column value as JSON: dates ISO 8601, bytes base64, numbers and uuids in their text form if not native."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)  # Decimal (exact), UUID, inet, intervals
