"""Secret rotations: list and show where each stands; rotate, roll back, approve or abort one."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.approvals import ProofOptions, proof_options, prove
from cli.common import Connection, Section, connection_options, json_option, policy_from, print_json, run_with_client
from cli.errors import CommandError
from embedded.statedir import StateDir

if TYPE_CHECKING:
    from temporalio.client import Client

    from starters.rotations import RotationRow, SecretReader
    from zerotouch.policy import Policy
    from zerotouch.rotation_models import Version

R = TypeVar("R")
_BY_APPROVER = "your name, as listed in the policy's approvers"

_policy_option = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                              help="policy file with the `rotations:` section (default $ZEROTOUCH_POLICY or the "
                                   "shipped policy)")
_cluster_option = click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)")
_kubernetes_option = click.option(
    "--kubernetes-url", metavar="URL",
    help="API server without auth (a sandbox); default: the running `up --sandbox`, else in-cluster credentials, "
         "else the kubeconfig")


def _policy(policy_path: str | None) -> Policy:
    return policy_from(policy_path)


def _run(connection: Connection, work: Callable[[Client], Awaitable[R]]) -> R:
    """Run ``work`` with a client; a refusal (RotationError) becomes one line (exit status 1)."""
    from starters.rotations import RotationError

    return run_with_client(connection, work, (RotationError,))


def _with_secrets(command: Callable[..., R]) -> Callable[..., R]:
    """``--kubernetes-url``; the command receives a Secret reader as ``reader`` (closed afterwards)."""

    @functools.wraps(command)
    def with_reader(*args: Any, kubernetes_url: str | None, connection: Connection, **kwargs: Any) -> R:
        from activities.secret_store import SecretStore
        from workers.clients import kubernetes_api_client
        from zerotouch.settings import WorkerSettings

        url = kubernetes_url or StateDir(connection.state_dir).endpoints().get("sandbox")
        with contextlib.closing(kubernetes_api_client(WorkerSettings(kubernetes_url=url))) as api_client:
            return command(*args, reader=SecretStore(api_client=api_client), connection=connection, **kwargs)

    return _kubernetes_option(with_reader)


def _ago(when: datetime | None, now: datetime) -> str:
    from zerotouch.durations import format_duration

    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    # Seconds matter for a rotation under way, not for a credential a week old.
    return f"{format_duration(timedelta(seconds=seconds if seconds < 3600 else seconds - seconds % 60))} ago"


def _version(version: Version | None, now: datetime, revoked: bool = False) -> str:
    if version is None:
        return "-"
    age = f" ({_ago(version.since, now)})" if version.since else ""
    return f"{version.version}{age}{' revoked' if revoked else ''}"


def _cells(row: RotationRow, now: datetime) -> tuple[str, ...]:
    state = row.view
    running = row.running
    workflow = "-" if running is None else (running.status.state if running.status else "starting")
    if state is None:
        return (row.name, row.kind, row.secret.describe(), "unreadable", "-", "-", "-", "-",
                _when(row.next_run), workflow)
    return (row.name, row.kind, row.secret.describe(), state.stage if state.exists else "no secret",
            _version(state.current, now), _version(state.pending, now),
            _version(state.previous, now, state.previous_revoked), _ago(state.last_verified, now),
            _when(row.next_run), workflow)


def _when(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"


def render_rows(found: list[RotationRow]) -> str:
    if not found:
        return "no rotations in the policy (declare them under rotations.secrets)"
    now = datetime.now(UTC)
    header = ("ROTATION", "KIND", "SECRET", "STAGE", "CURRENT", "PENDING", "PREVIOUS", "VERIFIED", "NEXT", "RUNNING")
    table = [header] + [_cells(row, now) for row in found]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
                     for cells in table)


def render_row(row: RotationRow) -> str:
    now = datetime.now(UTC)
    state = row.view
    lines = [f"rotation   {row.name} ({row.kind})", f"secret     {row.secret.describe()}"]
    if state is None:
        lines.append(f"state      unreadable: {row.unreadable}")
    elif not state.exists:
        lines.append("state      the Secret does not exist (yet)")
    else:
        lines += [f"stage      {state.stage}",
                  f"current    {_described(state.current, now)}",
                  f"pending    {_described(state.pending, now)}",
                  f"previous   {_described(state.previous, now)}{' (revoked)' if state.previous_revoked else ''}",
                  f"verified   {_when(state.last_verified)}"
                  + (f" ({_ago(state.last_verified, now)})" if state.last_verified else "")]
    lines.append(f"next       {_when(row.next_run)}" + ("" if row.next_run else " (no schedule runs it)"))
    running = row.running
    if running is None:
        lines.append("running    no rotation workflow")
        return "\n".join(lines)
    status = running.status
    if status is None:
        lines.append(f"running    {running.workflow_id}: starting (no worker has answered yet)")
        return "\n".join(lines)
    lines.append(f"running    {running.workflow_id}: {status.state} ({status.action} {status.token}, requested by "
                 f"{status.requested_by or '-'}{', owner ' + status.owner if status.owner else ''})")
    lines += [f"plan       {line}" if i == 0 else f"           {line}" for i, line in enumerate(status.plan)]
    if status.pending_approval:
        pending = status.pending_approval
        lines += [f"approval   request {pending.request_id} by {pending.requested_by}, "
                  f"expires {_when(pending.expires_at)}",
                  f"           zerotouch secrets approve {row.name} --by NAME (verified approvers add --key "
                  f"~/.ssh/id_ed25519)"]
    lines.append("timeline")
    lines += [f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<14} {entry.kind:<20} {entry.message}"
              for entry in status.timeline]
    return "\n".join(lines)


def _described(version: Version | None, now: datetime) -> str:
    if version is None:
        return "-"
    extra = [f"since {_when(version.since)} ({_ago(version.since, now)})" if version.since else "",
             f"login {version.login}" if version.login else "", f"key {version.key_id}" if version.key_id else ""]
    return " ".join([version.version] + [part for part in extra if part])


@click.command("list", short_help="every rotation: stage, versions and ages, next run, running workflow")
@_policy_option
@_cluster_option
@json_option("the rotations")
@connection_options
@_with_secrets
def list_(policy_path: str | None, cluster: str, as_json: bool, reader: SecretReader,
          connection: Connection) -> None:
    """Every rotation in the policy: its Secret's stage, current version and age, pending, previous (and whether
    it is revoked), last verified, the next scheduled rotation, and the running workflow's state if one runs."""
    from starters import rotations

    policy = _policy(policy_path)
    found = _run(connection, lambda client: rotations.rows(client, policy, reader, cluster))
    if as_json:
        print_json([row.as_json() for row in found])
    else:
        print(render_rows(found))


@click.command(short_help="one rotation, with the running workflow's plan, approval and timeline")
@click.argument("name")
@_policy_option
@_cluster_option
@json_option("the rotation")
@connection_options
@_with_secrets
def show(name: str, policy_path: str | None, cluster: str, as_json: bool, reader: SecretReader,
         connection: Connection) -> None:
    """One rotation as `list` shows it, plus the running rotation's state, plan, pending approval and timeline."""
    from starters import rotations

    policy = _policy(policy_path)
    row = _run(connection, lambda client: rotations.rows(client, policy, reader, cluster, [name]))[0]
    if as_json:
        print_json(row.as_json())
    else:
        print(render_row(row))


def _default_by() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "zerotouch-cli"


@click.command(short_help="rotate a credential now (SecretRotationWorkflow)")
@click.argument("name")
@click.option("--now", "emergency", is_flag=True,
              help="emergency (a leaked credential): skips the schedule, not the approval rules")
@click.option("--by", default=_default_by, show_default="your user name", help="who asks (an approver may not "
                                                                                   "approve their own request)")
@click.option("--reason", default="", help="why, for the timeline and the ledger")
@click.option("--wait", is_flag=True, help="wait until the rotation ends and print its outcome")
@_policy_option
@_cluster_option
@connection_options
def rotate(name: str, emergency: bool, by: str, reason: str, wait: bool, policy_path: str | None, cluster: str,
           connection: Connection) -> None:
    """Start the rotation of NAME's Secret; if one is already running, say so and show it (never a second).

    Exits 1 with --wait when the rotation did not end `rotated` (rolled back, refused, not approved, ...).
    """
    from starters import rotations

    policy = _policy(policy_path)
    why = reason or ("credential reported leaked" if emergency else "requested with zerotouch secrets rotate")

    async def work(client: Client) -> Any:
        started = await rotations.start(client, policy.rotations, name, cluster, requested_by=by, reason=why,
                                        emergency=emergency)
        found = await rotations.running(client, started.workflow_id)
        if not started.started:
            state = found.status.state if found and found.status else "starting"
            print(f"{name}: a rotation is already running as {started.workflow_id} ({state}); not starting another")
        else:
            print(f"{name}: started {started.workflow_id}{' (emergency)' if emergency else ''}")
        if wait:
            from zerotouch.rotation_models import RotationResult

            return await client.get_workflow_handle(started.workflow_id, result_type=RotationResult).result()
        return None

    result = _run(connection, work)
    if result is not None:
        print(f"{name}: {result.outcome}{': ' + result.detail if result.detail else ''}")
        if result.outcome != "rotated":
            raise CommandError(f"{name}: the rotation ended {result.outcome}")


@click.command(short_help="make the previous credential current again")
@click.argument("name")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--reason", required=True, help="why, for the timeline and the ledger")
@_policy_option
@_cluster_option
@connection_options
def rollback(name: str, by: str, reason: str, policy_path: str | None, cluster: str, connection: Connection) -> None:
    """Roll NAME back: the running rotation undoes itself; without one, a rollback run makes the previous credential
    (if not yet revoked) current again and moves the consumers back."""
    from starters import rotations

    policy = _policy(policy_path)
    message, started = _run(connection, lambda client: rotations.rollback(client, policy.rotations, name, by, reason,
                                                                          cluster))
    print(f"{name}: {message}" + (f" ({started.workflow_id})" if started else ""))


@click.command(short_help="approve a rotation's pending request")
@click.argument("name")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--note", default="", help="why, for the timeline and the ledger")
@proof_options
@_policy_option
@_cluster_option
@connection_options
def approve(name: str, by: str, note: str, proof: ProofOptions, policy_path: str | None, cluster: str,
            connection: Connection) -> None:
    """Approve the running rotation's pending request (only the policy's approvers; never your own request).

    When the policy verifies approvers, sign it: --key ~/.ssh/id_ed25519, or --print-message > msg,
    `ssh-keygen -Y sign -n zerotouch-approval -f ~/.ssh/id_ed25519 msg`, then --signature-file msg.sig.
    """
    from starters import rotations
    from zerotouch.approval_proofs import APPROVE, Wanted
    from zerotouch.models import ApproveInput
    from zerotouch.names import UPDATE_APPROVE
    from zerotouch.rotations import rotation_workflow_id

    policy = _policy(policy_path)

    async def work(client: Client) -> str:
        signed = None
        if proof.requested:
            workflow_id = rotation_workflow_id(rotations.rotation_of(policy.rotations, name).secret, cluster)
            found = await rotations.running(client, workflow_id)
            if found is None:
                raise rotations.RotationError(f"no rotation of {name} is running (see `zerotouch secrets show "
                                              f"{name}`)")
            pending = found.status.pending_approval if found.status else None
            if pending is None:
                raise rotations.RotationError(f"{name}: nothing awaits approval (see `zerotouch secrets show {name}`)")
            signed = prove(proof, Wanted(workflow_id, pending.request_id, APPROVE, by))
        return await rotations.steer(client, policy.rotations, name, UPDATE_APPROVE,
                                     ApproveInput(by=by, note=note, proof=signed), cluster)

    print(f"{name}: {_run(connection, work)}")


@click.command(short_help="abort a running rotation")
@click.argument("name")
@click.option("--by", required=True, help=_BY_APPROVER)
@click.option("--reason", required=True, help="why, for the timeline and the ledger")
@_policy_option
@_cluster_option
@connection_options
def abort(name: str, by: str, reason: str, policy_path: str | None, cluster: str, connection: Connection) -> None:
    """Abort NAME's running rotation: before the new credential is current nothing changes; after, it rolls back."""
    from starters import rotations
    from zerotouch.models import AbortInput
    from zerotouch.names import UPDATE_ABORT

    policy = _policy(policy_path)
    print(f"{name}: " + _run(connection, lambda client: rotations.steer(
        client, policy.rotations, name, UPDATE_ABORT, AbortInput(by=by, reason=reason), cluster)))


@click.group(short_help="credential rotations: list, show, rotate, rollback, approve, abort")
def secrets() -> None:
    """Credentials rotated by SecretRotationWorkflow (the policy's `rotations:`), their state kept in the Secret."""


for _command in (list_, show, rotate, rollback, approve, abort):
    secrets.add_command(_command)

SECTION = Section("Secrets", (secrets,))
