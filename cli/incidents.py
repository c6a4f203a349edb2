"""Incidents: list and show them, steer one (approve, abort, take over, retry), fire a test alert."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from cli.approvals import ProofOptions, proof_options, prove
from cli.common import Connection, LabelType, Section, connection_options, json_option, print_json, state_dir_option
from cli.errors import UsageError
from embedded.statedir import StateDir
from zerotouch.models import INCIDENT_STATES

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.client import Client

    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.models import HumanDecision, IncidentStatus

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
        print(status.model_dump_json(indent=2) if as_json else steer.render_status(status) + _to_sign(status))

    asyncio.run(run())


def _decide(action: Callable[[Client, str, str, str], Awaitable[HumanDecision]], connection: Connection,
            incident_id: str, by: str, text: str) -> None:
    async def run() -> None:
        decision = await action(await connection.client(), incident_id, by, text)
        print(f"{decision.incident_id}: {decision.message} (state {decision.state})")

    asyncio.run(run())


def _to_sign(status: IncidentStatus) -> str:
    """The request an approver signs (`--key`, or `--print-message` for ssh-keygen), when one is pending."""
    if status.pending_approval is None:
        return ""
    return (f"\nrequest    {status.pending_approval.request_id} (verified approvers sign it: zerotouch approve "
            f"{status.incident_id} --by NAME --key ~/.ssh/id_ed25519)")


def _decide_proven(name: str, decision: str, argument: Callable[[ApprovalProof | None], BaseModel],
                   connection: Connection, incident_id: str, by: str, proof: ProofOptions) -> None:
    """Send a loosening decision with its proof (when the signing options ask for one)."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    from starters import steer
    from zerotouch.approval_proofs import Wanted, incident_request
    from zerotouch.models import HumanDecision

    async def run() -> None:
        client = await connection.client()
        signed = None
        if proof.requested:
            status = await steer.show_incident(client, incident_id)
            pending = status.pending_approval.request_id if status.pending_approval else None
            signed = prove(proof, Wanted(incident_id, incident_request(pending, status.attempts), decision, by))
        handle = client.get_workflow_handle(incident_id)
        try:
            result = await handle.execute_update(name, argument(signed), result_type=HumanDecision)
        except WorkflowUpdateFailedError as error:
            cause: Any = error.cause
            raise steer.SteerError(getattr(cause, "message", None) or str(cause)) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise steer.SteerError(f"no running incident {incident_id!r}; list them with `zerotouch incidents`") \
                    from None
            raise
        print(f"{result.incident_id}: {result.message} (state {result.state})")

    asyncio.run(run())


@click.command(short_help="approve the pending request")
@click.argument("incident_id")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@proof_options
@connection_options
def approve(incident_id: str, by: str, note: str, proof: ProofOptions, connection: Connection) -> None:
    """Approve the incident's pending request (only the policy's approvers; never your own request).

    When the policy verifies approvers, sign it: --key ~/.ssh/id_ed25519, or --print-message > msg,
    `ssh-keygen -Y sign -n zerotouch-approval -f ~/.ssh/id_ed25519 msg`, then --signature-file msg.sig.
    """
    from zerotouch.approval_proofs import APPROVE
    from zerotouch.models import ApproveInput
    from zerotouch.names import UPDATE_APPROVE

    _decide_proven(UPDATE_APPROVE, APPROVE, lambda signed: ApproveInput(by=by, note=note, proof=signed),
                   connection, incident_id, by, proof)


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
@proof_options
@connection_options
def retry(incident_id: str, by: str, note: str, proof: ProofOptions, connection: Connection) -> None:
    """Ask for one more automated attempt on a frozen incident; another approver approves it.

    When the policy verifies approvers, sign it as for `approve` (--key, or --print-message and --signature-file).
    """
    from zerotouch.approval_proofs import REQUEST_RETRY
    from zerotouch.models import RetryRequestInput
    from zerotouch.names import UPDATE_REQUEST_RETRY

    _decide_proven(UPDATE_REQUEST_RETRY, REQUEST_RETRY,
                   lambda signed: RetryRequestInput(by=by, note=note, proof=signed), connection, incident_id, by, proof)


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
