"""Backups: list, show, take, verify by a test restore, prune, legal holds, and the RPO canary."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.common import (
    Connection,
    Section,
    connection_options,
    json_option,
    parse_time,
    policy_from,
    print_json,
    state_dir_option,
)
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from zerotouch.backup_repository import BackupRepository
    from zerotouch.policy import Policy

R = TypeVar("R")
_policy_option = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                              help="policy file with the `backups:` section (default $ZEROTOUCH_POLICY or the shipped "
                                   "policy)")
_repository_option = click.option("--repository", metavar="DIR",
                                  help="backup repository (default: the policy's, $ZEROTOUCH_BACKUP_REPOSITORY, "
                                       "or backups/ in the state directory)")
_cluster_option = click.option("--cluster", default="", help="cluster scope (as the workers' --cluster)")


def _policy(policy_path: str | None) -> Policy:
    return policy_from(policy_path)


def _repository(policy_path: str | None, repository: str | None, state_dir: str | None) -> BackupRepository:
    """The repository the backup worker uses, resolved the way the worker resolves it."""
    import os

    from embedded.statedir import StateDir
    from zerotouch.backup_repository import open_repository

    state = StateDir(state_dir).path.resolve()
    location = (repository or _policy(policy_path).backups.repository
                or os.environ.get("ZEROTOUCH_BACKUP_REPOSITORY") or str(state / "backups"))
    return open_repository(location, state)


def repository_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add ``--policy``, ``--repository`` and ``--state-dir``; the command receives the repository as ``repo``."""

    @functools.wraps(command)
    def with_repository(*args: Any, policy_path: str | None, repository: str | None, state_dir: str | None,
                        **kwargs: Any) -> R:
        return command(*args, repo=_repository(policy_path, repository, state_dir), **kwargs)

    return _policy_option(_repository_option(state_dir_option()(with_repository)))


def _find(repo: BackupRepository, backup_id: str) -> Any:
    for target in repo.targets():
        record = repo.find(target, backup_id)
        if record is not None:
            return record
    raise CommandError(f"no backup {backup_id!r} in the repository (see `zerotouch backups list`)")


@click.command("list", short_help="backups with their verification, RTO and RPO")
@click.argument("target", required=False)
@repository_options
@json_option("the backups")
def list_(target: str | None, repo: BackupRepository, as_json: bool) -> None:
    """Every backup in the repository (or of TARGET), oldest first, with its last verification."""
    from zerotouch.backup_report import record_json, render_list

    targets = [target] if target else repo.targets()
    records = [record for name in targets for record in repo.backups(name)]
    if as_json:
        print_json([record_json(record) for record in records])
    else:
        print(render_list(records))


@click.command(short_help="one backup: manifest, holds, every verification with its checks")
@click.argument("backup_id")
@click.option("--files", is_flag=True, help="with --json: include the manifest's file list")
@repository_options
@json_option("the backup")
def show(backup_id: str, files: bool, repo: BackupRepository, as_json: bool) -> None:
    """A backup's manifest (sizes, WAL range, table stats, source, tools) and every test restore's evidence."""
    from zerotouch.backup_report import record_json, render_record

    record = _find(repo, backup_id)
    if as_json:
        print_json(record_json(record, files=files))
    else:
        print(render_record(record))


def _start(connection: Connection, workflow: str, params: BaseModel, workflow_id: str, cluster: str,
           wait: bool) -> tuple[Any, str | None, Any]:
    """Start a backup workflow; with ``wait`` its result or failure, and its `report` query if it has one."""
    from temporalio.client import WorkflowFailureError

    from zerotouch.names import WORKFLOWS_QUEUE, queue_for

    async def run() -> tuple[Any, str | None, Any]:
        client = await connection.client()
        handle = await client.start_workflow(workflow, params, id=workflow_id,
                                             task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
        if not wait:
            return None, None, None
        result, failure = None, None
        try:
            result = await handle.result()
        except WorkflowFailureError as error:
            failure = str(error.cause or error)
        report = None
        if workflow == "BackupVerificationWorkflow":
            report = await handle.query("report")
        return result, failure, report

    return asyncio.run(run())


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@click.command(short_help="take a backup now (BackupWorkflow)")
@click.argument("target")
@click.option("--verify", is_flag=True, help="then prove it by a test restore")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for the workflow to finish")
@_policy_option
@_cluster_option
@connection_options
def run(target: str, verify: bool, wait: bool, policy_path: str | None, cluster: str,
        connection: Connection) -> None:
    """Take a backup of TARGET now, through the same durable workflow its schedule starts."""
    from zerotouch.backups import BACKUP_WORKFLOW, BackupArgs, BackupInput

    _check_target(policy_path, target)
    params = BackupInput(cluster=cluster, scheduled_time=datetime.now(UTC),
                         arguments=BackupArgs(target=target, verify=verify))
    workflow_id = f"zerotouch-backup-manual-{target}-{_stamp()}"
    result, failure, _ = _start(connection, BACKUP_WORKFLOW, params, workflow_id, cluster, wait)
    if not wait:
        print(f"started {workflow_id}")
        return
    if failure is not None:
        raise CommandError(f"{workflow_id}: {failure}")
    print(f"backup {result['id']} taken ({result['size_bytes']} bytes){'; verification ran' if verify else ''}")


@click.command(short_help="prove a backup by restoring it (BackupVerificationWorkflow)")
@click.argument("target")
@click.option("--backup", "backup_id", default="", help="backup ID (default: newest unverified, else newest)")
@click.option("--target-time", help="point-in-time recovery target, ISO 8601 (physical PostgreSQL)")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for the verdict")
@_policy_option
@_cluster_option
@json_option("the verification report")
@connection_options
def verify(target: str, backup_id: str, target_time: str | None, wait: bool, policy_path: str | None,
           cluster: str, as_json: bool, connection: Connection) -> None:
    """Restore a backup of TARGET into a throwaway place, run its checks, record the evidence.

    Exits 1 when the verification failed (it then also opened a BackupVerificationFailed incident).
    """
    from zerotouch.backup_models import VerificationReport
    from zerotouch.backup_report import render_report
    from zerotouch.backups import VERIFICATION_WORKFLOW, VerifyArgs, VerifyInput

    _check_target(policy_path, target)
    when = parse_time(target_time) if target_time else None
    params = VerifyInput(cluster=cluster, arguments=VerifyArgs(target=target, backup_id=backup_id,
                                                               recovery_target_time=when))
    workflow_id = f"zerotouch-verify-manual-{target}-{_stamp()}"
    _, failure, raw = _start(connection, VERIFICATION_WORKFLOW, params, workflow_id, cluster, wait)
    if not wait:
        print(f"started {workflow_id}")
        return
    report = VerificationReport.model_validate(raw) if raw else None
    if as_json and report is not None:
        print_json(report.model_dump(mode="json"))
    elif report is not None:
        print(render_report(report))
    if failure is not None:
        raise CommandError(f"{workflow_id}: {failure}")


@click.command(short_help="delete what retention does not keep (BackupRetentionWorkflow)")
@click.argument("targets", nargs=-1)
@click.option("--dry-run", is_flag=True, help="only say what would be deleted")
@_policy_option
@_cluster_option
@json_option("what was kept and deleted")
@connection_options
def prune(targets: tuple[str, ...], dry_run: bool, policy_path: str | None, cluster: str, as_json: bool,
          connection: Connection) -> None:
    """Apply each target's grandfather-father-son retention (never the newest verified or a held backup)."""
    from zerotouch.backups import RETENTION_WORKFLOW, RetentionArgs, RetentionInput

    for target in targets:
        _check_target(policy_path, target)
    params = RetentionInput(cluster=cluster, arguments=RetentionArgs(targets=list(targets), dry_run=dry_run))
    workflow_id = f"zerotouch-retention-manual-{_stamp()}"
    result, failure, _ = _start(connection, RETENTION_WORKFLOW, params, workflow_id, cluster, True)
    if failure is not None:
        raise CommandError(f"{workflow_id}: {failure}")
    if as_json:
        print_json(result)
        return
    for name, outcome in result.items():
        verb = "would delete" if dry_run else "deleted"
        print(f"{name}: {verb} {len(outcome['deleted'])}: {', '.join(outcome['deleted']) or '-'}")
        for backup_id, reasons in outcome["kept"].items():
            print(f"  keep {backup_id}: {', '.join(reasons)}")


@click.command(short_help="put a backup under legal hold: retention never deletes it")
@click.argument("backup_id")
@click.option("--by", required=True, help="who places the hold")
@click.option("--reason", required=True, help="why (a case or ticket reference)")
@repository_options
def hold(backup_id: str, by: str, reason: str, repo: BackupRepository) -> None:
    """Keep BACKUP_ID whatever retention says, until `zerotouch backups release`."""
    from zerotouch.backup_models import LegalHold

    record = _find(repo, backup_id)
    repo.set_hold(record.manifest.target, backup_id, LegalHold(by=by, reason=reason, at=datetime.now(UTC)))
    print(f"{backup_id}: on legal hold ({by}: {reason})")


@click.command(short_help="lift a legal hold")
@click.argument("backup_id")
@click.option("--by", required=True, help="who lifts the hold")
@repository_options
def release(backup_id: str, by: str, repo: BackupRepository) -> None:
    """Let retention decide about BACKUP_ID again."""
    record = _find(repo, backup_id)
    if record.hold is None:
        raise CommandError(f"{backup_id} is not on legal hold")
    repo.set_hold(record.manifest.target, backup_id, None)
    print(f"{backup_id}: hold lifted by {by}")


@click.command(short_help="write the RPO canary row every second (run beside the database)")
@click.option("--connection", "reference", required=True, help="connection reference: DSN from ZEROTOUCH_PG_<REF>_DSN")
@click.option("--table", default="zerotouch_canary", show_default=True, help="canary table (created if missing)")
def canary(reference: str, table: str) -> None:
    """Insert one row a second into the canary table, so a test restore measures the RPO it achieved."""
    import signal
    import threading

    from workers.clients import postgres_dsn_for
    from zerotouch.pg_canary import CanaryWriter

    try:
        dsn = postgres_dsn_for(reference)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    writer = CanaryWriter(dsn, table=table)
    writer.start()
    print(f"writing a canary row a second into {table}; Ctrl-C stops", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        writer.stop()


def _check_target(policy_path: str | None, target: str) -> None:
    try:
        _policy(policy_path).backups.target(target)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None


@click.group(short_help="backups proven by test restores: list, show, run, verify, prune, hold")
def backups() -> None:
    """Backups of the policy's `backups.targets`, each proven by a real test restore with measured RTO and RPO."""


for _command in (list_, show, run, verify, prune, hold, release, canary):
    backups.add_command(_command)

SECTION = Section("Backups", (backups,))
