"""DataSubjectRequestWorkflow: one access (export) or erasure request, from intake to a receipt in the ledger.

One workflow per request (`dsr_workflow_id`). The subject's identity is in the request vault, never
here. Manifest first: every store's rows of the subject are resolved and kept in the vault before
anything is erased, so a resumed erasure never depends on rows already gone. Then an approver
other than the requester approves (or denies, with a reason); an erasure waits out its grace
period (`cancel` stops it, data untouched), is refused for a subject under legal hold, asks the
Governor (kill switch, observe mode), runs per store (a failing store is retried and leaves the
request partial, the others done), proves itself by re-query, and suppresses the subject against
restores. The policy is read once, at intake: a later change does not alter a running request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.gdpr import DSR_WORKFLOW
    from zerotouch.gdpr_models import (
        Cancel,
        Deny,
        DsrInput,
        DsrReceipt,
        DsrStatus,
        ExportManifest,
        Extension,
        Outcome,
        StoreReceipt,
        StoreStep,
        SuppressStep,
        VaultRef,
    )
    from zerotouch.models import ApproveInput
    from zerotouch.names import QUERY_STATUS, UPDATE_APPROVE
    from zerotouch.policy import Policy

from workflows.approver_checks import SpentProofs, spend
from workflows.gdpr import calls, decisions
from workflows.gdpr.deadlines import watch_deadline
from workflows.gdpr.erasure import erase_everywhere
from workflows.gdpr.state import DsrRun

UPDATE_DENY, UPDATE_CANCEL, UPDATE_EXTEND = "deny", "cancel", "extend"


@workflow.defn(name=DSR_WORKFLOW)
class DataSubjectRequestWorkflow:
    def __init__(self) -> None:
        self._run: DsrRun | None = None
        self._policy: Policy | None = None
        self._spent: SpentProofs = {}

    @workflow.run
    async def run(self, params: DsrInput) -> DsrReceipt:
        """Pin the policy → resolve the manifest → approval → export, or grace + erase + prove → receipt."""
        policy = self._policy = await calls.load_policy(params.cluster)
        run = self._run = DsrRun(params)
        run.note("received", f"{params.kind} request filed by {params.requested_by}; identity: {params.verification}",
                 actor=params.requested_by)
        deadline = asyncio.create_task(watch_deadline(run, policy, params.cluster))
        receipts: dict[str, StoreReceipt] = {}
        try:
            outcome = await self._handle(run, policy, receipts)
        finally:
            if run.status.state != "done":
                run.end("failed", "the workflow stopped before it ended")
            with contextlib.suppress(asyncio.CancelledError):
                await deadline
        receipt = _receipt(run, policy, receipts, outcome)
        await calls.append_receipt(receipt, params.cluster)
        return receipt

    async def _handle(self, run: DsrRun, policy: Policy, receipts: dict[str, StoreReceipt]) -> Outcome:
        cluster, gdpr = run.params.cluster, policy.gdpr
        steps = {name: StoreStep(request_id=run.params.request_id, store_name=name, store=store,
                                 vault=VaultRef(storage=gdpr.storage, key_env=gdpr.key_env))
                 for name, store in gdpr.stores.items()}
        run.status.state = "resolving"
        manifests = await asyncio.gather(*(calls.resolve(step, cluster) for step in steps.values()))
        for manifest in manifests:
            run.status.matched[manifest.store_name] = manifest.matched
            receipts[manifest.store_name] = StoreReceipt(
                store_name=manifest.store_name, kind=steps[manifest.store_name].store.kind, matched=manifest.matched,
                erased=0, methods={t.table: t.method for t in manifest.tables})
        run.note("manifest", "found " + ", ".join(f"{m.store_name}: {m.matched}" for m in manifests) + " row(s)")
        if not any(m.matched for m in manifests):
            return run.end("nothing_found", "no store holds data of this subject")
        run.status.state = "awaiting_approval"
        run.note("approval_requested", "an approver other than the requester must approve or deny")
        await workflow.wait_condition(lambda: run.decided)
        if run.denied_by or run.cancelled_by:
            return run.end("denied" if run.denied_by else "cancelled", run.decision_note)
        if run.params.kind == "access":
            exports = await asyncio.gather(*(calls.export(step, cluster) for step in steps.values()))
            for exported in exports:
                receipts[exported.store_name].export_sha256 = exported.sha256
                run.store_state(exported.store_name, f"exported {exported.rows} row(s)")
            digest = await calls.write_export_manifest(ExportManifest(
                request_id=run.params.request_id, vault=VaultRef(storage=gdpr.storage, key_env=gdpr.key_env),
                stores=list(exports)), cluster)
            return run.end("complete", f"exported from every store (encrypted in the request vault; manifest "
                                       f"sha256 {digest[:16]}…)")
        if run.params.subject in gdpr.legal_holds:
            run.status.state = "held"
            return run.end("held", "the subject is under legal hold (gdpr.legal_holds): nothing was erased")
        run.status.state, run.status.erase_at = "grace", workflow.now() + gdpr.grace
        run.note("grace", f"erasing at {run.status.erase_at.isoformat(timespec='seconds')} unless cancelled")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: bool(run.cancelled_by), timeout=gdpr.grace)
        if run.cancelled_by:
            return run.end("cancelled", f"cancelled in the grace period by {run.cancelled_by}: data untouched")
        outcome = await erase_everywhere(run, policy, steps, receipts)
        if outcome == "complete":
            await calls.suppress(SuppressStep(request_id=run.params.request_id, subject=run.params.subject,
                                              vault=VaultRef(storage=gdpr.storage, key_env=gdpr.key_env)), cluster)
            run.note("suppressed", "on the suppression list: erased again after any restore")
        return outcome

    # --- steering ----------------------------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> DsrStatus | None:
        return self._run.status if self._run else None

    @workflow.update(name=UPDATE_APPROVE)
    def approve(self, decision: ApproveInput) -> str:
        accepted = decisions.check_approve(self._run, self._policy, decision, self._spent)
        assert self._run is not None
        self._run.approve(decision.by, decision.note, decision.proof, spend(self._spent, accepted))
        return f"approved by {decision.by}"

    @approve.validator
    def _check_approve(self, decision: ApproveInput) -> None:
        decisions.check_approve(self._run, self._policy, decision, self._spent)

    @workflow.update(name=UPDATE_DENY)
    def deny(self, decision: Deny) -> str:
        decisions.check_deny(self._run, self._policy, decision)
        assert self._run is not None
        self._run.deny(decision.by, decision.reason)
        return f"denied by {decision.by}"

    @deny.validator
    def _check_deny(self, decision: Deny) -> None:
        decisions.check_deny(self._run, self._policy, decision)

    @workflow.update(name=UPDATE_CANCEL)
    def cancel(self, decision: Cancel) -> str:
        decisions.check_cancel(self._run, decision)
        assert self._run is not None
        self._run.cancel(decision.by, decision.reason)
        return f"cancelled by {decision.by}"

    @cancel.validator
    def _check_cancel(self, decision: Cancel) -> None:
        decisions.check_cancel(self._run, decision)

    @workflow.update(name=UPDATE_EXTEND)
    def extend(self, decision: Extension) -> str:
        decisions.check_extend(self._run, self._policy, decision)
        assert self._run is not None
        self._run.extend(decision.by, decision.months, decision.reason)
        return f"due {self._run.due_at.isoformat(timespec='seconds')}"

    @extend.validator
    def _check_extend(self, decision: Extension) -> None:
        decisions.check_extend(self._run, self._policy, decision)


def _receipt(run: DsrRun, policy: Policy, receipts: dict[str, StoreReceipt], outcome: Outcome) -> DsrReceipt:
    info = workflow.info()
    return DsrReceipt(
        request_id=run.params.request_id, kind=run.params.kind, subject=run.params.subject, outcome=outcome,
        requested_by=run.params.requested_by, verification=run.params.verification,
        decided_by=run.approved_by or run.denied_by or run.cancelled_by, decision_note=run.decision_note,
        received_at=run.params.received_at, due_at=run.due_at, finished_at=workflow.now(),
        policy_digest=hashlib.sha256(policy.gdpr.model_dump_json().encode()).hexdigest(),
        stores=sorted(receipts.values(), key=lambda r: r.store_name), workflow_id=info.workflow_id,
        run_id=info.run_id,
    )
