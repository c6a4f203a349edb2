"""Post-mortems tell the story from the timeline, and nothing secret or personal leaks."""

from __future__ import annotations

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from tests.ledger import incidents
from tests.ledger.conftest import Ledger
from zerotouch.ledger_models import Outcome
from zerotouch.ledger_report import postmortem_for
from zerotouch.models import IncidentStatus
from zerotouch.postmortem import redact, redact_labels

SECTIONS = ("## Summary", "## Impact", "## Timeline", "## Root-cause class", "## Actions",
            "## What verified recovery", "## Follow-ups")


@pytest.mark.parametrize(("status", "outcome", "story"), [
    (incidents.resolved(), "resolved", ["attempt 1: restart_deployment on shop/checkout", "recovery verified",
                                        "verified: 3/3 replicas available for 10s"]),
    (incidents.escalated(), "escalated", ["target cooldown: shop/checkout", "escalated and frozen",
                                          "A human must investigate"]),
])
def test_postmortem_tells_the_timeline_and_leaks_nothing(
    ledger: Ledger, status: IncidentStatus, outcome: Outcome, story: list[str]
) -> None:
    ActivityEnvironment().run(LedgerActivities(store=ledger.store).append_incident_record,
                              incidents.entry(status, outcome))

    markdown = postmortem_for(ledger.url, status.incident_id)
    stored = ledger.store.get(status.incident_id)[0].model_dump_json()
    assert all(section in markdown for section in SECTIONS)
    assert all(line in markdown for line in story)
    assert "2025-03-01T12:00:31+00:00 **triage**" in markdown  # timestamped
    for secret in incidents.SECRETS:
        assert secret not in markdown
        assert secret not in stored
    assert "api_token" in stored and "[redacted]" in stored  # the label is kept, its value is not


def test_postmortem_for_an_unknown_incident_says_so(ledger: Ledger) -> None:
    with pytest.raises(LookupError, match="not in the ledger"):
        postmortem_for(ledger.url, "nope")


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
    ("dsn postgresql://app:pa55word@db:5432/x", "pa55word"),
    ("mail ops.person+tag@corp.example.org now", "ops.person"),
    ("token=abc123 and password: hunter2", "hunter2"),
    ("token=abc123 and password: hunter2", "abc123"),
    ("hex d41d8cd98f00b204e9800998ecf8427e here", "d41d8cd98f00b204e9800998ecf8427e"),
    ("key QWxhZGRpbjpvcGVuIHNlc2FtZTEyMzQ1Njc4OTA= leaked", "QWxhZGRpbjpvcGVu"),
])
def test_redact_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_keeps_what_forensics_needs() -> None:
    text = ("restart_deployment applied on payments/checkout-api-7f9c8d6b5-x2x4z "
            "(run 0f3c2a1e-9b7d-4c1a-8e2f-1a2b3c4d5e6f)")
    assert redact(text) == text
    assert redact_labels({"session_cookie": "x", "namespace": "shop"}) == {"session_cookie": "[redacted]",
                                                                            "namespace": "shop"}
