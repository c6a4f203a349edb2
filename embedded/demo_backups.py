"""Backups in `zerotouch up`: the demo database, its schedules, its first verified backup, the gauges.

The policy's targets whose connection is `demo` are the demo database's: `up` starts it (when
PostgreSQL is installed), hands its DSN to the in-process backup worker through
``ZEROTOUCH_PG_DEMO_DSN`` and, when the repository holds no backup of a target yet, starts that
target's first backup with a test restore at once instead of waiting for tonight's schedule.
Without PostgreSQL the demo's backup and verification schedules are paused with a note saying
why; a later `up` that starts the database unpauses those with exactly that note, and no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import psycopg
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.pg_binaries import PostgresBinariesMissing
from activities.pg_scratch import server_pid, sweep_scratch
from embedded.demo_database import DemoDatabase, DemoDatabaseUnavailable
from starters.schedules import ScheduleNotManaged, pause, show, unpause
from zerotouch.backup_metrics import BackupMetrics
from zerotouch.backup_repository import BackupRepository, open_repository
from zerotouch.backups import (
    BACKUP_ARGUMENTS,
    BACKUP_WORKFLOW,
    VERIFICATION_WORKFLOW,
    BackupArgs,
    BackupInput,
    BackupTarget,
    targets_named,
)
from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy

log = logging.getLogger("zerotouch.up")

DEMO_CONNECTION = "demo"
# Every closed segment is archived whole (1 MB): a switch every 2 min bounds the demo's archive to
# about 720 MB a day (retention prunes what no kept backup needs) and its RPO to about 2 min.
DEMO_ARCHIVE_TIMEOUT = 120
DSN_VARIABLE = "ZEROTOUCH_PG_DEMO_DSN"
INSTALL_HINT = "apt-get install postgresql"
NO_POSTGRES_NOTE = (f"zerotouch up: PostgreSQL is not installed, so there is no demo database to back up "
                    f"({INSTALL_HINT}); the next `zerotouch up` with it unpauses this")
NO_DATABASE_NOTE = ("zerotouch up: the demo database did not start (its reason is in up's banner); the next "
                    "`zerotouch up` that starts it unpauses this")
UNPAUSED_NOTE = "zerotouch up: the demo database is running"


class WorkerPaths(TypedDict):
    """The `WorkerSettings` fields naming the backup worker's directories."""

    state_dir: str
    backup_repository: str
    scratch_dir: str


def worker_paths(state_dir: Path) -> WorkerPaths:
    """In ``state_dir`` (the one `up` was given), unless $ZEROTOUCH_BACKUP_REPOSITORY / _SCRATCH_DIR say otherwise."""
    state = state_dir.resolve()
    return WorkerPaths(state_dir=str(state),
                       backup_repository=os.environ.get("ZEROTOUCH_BACKUP_REPOSITORY") or str(state / "backups"),
                       scratch_dir=os.environ.get("ZEROTOUCH_SCRATCH_DIR") or str(state / "scratch"))


def demo_targets(policy: Policy) -> list[BackupTarget]:
    return [t for t in policy.backups.targets if t.engine == "postgres" and t.connection == DEMO_CONNECTION]


def demo_schedules(policy: Policy) -> list[str]:
    """The schedules that back up or verify a demo target (retention needs no database)."""
    names = {t.name for t in demo_targets(policy)}
    found = []
    for declaration in policy.schedules:
        if declaration.workflow in (BACKUP_WORKFLOW, VERIFICATION_WORKFLOW):
            arguments = BACKUP_ARGUMENTS[declaration.workflow].model_validate(declaration.arguments)
            if names & set(targets_named(arguments)):
                found.append(declaration.name)
    return found


class EmbeddedBackups:
    """What `up` runs for backups; `start` before the workers, `stop` after them."""

    def __init__(self, state_dir: Path, policy: Policy) -> None:
        self.state_dir, self.policy = state_dir.resolve(), policy
        self.paths = worker_paths(state_dir)
        self.repository: BackupRepository = open_repository(
            policy.backups.repository or self.paths["backup_repository"], self.state_dir)
        self.metrics = BackupMetrics(self.repository, policy.backups.targets)
        self.database: DemoDatabase | None = None
        self.banner = ""

    async def start(self, client: Client) -> None:
        """Start the demo database and its first backups, or pause its schedules saying why; never raises
        for a database that cannot run here."""
        targets, schedules = demo_targets(self.policy), demo_schedules(self.policy)
        if not targets:
            return
        canary = next((t.canary_table for t in targets if t.canary_table), "zerotouch_canary")
        # Where the physical target expects the WAL is where the database archives it.
        archive = next((Path(t.with_paths_under(self.state_dir).wal_archive) for t in targets if t.wal_archive), None)
        database = DemoDatabase(self.state_dir, archive=archive, canary_table=canary,
                                archive_timeout=DEMO_ARCHIVE_TIMEOUT)
        try:
            await asyncio.to_thread(database.start)
        except PostgresBinariesMissing:
            held = await _hold(client, schedules, NO_POSTGRES_NOTE)
            self.banner = f"off: PostgreSQL is not installed (`{INSTALL_HINT}` turns the demo backups on)"
            self.banner += f"; paused {', '.join(held)}" if held else ""
            return
        except (DemoDatabaseUnavailable, OSError, psycopg.Error) as error:
            if not isinstance(error, DemoDatabaseUnavailable):  # that one's message says all there is to say
                log.exception("the demo database did not start")
            held = await _hold(client, schedules, NO_DATABASE_NOTE)
            self.banner = f"off: the demo database did not start: {error}"
            self.banner += f"; paused {', '.join(held)}" if held else ""
            return
        self.database = database
        os.environ[DSN_VARIABLE] = database.dsn()  # the in-process backup worker resolves `demo` from it
        released = await _release(client, schedules)
        first = await self._first_backups(client, targets)
        self.banner = (f"{', '.join(t.name for t in targets)} ({_databases(targets)} on {database.address}, "
                       f"WAL archive {database.archive})")
        if released:
            self.banner += f"; unpaused {', '.join(released)}"
        self.banner += "; first backup + test restore started" if first else ""
        self.banner += " — zerotouch backups list"

    async def _first_backups(self, client: Client, targets: list[BackupTarget]) -> list[str]:
        """Each target with no backup yet gets one now, verified by a test restore (once: a restart
        finds the run still going by its workflow ID; a failed one is tried again)."""
        started = []
        for target in targets:
            if await asyncio.to_thread(self.repository.backups, target.name):
                continue
            await client.start_workflow(
                BACKUP_WORKFLOW,
                BackupInput(arguments=BackupArgs(target=target.name, verify=True),
                            scheduled_time=datetime.now(UTC).replace(microsecond=0)),
                id=f"zerotouch-backup-first-{target.name}", task_queue=queue_for(WORKFLOWS_QUEUE),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            started.append(target.name)
        return started

    def stop(self) -> None:
        """After the workers stopped: no test-restore server left behind, then the demo database."""
        database, self.database = self.database, None
        if database is None:
            return
        scratch = Path(self.paths["scratch_dir"])
        # A restore cut short by the shutdown sweeps its own scratch on its next attempt; until then
        # its server must not outlive `up`.
        for leftover in sorted(p for p in scratch.iterdir() if p.is_dir()) if scratch.is_dir() else []:
            if any(server_pid(pid.parent) for pid in [*leftover.glob("postmaster.pid"),
                                                       *leftover.glob("*/postmaster.pid")]):
                with contextlib.suppress(OSError):
                    sweep_scratch(leftover, database.bin_dir)
        database.stop()
        os.environ.pop(DSN_VARIABLE, None)


def _databases(targets: list[BackupTarget]) -> str:
    return ", ".join(sorted({t.database for t in targets}))


async def _hold(client: Client, names: list[str], note: str) -> list[str]:
    """Pause the running ones with ``note``; one a person paused keeps their pause and note."""
    held = []
    for name in names:
        with contextlib.suppress(ScheduleNotManaged):
            row = await show(client, name)
            if not row.paused:
                await pause(client, name, note)
                held.append(name)
            elif row.note in (NO_POSTGRES_NOTE, NO_DATABASE_NOTE):
                held.append(name)
    return held


async def _release(client: Client, names: list[str]) -> list[str]:
    """Unpause only what `up` itself paused (its exact notes); a person's pause stays."""
    released = []
    for name in names:
        with contextlib.suppress(ScheduleNotManaged):
            row = await show(client, name)
            if row.paused and row.note in (NO_POSTGRES_NOTE, NO_DATABASE_NOTE):
                await unpause(client, name, UNPAUSED_NOTE)
                released.append(name)
    return released
