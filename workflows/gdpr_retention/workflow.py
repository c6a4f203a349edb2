"""DataRetentionWorkflow: rows older than each table's retention erased, batch by batch, counts in the ledger.

For each chosen store (default: all) and each table with a `retention` in the data map, children
before parents: the cut-off is fixed once (now - keep), then one bounded batch per activity call
until a call finds nothing left. A dry run, or observe mode, counts instead and changes nothing.
Erasing is a `data_deletion`: the Governor is asked once per pass. A pass longer than
`batches_per_run` batches continues as new, carrying its cut-offs, counts and grant. A table that
fails is recorded with its reason, the others still run, and the pass ends failed once recorded.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.gdpr_retention import (
        DATA_RETENTION_WORKFLOW,
        DataRetentionInput,
        ExpireBatch,
        RetentionOutcome,
        RetentionProgress,
        RetentionRecord,
        TableRetention,
    )
    from zerotouch.governor_models import OutcomeReport
    from zerotouch.policy import Policy

from workflows.gdpr_retention import calls
from workflows.gdpr_retention.governor import ask_governor


@workflow.defn(name=DATA_RETENTION_WORKFLOW)
class DataRetentionWorkflow:
    @workflow.run
    async def run(self, params: DataRetentionInput) -> RetentionRecord:
        """Cut-offs → the Governor (unless counting) → batches until none are left → the ledger."""
        policy = await calls.load_policy(params.cluster)
        progress, reason = params.progress, ""
        if progress is None:
            progress = RetentionProgress(started_at=workflow.now(), tables=_tables(policy, params),
                                         mode="dry_run" if params.arguments.dry_run else "erase")
            if progress.mode == "erase" and progress.tables:
                decision = await ask_governor(policy, sorted({t.store_name for t in progress.tables}), params.cluster)
                if decision.code == "observe":
                    progress.mode, reason = "observe", "observe mode: counted what would be erased, erased nothing"
                elif not decision.granted:
                    return await _finish(params, progress, "refused", f"the Governor refused: {decision.reason}")
                else:
                    progress.grant_id = decision.grant_id or ""
        batches = 0
        for entry in progress.tables:
            while not (entry.done or entry.error):
                if batches >= params.batches_per_run or workflow.info().is_continue_as_new_suggested():
                    progress.runs += 1
                    workflow.continue_as_new(params.model_copy(update={"progress": progress}))
                batches += 1
                await _step(policy, params, progress, entry)
        failed = [entry for entry in progress.tables if entry.error]
        if progress.grant_id:
            await calls.report_outcome(OutcomeReport(grant_id=progress.grant_id, verified=not failed,
                                                     detail="expired" if not failed else "failed"), params.cluster)
        outcome: RetentionOutcome = "failed" if failed else "complete" if progress.mode == "erase" else progress.mode
        if failed:
            reason = "; ".join(f"{entry.store_name}/{entry.table}: {entry.error}" for entry in failed)
        record = await _finish(params, progress, outcome, reason)
        if failed:
            raise ApplicationError(f"retention stopped on {len(failed)} table(s): {reason}", type="RetentionFailed",
                                   non_retryable=True)
        return record


def _tables(policy: Policy, params: DataRetentionInput) -> list[TableRetention]:
    """Every table with a retention in the chosen stores, children first, with its cut-off fixed now."""
    stores = policy.gdpr.stores
    chosen = params.arguments.stores or sorted(stores)
    unknown = [name for name in chosen if name not in stores]
    if unknown:
        raise ApplicationError(f"schedule {params.schedule or '-'}: store(s) {unknown} not in the policy's "
                               "gdpr.stores", type="UnknownStore", non_retryable=True)
    now = workflow.now()
    return [TableRetention(store_name=name, table=table, before=now - retention.keep, method=retention.erase.method)
            for name in chosen for table in stores[name].erasure_order()
            if (retention := stores[name].tables[table].retention) is not None]


async def _step(policy: Policy, params: DataRetentionInput, progress: RetentionProgress,
                entry: TableRetention) -> None:
    """One batch of one table (or, counting, the table's whole count); a failure stops only this table."""
    store = policy.gdpr.stores.get(entry.store_name)
    if store is None or entry.table not in store.tables:  # the policy changed between runs of one pass
        entry.error = "no longer in the policy's data map"
        return
    counting = progress.mode != "erase"
    batch = ExpireBatch(store_name=entry.store_name, store=store, table=entry.table, before=entry.before,
                        dry_run=counting, key_env=policy.gdpr.key_env)
    try:
        expired = await (calls.count(batch, params.cluster) if counting else calls.expire(batch, params.cluster))
    except ActivityError as error:
        cause = error.cause
        entry.error = cause.message if isinstance(cause, ApplicationError) else str(error)
        return
    entry.rows += expired.rows
    entry.capped = expired.capped
    entry.batches += 1 if expired.rows and not counting else 0
    entry.done = counting or expired.rows == 0


async def _finish(params: DataRetentionInput, progress: RetentionProgress, outcome: RetentionOutcome,
                  reason: str) -> RetentionRecord:
    info = workflow.info()
    record = RetentionRecord(
        workflow_id=info.workflow_id, run_id=info.run_id, schedule=params.schedule,
        dry_run=params.arguments.dry_run, mode=progress.mode, outcome=outcome, reason=reason,
        started_at=progress.started_at, finished_at=workflow.now(), runs=progress.runs, tables=progress.tables)
    await calls.append_record(record, params.cluster)
    return record
