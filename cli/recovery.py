"""`zerotouch recovery`: list and show recoveries, plan or start one, approve or abort it.

Node recovery, database failover and namespace restore share one contract (`zerotouch.recovery`),
so these commands read all three alike. `plan` is a dry run under an ID of its own: it computes
and prints the plan, changes nothing, and never blocks a real recovery of the same target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.approvals import ProofOptions, proof_options, prove
from cli.common import Connection, Section, connection_options, json_option, print_json, run_with_client
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from starters.recovery import RecoveryInput, RecoveryRow
    from zerotouch.recovery import RecoveryStatus

R = TypeVar("R")
_BY_APPROVER = "your name, as listed in the policy's approvers"


def _run(connection: Connection, work: Callable[[Client], Awaitable[R]]) -> R:
    from starters.recovery import RecoveryError

    return run_with_client(connection, work, (RecoveryError,))


def _when(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when else "-"


def render_rows(rows: list[RecoveryRow]) -> str:
    if not rows:
        return "no recoveries yet (start one with `zerotouch recovery plan` or `start`)"
    header = ("ID", "KIND", "TARGET", "STAGE", "STARTED", "APPROVAL")
    table = [header] + [(r.workflow_id, r.kind, r.target, r.stage + (" (dry run)" if r.status and r.status.dry_run
                                                                      else ""),
                         _when(r.started_at), (r.status.approval if r.status else "") or "-") for r in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
                     for cells in table)


def render_status(workflow_id: str, status: RecoveryStatus | None, execution: str = "") -> str:
    if status is None:
        return f"{workflow_id}: {execution or 'starting'} (no worker has answered yet)"
    lines = [f"recovery   {workflow_id}", f"kind       {status.kind}{' (dry run)' if status.dry_run else ''}",
             f"target     {status.target}{' in cluster ' + status.cluster if status.cluster else ''}",
             f"stage      {status.stage}", f"reason     {status.reason or '-'}",
             f"approval   {status.approval or 'not needed'}"
             + (f" (request {status.approval_request})" if status.approval_request else "")]
    if status.approval == "pending":
        lines += [f"           zerotouch recovery approve {workflow_id} --by NAME  (or abort ... --reason R)",
                  "           (verified approvers add --key ~/.ssh/id_ed25519)"]
    if status.incident_id:
        lines.append(f"incident   {status.incident_id}")
    lines += [f"plan       {line}" if i == 0 else f"           {line}" for i, line in enumerate(status.plan)]
    lines.append("timeline")
    lines += [f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.step:<18} {e.outcome:<8} {e.detail}" for e in status.timeline]
    lines.append(f"outcome    {status.outcome or '(not yet)'}")
    return "\n".join(lines)


@click.command("list", short_help="running and past recoveries, newest first")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option("the recoveries")
@connection_options
def list_(limit: int, as_json: bool, connection: Connection) -> None:
    """Node recoveries, database failovers and namespace restores (dry runs included), newest first: kind,
    target and stage from the running ones' status, from the result for the finished ones."""
    from starters.recovery import list_recoveries

    rows = _run(connection, lambda client: list_recoveries(client, limit))
    if as_json:
        print_json([row.as_json() for row in rows])
    else:
        print(render_rows(rows))


@click.command(short_help="one recovery: plan, approval, timeline, outcome")
@click.argument("reference", metavar="ID-OR-TARGET")
@json_option("the recovery")
@connection_options
def show(reference: str, as_json: bool, connection: Connection) -> None:
    """A recovery by its workflow ID, or the newest one of a node, database or namespace."""
    from starters.recovery import find

    row = _run(connection, lambda client: find(client, reference))
    if as_json:
        print_json(row.as_json())
    else:
        print(render_status(row.workflow_id, row.status, row.execution))


# --- plan and start: one subcommand per kind, the same options for both ---------------------------------------


def _check(kind: str, name: str) -> None:
    from zerotouch.k8s_names import InvalidName, require_namespace, require_object_name

    try:
        require_namespace(name) if kind == "namespace" else require_object_name(name, kind)
    except InvalidName as error:
        raise UsageError(str(error)) from None


def _launch(params: RecoveryInput, *, dry_run: bool, as_json: bool, connection: Connection) -> None:
    from starters.recovery import result_of, start_recovery

    async def work(client: Client) -> tuple[str, bool, RecoveryStatus | None]:
        started = await start_recovery(client, params, dry_run_id=dry_run)
        return started.workflow_id, started.started, await result_of(client, started.workflow_id) if dry_run else None

    workflow_id, started, final = _run(connection, work)
    if dry_run:
        assert final is not None
        if as_json:
            print_json({"workflow_id": workflow_id, "status": final.model_dump(mode="json")})
        else:
            print(render_status(workflow_id, final))
        if final.stage != "planned":
            raise CommandError(f"the plan ended {final.stage}: {final.outcome}")
        return
    if as_json:
        print_json({"workflow_id": workflow_id, "started": started})
    elif started:
        print(f"started {workflow_id}; follow it with `zerotouch recovery show {workflow_id}`")
    else:
        print(f"{workflow_id} is already running; not starting another (`zerotouch recovery show {workflow_id}`)")


def _kind_commands(dry_run: bool) -> list[click.Command]:
    verb = "plan (dry run: changes nothing)" if dry_run else "start"

    def common(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in (click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)"),
                       click.option("--by", "requested_by", default="zerotouch-cli",
                                    help="who asks (an approver may not approve their own request)"),
                       click.option("--reason", default="", help="why, for the timeline and the ledger"),
                       json_option("the result"), connection_options):
            command = option(command)
        return command

    @click.command("node", short_help=f"{verb} the recovery of a node")
    @click.argument("name")
    @common
    def node(name: str, cluster: str, requested_by: str, reason: str, as_json: bool, connection: Connection) -> None:
        """Cordon and drain NAME, have it replaced or rebooted, uncordon it (NodeRecoveryWorkflow)."""
        from zerotouch.recovery import NodeRecoveryInput

        _check("node", name)
        _launch(NodeRecoveryInput(cluster=cluster, node=name, reason=reason or "requested with zerotouch recovery",
                                  dry_run=dry_run, requested_by=requested_by),
                dry_run=dry_run, as_json=as_json, connection=connection)

    @click.command("database", short_help=f"{verb} the failover of a PostgreSQL primary")
    @click.argument("name")
    @common
    def database(name: str, cluster: str, requested_by: str, reason: str, as_json: bool,
                 connection: Connection) -> None:
        """Fence the primary NAME (a key of the policy's recovery.databases), promote its replica, repoint the
        consumers (DatabaseFailoverWorkflow)."""
        from zerotouch.recovery import DatabaseFailoverInput

        _check("database", name)
        _launch(DatabaseFailoverInput(cluster=cluster, database=name, dry_run=dry_run, requested_by=requested_by,
                                      reason=reason or "requested with zerotouch recovery"),
                dry_run=dry_run, as_json=as_json, connection=connection)

    @click.command("namespace", short_help=f"{verb} the restore of a namespace from its object backup")
    @click.argument("source", metavar="NAMESPACE")
    @click.option("--backup-target", required=True, help="the kubernetes target of the policy's backups.targets")
    @click.option("--backup-id", default="", help="the backup to restore (default: the newest verified one)")
    @click.option("--into", "into_namespace", default="", help="restore into this namespace (default: the same)")
    @common
    def namespace(source: str, backup_target: str, backup_id: str, into_namespace: str, cluster: str,
                  requested_by: str, reason: str, as_json: bool, connection: Connection) -> None:
        """Restore NAMESPACE's objects from their backup: missing ones are created, changed ones overwritten after
        a human approves the diff, ones only in the destination left alone (NamespaceRestoreWorkflow)."""
        from zerotouch.recovery import NamespaceRestoreInput

        _check("namespace", source)
        if into_namespace:
            _check("namespace", into_namespace)
        _launch(NamespaceRestoreInput(cluster=cluster, namespace=source, backup_target=backup_target,
                                      backup_id=backup_id, into_namespace=into_namespace, dry_run=dry_run,
                                      requested_by=requested_by, reason=reason),
                dry_run=dry_run, as_json=as_json, connection=connection)

    return [node, database, namespace]


@click.group(short_help="compute a recovery's plan without changing anything")
def plan() -> None:
    """Run a recovery as a dry run, wait for its plan and print it; nothing is changed."""


@click.group(short_help="start a recovery (approval steps wait for `approve`)")
def start() -> None:
    """Start a recovery under its one workflow ID; one already running is shown, never started twice."""


for _command in _kind_commands(dry_run=True):
    plan.add_command(_command)
for _command in _kind_commands(dry_run=False):
    start.add_command(_command)


@click.command(short_help="approve a recovery's pending step")
@click.argument("reference", metavar="ID-OR-TARGET")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@proof_options
@json_option("the answer")
@connection_options
def approve(reference: str, by: str, note: str, proof: ProofOptions, as_json: bool, connection: Connection) -> None:
    """Approve what the running recovery waits for (only the policy's approvers; never your own request).

    When the policy verifies approvers, sign it: --key ~/.ssh/id_ed25519, or --print-message > msg,
    `ssh-keygen -Y sign -n zerotouch-approval -f ~/.ssh/id_ed25519 msg`, then --signature-file msg.sig.
    """
    from starters.recovery import pending_request, steer
    from zerotouch.approval_proofs import APPROVE, Wanted
    from zerotouch.models import ApproveInput
    from zerotouch.names import UPDATE_APPROVE

    async def work(client: Client) -> tuple[str, str]:
        target, signed = reference, None
        if proof.requested:
            # Sign the request the recovery names, and send the proof to that very workflow (by its ID).
            target, request = await pending_request(client, reference)
            signed = prove(proof, Wanted(target, request, APPROVE, by))
        return await steer(client, target, UPDATE_APPROVE, ApproveInput(by=by, note=note, proof=signed))

    workflow_id, answer = _run(connection, work)
    print_json({"workflow_id": workflow_id, "answer": answer}) if as_json else print(f"{workflow_id}: {answer}")


@click.command(short_help="abort a running recovery")
@click.argument("reference", metavar="ID-OR-TARGET")
@click.option("--by", required=True, help="who aborts")
@click.option("--reason", required=True, help="why, for the timeline and the ledger")
@json_option("the answer")
@connection_options
def abort(reference: str, by: str, reason: str, as_json: bool, connection: Connection) -> None:
    """Abort the running recovery before it acts (what already happened is not undone by an abort)."""
    from starters.recovery import steer
    from zerotouch.models import AbortInput
    from zerotouch.names import UPDATE_ABORT

    workflow_id, answer = _run(connection, lambda client: steer(client, reference, UPDATE_ABORT,
                                                                AbortInput(by=by, reason=reason)))
    print_json({"workflow_id": workflow_id, "answer": answer}) if as_json else print(f"{workflow_id}: {answer}")


@click.group(short_help="node, database and namespace recovery: list, show, plan, start, approve, abort")
def recovery() -> None:
    """Recoveries: NodeRecoveryWorkflow, DatabaseFailoverWorkflow, NamespaceRestoreWorkflow (the policy's
    `recovery:` section bounds them; the Governor grants every action)."""


for _command in (list_, show, plan, start, approve, abort):
    recovery.add_command(_command)

SECTION = Section("Recovery", (recovery,))
