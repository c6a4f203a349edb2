"""A data-subject request's receipt is chained like every record: an edit or a deletion is named.

The edits an operator might be tempted to make after the fact: turning a partial erasure into a
complete one, or changing who decided it. Both stores (SQLite and a real PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.ledger import dsr_record
from tests.ledger.conftest import Ledger
from zerotouch.gdpr_models import DsrReceipt, Outcome, StoreReceipt

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _receipt(number: int, outcome: Outcome, decided_by: str) -> DsrReceipt:
    erased = 3 if outcome == "complete" else 1
    return DsrReceipt(
        request_id=f"dsr-20261102-{number:04d}", kind="erasure", subject=f"{number:064x}", outcome=outcome,
        requested_by="alice", verification="signed-in account", decided_by=decided_by,
        received_at=T0, due_at=T0 + timedelta(days=30), finished_at=T0 + timedelta(days=8),
        policy_digest="a" * 64, workflow_id=f"gdpr-dsr-20261102-{number:04d}", run_id=f"run-{number}",
        stores=[StoreReceipt(store_name="shop-db", kind="postgres", matched=3, erased=erased,
                             methods={"customers": "delete", "orders": "delete"}, requery_matches=3 - erased)],
    )


SEEDED: list[tuple[Outcome, str]] = [("complete", "bob"), ("partial", "carol"), ("complete", "dave")]


def _seed(ledger: Ledger) -> None:
    for number, (outcome, by) in enumerate(SEEDED, 1):
        ledger.store.append(dsr_record(_receipt(number, outcome, by), recorded_at=T0 + timedelta(days=number)))


def test_receipts_verify_when_untouched(ledger: Ledger) -> None:
    _seed(ledger)
    result = ledger.store.verify()
    assert result.ok and result.records == 3, result.problems
    assert [r.kind for r in ledger.store.all()] == ["dsr_receipt"] * 3


def test_a_partial_erasure_edited_into_a_resolved_one_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("UPDATE zerotouch_ledger SET outcome = 'resolved' WHERE seq = 2")
    result = ledger.store.verify()
    assert not result.ok
    assert result.problems == ["record seq 2 (incident gdpr-dsr-20261102-0002) was edited: "
                               "its content does not match its hash"]


def test_an_edited_decider_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("UPDATE zerotouch_ledger SET body = replace(body, 'carol', 'mallory') WHERE seq = 2")
    assert "carol" not in ledger.store.all()[1].model_dump_json()  # the edit really happened
    result = ledger.store.verify()
    assert not result.ok and len(result.problems) == 1
    assert result.problems[0].startswith("record seq 2 (incident gdpr-dsr-20261102-0002) was edited")


def test_a_deleted_receipt_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("DELETE FROM zerotouch_ledger WHERE seq = 2")
    result = ledger.store.verify()
    assert not result.ok
    assert any(p.startswith("record seq 2 missing before record seq 3") for p in result.problems), result.problems
