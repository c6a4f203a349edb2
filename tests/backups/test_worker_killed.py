"""A backup worker killed mid-restore: the retried attempt sweeps its throwaway cluster and finishes cleanly.

The worker is its own OS process (as a pod would run it), killed with SIGKILL while its scratch
PostgreSQL runs; that server outlives it (PostgreSQL daemonizes). A second worker picks the
activity up after the heartbeat timeout, stops and removes the leftover, and restores again.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.backups.conftest import running_workers, worker_settings, write_policy
from tests.backups.conftest_pg import postmasters, processes_in, scratch_root
from tests.support.pg_source import ArchivingSource
from tests.support.processes import ChildProcess, zerotouch_command
from tests.support.waiting import eventually
from zerotouch.backup_models import BackupSummary, VerificationReport
from zerotouch.backup_repository import DirectoryRepository
from zerotouch.backups import BACKUP_WORKFLOW, VERIFICATION_WORKFLOW, BackupArgs, BackupInput, VerifyArgs, VerifyInput
from zerotouch.names import BACKUP_QUEUE, OBSERVE_QUEUE, WORKFLOWS_QUEUE, queue_for


def backup_worker(root: Path, address: str, cluster: str, policy: Path, env: dict[str, str],
                  index: int) -> ChildProcess:
    return ChildProcess(
        zerotouch_command("worker", "--queue", BACKUP_QUEUE, "--cluster", cluster, "--address", address,
                          "--policy", str(policy)),
        root / f"backup-worker-{index}.log", name=f"backup worker {index}", cwd=root, new_session=True,
        env={**os.environ, **env, "ZEROTOUCH_STATE_DIR": str(root),
             "ZEROTOUCH_BACKUP_REPOSITORY": str(root / "repository"),
             "ZEROTOUCH_SCRATCH_DIR": str(root / "scratch")})


async def test_a_worker_killed_mid_restore_leaks_no_cluster(dev_env: WorkflowEnvironment,
                                                          source: ArchivingSource) -> None:
    client = dev_env.client
    address = client.service_client.config.target_host
    cluster = f"k{uuid.uuid4().hex[:8]}"
    connection = f"kill-{cluster}"
    env = {f"ZEROTOUCH_PG_{connection.upper().replace('-', '_')}_DSN": source.server.admin_dsn}
    with scratch_root() as root:
        policy = write_policy(root / "policy.yaml", source, connection, root / "repository")
        first = backup_worker(root, address, cluster, policy, env, 0)
        second = backup_worker(root, address, cluster, policy, env, 1)
        try:
            await first.spawn()
            async with running_workers(client, worker_settings(root, policy), cluster,
                                       queues=(WORKFLOWS_QUEUE, OBSERVE_QUEUE)):
                taken = await client.execute_workflow(
                    BACKUP_WORKFLOW, BackupInput(cluster=cluster, scheduled_time=datetime.now(UTC),
                                                 arguments=BackupArgs(target="app")),
                    id=f"backup-{cluster}", task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
                backup = BackupSummary.model_validate(taken)
                handle = await client.start_workflow(
                    VERIFICATION_WORKFLOW, VerifyInput(cluster=cluster, arguments=VerifyArgs(target="app")),
                    id=f"verify-{cluster}", task_queue=queue_for(WORKFLOWS_QUEUE, cluster))
                scratch = root / "scratch"

                async def restoring() -> list[int]:
                    return postmasters(scratch)

                leftover = await eventually(restoring, timeout=90, interval=0.05,
                                            what="a scratch PostgreSQL running for the restore")
                await first.kill()  # SIGKILL: no cleanup of its own
                assert postmasters(scratch) == leftover, "the scratch server outlived the worker"
                await second.spawn()
                started = time.monotonic()
                await handle.result()
                report = VerificationReport.model_validate(await handle.query("report"))
                assert report.ok, report.checks
                assert time.monotonic() - started < 120
                assert processes_in(scratch) == [] and not any(scratch.iterdir())
                for pid in leftover:
                    assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"leaked scratch server {pid}"
                recorded = DirectoryRepository(root / "repository").get("app", backup.id)
                assert [v.id for v in recorded.verifications] == [report.id]  # one report, not two
        finally:
            await first.kill()
            await second.stop()
        if processes_in(root):
            pytest.fail(f"processes left in {root}: {processes_in(root)}")


def _zombie(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


