"""The backup operation through its workflows: evidence in the ledger, failures as incidents, retention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from tests.backups.conftest import BackupStack
from tests.backups.conftest_pg import postmasters
from tests.backups.test_replay import replay_and_record
from tests.support.waiting import eventually
from zerotouch.backup_alerts import BACKUP_FAILED_ALERT
from zerotouch.backup_metrics import BackupMetrics
from zerotouch.backups import FAILURE_ALERT, VERIFICATION_WORKFLOW, VerifyArgs, VerifyInput
from zerotouch.names import WORKFLOWS_QUEUE, queue_for


async def test_a_backup_verified_by_a_restore_leaves_evidence_and_no_incident(stack: BackupStack) -> None:
    summary = await stack.backup("app", verify=True)  # the verification runs as a child workflow
    await replay_and_record(stack.started[-1], "backup-and-verify")
    record = stack.repository.get("app", summary.id)
    report = record.last_verification
    assert report is not None and report.ok, report
    names = [check.name for check in report.checks]
    assert names[0] == "files match the manifest" and "rto within objective" in names
    assert report.rto_seconds is not None and report.rpo_seconds is not None
    assert report.rpo_seconds < 30  # continuous archiving: seconds, not a day
    (evidence,) = stack.evidence()
    assert evidence.outcome == "resolved" and evidence.evidence is not None
    assert evidence.evidence["id"] == report.id and "verified" in evidence.postmortem
    assert await stack.incident(stack.failure_incident_id("app", FAILURE_ALERT)) is None
    # The per-target gauges read the same repository.
    registry = CollectorRegistry()
    registry.register(BackupMetrics(stack.repository, [stack.target("app")]))
    text = generate_latest(registry).decode()
    assert 'zerotouch_backup_last_verified_timestamp_seconds{backup_target="app",engine="postgres"}' in text
    assert 'zerotouch_backup_rpo_seconds{backup_target="app",engine="postgres"}' in text


async def test_a_truncated_dump_is_an_incident_with_the_evidence(stack: BackupStack) -> None:
    summary = await stack.backup("app-dump")
    (dump,) = [path for path in stack.repository.data_path("app-dump", summary.id).rglob("*") if path.is_file()]
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    report, failure = await stack.verify("app-dump")
    await replay_and_record(stack.started[-1], "verification-failed-incident")
    assert not report.ok and "incident" in failure
    failed = {check.name for check in report.failures}
    assert "files match the manifest" in failed and len(failed) >= 2, report.checks  # and the restore itself
    incident = await eventually(lambda: stack.incident(stack.failure_incident_id("app-dump", FAILURE_ALERT)),
                                what="the BackupVerificationFailed incident")
    assert incident.labels["alertname"] == FAILURE_ALERT and incident.labels["backup_target"] == "app-dump"
    escalated = await eventually(
        lambda: _state_is(stack, stack.failure_incident_id("app-dump", FAILURE_ALERT), "escalated"),
        what="the incident escalated")
    assert escalated
    (evidence,) = stack.evidence()
    assert evidence.outcome == "escalated" and evidence.evidence is not None
    assert evidence.evidence["ok"] is False
    assert stack.repository.get("app-dump", summary.id).verified is False


async def test_nothing_to_verify_is_an_incident_too(stack: BackupStack) -> None:
    report_failure = await _verify_fails(stack, "app")
    assert "nothing to verify, no backup at all" in report_failure
    assert await eventually(lambda: stack.incident(stack.failure_incident_id("app", FAILURE_ALERT)),
                            what="the incident for a target without backups")


async def test_a_backup_that_cannot_be_taken_is_an_incident(stack: BackupStack) -> None:
    # The policy names a table the database does not have: the backup cannot record its stats.
    policy = yaml.safe_load(stack.policy_path.read_text())
    policy["backups"]["targets"][1]["tables"].append("no_such_table")
    stack.policy_path.write_text(yaml.safe_dump(policy))
    assert "no_such_table" in stack.target("app-dump").tables
    with pytest.raises(WorkflowFailureError) as failed:
        await stack.backup("app-dump")
    assert "no_such_table" in str(failed.value.cause)
    incident = await eventually(lambda: stack.incident(stack.failure_incident_id("app-dump", BACKUP_FAILED_ALERT)),
                                timeout=120, what="the BackupFailed incident")
    assert incident.labels["alertname"] == BACKUP_FAILED_ALERT
    assert stack.repository.backups("app-dump") == []  # nothing half-written is listed


async def test_retention_never_deletes_the_newest_verified_backup(stack: BackupStack) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = await stack.backup("app-dump", at=now - timedelta(days=3))
    report, failure = await stack.verify("app-dump", old.id)
    assert report.ok, (failure, report.checks)
    middle = await stack.backup("app-dump", at=now - timedelta(days=2))
    newest = await stack.backup("app-dump", at=now - timedelta(days=1))
    plan = await stack.retention("app-dump", dry_run=True)
    assert plan["app-dump"]["deleted"] == []  # daily=1 keeps the newest; the rest are newer than the verified one
    report, _ = await stack.verify("app-dump", newest.id)
    assert report.ok
    done = await stack.retention("app-dump")
    await replay_and_record(stack.started[-1], "retention-pruned")
    assert done["app-dump"]["deleted"] == [old.id, middle.id]
    assert [r.manifest.id for r in stack.repository.backups("app-dump")] == [newest.id]
    assert "newest verified backup" in done["app-dump"]["kept"][newest.id]


async def _verify_fails(stack: BackupStack, target: str) -> str:
    handle = await stack.client.start_workflow(
        VERIFICATION_WORKFLOW, VerifyInput(cluster=stack.cluster, arguments=VerifyArgs(target=target)),
        id=f"verify-none-{stack.cluster}", task_queue=queue_for(WORKFLOWS_QUEUE, stack.cluster))
    try:
        await handle.result()
    except WorkflowFailureError as error:
        return str(error.cause)
    raise AssertionError("verifying a target without backups must fail")


async def _state_is(stack: BackupStack, incident_id: str, state: str) -> bool:
    status = await stack.incident(incident_id)
    return status is not None and status.state == state


async def test_retention_prunes_the_wal_no_kept_backup_needs(stack: BackupStack) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    older = await stack.backup("app", at=now - timedelta(days=2))
    newer = await stack.backup("app", at=now - timedelta(days=1))
    report, failure = await stack.verify("app", newer.id)
    assert report.ok, (failure, report.checks)
    start = stack.repository.get("app", newer.id).manifest.wal_start_segment
    archive = stack.source.archive
    assert any(p.name[8:24] < start[8:] for p in archive.iterdir() if len(p.name) == 24), "nothing older to prune"
    done = await stack.retention("app")
    assert done["app"]["deleted"] == [older.id] and done["app"]["wal_segments_deleted"] > 0
    assert not [p.name for p in archive.iterdir() if len(p.name) == 24 and p.name[8:] < start[8:]]
    again, failure = await stack.verify("app", newer.id)  # the kept backup still restores from what is left
    assert again.ok, (failure, again.checks)


async def test_a_cancelled_verification_removes_its_throwaway_cluster(stack: BackupStack) -> None:
    backup = await stack.backup("app")
    # An assertion that takes 20 s keeps the restore busy until the cancellation reaches the worker
    # (with the next heartbeat the SDK sends: at most every 8 s with the 10 s heartbeat timeout).
    policy = yaml.safe_load(stack.policy_path.read_text())
    policy["backups"]["targets"][0]["assertions"].append({"name": "slow", "sql": "SELECT pg_sleep(20) IS NULL"})
    stack.policy_path.write_text(yaml.safe_dump(policy))
    handle = await stack.client.start_workflow(
        VERIFICATION_WORKFLOW, VerifyInput(cluster=stack.cluster, arguments=VerifyArgs(target="app",
                                                                                       backup_id=backup.id)),
        id=f"verify-cancel-{stack.cluster}", task_queue=queue_for(WORKFLOWS_QUEUE, stack.cluster))
    scratch = stack.root / "scratch"

    async def restoring() -> list[int]:
        return postmasters(scratch)

    await eventually(restoring, timeout=60, interval=0.05, what="the throwaway cluster running")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    # The workflow ended only after the activity cleaned up (WAIT_CANCELLATION_COMPLETED).
    assert postmasters(scratch) == [] and not any(scratch.iterdir())
    assert stack.repository.get("app", backup.id).verifications == []  # nothing claims a verdict


async def test_a_flipped_byte_in_a_base_backup_is_an_incident(stack: BackupStack) -> None:
    backup = await stack.backup("app")
    data = stack.repository.data_path("app", backup.id)
    victim = max((p for p in (data / "base" / "base").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0x01  # one bit, same size
    victim.write_bytes(bytes(content))
    report, failure = await stack.verify("app", backup.id)
    failed = {check.name for check in report.failures}
    assert not report.ok and {"files match the manifest", "pg_verifybackup"} <= failed, report.checks
    incident = await eventually(lambda: stack.incident(stack.failure_incident_id("app", FAILURE_ALERT)),
                                what="the incident for a corrupted base backup")
    assert incident.labels["alertname"] == FAILURE_ALERT and "incident" in failure


async def test_a_missing_wal_segment_is_an_incident_naming_it(stack: BackupStack) -> None:
    backup = await stack.backup("app")
    start = stack.repository.get("app", backup.id).manifest.wal_start_segment
    archive = stack.source.archive
    # Segments after the backup's first one, so the archive has one strictly before the newest to lose
    # (losing the newest is no gap: recovery would just end there).
    for _ in range(3):
        segment = stack.source.switch_wal()
        await eventually(_archived(archive, segment), what=f"{segment} archived")
    later = sorted(p.name for p in archive.iterdir() if len(p.name) == 24 and p.name[8:] > start[8:])
    assert len(later) >= 3, later
    missing = later[-2]
    (archive / missing).unlink()
    report, _ = await stack.verify("app", backup.id)
    (gap,) = [check for check in report.failures if check.name == "wal continuity"]
    assert missing in gap.output, gap.output
    incident = await eventually(lambda: stack.incident(stack.failure_incident_id("app", FAILURE_ALERT)),
                                what="the incident for a WAL gap")
    assert incident.labels["backup_target"] == "app"


def _archived(archive: Path, segment: str) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return (archive / segment).is_file()
    return probe


async def test_a_relative_wal_archive_is_found_in_the_state_directory(stack: BackupStack) -> None:
    # The shipped policy names `wal_archive: wal-archive`: backups, restores and retention all look there.
    (stack.root / "wal-here").symlink_to(stack.source.archive)
    policy = yaml.safe_load(stack.policy_path.read_text())
    policy["backups"]["targets"][0]["wal_archive"] = "wal-here"
    stack.policy_path.write_text(yaml.safe_dump(policy))
    now = datetime.now(UTC).replace(microsecond=0)
    older = await stack.backup("app", at=now - timedelta(days=2))
    newer = await stack.backup("app", at=now - timedelta(days=1))
    report, failure = await stack.verify("app", newer.id)
    assert report.ok, (failure, report.checks)
    done = await stack.retention("app")
    assert done["app"]["deleted"] == [older.id] and done["app"]["wal_segments_deleted"] > 0
