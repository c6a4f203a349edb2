"""`zerotouch up` applies the shipped schedules; the `zerotouch schedules` commands read and steer them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import interrupt
from zerotouch.policy import load_policy
from zerotouch.ports import free_port

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "policy" / "zerotouch.yaml"


def zerotouch(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "ZEROTOUCH_STATE_DIR": str(state_dir)}, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"zerotouch {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


class Up:
    """`zerotouch up` (no sandbox) on free ports; `stop` sends SIGINT and waits, kill as a last resort."""

    def __init__(self, state_dir: Path, log: Path) -> None:
        self.log_path = log
        self.log = log.open("ab")
        command = [sys.executable, "-m", "cli", "up", "--state-dir", str(state_dir), "--policy", str(POLICY)]
        for name in ("temporal", "ui", "relay"):
            command += [f"--{name}-port", str(free_port())]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 90
        while "zerotouch is up" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`zerotouch up` did not come up:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        self.endpoints = json.loads((state_dir / "endpoints.json").read_text())

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        interrupt(self.process)
        self.log.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def up(state_dir: Path, tmp_path: Path) -> Iterator[Up]:
    running = Up(state_dir, tmp_path / "up.log")
    try:
        yield running
    finally:
        running.stop()


def test_up_applies_the_shipped_schedules_and_the_cli_shows_them(up: Up, state_dir: Path, tmp_path: Path) -> None:
    shipped = [s.name for s in load_policy(POLICY).schedules]
    assert shipped, "the shipped policy declares no schedule"
    assert f"schedules       {', '.join(shipped)} (applied: {len(shipped)} created)" in up.output()

    rows = json.loads(zerotouch("schedules", "list", "--json", state_dir=state_dir).stdout)
    assert sorted(row["name"] for row in rows) == sorted(shipped) or rows == []  # eventually consistent
    shown = json.loads(zerotouch("schedules", "show", shipped[0], "--json", state_dir=state_dir).stdout)
    assert shown["next_run"] and shown["paused"] is False and shown["spec"].startswith("15 3 * * *")
    text = zerotouch("schedules", "show", shipped[0], state_dir=state_dir).stdout
    assert "next run" in text and "last run   -" in text
    assert "no changes" in zerotouch("schedules", "diff", "--policy", str(POLICY), state_dir=state_dir).stdout

    zerotouch("schedules", "pause", shipped[0], "--note", "maintenance", state_dir=state_dir)
    shown = json.loads(zerotouch("schedules", "show", shipped[0], "--json", state_dir=state_dir).stdout)
    assert shown["paused"] is True and shown["note"] == "maintenance"
    # apply leaves a paused schedule paused (and has nothing else to do).
    assert "no changes" in zerotouch("schedules", "apply", "--policy", str(POLICY), state_dir=state_dir).stdout

    missing = zerotouch("schedules", "show", "no-such-schedule", state_dir=state_dir, check=False)
    assert missing.returncode == 1 and "no schedule 'no-such-schedule' managed by zerotouch" in missing.stderr
    bad = zerotouch("schedules", "backfill", shipped[0], "--start", "yesterday", "--end", "now",
                    state_dir=state_dir, check=False)
    assert bad.returncode == 2 and "not an ISO 8601 time" in bad.stderr

    # The per-schedule series are on up's /metrics.
    deadline = time.monotonic() + 20
    while True:
        page = httpx.get(f"{up.endpoints['relay']}/metrics", timeout=5).text
        if f'zerotouch_schedule_next_run_timestamp_seconds{{schedule="{shipped[0]}"' in page:
            break
        assert time.monotonic() < deadline, "no zerotouch_schedule_* series on /metrics"
        time.sleep(0.3)
    assert f'zerotouch_schedule_skipped_overlap{{schedule="{shipped[0]}",workflow="ScheduledJobWorkflow"}} 0.0' in page

    # Starting again on the same state re-applies: nothing to change (the pause stays).
    up.stop()
    again = Up(state_dir, tmp_path / "up-again.log")
    try:
        assert f"schedules       {', '.join(shipped)} (unchanged)" in again.output()
        shown = json.loads(zerotouch("schedules", "show", shipped[0], "--json", state_dir=state_dir).stdout)
        assert shown["paused"] is True
    finally:
        again.stop()
