"""The ledger is immutable in the only way that counts: any change is detected and named."""

from __future__ import annotations

from activities.ledger import build_record
from tests.ledger import incidents
from tests.ledger.conftest import Ledger
from zerotouch.ledger_chain import seal, verify_chain
from zerotouch.ledger_report import render_verify, verify_ledger


def _seed(ledger: Ledger) -> None:
    entries = (incidents.entry(incidents.resolved(), "resolved"), incidents.entry(incidents.escalated(), "escalated"),
               incidents.entry(incidents.aborted(), "aborted"))
    for entry in entries:
        ledger.store.append(build_record(entry, recorded_at=incidents.T0))


def test_an_intact_ledger_verifies(ledger: Ledger) -> None:
    _seed(ledger)

    result = verify_ledger(ledger.url)
    assert result.ok and result.records == 3 and result.problems == []
    assert "intact" in render_verify(result)


def test_an_edited_column_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("UPDATE zerotouch_ledger SET outcome = 'resolved' WHERE seq = 2")

    result = ledger.store.verify()
    assert not result.ok
    assert result.problems == ["record seq 2 (incident inc-escalated) was edited: its content does not match its hash"]
    assert "TAMPERED" in render_verify(result)


def test_an_edited_body_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("UPDATE zerotouch_ledger SET body = replace(body, '\"P2\"', '\"P4\"') WHERE seq = 1")

    result = ledger.store.verify()
    assert not result.ok and len(result.problems) == 1
    assert "record seq 1 (incident inc-resolved) was edited" in result.problems[0]


def test_a_deleted_middle_record_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("DELETE FROM zerotouch_ledger WHERE seq = 2")

    result = ledger.store.verify()
    assert not result.ok and result.records == 2
    assert any(p.startswith("record seq 2 missing before record seq 3 (incident inc-aborted)") for p in result.problems)


def test_a_deleted_last_record_is_named(ledger: Ledger) -> None:
    _seed(ledger)
    ledger.tamper("DELETE FROM zerotouch_ledger WHERE seq = 3")

    result = ledger.store.verify()
    assert result.problems == ["record seq 3 missing at the end: deleted from the ledger"]


def test_reordered_records_are_named() -> None:
    first, second = (seal(build_record(incidents.entry(s, "resolved"), recorded_at=incidents.T0), seq=1,
                          prev_hash="0" * 64) for s in (incidents.resolved("a"), incidents.resolved("b")))
    second = seal(second, seq=2, prev_hash=first.hash)

    result = verify_chain([second, first])
    assert not result.ok
    assert any("record seq 1 (incident a) is out of order" in p for p in result.problems)
