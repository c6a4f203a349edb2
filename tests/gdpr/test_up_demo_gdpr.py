"""The README's GDPR walkthrough on `zerotouch up`: an export, then an erasure, of a demo customer.

As a user would: a copy of the shipped policy with a short grace period (the shipped seven days
would make the walkthrough last a week), `zerotouch up`, then `zerotouch gdpr request export`,
`show`, `approve` by another approver, `download`; then `request erase`, `approve`, and `show`
until it is complete. The demo database then has no row of the customer, the receipts are in the
ledger and `zerotouch ledger verify` says the chain is intact; neither `up`'s log, the relay's
metrics (labels included) nor any CLI answer but the downloaded export holds the customer's e-mail
address or name.
The state dir is made with mkdtemp under /tmp: as root the demo database runs as `nobody`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from embedded import demo_database
from tests.backups.test_up_demo import POLICY, Up, processes_in
from tests.support.postgres import PostgresUnavailable, postgres_bin

REPO = Path(__file__).resolve().parents[2]
EMAIL = "customer42@shop.example"
DONE_WITHIN = 120.0  # seconds, for each request (the erasure includes its grace period)


def demo_policy(path: Path) -> Path:
    """The README's `sed 's/^  grace: 7d /  grace: 5s /'` of the shipped policy."""
    shipped = POLICY.read_text()
    demo = re.sub(r"^  grace: 7d ", "  grace: 5s ", shipped, flags=re.MULTILINE)
    assert demo != shipped and yaml.safe_load(demo)["gdpr"]["grace"] == "5s"
    path.write_text(demo)
    return path


class Cli:
    """CLI commands as a user types them, with ZEROTOUCH_POLICY exported and the state dir of `up`."""

    def __init__(self, state_dir: Path, policy: Path) -> None:
        self.state_dir = state_dir
        self.environment = {**{k: v for k, v in os.environ.items() if not k.startswith("ZEROTOUCH_")},
                            "ZEROTOUCH_POLICY": str(policy)}
        self.outputs: list[str] = []

    def __call__(self, *args: str, expect: int = 0) -> str:
        done = subprocess.run([sys.executable, "-m", "cli", *args, "--state-dir", str(self.state_dir)], cwd=REPO,
                              env=self.environment, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == expect, f"zerotouch {' '.join(args)} exited {done.returncode}:\n" \
                                          f"{done.stdout}{done.stderr}"
        self.outputs.append(done.stdout + done.stderr)
        return done.stdout

    def shown(self, request_id: str) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self("gdpr", "show", request_id, "--json"))
        return view

    def wait_for(self, up: Up, request_id: str, state: str) -> dict[str, Any]:
        deadline = time.monotonic() + DONE_WITHIN
        while True:
            view = self.shown(request_id)
            current = (view["status"] or {}).get("state")
            # "done" is the receipt: the status query says `done` a moment before the workflow completes.
            if view["receipt"] is not None if state == "done" else current == state:
                return view
            assert up.process.poll() is None, f"`up` exited:\n{up.output()[-3000:]}"
            assert time.monotonic() < deadline, f"{request_id} never reached {state}: {view}"
            time.sleep(0.5)


def customer_rows(state_dir: Path) -> tuple[int, int]:
    """(customers, orders) of the demo customer, read as the database's superuser."""
    with psycopg.connect(demo_database.DemoDatabase(state_dir).dsn(), dbname="shop") as db:
        row = db.execute("SELECT count(DISTINCT c.id), count(o.id) FROM customers c "
                         "LEFT JOIN orders o ON o.customer_id = c.id WHERE c.email = %s", (EMAIL,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def state_dir() -> Iterator[Path]:
    try:
        postgres_bin()
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))
    path = Path(tempfile.mkdtemp(prefix="zt-up-gdpr-"))
    try:
        yield path
    finally:
        for line in processes_in(path):  # never leave a server behind, even when the test failed
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def test_a_new_user_exports_then_erases_a_demo_customer(state_dir: Path, tmp_path: Path) -> None:
    policy = demo_policy(tmp_path / "demo-policy.yaml")
    up = Up(state_dir, tmp_path / "up.log", policy)
    zerotouch = Cli(state_dir, policy)
    try:
        customers, orders = customer_rows(state_dir)
        assert customers == 1, "the demo database seeds customer42"
        filed = ("--email", EMAIL, "--by", "alice", "--verification", "signed-in account")

        assert "filed as gdpr-demo-export" in zerotouch("gdpr", "request", "export", *filed,
                                                        "--request-id", "demo-export")
        zerotouch.wait_for(up, "demo-export", "awaiting_approval")
        zerotouch("gdpr", "approve", "demo-export", "--by", "alice", expect=1)  # four eyes: not the requester
        zerotouch("gdpr", "approve", "demo-export", "--by", "bob")
        exported = zerotouch.wait_for(up, "demo-export", "done")["receipt"]
        assert exported["outcome"] == "complete", exported
        out = tmp_path / "for-the-customer"
        zerotouch("gdpr", "download", "demo-export", "--out", str(out))
        document = json.loads((out / "demo-shop.json").read_text())
        assert [row["email"] for row in document["customers"]] == [EMAIL]
        assert len(document["orders"]) >= orders  # the demo's writer may have placed one since
        assert oct((out / "demo-shop.json").stat().st_mode & 0o777) == "0o600"

        zerotouch("gdpr", "request", "erase", *filed, "--request-id", "demo-erase")
        zerotouch.wait_for(up, "demo-erase", "awaiting_approval")
        zerotouch("gdpr", "approve", "demo-erase", "--by", "bob")
        erased = zerotouch.wait_for(up, "demo-erase", "done")["receipt"]
        assert erased["outcome"] == "complete", erased
        [store] = erased["stores"]
        assert store["matched"] == store["erased"] >= 1 + orders and store["requery_matches"] == 0, store
        assert customer_rows(state_dir) == (0, 0)

        listed = zerotouch("gdpr", "list")
        assert "demo-export" in listed and "demo-erase" in listed
        assert "intact" in zerotouch("ledger", "verify")
        metrics = httpx.get(f"{up.relay}/metrics", timeout=5).text  # labels included
        assert "zerotouch_" in metrics
        for text in [up.output(), metrics, *zerotouch.outputs]:  # the export's own file is the one place it may be
            assert EMAIL not in text and "Customer 42" not in text
    finally:
        code = up.stop()
    assert code == 0, up.output()[-3000:]
    assert processes_in(state_dir) == [], "`zerotouch up` left processes running after it stopped"
