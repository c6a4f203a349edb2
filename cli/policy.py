"""The policy file: validate one, print its JSON schema."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import click

from cli.common import Section, print_json
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from zerotouch.gdpr import Store


@click.command(short_help="validate a policy file")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--against", "stores", multiple=True, metavar="STORE|all",
              help="also compare the gdpr data map of STORE (repeatable; `all`: every store) with the live "
                   "database, through the worker's connection references (ZEROTOUCH_PG_<REF>_DSN, "
                   "ZEROTOUCH_MONGO_<REF>_URL); fails naming what is missing")
def check(file: str, stores: tuple[str, ...]) -> None:
    """Validate a policy file; print its mode and how many runbooks and approvers it has."""
    from zerotouch.policy import load_policy

    policy = load_policy(file)
    print(f"{file}: ok — mode {policy.mode}, {len(policy.runbooks)} runbooks, "
          f"{len(policy.approvers.names)} approvers")
    if stores:
        _check_against(policy.gdpr.stores, stores)


def _check_against(declared: Mapping[str, Store], wanted: Sequence[str]) -> None:
    """Each store's tables and columns (MongoDB: collections) that the live database lacks; CommandError if any."""
    names = sorted(declared) if "all" in wanted else list(dict.fromkeys(wanted))
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise UsageError(f"--against: store(s) {unknown} not in the policy's gdpr.stores "
                         f"(declared: {', '.join(sorted(declared)) or 'none'})")
    problems: list[str] = []
    for name in names:
        try:
            missing = _missing(declared[name])
        except CommandError as error:
            problems.append(f"{name}: {error}")
            print(f"store {name}: cannot check: {error}")
            continue
        print(f"store {name}: " + (f"missing {', '.join(missing)}" if missing else "every table and column present"))
        if missing:
            problems.append(f"{name} lacks {', '.join(missing)}")
    if problems:
        raise CommandError("the data map does not match the live database: " + "; ".join(problems))


def _missing(store: Store) -> list[str]:
    """What the data map names that the database lacks; errors carry no URL, no password, no row."""
    from temporalio.exceptions import ApplicationError

    from workers.clients import mongo_url_for, postgres_dsn_for

    try:
        if store.kind == "postgres":
            from activities.gdpr_postgres import PostgresSubjects

            return PostgresSubjects(dsn_for=postgres_dsn_for).missing(store)
        return _missing_collections(store, mongo_url_for)
    except ApplicationError as error:
        raise CommandError(error.message) from None
    except KeyError as error:  # a connection reference the environment does not configure
        raise CommandError(str(error.args[0] if error.args else error)) from None


def _missing_collections(store: Store, url_for: Callable[[str], str]) -> list[str]:
    """MongoDB has no schema to compare fields with: only the collections are checked."""
    from pymongo.errors import PyMongoError

    from activities.gdpr_mongo_adapter import InvalidUrl, connect

    try:
        client = connect(url_for(store.connection))
    except InvalidUrl as error:
        raise CommandError(str(error)) from None
    try:
        present = set(client[store.database].list_collection_names())
    except PyMongoError as error:  # its message may quote the URL: the class name only
        raise CommandError(f"MongoDB {store.connection!r} database {store.database}: "
                           f"{type(error).__name__}") from None
    finally:
        client.close()
    return sorted(name for name in store.tables if name not in present)


@click.command(short_help="print the policy's JSON schema")
def schema() -> None:
    """Print the policy's JSON schema (for editors and CI checks)."""
    from zerotouch.policy import policy_schema

    print_json(policy_schema())


@click.group(short_help="check a policy file or print its JSON schema")
def policy() -> None:
    """Check a policy file or print its JSON schema."""


policy.add_command(check)
policy.add_command(schema)

SECTION = Section("Policy", (policy,))
