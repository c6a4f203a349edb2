"""Scenario 10: data-subject requests and retention at a million rows, through the real workflow.

A PostgreSQL server of its own holds `customers` and a million `orders` (the indexes a user should
have: `lower(email)`, `customer_id`; `gdpr_data.py`); MongoDB is mongomock (in memory, so its data
worker runs in this process: mongomock cannot be shared with a `zerotouch worker` process). For
each subject an access request and an erasure request run on a dev server, approved by a second
approver through the update; afterwards the exports are compared with the subject's rows and
everyone else's rows with what they were. Then `PostgresSubjects.expire` erases a million expired
rows per table in a loop, batch 1000 and 10000 side by side, after a dry-run count.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mongomock
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.gdpr import GdprActivities
from activities.gdpr_mongodb import MongoSubjects
from activities.gdpr_postgres import PostgresSubjects
from bench.policy import bench_policy
from bench.procs import Child
from bench.report import Section
from bench.scenarios.gdpr_data import (
    COUNT_CAP,
    EVENTS_EACH,
    ORDERS_EACH,
    STORES,
    Server,
    email_of,
    engine_alone,
    expire_all,
    fill_mongo,
    load,
    others,
    sizes,
    subject_ids,
    subjects_left,
)
from bench.scenarios.gdpr_report import Request, Run, section
from embedded.devserver import dev_server_command
from workers.run import activity_methods, build_workers
from zerotouch.gdpr import DSR_WORKFLOW, dsr_workflow_id
from zerotouch.gdpr_models import DsrInput, DsrReceipt, StoreStep, Subject, VaultRef
from zerotouch.gdpr_vault import RequestVault
from zerotouch.models import ApproveInput
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, QUERY_STATUS, UPDATE_APPROVE, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import load_policy
from zerotouch.ports import free_port
from zerotouch.settings import WorkerSettings
from zerotouch.temporal import data_converter

KEY_ENV = "ZT_BENCH_GDPR_KEY"
STEP_ACTIVITIES = ("resolve_subject", "export_subject", "erase_subject", "requery_subject")
FLOOR_ACTIVITIES = ("write_export_manifest", "suppress_subject")  # a small vault write: the dispatch floor


def policy(target: Path, storage: Path) -> Path:
    document: dict[str, Any] = yaml.safe_load(bench_policy(target).read_text())
    document["gdpr"] = {"grace": "1s", "storage": str(storage), "key_env": KEY_ENV, "stores": STORES}
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    load_policy(target)
    return target


@contextlib.asynccontextmanager
async def dev_server(workdir: Path, timeout: float = 60.0) -> AsyncIterator[Client]:
    """The embedded default's dev server (no sandbox, relay or worker process: the workers run here)."""
    port = free_port()
    temporal = Child("temporal", dev_server_command(db_file=workdir / "temporal.db", port=port, headless=True),
                     workdir)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
                break
            except RuntimeError:
                if not temporal.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the dev server did not answer; see {temporal.log_path}") from None
                await asyncio.sleep(0.2)
        yield client
    finally:
        temporal.stop()


@contextlib.asynccontextmanager
async def workers(client: Client, policy_path: Path, state: Path, postgres: PostgresSubjects,
                  mongo: mongomock.MongoClient[dict[str, Any]]) -> AsyncIterator[None]:
    """zerotouch's workers in this process, the data worker's MongoDB being mongomock."""
    settings = WorkerSettings(kubernetes_url=None, prometheus_url=None, policy_path=str(policy_path),
                              ledger_url=f"sqlite:///{state / 'ledger.db'}", state_dir=str(state))
    data = activity_methods(GdprActivities(postgres=postgres, mongodb=MongoSubjects(client_for=lambda _ref: mongo),
                                           state_dir=state))
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with httpx.AsyncClient(timeout=10) as http, contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, (WORKFLOWS_QUEUE, OBSERVE_QUEUE), settings, http=http,
                                        executor=executor):
                await stack.enter_async_context(worker)
            await stack.enter_async_context(Worker(client, task_queue=queue_for(DATA_QUEUE, ""), activities=data,
                                                   activity_executor=executor))
            yield


async def approve(handle: WorkflowHandle[Any, Any], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while ((await handle.query(QUERY_STATUS)) or {}).get("state") != "awaiting_approval":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{handle.id} never awaited approval within {timeout:.0f} s")
        await asyncio.sleep(0.05)
    await handle.execute_update(UPDATE_APPROVE, ApproveInput(by="bob", note="benchmark"))


async def spans(client: Client, handle: WorkflowHandle[Any, Any]) -> tuple[dict[tuple[str, str], float], list[float]]:
    """(activity, store) → scheduled → completed seconds, from the workflow's history; and each store
    step's scheduled → started (the dispatch to the worker)."""
    scheduled: dict[int, tuple[str, str, datetime]] = {}
    found: dict[tuple[str, str], float] = {}
    queued: list[float] = []
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name in STEP_ACTIVITIES:
                [step] = await client.data_converter.decode(attributes.input.payloads, [StoreStep])
                scheduled[event.event_id] = (attributes.activity_type.name, step.store_name, at)
            elif attributes.activity_type.name in FLOOR_ACTIVITIES:
                scheduled[event.event_id] = (attributes.activity_type.name, "", at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            began = scheduled.get(event.activity_task_started_event_attributes.scheduled_event_id)
            if began is not None and began[1]:
                queued.append((at - began[2]).total_seconds())
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            began = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if began is not None:
                found[began[:2]] = (at - began[2]).total_seconds()
    return found, queued


async def request(client: Client, vault: RequestVault, customer: int, kind: str) -> tuple[Request, DsrReceipt]:
    request_id = f"bench-{kind}-{customer}-{uuid.uuid4().hex[:6]}"
    began = time.monotonic()
    pseudonym = vault.record_subject(request_id, Subject(email=email_of(customer)))
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        DSR_WORKFLOW, DsrInput(request_id=request_id, kind=kind, subject=pseudonym,  # type: ignore[arg-type]
                               requested_by="bench-portal", verification="e-mail link clicked",
                               received_at=datetime.now(UTC)),
        id=dsr_workflow_id(request_id), task_queue=queue_for(WORKFLOWS_QUEUE, ""))
    await approve(handle)
    receipt = DsrReceipt.model_validate(await handle.result())
    seconds = time.monotonic() - began
    found, queued = await spans(client, handle)
    return Request(kind=kind, outcome=receipt.outcome, seconds=seconds, spans=found, queued=queued), receipt


def check_export(vault: RequestVault, storage: Path, receipt: DsrReceipt, customer: int) -> list[str]:
    """What is wrong with the export: it must hold exactly the subject's customer, orders and events."""
    copy = {path.name.split(".")[0]: vault.read_export(str(path))
            for path in (storage / "exports" / receipt.request_id).glob("*.bin")}
    shop, events = copy.get("shop-db", {}), copy.get("events", {})
    got = ([row["id"] for row in shop.get("customers", [])], {row["customer_id"] for row in shop.get("orders", [])},
           len(shop.get("orders", [])), {doc["user"]["email"].lower() for doc in events.get("events", [])},
           len(events.get("events", [])))
    want = ([customer], {customer}, ORDERS_EACH, {email_of(customer)}, EVENTS_EACH)
    return [] if got == want else [f"{receipt.request_id}: export held {got[0]}, {got[2]} orders, {got[4]} events"]


def check_erased(receipt: DsrReceipt) -> list[str]:
    found = {r.store_name: (r.matched, r.erased, r.requery_matches) for r in receipt.stores}
    want = {"shop-db": (1 + ORDERS_EACH, 1 + ORDERS_EACH, 0), "events": (EVENTS_EACH, EVENTS_EACH, 0)}
    return [] if found == want else [f"{receipt.request_id}: (matched, erased, re-query) {found}"]


async def run(workdir: Path, *, quick: bool) -> Section:
    s = sizes(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    state, storage = workdir / "state", workdir / "state" / "vault"
    state.mkdir()
    policy_path = policy(workdir / "policy-gdpr.yaml", storage)
    os.environ[KEY_ENV] = base64.b64encode(os.urandom(32)).decode()
    server = Server()
    try:
        await asyncio.to_thread(server.start)
        load_seconds, version = await asyncio.to_thread(load, server, s)
        mongo, mongo_seconds = await asyncio.to_thread(fill_mongo, s)
        result = Run(sizes=s, server=version, load_seconds=load_seconds, mongo_seconds=mongo_seconds,
                     count_cap=COUNT_CAP)
        ids = subject_ids(s)
        direct = [customer + 1 for customer in ids]  # erased by the engine alone, for comparison
        before = await asyncio.to_thread(others, server, mongo, ids + direct)
        result.direct = await asyncio.to_thread(engine_alone, server, direct)
        vault = RequestVault.open(VaultRef(storage=str(storage), key_env=KEY_ENV), state)
        postgres = PostgresSubjects(dsn_for=lambda _ref: server.dsn("postgres"))
        async with dev_server(workdir) as client, workers(client, policy_path, state, postgres, mongo):
            for customer in ids:
                access, receipt = await request(client, vault, customer, "access")
                access.wrong += check_export(vault, storage, receipt, customer)
                erasure, receipt = await request(client, vault, customer, "erasure")
                erasure.wrong += check_erased(receipt)
                result.requests += [access, erasure]
        after = await asyncio.to_thread(others, server, mongo, ids + direct)
        result.leftover = await asyncio.to_thread(subjects_left, server, mongo, ids + direct, ids)
        result.untouched = [f"{what}: {a} → {b}" for what, a, b in zip(("customers", "orders", "events"), before,
                                                                       after, strict=True) if a != b]
        for batch in (1000, 10000):
            result.expiries.append(await asyncio.to_thread(expire_all, server, batch))
        return section(result)
    finally:
        os.environ.pop(KEY_ENV, None)
        await asyncio.to_thread(server.stop, workdir)
