"""`zerotouch gdpr reapply STORE`: after restoring a store's database by hand, erase the erased subjects again.

It runs on this machine, against the store's connection as the data worker resolves it
(``ZEROTOUCH_PG_<REF>_DSN`` / ``ZEROTOUCH_MONGO_<REF>_URL``), with the request vault and its key
(the policy's ``gdpr.storage`` and ``gdpr.key_env``). It prints counts, never a subject.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.common import json_option, print_json, state_dir_option
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from activities.gdpr import SubjectStore
    from zerotouch.gdpr import Store


def _engine(store: Store) -> SubjectStore:
    """The engine the data worker would use for ``store``, wired the worker's way."""
    from workers.clients import mongo_url_for, postgres_dsn_for

    if store.kind == "postgres":
        from activities.gdpr_postgres import PostgresSubjects

        return PostgresSubjects(dsn_for=postgres_dsn_for)
    from activities.gdpr_mongodb import MongoSubjects

    return MongoSubjects.from_urls(mongo_url_for)


@click.command(short_help="erase the suppressed (erased) subjects again in a store, after a restore")
@click.argument("store_name", metavar="STORE")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="policy file with the `gdpr:` section (default $ZEROTOUCH_POLICY or the shipped policy)")
@state_dir_option()
@json_option("the counts")
def reapply(store_name: str, policy_path: str | None, state_dir: str | None, as_json: bool) -> None:
    """Erase again, in STORE, every subject on the suppression list.

    Run it after restoring STORE's database from a backup taken before an erasure: the restore
    brought the erased subjects' rows back. Rerunning it erases nothing more.
    """
    from temporalio.exceptions import ApplicationError

    from activities.gdpr_suppression import erase_suppressed
    from embedded.statedir import StateDir
    from zerotouch.gdpr_models import VaultRef
    from zerotouch.gdpr_vault import RequestVault, VaultError
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    gdpr = load_policy(policy_path or default_policy_path()).gdpr
    store = gdpr.stores.get(store_name)
    if store is None:
        known = ", ".join(sorted(gdpr.stores)) or "none"
        raise UsageError(f"no store {store_name!r} in the policy's gdpr.stores (known: {known})")
    ref = VaultRef(storage=gdpr.storage, key_env=gdpr.key_env)
    try:
        vault = RequestVault.open(ref, StateDir(state_dir).path.resolve())
        subjects = len(vault.suppressed())
        erased = erase_suppressed(vault, _engine(store), store, vault.field_pseudonym)
    except (VaultError, ApplicationError) as error:  # messages name stores, tables and paths, never a subject
        raise CommandError(f"store {store_name}: {error}") from None
    if as_json:
        print_json({"store": store_name, "subjects": subjects, "erased": erased})
        return
    total = sum(erased.values())
    detail = ", ".join(f"{table} {count}" for table, count in erased.items() if count)
    click.echo(f"store {store_name}: {subjects} suppressed subject(s) looked for; {total} row(s) erased again"
               + (f" ({detail})" if detail else ""))
