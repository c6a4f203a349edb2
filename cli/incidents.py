"""Incidents: list and show them, steer one (approve, abort, take over, retry), fire a test alert."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from cli.common import Connection, LabelType, Section, connection_options, json_option, print_json, state_dir_option
from cli.errors import UsageError
from embedded.statedir import StateDir
from zerotouch.models import INCIDENT_STATES

if TYPE_CHECKING:
    from temporalio.client import Client

    from zerotouch.models import HumanDecision

_BY_APPROVER = "your name, as listed in the policy's approvers"


@click.command(short_help="list incidents")
@click.option("--state", type=click.Choice(INCIDENT_STATES), help="only incidents in this state")
@json_option("the rows")
@connection_options
def incidents(state: str | None, as_json: bool, connection: Connection) -> None:
    """List incidents (from Temporal visibility): state, severity, runbook, service, start."""
    from starters import steer

    async def run() -> None:
        rows = await steer.list_incidents(await connection.client(), state)
        if as_json:
            print_json([row.model_dump() for row in rows])
        else:
            print(steer.render_rows(rows))

    asyncio.run(run())


@click.command(short_help="show one incident: state, timeline, pending approval")
@click.argument("incident_id")
@json_option("the incident's status")
@connection_options
def show(incident_id: str, as_json: bool, connection: Connection) -> None:
    """Show one incident: state, severity, runbook, target, timeline, pending approval."""
    from starters import steer

    async def run() -> None:
        status = await steer.show_incident(await connection.client(), incident_id)
        print(status.model_dump_json(indent=2) if as_json else steer.render_status(status))

    asyncio.run(run())


def _decide(action: Callable[[Client, str, str, str], Awaitable[HumanDecision]], connection: Connection,
            incident_id: str, by: str, text: str) -> None:
    async def run() -> None:
        decision = await action(await connection.client(), incident_id, by, text)
        print(f"{decision.incident_id}: {decision.message} (state {decision.state})")

    asyncio.run(run())


@click.command(short_help="approve the pending request")
@click.argument("incident_id")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@connection_options
def approve(incident_id: str, by: str, note: str, connection: Connection) -> None:
    """Approve the incident's pending request (only the policy's approvers; never your own request)."""
    from starters import steer

    _decide(steer.approve, connection, incident_id, by, note)


@click.command("take-over", short_help="take the incident over; automation stops")
@click.argument("incident_id")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@connection_options
def take_over(incident_id: str, by: str, note: str, connection: Connection) -> None:
    """Take the incident over: a human owns it and automation stops."""
    from starters import steer

    _decide(steer.take_over, connection, incident_id, by, note)


@click.command(short_help="ask for one more automated attempt (another approver approves)")
@click.argument("incident_id")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@connection_options
def retry(incident_id: str, by: str, note: str, connection: Connection) -> None:
    """Ask for one more automated attempt on a frozen incident; another approver approves it."""
    from starters import steer

    _decide(steer.request_retry, connection, incident_id, by, note)


@click.command(short_help="abort the incident; automation stops for good")
@click.argument("incident_id")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--reason", required=True, help="why, for the timeline and the ledger")
@connection_options
def abort(incident_id: str, by: str, reason: str, connection: Connection) -> None:
    """Abort the incident: automation stops for good."""
    from starters import steer

    _decide(steer.abort, connection, incident_id, by, reason)


@click.command(short_help="send an alert to the relay as Alertmanager would")
@click.argument("alertname")
@click.option("--label", "labels", type=LabelType(), multiple=True, help="an alert label (repeatable)")
@click.option("--annotation", "annotations", type=LabelType(), multiple=True,
              help="an alert annotation (repeatable)")
@click.option("--resolved", is_flag=True, help="send it as resolved")
@click.option("--relay", metavar="URL", help="relay URL (default: the running `zerotouch up`)")
@click.option("--token-file", type=click.Path(dir_okay=False), help="relay token file (default: the state dir's)")
@state_dir_option()
def fire(alertname: str, labels: tuple[tuple[str, str], ...], annotations: tuple[tuple[str, str], ...],
         resolved: bool, relay: str | None, token_file: str | None, state_dir: str | None) -> None:
    """Send one alert to the relay exactly as Alertmanager would (webhook payload v4); print its answer."""
    from starters.fire import fire_alert
    from starters.relay.config import load_token

    state = StateDir(state_dir)
    relay_url = relay or state.endpoints().get("relay")
    if not relay_url:
        raise UsageError("no relay URL: pass --relay or start `zerotouch up` first")
    token = token_file or (str(state.token_file) if state.token_file.exists() else None)
    print_json(fire_alert(relay_url, load_token(token), alertname, dict(labels), dict(annotations), resolved))


SECTION = Section("Incidents", (incidents, show, approve, take_over, retry, abort, fire))
