"""Schedules: apply and diff the policy's declarations; list, show, pause, unpause, trigger, backfill."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from cli.common import Connection, Section, connection_options, json_option, parse_time, print_json
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from zerotouch.schedules import ScheduleDeclaration

R = TypeVar("R")
_OVERLAPS = ("SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER", "ALLOW_ALL")

_policy_option = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                              help="policy file with the `schedules:` section (default $ZEROTOUCH_POLICY or the "
                                   "shipped policy)")
_cluster_option = click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)")


def _run(connection: Connection, work: Callable[[Client], Awaitable[R]]) -> R:
    from starters.schedules import ScheduleNotManaged

    async def run() -> R:
        client = await connection.client()
        try:
            return await work(client)
        except ScheduleNotManaged as error:
            raise CommandError(str(error)) from None

    return asyncio.run(run())


def _declarations(policy_path: str | None) -> list[ScheduleDeclaration]:
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    policy = load_policy(policy_path or default_policy_path())
    for declaration in policy.schedules:
        for warning in declaration.warnings:
            click.echo(f"warning: schedule {declaration.name}: {warning}", err=True)
    return policy.schedules


@click.command(short_help="create, update and delete schedules so the server matches the policy")
@_policy_option
@_cluster_option
@json_option("the changes")
@connection_options
def apply(policy_path: str | None, cluster: str, as_json: bool, connection: Connection) -> None:
    """Create, update and delete Temporal Schedules until the server matches the policy's `schedules:`.

    Only schedules zerotouch manages are touched. Running it again changes nothing. A schedule
    paused by hand (or by pause-on-failure) stays paused: `zerotouch schedules unpause` resumes it.
    """
    from starters import schedules

    declarations = _declarations(policy_path)
    changes = _run(connection, lambda client: schedules.apply(client, declarations, cluster))
    if as_json:
        print_json([change.as_json() for change in changes])
    else:
        print(schedules.render_changes(changes))


@click.command(short_help="show what `apply` would change, field by field")
@_policy_option
@_cluster_option
@json_option("the changes")
@connection_options
def diff(policy_path: str | None, cluster: str, as_json: bool, connection: Connection) -> None:
    """Show what `apply` would create, update (with each differing field: server → declared) and delete.

    Changes made in the Web UI or with `temporal schedule` show here. Exit status 0 either way.
    """
    from starters import schedules

    declarations = _declarations(policy_path)
    changes = _run(connection, lambda client: schedules.plan(client, declarations, cluster))
    if as_json:
        print_json([change.as_json() for change in changes])
    else:
        print(schedules.render_changes(changes))


@click.command("list", short_help="list the managed schedules with next and last run")
@_cluster_option
@json_option("the rows")
@connection_options
def list_(cluster: str, as_json: bool, connection: Connection) -> None:
    """List the schedules zerotouch manages: state, spec, next and last run, runs skipped and missed."""
    from starters import schedules

    found = _run(connection, lambda client: schedules.rows(client, cluster))
    if as_json:
        print_json([row.as_json() for row in found])
    else:
        print(schedules.render_rows(found))


@click.command(short_help="show one schedule: spec, state, next and recent runs")
@click.argument("name")
@_cluster_option
@json_option("the schedule")
@connection_options
def show(name: str, cluster: str, as_json: bool, connection: Connection) -> None:
    """Show one managed schedule (by declaration name): spec, state, next run, recent runs, counts."""
    from starters import schedules

    row = _run(connection, lambda client: schedules.show(client, name, cluster))
    if as_json:
        print_json(row.as_json())
    else:
        print(schedules.render_row(row))


@click.command(short_help="pause a schedule")
@click.argument("name")
@click.option("--note", default="paused with zerotouch schedules pause", help="why, shown by `show`")
@_cluster_option
@connection_options
def pause(name: str, note: str, cluster: str, connection: Connection) -> None:
    """Pause a schedule: no new runs until `unpause` (`apply` leaves it paused)."""
    from starters import schedules

    _run(connection, lambda client: schedules.pause(client, name, note, cluster))
    print(f"{name}: paused ({note})")


@click.command(short_help="resume a paused schedule")
@click.argument("name")
@click.option("--note", default="unpaused with zerotouch schedules unpause", help="why, shown by `show`")
@_cluster_option
@connection_options
def unpause(name: str, note: str, cluster: str, connection: Connection) -> None:
    """Resume a paused schedule (also one paused by pause-on-failure)."""
    from starters import schedules

    _run(connection, lambda client: schedules.unpause(client, name, note, cluster))
    print(f"{name}: unpaused ({note})")


@click.command(short_help="run a schedule's workflow now")
@click.argument("name")
@click.option("--overlap", type=click.Choice(_OVERLAPS), help="instead of the schedule's overlap policy")
@_cluster_option
@connection_options
def trigger(name: str, overlap: str | None, cluster: str, connection: Connection) -> None:
    """Run the schedule's workflow now, as if a scheduled time had come."""
    from starters import schedules

    _run(connection, lambda client: schedules.trigger(client, name, overlap, cluster))
    print(f"{name}: triggered")


@click.command(short_help="run the scheduled times of a past period")
@click.argument("name")
@click.option("--start", required=True, help="first time, ISO 8601 (UTC unless it says otherwise)")
@click.option("--end", required=True, help="last time (inclusive), ISO 8601")
@click.option("--overlap", type=click.Choice(_OVERLAPS), help="instead of the schedule's overlap policy")
@_cluster_option
@connection_options
def backfill(name: str, start: str, end: str, overlap: str | None, cluster: str, connection: Connection) -> None:
    """Run every time the schedule's spec has in [START, END] as if it were now (BUFFER_ALL runs them all).

    Each run's Job is named after its scheduled time, so a time that already ran does not run again.
    """
    from starters import schedules

    first, last = parse_time(start), parse_time(end)
    if last < first:
        raise UsageError("--end is before --start")
    _run(connection, lambda client: schedules.backfill(client, name, first, last, overlap, cluster))
    print(f"{name}: backfill {first.isoformat()} .. {last.isoformat()} requested")


@click.group(short_help="declared Temporal Schedules: apply, diff, list, show, pause, trigger, backfill")
def schedules() -> None:
    """Temporal Schedules declared in the policy's `schedules:` section (they replace CronJobs)."""


for _command in (apply, diff, list_, show, pause, unpause, trigger, backfill):
    schedules.add_command(_command)
schedules.add_command(__import__("cli.schedules_import", fromlist=["_"]).import_cronjobs)  # CronJob import

SECTION = Section("Schedules", (schedules,))
