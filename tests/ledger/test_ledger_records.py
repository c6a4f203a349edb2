"""Every closed incident leaves exactly one record, with the figures an auditor needs."""

from __future__ import annotations

import threading

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from tests.ledger import incidents
from tests.ledger.conftest import Ledger
from zerotouch.ledger_models import LedgerEntryInput, LedgerReceipt


def _append(ledger: Ledger, entry: LedgerEntryInput) -> LedgerReceipt:
    return ActivityEnvironment().run(LedgerActivities(store=ledger.store).append_incident_record, entry)


def test_resolved_incident_is_recorded_as_automated_with_mttd_and_mttr(ledger: Ledger) -> None:
    receipt = _append(ledger, incidents.entry(incidents.resolved(recover_after=150), "resolved"))

    [record] = ledger.store.get("inc-resolved")
    assert (receipt.seq, receipt.hash, receipt.already_recorded) == (1, record.hash, False)
    assert record.outcome == "resolved" and record.automated and record.humans == []
    assert record.root_cause_class == "restart-on-errors"
    assert (record.mttd_seconds, record.mttr_seconds) == (30, 150)
    assert record.triaged_at == incidents.T0.replace(second=31)
    assert [(a.action, a.outcome, a.grant) for a in record.actions] == [
        ("restart_deployment", "applied", "granted by the Governor (within guardrails)")]
    assert [(v.verified, v.detail) for v in record.verifications] == [(True, "3/3 replicas available for 10s")]
    assert record.alerts[0].alertname == "HighErrorRate" and record.alerts[0].labels["namespace"] == "shop"
    assert record.user_impact == "some users see errors or delays"


def test_escalated_incident_is_not_automated_and_has_no_mttr(ledger: Ledger) -> None:
    _append(ledger, incidents.entry(incidents.escalated(), "escalated"))

    [record] = ledger.store.get("inc-escalated")
    assert record.outcome == "escalated" and not record.automated
    assert record.recovered_at is None and record.mttr_seconds is None
    assert [v.verified for v in record.verifications] == [False]
    assert "A human must" in record.postmortem


def test_aborted_incident_names_the_human(ledger: Ledger) -> None:
    _append(ledger, incidents.entry(incidents.aborted(), "aborted"))

    [record] = ledger.store.get("inc-aborted")
    assert record.outcome == "aborted" and not record.automated
    assert [(h.actor, h.kind) for h in record.humans] == [("alice", "abort")]
    assert record.actions == [] and record.first_action_at is None


def test_unmatched_incident_is_classified_by_its_alertname(ledger: Ledger) -> None:
    status = incidents.aborted("inc-unmatched").model_copy(update={"runbook": None, "confidence": None})
    _append(ledger, incidents.entry(status, "aborted"))

    assert ledger.store.get("inc-unmatched")[0].root_cause_class == "HighErrorRate"


def test_a_retried_append_records_once(ledger: Ledger) -> None:
    entry = incidents.entry(incidents.resolved(), "resolved")
    first, again = _append(ledger, entry), _append(ledger, entry)

    assert again.already_recorded and (again.seq, again.hash) == (first.seq, first.hash)
    assert len(ledger.store.all()) == 1
    _append(ledger, incidents.entry(incidents.resolved(), "resolved", run_id="run-2"))
    assert [r.run_id for r in ledger.store.get("inc-resolved")] == ["run-1", "run-2"]


@pytest.mark.timeout(120)
def test_concurrent_appends_keep_one_valid_chain(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                _append(ledger, incidents.entry(incidents.resolved(f"inc-{n}-{i}"), "resolved"))
                _append(ledger, incidents.entry(incidents.resolved(f"inc-{n}-{i}"), "resolved"))  # a retry
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)

    assert errors == []
    assert [r.seq for r in ledger.store.all()] == list(range(1, 41))
    result = ledger.store.verify()
    assert result.ok, result.problems
