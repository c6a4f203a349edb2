"""Scenario 3b's pure parts: the worker layouts it starts, the bound it names, and when a shape counts as failed."""

from __future__ import annotations

from typing import Any

import pytest

from bench.__main__ import CORRECTNESS
from bench.scenarios.scale import SHAPES, ShapeRun, bound, section
from bench.scenarios.storm_load import StormPlan, StormResult
from bench.stack import _worker_name
from zerotouch.names import ALL_QUEUES, KUBERNETES_QUEUE

PLAN = StormPlan(alerts=4, per_alert=3)


def result(*, drain: float = 10.0, machine: float = 10.0, temporal: float = 5.0, actions: int = 4,
           to_action: float = 2.0, stamps: tuple[float, ...] = ()) -> StormResult:
    acted = [{"namespace": ns, "name": name, "timestamp": 100.0} for ns, name in PLAN.targets[:actions]]
    acted += [{"namespace": PLAN.targets[0][0], "name": PLAN.targets[0][1], "timestamp": at} for at in stamps]
    return StormResult(counts={"200": PLAN.deliveries}, ingest_seconds=4.0, drain_seconds=drain, drained=True,
                       actions=acted, incidents=PLAN.alerts, found=PLAN.alerts, received=PLAN.deliveries - 2,
                       absorbed=2, to_action=[to_action] * PLAN.alerts, alert_to_action=[to_action] * PLAN.alerts,
                       idle={}, peak={"worker": 150.0, "worker-2": 140.0},
                       cpu={"temporal": temporal, "relay": 1.0, "worker": 2.0, "worker-2": 2.0, "sandbox": 1.0},
                       machine_cpu=machine, update_limit=0, grant_failures=0)


def shape(name: str = "2 workers", grant_running: float = 0.2, **kwargs: Any) -> ShapeRun:
    return ShapeRun(name=name, processes=len(SHAPES[name]), result=result(**kwargs), grant_queued=0.1,
                    grant_running=grant_running, alive=len(SHAPES[name]))


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_worker_process_of_a_shape_has_its_own_log(name: str) -> None:
    names = [_worker_name(number, queues) for number, queues in enumerate(SHAPES[name])]
    assert len(set(names)) == len(names) and names[0] == "worker"
    assert all(name.startswith("worker") for name in names)  # what the CPU and RSS sums count as workers


def test_the_split_kubernetes_shape_keeps_its_process_names() -> None:
    assert _worker_name(1, [KUBERNETES_QUEUE]) == "worker-kubernetes"
    assert [queues for queues in SHAPES["one per queue"]] == [(queue,) for queue in ALL_QUEUES]


def test_the_bound_is_named_from_the_shapes_own_numbers() -> None:
    assert bound(shape(machine=19.0), cores=2).startswith("the machine's CPU (1.9 of 2 cores busy, 1.1 of them")
    assert bound(shape(machine=19.0, temporal=1.0), cores=2).startswith(
        "the machine's CPU, most of it others' work on this shared machine (1.9 of 2 cores busy, 0.7 of them")
    assert bound(shape(grant_running=1.5, to_action=2.0), cores=2).startswith("the Governor")
    assert bound(shape(), cores=2).startswith("the dev server (0.5 cores")


def test_the_workers_cpu_is_summed_over_every_worker_process() -> None:
    run = shape()
    assert run.workers == ["worker", "worker-2"]
    assert run.cores(*run.workers) == pytest.approx(0.4)
    rows = {row[0]: row[1:] for row in section(PLAN, [run], cores=2).table}
    assert rows["CPU s: dev server / relay / workers (sum) / sandbox"] == ["5 / 1 / 4 / 1"]
    assert rows["worker RSS peak: largest process / all summed"] == ["150 / 290 MiB"]


def correctness_failures(runs: list[ShapeRun]) -> list[str]:
    goals = section(PLAN, runs, cores=2).goals
    return [g.text for g in goals if g.met is False and any(word in g.text for word in CORRECTNESS)]


def test_every_shape_must_act_exactly_once_per_alert() -> None:
    assert correctness_failures([shape("1 worker"), shape("4 workers")]) == []
    missing = correctness_failures([shape("1 worker"), shape("4 workers", actions=3)])
    assert missing == [f"actions ≤ {PLAN.alerts} and none missing, in every shape"]
    twice = correctness_failures([shape("1 worker", stamps=(150.0,))])
    assert "never two on one target inside its cooldown, in every shape" in twice


def test_a_delivery_counts_once_whether_an_incident_or_the_relay_counted_it() -> None:
    counted = result()
    assert counted.received + counted.absorbed == PLAN.deliveries and counted.none_lost(PLAN)
    counted.absorbed -= 1  # a delivery neither the incidents nor the relay counted is lost
    assert not counted.none_lost(PLAN)
