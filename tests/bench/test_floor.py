"""The latency floor's arithmetic and the knobs the investigation may turn (no servers)."""

from __future__ import annotations

import math

import pytest
from temporalio.worker import PollerBehaviorAutoscaling

from bench.scenarios.floor import GOAL_RATIO, ratio, times
from bench.worker_knobs import Knobs


def test_ratio_is_zerotouch_over_floor_at_the_same_percentile() -> None:
    ours, floor = [0.1, 0.2, 0.3, 0.4], [0.05, 0.1, 0.1, 0.2]
    assert ratio(ours, floor, 50) == pytest.approx(2.0)
    assert ratio(ours, floor, 99) == pytest.approx(2.0)
    assert ratio(ours, floor, 50) <= GOAL_RATIO
    assert math.isnan(ratio(ours, [], 50))
    assert times(math.nan) == "n/a"
    assert times(1.94) == "1.9x"


def test_shipped_knobs_change_nothing() -> None:
    knobs = Knobs.parse("{}")
    assert knobs.worker_kwargs() == {}
    assert knobs.label == "shipped settings"
    assert Knobs.parse(knobs.dumps()) == knobs


def test_knobs_round_trip_and_reach_the_worker() -> None:
    knobs = Knobs(worker={"max_concurrent_workflow_task_polls": 10}, threads=64, uvloop=True, autoscale_polls=True)
    again = Knobs.parse(knobs.dumps())
    assert again == knobs
    kwargs = again.worker_kwargs()
    assert kwargs["max_concurrent_workflow_task_polls"] == 10
    assert isinstance(kwargs["activity_task_poller_behavior"], PollerBehaviorAutoscaling)
    with again.executor(32) as executor:
        assert executor._max_workers == 64


def test_a_misspelt_knob_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown worker knobs"):
        Knobs.parse('{"worker": {"max_concurent_activities": 3}}')
