"""The zero-ops report matches a hand count over a seeded ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from tests.ledger import incidents
from tests.ledger.conftest import Ledger
from zerotouch.ledger_report import Report, default_ledger_url, percentile, render_report, report

RECOVERY_TIMES = (60, 120, 180, 240, 300, 600)


def _seed(ledger: Ledger) -> None:
    append = LedgerActivities(store=ledger.store).append_incident_record
    entries = [incidents.entry(incidents.resolved(f"ok-{t}", recover_after=t), "resolved") for t in RECOVERY_TIMES]
    entries += [incidents.entry(incidents.escalated(f"esc-{n}"), "escalated") for n in range(2)]
    entries += [incidents.entry(incidents.aborted(f"abort-{n}"), "aborted") for n in range(2)]
    for entry in entries:
        ActivityEnvironment().run(append, entry)


def test_report_matches_a_hand_count(ledger: Ledger) -> None:
    _seed(ledger)

    result = report(ledger.url, timedelta(days=7))

    assert result.incidents == 10
    assert result.by_outcome == {"resolved": 6, "escalated": 2, "aborted": 2}
    assert (result.automation_rate, result.human_intervention_rate) == (0.6, 0.4)
    # Nearest rank over 60,120,180,240,300,600: p50 = 3rd value, p95 = 6th.
    assert (result.mttr_seconds.p50, result.mttr_seconds.p95) == (180, 600)
    assert (result.mttd_seconds.p50, result.mttd_seconds.p95) == (30, 30)
    assert result.actions == {"restart_deployment": {"applied": 8}}
    assert result.escalations == 2
    assert result.refusals == {"target cooldown": 2, "the Governor refused (breaker_open)": 2}
    assert result.runbooks["restart-on-errors"].model_dump() == {"incidents": 10, "resolved": 6, "success_rate": 0.6}
    assert Report.model_validate(json.loads(result.model_dump_json())) == result
    text = render_report(result)
    assert "automation rate: 60%" in text and "target cooldown: 2" in text


def test_report_window_excludes_older_records(ledger: Ledger) -> None:
    _seed(ledger)

    assert report(ledger.url, timedelta(seconds=0)).incidents == 0


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 95) == 5
    assert percentile(range(1, 101), 95) == 95


def test_default_ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEROTOUCH_LEDGER_URL", raising=False)
    assert default_ledger_url(tmp_path) == f"sqlite:///{tmp_path}/ledger.db"
    monkeypatch.setenv("ZEROTOUCH_LEDGER_URL", "postgresql://db/ledger")
    assert default_ledger_url(tmp_path) == "postgresql://db/ledger"
