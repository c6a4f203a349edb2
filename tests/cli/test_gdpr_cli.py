"""`zerotouch gdpr`: file a request, list and show it, approve, deny and extend it, with the real workflow.

Against the Temporal dev server, a throwaway PostgreSQL with a customers table in the data map, and
zerotouch's own workers (workflows, observe, data); the vault key in the environment, the vault
under the test's directory. No test subject's e-mail address appears in any output or history,
except on the command line that typed it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from cli.main import main
from tests.support.postgres import Postgres, PostgresUnavailable, running_postgres
from tests.workflows.policies import make_policy
from workers.run import build_workers
from zerotouch.gdpr import dsr_workflow_id
from zerotouch.gdpr_models import DsrStatus
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, QUERY_STATUS, WORKFLOWS_QUEUE
from zerotouch.policy import Policy
from zerotouch.ports import free_port
from zerotouch.settings import WorkerSettings

KEY_ENV = "ZEROTOUCH_GDPR_KEY"
ALICE = f"alice.{uuid.uuid4().hex[:6]}@example.test"
BOB = f"bob.{uuid.uuid4().hex[:6]}@example.test"
SCHEMA = "CREATE TABLE customers (id serial PRIMARY KEY, email text, user_id text, name text NOT NULL)"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with running_postgres(max_connections=30) as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.fail(str(missing))


@dataclass
class Setup:
    cluster: str
    policy: Policy
    options: tuple[str, ...]
    settings: WorkerSettings


@pytest.fixture
def setup(dev_env: WorkflowEnvironment, postgres: Postgres, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A shop database with two customers, its data map in the policy, the key set, the vault in tmp_path."""
    database = postgres.create_database("gdprcli")
    with psycopg.connect(postgres.dsn(dbname=database), autocommit=True) as connection:
        connection.execute(SCHEMA)
        for email, user_id, name in ((ALICE, "u-alice", "Alice"), (BOB, "u-bob", "Bob")):
            connection.execute("INSERT INTO customers (email, user_id, name) VALUES (%s, %s, %s)",
                               (email, user_id, name))
    cluster = f"g{uuid.uuid4().hex[:8]}"
    reference = f"shop-{cluster}"
    monkeypatch.setenv(f"ZEROTOUCH_PG_{reference.upper().replace('-', '_')}_DSN", postgres.dsn())
    monkeypatch.setenv(f"ZEROTOUCH_PG_DOWN_{cluster.upper()}_DSN", f"host=127.0.0.1 port={free_port()} user=x")
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    policy = make_policy(gdpr={"storage": str(tmp_path / "vault"), "stores": {"shop": {
        "kind": "postgres", "connection": reference, "database": database,
        "tables": {"customers": {"identity": {"email": "email", "user_id": "user_id"}}}}}})
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))  # JSON is YAML
    settings = WorkerSettings(kubernetes_url=None, prometheus_url=None, policy_path=str(policy_file),
                              ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", state_dir=str(tmp_path / "state"))
    options = ("--address", dev_env.client.service_client.config.target_host, "--state-dir", str(tmp_path / "state"),
               "--cluster", cluster)
    return Setup(cluster, policy, options, settings)


@contextlib.asynccontextmanager
async def workers(client: Client, setup: Setup) -> AsyncIterator[None]:
    """zerotouch's workflow, observe (policy, ledger) and data (the stores) workers for the test's cluster."""
    with ThreadPoolExecutor(max_workers=setup.settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, (WORKFLOWS_QUEUE, OBSERVE_QUEUE, DATA_QUEUE), setup.settings,
                                        http=http, executor=executor, cluster=setup.cluster):
                await stack.enter_async_context(worker)
            yield


class Cli:
    """Runs `zerotouch` (its own event loop, so in a thread); keeps every output to check for e-mail addresses."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.outputs: list[str] = []

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        status = await asyncio.to_thread(main, list(args))
        captured = self.capsys.readouterr()
        self.outputs += [captured.out, captured.err]
        return status, captured.out, captured.err

    def assert_no_subject(self) -> None:
        for text in self.outputs:
            assert ALICE not in text.lower() and BOB not in text.lower(), text


async def _state(client: Client, workflow_id: str, state: str, timeout: float = 30.0) -> DsrStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    status: DsrStatus | None = None
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(Exception):  # not started yet, or no worker has answered yet
            status = await client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=DsrStatus)
            if status is not None and status.state == state:
                return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {state} within {timeout}s: {status}")


async def _closed(client: Client, workflow_id: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await client.get_workflow_handle(workflow_id).describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} still running after {timeout}s")


async def _history_text(client: Client, workflow_id: str) -> str:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    decoded = [await client.data_converter.decode(event.workflow_execution_started_event_attributes.input.payloads)
               for event in history.events[:1]]
    return (history.to_json() + json.dumps(decoded, default=str)).lower()


async def test_an_export_filed_approved_by_another_approver_and_shown_complete(
    dev_env: WorkflowEnvironment, setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    zerotouch, client = Cli(capsys), dev_env.client
    request_id = f"req-{uuid.uuid4().hex[:10]}"
    workflow_id = dsr_workflow_id(request_id, setup.cluster)
    policy = ("--policy", setup.settings.policy_path)
    async with workers(client, setup):
        status, out, err = await zerotouch("gdpr", "request", "export", "--email", ALICE.upper(), "--by", "alice",
                                           "--verification", "e-mail link clicked", "--request-id", request_id,
                                           *policy, *setup.options)
        assert (status, out.strip()) == (0, f"{request_id}: filed as {workflow_id}; an approver other than alice "
                                            f"approves it with `zerotouch gdpr approve {request_id} --by NAME`"), err
        status, out, err = await zerotouch("gdpr", "request", "export", "--email", ALICE, "--by", "alice",
                                           "--verification", "again", "--request-id", request_id, *policy,
                                           *setup.options)
        assert (status, out.strip()) == (0, f"{request_id}: already filed as {workflow_id}; not filing it again"), err
        first_run = (await client.get_workflow_handle(workflow_id).describe()).run_id

        await _state(client, workflow_id, "awaiting_approval")
        status, out, err = await zerotouch("gdpr", "show", request_id, *setup.options)
        assert status == 0, err
        assert "state      awaiting_approval" in out and "  shop             matched 1" in out, out
        assert f"approve    zerotouch gdpr approve {request_id} --by NAME" in out

        status, _, err = await zerotouch("gdpr", "approve", request_id, "--by", "alice", *setup.options)
        assert (status, err.strip()) == (1, f"zerotouch gdpr: {request_id}: 'alice' filed this request and may not "
                                            "approve it; another approver must")
        status, _, err = await zerotouch("gdpr", "approve", request_id, "--by", "mallory", *setup.options)
        assert status == 1 and "'mallory' is not an approver" in err and len(err.strip().splitlines()) == 1, err
        status, out, err = await zerotouch("gdpr", "approve", request_id, "--by", "bob", "--note", "verified",
                                           *setup.options)
        assert (status, out.strip()) == (0, f"{request_id}: approved by bob"), err
        await _closed(client, workflow_id)

    status, out, err = await zerotouch("gdpr", "show", request_id, *setup.options)
    assert status == 0, err
    assert "outcome    complete" in out and "decided    bob: verified" in out, out
    assert "  shop             postgres  matched 1, erased 0, export sha256 " in out, out
    status, out, err = await zerotouch("gdpr", "show", request_id, "--json", *setup.options)
    receipt = json.loads(out)["receipt"]
    assert (receipt["outcome"], receipt["kind"], receipt["requested_by"]) == ("complete", "access", "alice")
    assert [(s["store_name"], s["matched"]) for s in receipt["stores"]] == [("shop", 1)]
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id == first_run

    deadline = asyncio.get_running_loop().time() + 15
    while True:  # visibility lags behind the workflow
        status, out, err = await zerotouch("gdpr", "list", "--json", *setup.options)
        rows = {row["request_id"]: row for row in json.loads(out)}
        if rows.get(request_id, {}).get("outcome") or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    assert {k: rows[request_id][k] for k in ("kind", "state", "outcome", "running")} == {
        "kind": "access", "state": "done", "outcome": "complete", "running": False}
    status, out, err = await zerotouch("gdpr", "list", *setup.options)
    assert status == 0 and any(line.startswith(request_id) and "complete" in line for line in out.splitlines()), out
    zerotouch.assert_no_subject()
    assert ALICE not in await _history_text(client, workflow_id)
    assert list((tmp_path / "vault" / "exports" / request_id).iterdir()), "the export was not written"


async def test_deny_and_extend_with_reasons_and_refusals_in_one_line(
    dev_env: WorkflowEnvironment, setup: Setup, capsys: pytest.CaptureFixture[str],
) -> None:
    zerotouch, client = Cli(capsys), dev_env.client
    request_id = f"req-{uuid.uuid4().hex[:10]}"
    workflow_id = dsr_workflow_id(request_id, setup.cluster)
    async with workers(client, setup):
        status, out, err = await zerotouch("gdpr", "request", "erase", "--user-id", "u-bob", "--by", "portal",
                                           "--verification", "signed in", "--request-id", request_id,
                                           "--policy", setup.settings.policy_path, *setup.options)
        assert status == 0, err
        await _state(client, workflow_id, "awaiting_approval")
        status, out, err = await zerotouch("gdpr", "extend", request_id, "--by", "bob", "--months", "2", "--reason",
                                           "many systems", *setup.options)
        assert status == 0 and out.startswith(f"{request_id}: due "), err
        status, _, err = await zerotouch("gdpr", "extend", request_id, "--by", "bob", "--months", "1", "--reason",
                                         "again", *setup.options)
        assert (status, err.strip()) == (1, f"zerotouch gdpr: {request_id}: the deadline was extended once already; "
                                            "Art. 12(3) allows one extension")
        status, out, err = await zerotouch("gdpr", "show", request_id, *setup.options)
        assert "(extended)" in out and "many systems" in out, out
        status, out, err = await zerotouch("gdpr", "deny", request_id, "--by", "carol", "--reason",
                                           "identity not verified", *setup.options)
        assert (status, out.strip()) == (0, f"{request_id}: denied by carol"), err
        await _closed(client, workflow_id)

    status, out, err = await zerotouch("gdpr", "show", request_id, *setup.options)
    assert "outcome    denied" in out and "decided    carol: identity not verified" in out, out
    status, _, err = await zerotouch("gdpr", "cancel", request_id, "--by", "carol", "--reason", "late",
                                     *setup.options)
    assert status == 1 and len(err.strip().splitlines()) == 1 and f"request {request_id} is over (denied)" in err, err
    status, _, err = await zerotouch("gdpr", "show", "req-nothing-here", *setup.options)
    assert (status, err.strip()) == (1, "zerotouch gdpr: no request req-nothing-here (see `zerotouch gdpr list`)")
    zerotouch.assert_no_subject()


async def test_show_names_the_store_being_retried_and_why(
    dev_env: WorkflowEnvironment, setup: Setup, capsys: pytest.CaptureFixture[str],
) -> None:
    zerotouch, client = Cli(capsys), dev_env.client
    policy = setup.policy.model_copy(deep=True)
    down = policy.gdpr.stores["shop"].model_copy(update={"connection": f"down-{setup.cluster}"})
    policy.gdpr.stores["archive"] = down
    Path(setup.settings.policy_path).write_text(json.dumps(policy.model_dump(mode="json", by_alias=True)))
    request_id = f"req-{uuid.uuid4().hex[:10]}"
    workflow_id = dsr_workflow_id(request_id, setup.cluster)
    async with workers(client, setup):
        status, _, err = await zerotouch("gdpr", "request", "export", "--email", ALICE, "--by", "alice",
                                         "--verification", "e-mail link clicked", "--request-id", request_id,
                                         "--policy", setup.settings.policy_path, *setup.options)
        assert status == 0, err
        deadline = asyncio.get_running_loop().time() + 30
        out = ""
        while "retrying" not in out and asyncio.get_running_loop().time() < deadline:
            status, out, err = await zerotouch("gdpr", "show", request_id, *setup.options)
            await asyncio.sleep(0.2)
        assert "state      resolving" in out, out
        assert "retrying   archive: resolve_subject attempt " in out, out
        assert f"cannot connect to PostgreSQL 'down-{setup.cluster}'" in out, out
        await client.get_workflow_handle(workflow_id).terminate("test over")
    zerotouch.assert_no_subject()


async def test_a_malformed_subject_or_a_missing_key_is_refused_in_one_line_without_the_value(
    dev_env: WorkflowEnvironment, setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zerotouch = Cli(capsys)
    request = ("gdpr", "request", "export", "--by", "alice", "--verification", "x", "--policy",
               setup.settings.policy_path, *setup.options)
    bad = "alice.secret-name@@example"
    status, out, err = await zerotouch(*request, "--email", bad)
    assert (status, out, err.strip()) == (1, "", "zerotouch gdpr: email: not an e-mail address")
    status, out, err = await zerotouch(*request, "--user-id", "has spaces in it")
    assert (status, err.strip()) == (1, "zerotouch gdpr: user_id: a user id is 1-128 letters, digits or _ . : @ -")
    assert "has spaces" not in err
    status, _, err = await zerotouch(*request)
    assert (status, err.strip()) == (1, "zerotouch gdpr: subject: a subject needs an e-mail address or a user id")
    status, _, err = await zerotouch(*request, "--email", ALICE, "--request-id", "Bad_Id")
    assert status == 1 and err.startswith("zerotouch gdpr: a request id is 3-63 lower-case"), err
    monkeypatch.delenv(KEY_ENV)
    status, _, err = await zerotouch(*request, "--email", ALICE)
    assert status == 1 and err.startswith(f"zerotouch gdpr: {KEY_ENV} is not set: set {KEY_ENV} to base64 of 32 "
                                          "random bytes"), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "vault" / "subjects").exists() or not list((tmp_path / "vault" / "subjects").iterdir())
    for text in zerotouch.outputs:
        assert bad not in text and "secret-name" not in text
    zerotouch.assert_no_subject()
