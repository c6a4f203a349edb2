"""The ledger's hash chain: each record's hash covers its content and the previous hash.

Editing a record breaks its own hash; deleting or reordering records breaks the
next record's `prev_hash` and the sequence. Pure functions, so the CLI can
verify a ledger without any server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from zerotouch.ledger_models import GENESIS_HASH, LedgerRecord, VerifyResult

# Fields added after records were first written: left out while at their default, so records
# written before they existed hash exactly as they did.
_LATER_FIELDS = {"kind": "incident", "evidence": None}


def canonical_json(record: LedgerRecord) -> str:
    """The record without its hash, as stable JSON (sorted keys, no whitespace)."""
    body = record.model_dump(mode="json", exclude={"hash"})
    for name, default in _LATER_FIELDS.items():
        if body.get(name) == default:
            body.pop(name, None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: LedgerRecord) -> str:
    """sha256 over the previous hash followed by the record's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical_json(record)).encode("utf-8")).hexdigest()


def seal(record: LedgerRecord, *, seq: int, prev_hash: str) -> LedgerRecord:
    """The record as appended: numbered, linked to its predecessor and hashed."""
    linked = record.model_copy(update={"seq": seq, "prev_hash": prev_hash, "hash": ""})
    return linked.model_copy(update={"hash": chain_hash(prev_hash, linked)})


def verify_chain(records: Sequence[LedgerRecord], *, head: tuple[int, str] | None = None) -> VerifyResult:
    """Check records in stored order; `head` (last seq, last hash) also catches a deleted tail."""
    problems: list[str] = []
    expected_seq, expected_prev = 1, GENESIS_HASH
    for record in records:
        name = f"record seq {record.seq} (incident {record.incident_id})"
        if record.seq > expected_seq:
            missing = _span(expected_seq, record.seq - 1)
            problems.append(f"{missing} missing before {name}: deleted from the ledger")
        elif record.seq < expected_seq:
            problems.append(f"{name} is out of order: expected seq {expected_seq}")
        if record.prev_hash != expected_prev:
            problems.append(f"{name}: prev_hash does not match the previous record (deleted, edited or reordered)")
        if chain_hash(record.prev_hash, record) != record.hash:
            problems.append(f"{name} was edited: its content does not match its hash")
        # Continue from the stored hash so one edit is reported once, not for every later record.
        expected_seq, expected_prev = max(expected_seq, record.seq + 1), record.hash
    if head is not None:
        head_seq, head_hash = head
        if head_seq >= expected_seq:
            problems.append(f"{_span(expected_seq, head_seq)} missing at the end: deleted from the ledger")
        elif head_seq == expected_seq - 1 and head_hash != expected_prev:
            problems.append(f"record seq {head_seq}: the chain head's hash does not match it (edited or replaced)")
    return VerifyResult(ok=not problems, records=len(records), problems=problems)


def _span(first: int, last: int) -> str:
    return f"record seq {first}" if first == last else f"records seq {first}..{last}"
