"""`zerotouch up --sandbox` ships a rotation a new user can approve and watch end to end.

As a user would: `up --sandbox`, then `zerotouch secrets rotate checkout-db --by alice`, `show`,
`approve --by bob`, and `show --json` until it is done. The sandbox's Secret then holds checkout_b
and checkout_a can no longer log in to the demo database; the next `up` leaves that Secret alone.
The state dir is made with mkdtemp under /tmp: as root the demo database runs as `nobody`, who
cannot enter /tmp/pytest-of-root (0700).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s

from cli.common import Connection
from embedded import demo_database
from embedded.statedir import StateDir
from tests.backups.test_up_demo import processes_in
from tests.support.postgres import PostgresUnavailable, postgres_bin
from zerotouch.ports import free_port
from zerotouch.rotation_models import RotationResult

REPO = Path(__file__).resolve().parents[2]
NAME, NAMESPACE, SECRET = "checkout-db", "shop", "checkout-db"
WORKFLOW_ID = "zerotouch-rotation-shop-checkout-db"
UP_WITHIN, APPROVAL_WITHIN, ROTATED_WITHIN = 120.0, 60.0, 180.0  # seconds
# Without ZEROTOUCH_* from the test's environment: the CLI and `up` read the shipped policy and the state dir.
ENVIRONMENT = {**{k: v for k, v in os.environ.items() if not k.startswith("ZEROTOUCH_")}, "PYTHONUNBUFFERED": "1"}


class Up:
    """`zerotouch up --sandbox` on free ports, as a user runs it; `stop` is Ctrl-C."""

    def __init__(self, state_dir: Path, log: Path, policy: Path | None = None) -> None:
        self.log_path, self.log = log, log.open("ab")
        command = [sys.executable, "-m", "cli", "up", "--sandbox", "--no-monitoring", "--state-dir", str(state_dir)]
        command += ["--policy", str(policy)] if policy else []
        for name in ("temporal", "ui", "relay", "sandbox"):
            command += [f"--{name}-port", str(free_port())]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env=ENVIRONMENT)
        deadline = time.monotonic() + UP_WITHIN
        while "Ctrl-C stops everything." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`zerotouch up --sandbox` did not come up:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        self.sandbox = str(StateDir(state_dir).endpoints()["sandbox"])

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def banner_line(self, start: str) -> str:
        return next((line for line in self.output().splitlines() if line.startswith(start)), "")

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


def zerotouch(state_dir: Path, *args: str) -> str:
    """One CLI command as a user types it (plus --state-dir, since the state is not in ./.zerotouch)."""
    done = subprocess.run([sys.executable, "-m", "cli", *args, "--state-dir", str(state_dir)], cwd=REPO,
                          env=ENVIRONMENT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"zerotouch {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def shown(state_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(zerotouch(state_dir, "secrets", "show", NAME, "--json"))
    return row


def pending_approval(state_dir: Path) -> dict[str, Any] | None:
    status = (shown(state_dir)["running"] or {}).get("status") or {}
    request: dict[str, Any] | None = status.get("pending_approval")
    return request


def secret_data(sandbox: str) -> dict[str, str]:
    configuration = k8s.Configuration()
    configuration.host = sandbox
    with k8s.ApiClient(configuration) as api_client:
        secret = k8s.CoreV1Api(api_client).read_namespaced_secret(SECRET, NAMESPACE)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def logs_in(state_dir: Path, user: str, password: str) -> bool:
    """A consumer's login: over TCP to `shop` with the password (the demo database's HBA wants SCRAM)."""
    superuser = psycopg.conninfo.conninfo_to_dict(demo_database.DemoDatabase(state_dir).dsn())
    dsn = psycopg.conninfo.make_conninfo(host=superuser["host"], port=superuser["port"], dbname="shop", user=user,
                                         password=password, connect_timeout=5)
    try:
        with psycopg.connect(dsn) as connection:
            connection.execute("SELECT count(*) FROM orders JOIN customers ON customers.id = customer_id").fetchone()
    except psycopg.OperationalError:
        return False
    return True


def can_login(state_dir: Path, role: str) -> bool:
    with psycopg.connect(demo_database.DemoDatabase(state_dir).dsn()) as admin:
        row = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return bool(row and row[0])


def poll(what: str, probe: Any, up: Up, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert up.process.poll() is None, f"`up` exited while waiting for {what}:\n{up.output()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s:\n{up.output()[-3000:]}"
        time.sleep(1)
    return found


async def result_of(state_dir: Path) -> RotationResult:
    client = await Connection(state_dir=str(state_dir)).client()
    return await client.get_workflow_handle(WORKFLOW_ID, result_type=RotationResult).result()


@pytest.fixture
def state_dir() -> Iterator[Path]:
    try:
        postgres_bin()
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))
    path = Path(tempfile.mkdtemp(prefix="zt-up-rotation-"))
    try:
        yield path
    finally:
        for line in processes_in(path):  # never leave a server behind, even when the test failed
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def test_a_new_user_rotates_the_demo_credential_with_approval_and_watches_it_end_to_end(
        state_dir: Path, tmp_path: Path) -> None:
    up = Up(state_dir, tmp_path / "up.log")
    outputs = []
    try:
        assert up.banner_line("  rotation demo   ").startswith(
            "  rotation demo   checkout-db (shop/checkout-db holds checkout_a: seeded with a new password)"), \
            up.output()[-3000:]
        before = secret_data(up.sandbox)
        assert before["username"] == "checkout_a" and logs_in(state_dir, "checkout_a", before["password"])

        outputs.append(zerotouch(state_dir, "secrets", "rotate", NAME, "--by", "alice"))
        assert f"{NAME}: started {WORKFLOW_ID}" in outputs[-1]
        poll("approval request", lambda: pending_approval(state_dir), up, APPROVAL_WITHIN)
        outputs.append(zerotouch(state_dir, "secrets", "show", NAME))
        assert "awaiting_approval" in outputs[-1] and f"zerotouch secrets approve {NAME} --by NAME" in outputs[-1]
        assert logs_in(state_dir, "checkout_a", secret_data(up.sandbox)["password"]), "nothing changes before approval"

        outputs.append(zerotouch(state_dir, "secrets", "approve", NAME, "--by", "bob"))

        def done() -> dict[str, Any] | None:
            row = shown(state_dir)
            outputs.append(json.dumps(row))
            status = (row["running"] or {}).get("status") or {}
            finished = row["running"] is None and row["state"]["stage"] == "revoked"
            return row if finished or status.get("outcome") == "rotated" else None

        row = poll("rotated rotation", done, up, ROTATED_WITHIN)
        result = asyncio.run(result_of(state_dir))
        assert result.outcome == "rotated", result
        assert row["state"]["current"]["login"] == "checkout_b"

        after = secret_data(up.sandbox)
        assert after["username"] == "checkout_b" and logs_in(state_dir, "checkout_b", after["password"])
        assert not logs_in(state_dir, "checkout_a", before["password"]) and not can_login(state_dir, "checkout_a")
        passwords = {before["password"], after["password"]}
        for text in [up.output(), *outputs]:  # the banner, up's log and every CLI answer: references only
            assert not any(password in text for password in passwords)
    finally:
        code = up.stop()
    assert code == 0, up.output()[-3000:]
    assert processes_in(state_dir) == [], "`zerotouch up` left processes running after it stopped"

    # Started again: the rotated Secret works, so it is left as it is.
    again = Up(state_dir, tmp_path / "up-again.log")
    try:
        assert again.banner_line("  rotation demo   ").startswith(
            "  rotation demo   checkout-db (shop/checkout-db holds checkout_b: works)"), again.output()[-3000:]
        assert secret_data(again.sandbox) == after
        assert logs_in(state_dir, "checkout_b", after["password"]) and not can_login(state_dir, "checkout_a")
        assert after["password"] not in again.output()
    finally:
        code = again.stop()
    assert code == 0, again.output()[-3000:]
    assert processes_in(state_dir) == []
