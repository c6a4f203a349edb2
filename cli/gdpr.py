"""Data-subject requests: file an export or an erasure; list, show, approve, deny, cancel or extend one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click

from cli.approvals import ProofOptions, proof_options, prove
from cli.common import Connection, Section, connection_options, json_option, policy_from, print_json, run_with_client
from cli.errors import CommandError
from cli.gdpr_download import download
from cli.gdpr_reapply import reapply
from embedded.statedir import StateDir

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.client import Client

    from starters.gdpr import RequestRow, RequestView
    from zerotouch.policy import Policy

R = TypeVar("R")
_BY_APPROVER = "your name, as listed in the policy's approvers"
_KINDS = {"export": "access", "erase": "erasure"}

_policy_option = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                              help="policy file with the `gdpr:` section (default $ZEROTOUCH_POLICY or the "
                                   "shipped policy)")
_cluster_option = click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)")
_request_id = click.argument("request_id", metavar="REQUEST_ID")


def _policy(policy_path: str | None) -> Policy:
    return policy_from(policy_path)


def _run(connection: Connection, work: Callable[[Client], Awaitable[R]]) -> R:
    """Run ``work`` with a client; a refusal (GdprError) becomes one line (exit status 1)."""
    from starters.gdpr import GdprError

    return run_with_client(connection, work, (GdprError,))


def _when(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"


def render_rows(found: list[RequestRow]) -> str:
    if not found:
        return "no data-subject requests (file one with `zerotouch gdpr request export|erase`)"
    header = ("REQUEST", "KIND", "STATE", "DUE", "OUTCOME")
    table = [header] + [(row.request_id, row.kind, row.state, _when(row.due_at), row.outcome or "-") for row in found]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
                     for cells in table)


def render_view(view: RequestView) -> str:
    lines = [f"request    {view.request_id} ({view.workflow_id})"]
    receipt, status, params = view.receipt, view.status, view.params
    if receipt is not None:
        lines += [f"kind       {receipt.kind}", f"outcome    {receipt.outcome}",
                  f"subject    {receipt.subject} (pseudonym)",
                  f"filed      {_when(receipt.received_at)} by {receipt.requested_by}; "
                  f"identity: {receipt.verification}",
                  f"due        {_when(receipt.due_at)}", f"finished   {_when(receipt.finished_at)}",
                  f"decided    {receipt.decided_by or '-'}"
                  + (f": {receipt.decision_note}" if receipt.decision_note else "")]
        lines += ["stores"] + [
            f"  {store.store_name:<16} {store.kind:<9} matched {store.matched}, erased {store.erased}"
            + (f", re-query {store.requery_matches}" if store.requery_matches is not None else "")
            + (f", export sha256 {store.export_sha256[:16]}" if store.export_sha256 else "")
            for store in receipt.stores]
        return "\n".join(lines)
    if status is None:
        state = "starting (no worker has answered yet)" if view.execution == "RUNNING" else view.execution.lower()
        lines.append(f"state      {state}")
        if params is not None:
            lines += [f"kind       {params.kind}", f"filed      {_when(params.received_at)} by {params.requested_by}"]
        return "\n".join(lines + _retrying(view))
    lines += [f"kind       {status.kind}",
              f"state      {status.state}" + (f" ({status.outcome})" if status.outcome else ""),
              f"subject    {status.subject} (pseudonym)",
              f"due        {_when(status.due_at)}{' (extended)' if status.extended else ''}"]
    if status.erase_at:
        lines.append(f"erase at   {_when(status.erase_at)} (cancel before then leaves the data untouched)")
    lines += ["stores"] + [f"  {name:<16} matched {count}{', ' + status.stores[name] if name in status.stores else ''}"
                           for name, count in sorted(status.matched.items())]
    lines += _retrying(view)
    if status.state == "awaiting_approval":
        lines.append(f"approve    zerotouch gdpr approve {view.request_id} --by NAME (or deny ... --reason TEXT)")
    lines.append("timeline")
    lines += [f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<14} {entry.kind:<18} {entry.message}"
              for entry in status.timeline]
    return "\n".join(lines)


def _retrying(view: RequestView) -> list[str]:
    return [f"retrying   {r.store or '-'}: {r.activity} attempt {r.attempt}: {r.failure}" for r in view.retrying]


@click.command(short_help="file an export (access) or an erasure request for one subject")
@click.argument("kind", type=click.Choice(sorted(_KINDS)))
@click.option("--email", help="the subject's e-mail address")
@click.option("--user-id", help="the subject's user id")
@click.option("--by", required=True, help="who files it (may not approve it)")
@click.option("--verification", required=True, help="how the subject's identity was verified, e.g. `e-mail link "
                                                     "clicked`")
@click.option("--request-id", help="the request's id (default dsr-DATE-RANDOM); filing it again files nothing new")
@_policy_option
@_cluster_option
@connection_options
def request(kind: str, email: str | None, user_id: str | None, by: str, verification: str, request_id: str | None,
            policy_path: str | None, cluster: str, connection: Connection) -> None:
    """File a data-subject request (GDPR Art. 15 export, Art. 17 erasure): the subject goes into the encrypted
    request vault (--state-dir's gdpr/ unless the policy names gdpr.storage), the workflow gets its pseudonym."""
    from starters import gdpr

    try:
        subject = gdpr.subject_from(email=email, user_id=user_id)
    except gdpr.GdprError as error:
        raise CommandError(str(error)) from None
    policy = _policy(policy_path)

    async def work(client: Client) -> str:
        filed = await gdpr.file_request(client, policy, kind=_KINDS[kind], subject=subject,  # type: ignore[arg-type]
                                        requested_by=by, verification=verification, request_id=request_id,
                                        cluster=cluster, state_dir=StateDir(connection.state_dir).path)
        if not filed.started:
            return f"{filed.request_id}: already filed as {filed.workflow_id}; not filing it again"
        return (f"{filed.request_id}: filed as {filed.workflow_id}; an approver other than {by} approves it with "
                f"`zerotouch gdpr approve {filed.request_id} --by NAME`")

    print(_run(connection, work))


@click.command("list", short_help="every request: kind, state, due date, outcome")
@_cluster_option
@json_option("the requests")
@connection_options
def list_(cluster: str, as_json: bool, connection: Connection) -> None:
    """Every DataSubjectRequestWorkflow of the cluster scope, newest first."""
    from starters import gdpr

    found = _run(connection, lambda client: gdpr.list_requests(client, cluster))
    if as_json:
        print_json([row.as_json() for row in found])
    else:
        print(render_rows(found))


@click.command(short_help="one request: state, due date, stores, timeline (or its receipt)")
@_request_id
@_cluster_option
@json_option("the request")
@connection_options
def show(request_id: str, cluster: str, as_json: bool, connection: Connection) -> None:
    """One request: while it runs its state, due date, matched rows per store, which store is being retried and
    why, and its timeline; once completed, its receipt."""
    from starters import gdpr

    view = _run(connection, lambda client: gdpr.show_request(client, request_id, cluster))
    if as_json:
        print_json(view.as_json())
    else:
        print(render_view(view))


def _steer(connection: Connection, request_id: str, update: str, make: Callable[[], BaseModel], cluster: str) -> None:
    from pydantic import ValidationError

    from starters import gdpr

    try:
        argument = make()
    except ValidationError as error:  # --by or --reason too long: say which, in one line
        first = error.errors(include_url=False, include_input=False)[0]
        raise CommandError(f"--{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    print(f"{request_id}: " + _run(connection, lambda client: gdpr.steer(client, request_id, update, argument,
                                                                          cluster)))


@click.command(short_help="approve a request (four eyes: not the one who filed it)")
@_request_id
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the receipt")
@proof_options
@_cluster_option
@connection_options
def approve(request_id: str, by: str, note: str, proof: ProofOptions, cluster: str, connection: Connection) -> None:
    """Approve the request's export or erasure (only the policy's approvers; never the one who filed it).

    When the policy verifies approvers, sign it: --key ~/.ssh/id_ed25519, or --print-message > msg,
    `ssh-keygen -Y sign -n zerotouch-approval -f ~/.ssh/id_ed25519 msg`, then --signature-file msg.sig.
    """
    from starters import gdpr
    from zerotouch.approval_proofs import APPROVE, Wanted
    from zerotouch.gdpr import dsr_workflow_id
    from zerotouch.models import ApproveInput

    signed = None
    if proof.requested:
        signed = prove(proof, Wanted(dsr_workflow_id(request_id, cluster), f"dsr-{request_id}", APPROVE, by))
    _steer(connection, request_id, gdpr.UPDATE_APPROVE, lambda: ApproveInput(by=by, note=note, proof=signed), cluster)


@click.command(short_help="deny a request, with the reason the subject is told (Art. 12(4))")
@_request_id
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--reason", required=True, help="why, for the timeline and the receipt")
@_cluster_option
@connection_options
def deny(request_id: str, by: str, reason: str, cluster: str, connection: Connection) -> None:
    """Deny the request awaiting approval; nothing is exported or erased."""
    from starters import gdpr
    from zerotouch.gdpr_models import Deny

    _steer(connection, request_id, gdpr.UPDATE_DENY, lambda: Deny(by=by, reason=reason), cluster)


@click.command(short_help="cancel a request (an erasure until its grace period ends)")
@_request_id
@click.option("--by", required=True, help="who cancels it")
@click.option("--reason", required=True, help="why, for the timeline and the receipt")
@_cluster_option
@connection_options
def cancel(request_id: str, by: str, reason: str, cluster: str, connection: Connection) -> None:
    """Cancel the request; an erasure in its grace period stops with the data untouched."""
    from starters import gdpr
    from zerotouch.gdpr_models import Cancel

    _steer(connection, request_id, gdpr.UPDATE_CANCEL, lambda: Cancel(by=by, reason=reason), cluster)


@click.command(short_help="extend a request's due date once, by 1 or 2 months (Art. 12(3))")
@_request_id
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--months", type=click.IntRange(1, 2), required=True, help="1 or 2 more months")
@click.option("--reason", required=True, help="why, for the timeline and the receipt")
@_cluster_option
@connection_options
def extend(request_id: str, by: str, months: int, reason: str, cluster: str, connection: Connection) -> None:
    """Extend the due date once, before the original due date, with a reason."""
    from starters import gdpr
    from zerotouch.gdpr_models import Extension

    _steer(connection, request_id, gdpr.UPDATE_EXTEND,
           lambda: Extension(by=by, months=months, reason=reason), cluster)


@click.group(short_help="data-subject requests: request, list, show, approve, deny, cancel, extend, download, reapply")
def gdpr() -> None:
    """GDPR data-subject requests (DataSubjectRequestWorkflow): exports and erasures across the policy's data map."""


for _command in (request, list_, show, approve, deny, cancel, extend, download, reapply):
    gdpr.add_command(_command)

SECTION = Section("Data-subject requests", (gdpr,))
