"""`zerotouch up` backs up its demo database and proves the backup by a real test restore.

The state dir is made with mkdtemp under /tmp, not in pytest's tmp_path: as root the demo
database runs as `nobody`, who cannot enter /tmp/pytest-of-root (0700).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.pg_binaries import PostgresBinariesMissing
from embedded import demo_database
from embedded.demo_backups import NO_POSTGRES_NOTE, EmbeddedBackups, demo_schedules
from embedded.statedir import StateDir
from starters.schedules import apply, pause, show
from tests.support.postgres import PostgresUnavailable, postgres_bin
from zerotouch.backup_models import VerificationReport
from zerotouch.backup_repository import DirectoryRepository
from zerotouch.binaries import temporal_cli
from zerotouch.policy import load_policy
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "policy" / "zerotouch.yaml"
VERIFIED_WITHIN = 240.0  # seconds; the first backup and its test restore take about 15 s on two cores


class Up:
    """`zerotouch up` (no sandbox) on free ports, as a user runs it; `stop` is Ctrl-C."""

    def __init__(self, state_dir: Path, log: Path, policy: Path = POLICY) -> None:
        self.log_path, self.log = log, log.open("ab")
        command = [sys.executable, "-m", "cli", "up", "--state-dir", str(state_dir), "--policy", str(policy)]
        for name in ("temporal", "ui", "relay"):
            command += [f"--{name}-port", str(free_port())]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ZEROTOUCH_")}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env={**environment, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 120
        while "zerotouch is up" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`zerotouch up` did not come up:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        self.relay = StateDir(state_dir).endpoints()["relay"]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def processes_in(state_dir: Path) -> list[str]:
    """Processes working in, or started with a path in, the state dir (postgres works in its data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if cwd.startswith(str(state_dir)) or str(state_dir) in command:
            found.append(f"{entry.name}: {command.strip()} (in {cwd})")
    return found


def proven(repository: DirectoryRepository, target: str) -> VerificationReport | None:
    """The newest passing verification of ``target`` that measured both RTO and RPO."""
    reports = [v for record in repository.backups(target) for v in record.verifications]
    passed = [v for v in reports if v.ok and v.rto_seconds is not None and v.rpo_seconds is not None]
    return max(passed, key=lambda v: v.finished_at) if passed else None


@pytest.fixture
def state_dir() -> Iterator[Path]:
    try:
        postgres_bin()
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))
    path = Path(tempfile.mkdtemp(prefix="zt-up-demo-"))
    try:
        yield path
    finally:
        leftovers = processes_in(path)
        for line in leftovers:  # never leave a server behind, even when the test failed
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def test_up_backs_up_the_demo_database_and_proves_it_by_a_test_restore(state_dir: Path, tmp_path: Path) -> None:
    up = Up(state_dir, tmp_path / "up.log")
    try:
        assert "  backups         demo-db, demo-db-dump (shop on 127.0.0.1:" in up.output()
        assert f"WAL archive {state_dir.resolve() / 'wal-archive'}); first backup + test restore started" in up.output()
        repository = DirectoryRepository(state_dir / "backups")
        deadline = time.monotonic() + VERIFIED_WITHIN
        page = ""
        while (report := proven(repository, "demo-db")) is None or 'backup_target="demo-db"' not in page:
            up_alive = up.process.poll() is None
            assert up_alive and time.monotonic() < deadline, (
                f"no verified backup of demo-db with RTO and RPO within {VERIFIED_WITHIN:.0f}s "
                f"(backups: {[r.manifest.id for r in repository.backups('demo-db')]}):\n{up.output()[-4000:]}")
            time.sleep(1)
            if report is not None:
                page = "\n".join(line for line in httpx.get(f"{up.relay}/metrics", timeout=5).text.splitlines()
                                 if line.startswith("zerotouch_backup_last_verified_timestamp_seconds{"))
        assert report.rpo_seconds is not None and report.rpo_seconds <= 900  # the policy's RPO objective
        assert {c.name for c in report.checks} >= {"files match the manifest", "rto within objective",
                                                    "rpo within objective"}
        # The database keeps changing between backups: the shop places orders, the canary ticks.
        with psycopg.connect(demo_database.DemoDatabase(state_dir).dsn()) as shop:
            row = shop.execute("SELECT count(*), max(placed_at) > now() - interval '1 minute' FROM orders").fetchone()
        assert row is not None and row[0] > 5000 and row[1] is True
        running = [int(line.split(":")[0]) for line in processes_in(state_dir)]
        assert demo_database.DemoDatabase(state_dir).server_pid() in running  # seen by the leftover check below
    finally:
        code = up.stop()
    assert code == 0, up.output()[-3000:]
    assert processes_in(state_dir) == [], "`zerotouch up` left processes running after it stopped"

    # Started again: the same data, no second first backup.
    again = Up(state_dir, tmp_path / "up-again.log")
    try:
        assert "first backup" not in again.output() and "  backups         demo-db, demo-db-dump" in again.output()
        with psycopg.connect(demo_database.DemoDatabase(state_dir).dsn()) as shop:
            orders = shop.execute("SELECT count(*) FROM orders").fetchone()
        assert orders is not None and orders[0] >= row[0]
        assert [r.manifest.id for r in repository.backups("demo-db")] == [report.backup_id]
    finally:
        code = again.stop()
    assert code == 0, again.output()[-3000:]
    assert processes_in(state_dir) == []


# --- without PostgreSQL: schedules paused with a note, unpaused by the next `up` that has it ---------


@pytest_asyncio.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of this test's own: `up` manages schedules of the default cluster scope."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(),
                                                data_converter=data_converter(), port=free_port())
    try:
        yield env
    finally:
        await env.shutdown()


async def test_without_postgres_the_demo_schedules_are_paused_until_an_up_that_has_it(
        dev_server: WorkflowEnvironment, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, policy = dev_server.client, load_policy(POLICY)
    await apply(client, policy.schedules)
    demo = demo_schedules(policy)
    assert demo == ["backup-demo-db-daily", "backup-demo-db-dump-daily", "verify-demo-db-weekly",
                    "verify-demo-db-dump-weekly"]
    await pause(client, demo[0], "a person's own pause")

    def missing() -> Path:
        raise PostgresBinariesMissing("PostgreSQL's server programs are not installed")

    with monkeypatch.context() as patched:
        patched.setattr(demo_database, "find_bin_dir", missing)
        backups = EmbeddedBackups(state_dir, policy)
        await backups.start(client)  # does not raise
    assert backups.database is None and backups.banner.startswith("off: PostgreSQL is not installed")
    assert [(await show(client, name)).note for name in demo] == ["a person's own pause"] + [NO_POSTGRES_NOTE] * 3
    assert not (await show(client, "backup-retention-daily")).paused

    backups = EmbeddedBackups(state_dir, policy)
    await backups.start(client)
    try:
        assert backups.database is not None and f"unpaused {', '.join(demo[1:])}" in backups.banner
        rows = [await show(client, name) for name in demo]
        assert [r.paused for r in rows] == [True, False, False, False]  # a person's pause is theirs to lift
    finally:
        backups.stop()
    assert processes_in(state_dir) == []
