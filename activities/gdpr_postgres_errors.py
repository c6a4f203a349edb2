"""PostgreSQL errors of the GDPR engines as activity errors: store, table and condition, never a value.

A PostgreSQL error's detail can quote whole rows (e-mail addresses included), so only the primary
message of a missing identifier, the SQLSTATE and the constraint or column name are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors

from zerotouch import activity_errors as errors
from zerotouch.gdpr import Store


@contextlib.contextmanager
def failures(store: Store, table: str = "") -> Iterator[None]:
    """psycopg errors → activity errors naming the store, table and condition, never a value."""
    where = f"PostgreSQL {store.connection!r} database {store.database}{' table ' + table if table else ''}"
    try:
        yield
    except (pg_errors.UndefinedTable, pg_errors.UndefinedColumn, pg_errors.InvalidSchemaName) as error:
        # these primary messages name only the missing identifier
        raise errors.fail(f"{where}: {error.diag.message_primary}; fix the data map (`zerotouch policy check "
                          "--against` lists what is missing)", errors.INVALID_POLICY) from None
    except pg_errors.InsufficientPrivilege:
        raise errors.fail(f"{where}: permission denied to the connection's role", errors.FORBIDDEN) from None
    except psycopg.IntegrityError as error:
        what = error.diag.constraint_name or error.diag.column_name or ""
        raise errors.fail(f"{where}: erasure violates {_condition(error)} {what}: a referencing table missing from "
                          "the data map, or a NOT NULL column erased with `null`", errors.INVALID_POLICY) from None
    except psycopg.OperationalError as error:  # lost connections, lock timeouts, deadlocks: the next try may pass
        raise errors.fail(f"{where}: {_condition(error)}", errors.DATABASE_UNAVAILABLE) from None
    except psycopg.Error as error:
        raise errors.fail(f"{where}: {_condition(error)}", errors.INVALID_POLICY) from None


def _condition(error: psycopg.Error) -> str:
    return f"{type(error).__name__} (SQLSTATE {error.sqlstate or 'unknown'})"
