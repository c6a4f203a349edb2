"""DataSubjectRequestWorkflow's decisions and timers on the time-skipping server, with stand-in stores.

The stores' real engines are tested against real PostgreSQL and mongomock (test_gdpr_postgres.py,
test_gdpr_mongodb.py) and end to end in test_dsr_end_to_end.py; here the stand-ins record what
the workflow asked, so grace periods of a week and deadlines of a month pass in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.policies import fast_policy
from workflows.gdpr import DataSubjectRequestWorkflow
from zerotouch import activity_names as names
from zerotouch.gdpr import DSR_WORKFLOW, add_months, dsr_workflow_id
from zerotouch.gdpr_models import (
    Cancel,
    Deny,
    DsrInput,
    DsrReceipt,
    DsrStatus,
    Extension,
    StoreErased,
    StoreExported,
    StoreManifest,
    StoreRequery,
    StoreStep,
    SuppressStep,
    TableCount,
)
from zerotouch.governor_models import GrantDecision
from zerotouch.governor_policy import GrantCall
from zerotouch.ledger_models import LedgerReceipt
from zerotouch.models import AlertForward, ApproveInput, PolicyRequest
from zerotouch.names import DATA_QUEUE, OBSERVE_QUEUE, QUERY_STATUS, WORKFLOWS_QUEUE, queue_for
from zerotouch.policy import Policy, load_policy

SUBJECT = "ab" * 32
MATCHED = {"shop-db": {"orders": 3, "customers": 1}, "events": {"events": 5}}


@dataclass
class Stores:
    """The stand-in activities, and what the workflow asked of them."""

    policy: Policy
    matched: dict[str, dict[str, int]] = field(default_factory=lambda: dict(MATCHED))
    mode: str = "auto"
    failing: set[str] = field(default_factory=set)  # stores whose erasure fails (retryably) until removed
    erased: list[str] = field(default_factory=list)
    erase_attempts: dict[str, int] = field(default_factory=dict)
    exported: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    alerts: list[tuple[str, str, datetime]] = field(default_factory=list)
    receipts: list[DsrReceipt] = field(default_factory=list)

    def activities(self) -> dict[str, list[Any]]:
        @activity.defn(name=names.LOAD_POLICY)
        async def load(_: PolicyRequest) -> Policy:
            return self.policy

        @activity.defn(name=names.RESOLVE_SUBJECT)
        async def resolve(step: StoreStep) -> StoreManifest:
            tables = self.matched.get(step.store_name, {})
            return StoreManifest(store_name=step.store_name, sha256="0" * 64,
                                 tables=[TableCount(table=t, matched=n, method="delete") for t, n in tables.items()])

        @activity.defn(name=names.ERASE_SUBJECT)
        async def erase(step: StoreStep) -> StoreErased:
            self.erase_attempts[step.store_name] = self.erase_attempts.get(step.store_name, 0) + 1
            if step.store_name in self.failing:
                raise ApplicationError(f"store {step.store_name} is down", type="DatabaseUnavailable")
            already = step.store_name in self.erased
            self.erased.append(step.store_name)
            tables = self.matched.get(step.store_name, {})
            return StoreErased(store_name=step.store_name, already=already, tables=[
                TableCount(table=t, matched=n, erased=0 if already else n) for t, n in tables.items()])

        @activity.defn(name=names.EXPORT_SUBJECT)
        async def export(step: StoreStep) -> StoreExported:
            self.exported.append(step.store_name)
            return StoreExported(store_name=step.store_name, location=f"/vault/{step.store_name}", sha256="1" * 64,
                                 rows=sum(self.matched.get(step.store_name, {}).values()))

        @activity.defn(name=names.WRITE_EXPORT_MANIFEST)
        async def export_manifest(manifest: Any) -> str:
            return "2" * 64

        @activity.defn(name=names.REQUERY_SUBJECT)
        async def requery(step: StoreStep) -> StoreRequery:
            return StoreRequery(store_name=step.store_name, matches=0)

        @activity.defn(name=names.SUPPRESS_SUBJECT)
        async def suppress(step: SuppressStep) -> None:
            self.suppressed.append(step.subject)

        @activity.defn(name=names.REQUEST_GRANT)
        async def grant(call: GrantCall) -> GrantDecision:
            request = call.request
            if self.mode == "observe":
                return GrantDecision(request_id=request.request_id, granted=False, code="observe", reason="observe",
                                     decided_at=activity.info().started_time)
            return GrantDecision(request_id=request.request_id, granted=True, code="granted", reason="granted",
                                 decided_at=activity.info().started_time)

        @activity.defn(name=names.FORWARD_ALERTS)
        async def forward(forward: AlertForward) -> int:
            for event in forward.events:
                self.alerts.append((event.labels["alertname"], event.status, event.starts_at))
            return len(forward.events)

        @activity.defn(name=names.APPEND_DSR_RECEIPT)
        async def append(receipt: DsrReceipt) -> LedgerReceipt:
            self.receipts.append(receipt)
            return LedgerReceipt(seq=len(self.receipts), hash="0" * 64)

        return {DATA_QUEUE: [resolve, erase, export, export_manifest, requery, suppress],
                OBSERVE_QUEUE: [load, grant, forward, append]}


@dataclass
class Scene:
    env: WorkflowEnvironment
    stores: Stores
    cluster: str

    async def file(self, kind: str = "erasure", requested_by: str = "alice") -> WorkflowHandle[Any, Any]:
        request_id = f"req-{uuid.uuid4().hex[:10]}"
        return await self.env.client.start_workflow(
            DSR_WORKFLOW, DsrInput(request_id=request_id, kind=kind, subject=SUBJECT,  # type: ignore[arg-type]
                                   requested_by=requested_by, verification="signed-in portal session",
                                   received_at=await self.env.get_current_time(), cluster=self.cluster),
            id=dsr_workflow_id(request_id, self.cluster), task_queue=queue_for(WORKFLOWS_QUEUE, self.cluster))


def gdpr_policy(tmp_path: Any, **gdpr: Any) -> Policy:
    document = load_policy(fast_policy(tmp_path / "policy.yaml")).model_dump(mode="json", by_alias=True)
    table = {"identity": {"email": "email"}}
    document["gdpr"] = {"stores": {
        "shop-db": {"kind": "postgres", "connection": "main", "database": "shop", "tables": {
            "customers": table, "orders": {"parent": {"table": "customers", "column": "customer_id"}}}},
        "events": {"kind": "mongodb", "connection": "main", "database": "shop", "tables": {
            "events": {"key": "_id", "identity": {"email": "user.email"}}}}}, **gdpr}
    return Policy.model_validate(document)


@asynccontextmanager
async def scene(time_env: WorkflowEnvironment, tmp_path: Any, **gdpr: Any) -> AsyncIterator[Scene]:
    stores = Stores(policy=gdpr_policy(tmp_path, **gdpr))
    cluster = f"g{uuid.uuid4().hex[:8]}"
    client = time_env.client
    queues = stores.activities()
    async with Worker(client, task_queue=queue_for(WORKFLOWS_QUEUE, cluster), workflows=[DataSubjectRequestWorkflow]), \
            Worker(client, task_queue=queue_for(DATA_QUEUE, cluster), activities=queues[DATA_QUEUE]), \
            Worker(client, task_queue=queue_for(OBSERVE_QUEUE, cluster), activities=queues[OBSERVE_QUEUE]):
        yield Scene(time_env, stores, cluster)


async def status(handle: WorkflowHandle[Any, Any]) -> DsrStatus:
    raw = await handle.query(QUERY_STATUS)
    assert raw is not None
    return DsrStatus.model_validate(raw)


async def until(handle: WorkflowHandle[Any, Any], state: str, timeout: float = 30.0) -> DsrStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.suppress(Exception):  # not started yet
            current = await status(handle)
            if current.state == state:
                return current
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the request never reached {state}")
        await asyncio.sleep(0.05)


async def receipt_of(handle: WorkflowHandle[Any, Any]) -> DsrReceipt:
    return DsrReceipt.model_validate(await handle.result())


async def test_an_approved_erasure_waits_its_grace_period_then_erases_everywhere_and_proves_it(
        time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file()
        await until(handle, "awaiting_approval")
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("approve", ApproveInput(by="alice"))  # the requester: four eyes
        approved_at = await time_env.get_current_time()
        await handle.execute_update("approve", ApproveInput(by="bob", note="verified by support"))
        receipt = await receipt_of(handle)
    assert receipt.outcome == "complete"
    assert sorted(s.stores.erased) == ["events", "shop-db"]
    assert {r.store_name: (r.matched, r.erased, r.requery_matches) for r in receipt.stores} == {
        "events": (5, 5, 0), "shop-db": (4, 4, 0)}
    assert s.stores.suppressed == [SUBJECT]
    assert receipt.finished_at - approved_at >= timedelta(days=7), "erased before the grace period ended"
    assert receipt.subject == SUBJECT and receipt.decided_by == "bob"
    assert s.stores.receipts == [receipt]


async def test_cancel_inside_the_grace_period_leaves_the_data_untouched(
        time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file()
        await until(handle, "awaiting_approval")
        await handle.execute_update("approve", ApproveInput(by="bob"))
        await until(handle, "grace")
        await handle.execute_update("cancel", Cancel(by="alice", reason="the subject withdrew the request"))
        receipt = await receipt_of(handle)
    assert receipt.outcome == "cancelled" and s.stores.erased == [] and s.stores.suppressed == []


async def test_a_legal_hold_blocks_the_erasure_with_its_reason(time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path, legal_holds=[SUBJECT]) as s:
        handle = await s.file()
        await until(handle, "awaiting_approval")
        await handle.execute_update("approve", ApproveInput(by="bob"))
        receipt = await receipt_of(handle)
        final = await status(handle)
    assert receipt.outcome == "held" and s.stores.erased == []
    assert any("legal hold" in entry.message for entry in final.timeline)


async def test_a_failing_store_leaves_the_request_partial_and_the_retry_touches_only_that_store(
        time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path, grace="1m") as s:
        s.stores.failing.add("events")
        handle = await s.file()
        await until(handle, "awaiting_approval")
        await handle.execute_update("approve", ApproveInput(by="bob"))
        await time_env.sleep(timedelta(minutes=2))  # the grace period passes (time skips only when asked to)

        async def partial() -> DsrStatus | None:
            current = await status(handle)
            return current if current.outcome == "partial" and s.stores.erase_attempts.get("events", 0) >= 1 else None

        deadline = asyncio.get_running_loop().time() + 60
        while (found := await partial()) is None:
            assert asyncio.get_running_loop().time() < deadline, "never partial"
            await asyncio.sleep(0.05)
        assert found.stores == {"shop-db": "erased", "events": "pending"} and found.state == "executing"
        s.stores.failing.clear()
        receipt = await receipt_of(handle)
    assert receipt.outcome == "complete"
    assert s.stores.erase_attempts["shop-db"] == 1, "the store that had succeeded was erased again"
    assert s.stores.erased == ["shop-db", "events"]


async def test_the_deadline_warns_before_it_is_due_and_an_overdue_request_is_an_incident(
        time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file()
        received = (await until(handle, "awaiting_approval")).received_at
        due = add_months(received, 1)
        await time_env.sleep(due - received + timedelta(hours=1))  # nobody approves
        alerts = list(s.stores.alerts)
        await handle.execute_update("deny", Deny(by="bob", reason="the identity could not be verified"))
        receipt = await receipt_of(handle)
    fired = {(name, state): at for name, state, at in alerts}
    # On the timers' own clock: a few milliseconds after the moment (the workflow task that wakes).
    warned = fired[("DataSubjectRequestDueSoon", "firing")]
    assert timedelta(0) <= warned - (due - timedelta(days=7)) < timedelta(minutes=1)
    assert timedelta(0) <= fired[("DataSubjectRequestOverdue", "firing")] - due < timedelta(minutes=1)
    assert receipt.outcome == "denied" and receipt.decision_note == "the identity could not be verified"
    assert ("DataSubjectRequestOverdue", "resolved") in {(n, st) for n, st, _ in s.stores.alerts}


async def test_one_extension_of_up_to_two_months_before_the_due_date(time_env: WorkflowEnvironment,
                                                                      tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file()
        received = (await until(handle, "awaiting_approval")).received_at
        await handle.execute_update("extend", Extension(by="bob", months=2, reason="complex request"))
        assert (await status(handle)).due_at == add_months(add_months(received, 1), 2)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("extend", Extension(by="bob", months=1, reason="again"))
        await time_env.sleep(timedelta(days=40))  # past the original due date, before the extended one
        assert not any(name == "DataSubjectRequestOverdue" for name, _, _ in s.stores.alerts)
        await handle.execute_update("approve", ApproveInput(by="bob"))
        assert (await receipt_of(handle)).outcome == "complete"


async def test_an_extension_after_the_original_due_date_is_refused(time_env: WorkflowEnvironment,
                                                                   tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file()
        await until(handle, "awaiting_approval")
        await time_env.sleep(timedelta(days=32))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("extend", Extension(by="bob", months=1, reason="late"))
        assert "before the original due date" in str(refused.value.cause)
        await handle.execute_update("deny", Deny(by="bob", reason="test over"))
        await receipt_of(handle)


async def test_a_subject_found_nowhere_gets_a_receipt_that_says_so(time_env: WorkflowEnvironment,
                                                                   tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        s.stores.matched = {}
        receipt = await receipt_of(await s.file())
    assert receipt.outcome == "nothing_found" and [r.matched for r in receipt.stores] == [0, 0]


async def test_observe_mode_records_what_it_would_erase_and_erases_nothing(time_env: WorkflowEnvironment,
                                                                           tmp_path: Any) -> None:
    async with scene(time_env, tmp_path, grace="1m") as s:
        s.stores.mode = "observe"
        handle = await s.file()
        await until(handle, "awaiting_approval")
        await handle.execute_update("approve", ApproveInput(by="bob"))
        receipt = await receipt_of(handle)
    assert receipt.outcome == "planned" and s.stores.erased == []


async def test_an_access_request_exports_every_store(time_env: WorkflowEnvironment, tmp_path: Any) -> None:
    async with scene(time_env, tmp_path) as s:
        handle = await s.file(kind="access")
        await until(handle, "awaiting_approval")
        await handle.execute_update("approve", ApproveInput(by="carol"))
        receipt = await receipt_of(handle)
    assert receipt.outcome == "complete" and sorted(s.stores.exported) == ["events", "shop-db"]
    assert s.stores.erased == [] and all(r.export_sha256 == "1" * 64 for r in receipt.stores)
